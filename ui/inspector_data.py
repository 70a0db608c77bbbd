"""What the Update Inspector page reads: the runs that have update snapshots, their files, and
the view of one update (no Streamlit here; the page caches :func:`compute_view`).

Snapshots are written by the run's worker beside its checkpoints (``core/runtime/snapshots.py``);
the math of the view is ``core/labs/inspector.py``; the figures are ``ui/inspector_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.labs.inspector import SUPPORTED, InspectorView, inspect, unavailable_reason
from core.runtime.snapshots import SnapshotRef, list_snapshots, load_snapshot, snapshot_dir
from core.runtime.store import RunStore
from ui.text import plain


def snapshot_files(store: RunStore, run_id: str) -> dict[int, SnapshotRef]:
    """update → snapshot record of a run, oldest first (empty when it has none)."""
    return list_snapshots(snapshot_dir(store.checkpoint_dir(run_id)))


def inspectable_runs(store: RunStore) -> pd.DataFrame:
    """The TRPO, NPG and PPO runs that have snapshots, newest first, with a ``snapshots`` count
    and a ``label`` for a picker."""
    runs = store.runs()
    runs = runs[runs["algo"].isin(SUPPORTED)].copy()
    runs["snapshots"] = [len(snapshot_files(store, r)) for r in runs["run_id"]]
    runs = runs[runs["snapshots"] > 0]
    runs["label"] = [
        f"{row.name} · {row.status} · {row.snapshots} updates" for row in runs.itertuples()
    ]
    return runs.reset_index(drop=True)


def run_message(store: RunStore, run_id: str) -> str | None:
    """Why ``run_id`` cannot be inspected (unknown run, DQN/A2C, no snapshots), or None."""
    run = store.run(run_id)
    if run is None:
        return f"There is no run {plain(run_id)} in this playground's store."
    return unavailable_reason(run["algo"], len(snapshot_files(store, run_id)))


def compute_view(where: SnapshotRef | str | Path, n: int = 41) -> InspectorView:
    """The inspector's view of the update stored at ``where`` (a record, or a file's first)."""
    update, snap = load_snapshot(where)
    return inspect(snap, update, n=n)


def nearest(updates: list[int], wanted: int) -> int:
    """The update of ``updates`` closest to ``wanted`` (retention keeps every 10th of old ones)."""
    return min(updates, key=lambda u: (abs(u - wanted), -u))

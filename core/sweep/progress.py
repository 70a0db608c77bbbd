"""Where sweeps stand, read from the store (so any process can watch any sweep).

A trial is a chain of runs: resuming a sweep (``core/sweep/control.py``) re-launches each
unfinished trial as a new run in the same sweep, with ``parent_id`` linking it to the run it
replaces. Progress therefore counts trials, the newest run of each chain. A failed trial stays
failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from core.config import RunConfig
from core.runtime.store_schema import ACTIVE_STATUSES
from core.sweep.spec import SweepError, format_value

if TYPE_CHECKING:
    from core.runtime.store import RunStore

ACTIVE = ACTIVE_STATUSES
RESUMABLE = ("interrupted", "stopped")


@dataclass
class SweepProgress:
    """Where a sweep stands: one row per trial (its latest run) and counts by status.

    ``status`` is ``running`` while a trial is queued, running or paused; then ``interrupted``
    if a trial was cut off by a dead driver, ``stopped`` if one was stopped, else ``finished``
    (failed trials are counted in ``counts['failed']``). ``fraction`` is the mean over trials of
    env_steps / total_steps, a trial that ended counting as complete.
    """

    sweep_id: str
    runs: pd.DataFrame
    counts: dict[str, int]
    status: str
    fraction: float

    @property
    def total(self) -> int:
        return len(self.runs)

    @property
    def active(self) -> int:
        return sum(self.counts.get(s, 0) for s in ACTIVE)

    @property
    def done(self) -> int:
        return self.total - self.active

    @property
    def is_done(self) -> bool:
        return self.active == 0


def sweep_runs(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """Every run of a sweep, replaced ones included (store.runs() columns)."""
    runs = store.runs()
    return runs[runs["sweep_id"] == sweep_id].reset_index(drop=True)


def sweep_progress(store: RunStore, sweep_id: str) -> SweepProgress:
    """The progress of ``sweep_id``; :class:`SweepError` if the store has no such sweep."""
    runs = sweep_runs(store, sweep_id)
    if runs.empty:
        raise SweepError(f"no sweep {sweep_id!r} in {store.path}")
    return _progress(sweep_id, runs)


def _progress(sweep_id: str, runs: pd.DataFrame) -> SweepProgress:
    replaced = set(runs["parent_id"].dropna())
    trials = runs[~runs["run_id"].isin(replaced)].sort_values("created_at").reset_index(drop=True)
    counts = {str(k): int(v) for k, v in trials["status"].value_counts().items()}
    ended = ~trials["status"].isin(ACTIVE)
    steps = (trials["env_steps"].fillna(0) / trials["total_steps"]).clip(upper=1.0)
    fraction = float(steps.where(~ended, 1.0).mean())
    return SweepProgress(sweep_id, trials, counts, _overall(counts), fraction)


def _overall(counts: dict[str, int]) -> str:
    if any(counts.get(s) for s in ACTIVE):
        return "running"
    for status in RESUMABLE:
        if counts.get(status):
            return status
    return "finished"


def sweep_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Which grid point each run is: ``run_id``, the hyperparameters that differ between the
    runs (algorithm included), ``seed``, and ``point`` (e.g. ``gamma=0.95 gae_lambda=0.9``), so
    the seeds of one point can be grouped for mean ± band plots."""
    flat = pd.DataFrame([RunConfig.from_json(c).flat() for c in runs["config"]])
    varying = [
        k
        for k in flat.columns
        if k not in ("seed", "name") and flat[k].map(format_value).nunique(dropna=False) > 1
    ]
    table = flat[varying].copy()
    table.insert(0, "run_id", runs["run_id"].to_numpy())
    table["seed"] = flat["seed"].to_numpy()
    table["point"] = [
        " ".join(f"{k}={format_value(v)}" for k, v in zip(varying, row)) or "all"
        for row in flat[varying].itertuples(index=False)
    ]
    return table


def sweeps(store: RunStore) -> pd.DataFrame:
    """One row per sweep in the store, newest first: id, algorithms, env, trial counts, status."""
    runs = store.runs()
    runs = runs[runs["sweep_id"].notna()]
    rows = []
    for sweep_id, group in runs.groupby("sweep_id", sort=False):
        p = _progress(str(sweep_id), group)
        rows.append(
            {
                "sweep_id": sweep_id,
                "algos": ", ".join(sorted(group["algo"].unique())),
                "env_id": ", ".join(sorted(group["env_id"].unique())),
                "trials": p.total,
                "finished": p.counts.get("finished", 0),
                "failed": p.counts.get("failed", 0),
                "active": p.active,
                "status": p.status,
                "created_at": group["created_at"].min(),
            }
        )
    columns = ["sweep_id", "algos", "env_id", "trials", "finished", "failed", "active", "status"]
    table = pd.DataFrame(rows, columns=[*columns, "created_at"])
    return table.sort_values("created_at", ascending=False, ignore_index=True)


def wait_sweep(
    store: RunStore,
    sweep_id: str,
    timeout: float | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    poll: float = 0.5,
) -> SweepProgress:
    """Block until no trial is active (or ``timeout`` passes); returns the last progress."""
    deadline = None if timeout is None else time.monotonic() + timeout
    tick = threading.Event()
    while True:
        progress = sweep_progress(store, sweep_id)
        if on_progress is not None:
            on_progress(progress)
        if progress.is_done or (deadline is not None and time.monotonic() >= deadline):
            return progress
        tick.wait(poll)

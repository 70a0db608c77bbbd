"""The live feed of one run: what the browser's run panel polls, and the commands it sends.

A page shows a run through one component (``ui/run_panel.py``) that asks this feed for news over
plain HTTP (``ui/live_api.py``) instead of re-running a Streamlit script every second. Each answer
carries the run's status, its progress line and the versions of what has been read; the charts
(Plotly JSON from ``ui/charts/run.py``) come only when asked for and when they changed since the
version the browser holds, and are built once per version for every tab that watches the run.

No Streamlit here: the handlers run on the web server's worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from core.config import ConfigError
from core.metrics import ENV_STEPS
from core.runtime.runner import RunError, RunManager
from core.runtime.store import RunStore
from core.runtime.store_schema import TERMINAL_STATUSES, StoreError
from ui.charts.events import hyperparameter_changes
from ui.charts.run import run_figure_dicts
from ui.run_data import ACTIVE, STATUS_ICONS, RunData, progress, read_run, run_text

COMMANDS = ("pause", "resume", "stop")
CONFIRMS = {"pausing": ("paused",), "resuming": ("running",), "stopping": TERMINAL_STATUSES}
MAX_WAIT_S = 5.0  # the longest a poll may wait for a command's confirmation
FIGURE_CACHE = 16  # built figure sets kept (per run, version and display mode)

_figures: OrderedDict[tuple[str, str, bool], dict[str, dict]] = OrderedDict()
_figures_lock = threading.Lock()


def run_state(
    manager: RunManager,
    run_id: str,
    *,
    have: str | None = None,
    figures: bool = False,
    large: bool = False,
    wait_s: float = 0.0,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One answer of the feed for ``run_id``.

    ``wait_s`` > 0: while a command is on its way (pausing, resuming, stopping), first wait up to
    that long (woken the moment the status changes) for the run to confirm it, so the answer
    usually shows the confirmed status. ``figures``: include the charts, unless the browser
    already holds this version (``have``); the charts named in ``skip`` (those the browser will
    not redraw this round) come as ``None``, so they are neither serialized nor parsed.
    """
    store = manager.store
    requested = manager.requested(run_id)
    if requested is not None and wait_s > 0:
        manager.wait_for_status(run_id, CONFIRMS[requested], min(wait_s, MAX_WAIT_S))
        requested = manager.requested(run_id)
    row = store.run(run_id)
    if row is None:
        return {"run_id": run_id, "found": False, "message": "This run was deleted."}
    data = read_run(store, run_id)
    done, text = progress(row, data.metrics)
    status = row["status"]
    active = status in ACTIVE
    shown = f"{requested}…" if requested and active else status
    state = {
        "run_id": run_id,
        "found": True,
        "status": status,
        "active": active,
        "shown": shown,
        "icon": STATUS_ICONS.get(status, ""),
        "label": run_text(row),
        "fraction": done,
        "progress": text,
        "version": f"{data.version}.{int(large)}",
        "updates": len(data.metrics),
        "changes": len(hyperparameter_changes(data.events)),  # the charts' markers
        "last_x": int(data.metrics[ENV_STEPS.name].iloc[-1]) if not data.metrics.empty else None,
        "figures": None,
    }
    if figures and have != state["version"]:
        figs = _figures_for(manager, row, data, state["version"], large)
        state["figures"] = {name: None if name in skip else fig for name, fig in figs.items()}
    return state


def figures(store: RunStore, row: dict[str, Any], data: RunData, *, large: bool) -> dict[str, dict]:
    """The run's charts (return, KL vs δ, line search, diagnostics) as Plotly JSON, built from
    everything read so far (a few ms: ``ui.charts.run.run_figure_dicts``)."""
    try:
        values = store.config(row["run_id"]).flat()
    except (StoreError, ConfigError):
        values = {}
    with data.lock:  # a consistent set of rows (another thread may be appending)
        return run_figure_dicts(
            data.metrics,
            data.episodes,
            data.events,
            algo=row["algo"],
            config_values=values,
            large=large,
            revision=str(row["run_id"]),
        )


def _figures_for(
    manager: RunManager, row: dict[str, Any], data: RunData, version: str, large: bool
) -> dict[str, dict]:
    """The run's charts at ``version`` (built once, shared by every tab that asks)."""
    key = (row["run_id"], version, large)
    with _figures_lock:
        cached = _figures.get(key)
    if cached is not None:
        return cached
    figs = figures(manager.store, row, data, large=large)
    with _figures_lock:
        _figures[key] = figs
        while len(_figures) > FIGURE_CACHE:
            _figures.popitem(last=False)
    return figs


def send_command(manager: RunManager, run_id: str, action: str) -> dict[str, Any]:
    """Pause, resume or stop ``run_id``: ``{"ok": True, "requested": "pausing"}`` at once (the run
    confirms within one update), or ``{"ok": False, "message": …}`` saying why not."""
    if action not in COMMANDS:
        return {"ok": False, "message": f"Unknown command {action!r} (use {', '.join(COMMANDS)})."}
    try:
        getattr(manager, action)(run_id)
    except (RunError, StoreError, ConfigError) as err:
        return {"ok": False, "message": f"Could not {action}: {err}"}
    return {"ok": True, "requested": manager.requested(run_id)}

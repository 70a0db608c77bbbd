"""One run on screen: incremental reads from the store, status, progress, controls and charts.

Shared by the Train page (live) and the Runs page (history). Reads are incremental: the frames
already read are kept in ``session_state`` and only rows after the last update / env step are
fetched on each refresh, so a long run costs the same per refresh as a short one.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from core.config import ConfigError, RunConfig
from core.metrics import ENV_STEPS, UPDATE, WALL_TIME
from core.runtime.runner import RunError, RunManager
from core.runtime.store import RunStore
from core.runtime.store_schema import ACTIVE_STATUSES, TERMINAL_STATUSES, StoreError
from ui.charts.run import run_figure_dicts
from ui.live_chart import live_chart
from ui.text import plain

ACTIVE = ACTIVE_STATUSES
LIVE_REFRESH_S = 1.0  # how often the live area of an active run re-reads the store
CACHE = "_run_data"
CACHE_RUNS = 12
# Server time of the last live-chart refreshes: (wall seconds, CPU seconds of the script thread),
# read by benchmarks/bench_app.py.
REFRESH_SECONDS: deque[tuple[float, float]] = deque(maxlen=1000)
STATUS_ICONS = {
    "queued": "⏳",
    "running": "🏃",
    "paused": "⏸️",
    "finished": "✅",
    "stopped": "⏹️",
    "failed": "❌",
    "interrupted": "⚠️",
}


@dataclass
class RunData:
    """What the page has read of one run so far."""

    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    last_update: int = 0
    last_step: int = 0


def read_run(store: RunStore, run_id: str) -> RunData:
    """The run's metrics, episodes and events, reading only the rows added since the last call."""
    cache: dict[str, RunData] = st.session_state.setdefault(CACHE, {})
    data = cache.pop(run_id, None) or RunData()
    cache[run_id] = data  # most recently used last
    while len(cache) > CACHE_RUNS:
        cache.pop(next(iter(cache)))
    new = store.metrics(run_id, after_update=data.last_update)
    if not new.empty:
        data.metrics = (
            new if data.metrics.empty else pd.concat([data.metrics, new], ignore_index=True)
        )
        data.last_update = int(new[UPDATE.name].max())
    eps = store.episodes(run_id, after_env_step=data.last_step)
    if not eps.empty:
        data.episodes = (
            eps if data.episodes.empty else pd.concat([data.episodes, eps], ignore_index=True)
        )
        data.last_step = int(eps["env_step"].max())
    data.events = store.events(run_id)
    return data


@contextmanager
def timed_refresh() -> Iterator[None]:
    """Record how long one refresh of the live area takes on the server (wall and CPU time)."""
    start, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        REFRESH_SECONDS.append((time.perf_counter() - start, time.thread_time() - cpu))


def forget_run(run_id: str) -> None:
    st.session_state.setdefault(CACHE, {}).pop(run_id, None)


def current_config(config: RunConfig, events: pd.DataFrame) -> RunConfig:
    """The run's config with every recorded live change applied, in order."""
    if events is None or events.empty:
        return config
    for _, ev in events[events["kind"] == "hyperparams"].iterrows():
        changes = {k: new for k, (_old, new) in (ev["payload"] or {}).items()}
        try:
            config = config.with_changes(**changes)
        except ConfigError:
            continue
    return config


def run_text(row: dict[str, Any] | pd.Series) -> str:
    """A short human label as plain text (``st.text``, select options): status icon, name (or
    algo on env) and the first characters of the id."""
    name = row.get("name") or f"{row['algo']} on {row['env_id']}"
    return f"{STATUS_ICONS.get(row['status'], '')} {name} · {str(row['run_id'])[:8]}"


def run_label(row: dict[str, Any] | pd.Series) -> str:
    """:func:`run_text` as Markdown that shows the name as typed (headers, button labels)."""
    return plain(run_text(row))


def progress(row: dict[str, Any], metrics: pd.DataFrame) -> tuple[float, str]:
    """Fraction of the budget done and a one-line text with env steps, speed and ETA.

    ETA = (total_steps − env_steps) / (env_steps / wall_time) while the run is active.
    """
    total = float(row.get("total_steps") or 0) or 1.0
    steps = float(metrics[ENV_STEPS.name].iloc[-1]) if not metrics.empty else 0.0
    done = min(1.0, steps / total)
    text = f"{steps:,.0f} / {total:,.0f} env steps"
    if not metrics.empty and metrics[WALL_TIME.name].iloc[-1] > 0:
        rate = steps / float(metrics[WALL_TIME.name].iloc[-1])
        text += f" · {rate:,.0f} steps/s"
        if row["status"] == "running" and rate > 0 and done < 1.0:
            text += f" · ETA {format_seconds((total - steps) / rate)}"
    return done, text


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def show_status(row: dict[str, Any], data: RunData, requested: str | None = None) -> None:
    """Status line, progress bar with ETA, and the failure (traceback in an expander).

    ``requested`` ("pausing", "resuming", "stopping") is a command on its way: shown at once,
    until the run confirms it."""
    done, text = progress(row, data.metrics)
    shown = f"{requested}…" if requested and row["status"] in ACTIVE else row["status"]
    st.progress(done, text=f"{STATUS_ICONS.get(row['status'], '')} **{shown}** · {text}")
    with st.container():  # always there, so the charts after it keep their places (and nodes)
        _show_outcome(row)


def _show_outcome(row: dict[str, Any]) -> None:
    """A failed run's error and traceback; the note on an interrupted run."""
    if row["status"] == "failed":
        error = row.get("error") or "the run failed without a message"
        st.error(f"This run failed: {plain(error.strip().splitlines()[-1])}")
        with st.expander("Traceback"):
            st.code(error, language="text")
    elif row["status"] == "interrupted":
        st.warning(
            "This run was interrupted (the app stopped while it trained). Its data is kept; "
            "continue it from its last checkpoint on the Runs page."
        )


def figures(store: RunStore, row: dict[str, Any], data: RunData, *, large: bool) -> dict[str, dict]:
    """The run's charts (return, KL vs δ, line search, diagnostics) as Plotly JSON, built from
    everything read so far (a few ms: ``ui.charts.run.run_figure_dicts``)."""
    try:
        values = store.config(row["run_id"]).flat()
    except (StoreError, ConfigError):
        values = {}
    return run_figure_dicts(
        data.metrics,
        data.episodes,
        data.events,
        algo=row["algo"],
        config_values=values,
        large=large,
        revision=str(row["run_id"]),
    )


def show_charts(
    figs: dict[str, dict], run_id: str, last_x: int | None, version: str | None = None
) -> None:
    """Two charts per row, each an element that keeps its DOM node, zoom and legend clicks while
    its data is replaced (``ui/live_chart.py``); ``last_x`` is the newest env step drawn and
    ``version`` names what the figures were built from (equal versions: equal figures)."""
    names = list(figs)
    for i in range(0, len(names), 2):
        cols = st.columns(2)
        for col, name in zip(cols, names[i : i + 2]):
            with col:
                key = f"chart.{run_id}.{name}"
                live_chart(figs[name], key=key, name=name, last_x=last_x, version=version)


def live_charts(
    store: RunStore, run_id: str, *, large: bool, requested: str | None = None
) -> dict[str, Any] | None:
    """One refresh of a run's live area (status, progress, charts), timed; the run's row."""
    with timed_refresh():
        fresh = store.run(run_id)
        if fresh is None:
            st.warning("This run was deleted.")
            return None
        data = read_run(store, run_id)
        show_status(fresh, data, requested)
        last_x = int(data.metrics[ENV_STEPS.name].iloc[-1]) if not data.metrics.empty else None
        # The figures are a function of the rows read so far and the display mode.
        version = f"{len(data.metrics)}.{len(data.episodes)}.{len(data.events)}.{large}"
        show_charts(figures(store, fresh, data, large=large), run_id, last_x, version)
        return fresh


CONFIRMS = {"pausing": ("paused",), "resuming": ("running",), "stopping": TERMINAL_STATUSES}
CONFIRM_WAIT_S = 0.3  # a run confirms a command within milliseconds of its rollout


def await_confirmation(manager: RunManager, run_id: str, requested: str) -> None:
    """Wait until the run's status confirms the ``requested`` command ("pausing" → paused, …)
    or ``CONFIRM_WAIT_S`` passes; the manager wakes this the moment the status changes."""
    manager.wait_for_status(run_id, CONFIRMS[requested], CONFIRM_WAIT_S)


def command(action: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run a manager command from a callback: (True, result), or (False, None) with the refusal
    left as a message for the page (never a traceback)."""
    try:
        result = fn(*args, **kwargs)
    except (RunError, StoreError, ConfigError) as err:
        st.session_state["_flash"] = ("error", f"Could not {action}: {plain(err)}")
        return False, None
    st.session_state["_flash"] = ("success", f"{action[0].upper()}{action[1:]}: done.")
    return True, result


def show_flash() -> None:
    """Show (once) the message left by the last command callback (Markdown: user text in it is
    escaped where it is set, as in :func:`command`)."""
    flash = st.session_state.pop("_flash", None)
    if flash:
        kind, text = flash
        (st.error if kind == "error" else st.success)(text)

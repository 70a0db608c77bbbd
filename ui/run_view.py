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
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st

from core.config import ConfigError, RunConfig
from core.runner import RunError
from core.store import RunStore, StoreError
from ui import charts

ACTIVE = ("queued", "running", "paused")
FIGURE_CPU_SHARE = 0.1  # most of one core the live figures may take while runs train
CACHE = "_run_data"
CACHE_RUNS = 12
FIGURES = "_run_figures"
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
        data.last_update = int(new["update"].max())
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


def run_label(row: dict[str, Any] | pd.Series) -> str:
    """A short human label: name (or algo on env) and the first characters of the id."""
    name = row.get("name") or f"{row['algo']} on {row['env_id']}"
    return f"{STATUS_ICONS.get(row['status'], '')} {name} · {str(row['run_id'])[:8]}"


def progress(row: dict[str, Any], metrics: pd.DataFrame) -> tuple[float, str]:
    """Fraction of the budget done and a one-line text with env steps, speed and ETA.

    ETA = (total_steps − env_steps) / (env_steps / wall_time) while the run is active.
    """
    total = float(row.get("total_steps") or 0) or 1.0
    steps = float(metrics["env_steps"].iloc[-1]) if not metrics.empty else 0.0
    done = min(1.0, steps / total)
    text = f"{steps:,.0f} / {total:,.0f} env steps"
    if not metrics.empty and metrics["wall_time"].iloc[-1] > 0:
        rate = float(metrics["env_steps"].iloc[-1]) / float(metrics["wall_time"].iloc[-1])
        text += f" · {rate:,.0f} steps/s"
        if row["status"] in ACTIVE and rate > 0 and done < 1.0:
            text += f" · ETA {format_seconds((total - steps) / rate)}"
    return done, text


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def show_status(row: dict[str, Any], data: RunData) -> None:
    """Status line, progress bar with ETA, and the failure (traceback in an expander)."""
    done, text = progress(row, data.metrics)
    st.progress(done, text=f"{STATUS_ICONS.get(row['status'], '')} **{row['status']}** · {text}")
    if row["status"] == "failed":
        error = row.get("error") or "the run failed without a message"
        st.error(f"This run failed: {error.strip().splitlines()[-1]}")
        with st.expander("Traceback"):
            st.code(error, language="text")
    elif row["status"] == "interrupted":
        st.warning(
            "This run was interrupted (the app stopped while it trained). Its data is kept; "
            "continue it from its last checkpoint on the Runs page."
        )


class FigureKey(NamedTuple):
    """What the live figures were drawn from."""

    run_id: str
    last_update: int
    last_step: int
    events: int
    large: bool


def needs_rebuild(
    old: FigureKey, new: FigureKey, since_build: float, build_cost: float, active: bool
) -> bool:
    """Whether the live figures drawn for ``old`` must be redrawn for ``new``.

    Unchanged data never rebuilds; another run, a new event (a live change: its marker shows at
    once), another font size or a run that is no longer active always does. New updates of an
    active run rebuild once ``since_build`` ≥ ``build_cost`` / FIGURE_CPU_SHARE, so that Plotly's
    figure construction (~0.3 s for a TRPO run's four figures on a slow core) takes at most that
    share of one core while runs train: cheap figures still refresh every second, expensive ones
    every few seconds.
    """
    if old == new:
        return False
    same_view = (old.run_id, old.events, old.large) == (new.run_id, new.events, new.large)
    if not (same_view and active):
        return True
    return since_build >= build_cost / FIGURE_CPU_SHARE


def figures(store: RunStore, row: dict[str, Any], data: RunData, *, large: bool) -> dict[str, Any]:
    """The run's charts (return, KL vs δ, line search, diagnostics), as on the Train page,
    rebuilt when :func:`needs_rebuild` says so and otherwise reused from the last refresh."""
    key = FigureKey(row["run_id"], data.last_update, data.last_step, len(data.events), large)
    cached = st.session_state.get(FIGURES)
    if cached is not None:
        old, figs, built_at, cost = cached
        since = time.perf_counter() - built_at
        if not needs_rebuild(old, key, since, cost, row["status"] in ACTIVE):
            return figs
    start = time.perf_counter()
    try:
        values = store.config(row["run_id"]).flat()
    except (StoreError, ConfigError):
        values = {}
    figs = charts.run_figures(
        data.metrics,
        data.episodes,
        data.events,
        algo=row["algo"],
        config_values=values,
        large=large,
        revision=str(row["run_id"]),
    )
    now = time.perf_counter()
    st.session_state[FIGURES] = (key, figs, now, now - start)
    return figs


def show_charts(figs: dict[str, Any], run_id: str) -> None:
    """Two charts per row; keys tie each chart to the run so zoom survives refreshes."""
    names = list(figs)
    for i in range(0, len(names), 2):
        cols = st.columns(2)
        for col, name in zip(cols, names[i : i + 2]):
            with col:
                st.plotly_chart(figs[name], key=f"chart.{run_id}.{name}", width="stretch")


def live_charts(store: RunStore, run_id: str, *, large: bool) -> dict[str, Any] | None:
    """One refresh of a run's live area (status, progress, charts), timed; the run's row."""
    with timed_refresh():
        fresh = store.run(run_id)
        if fresh is None:
            st.warning("This run was deleted.")
            return None
        data = read_run(store, run_id)
        show_status(fresh, data)
        show_charts(figures(store, fresh, data, large=large), run_id)
        return fresh


def command(action: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run a manager command from a callback: (True, result), or (False, None) with the refusal
    left as a message for the page (never a traceback)."""
    try:
        result = fn(*args, **kwargs)
    except (RunError, StoreError, ConfigError) as err:
        st.session_state["_flash"] = ("error", f"Could not {action}: {err}")
        return False, None
    st.session_state["_flash"] = ("success", f"{action[0].upper()}{action[1:]}: done.")
    return True, result


def show_flash() -> None:
    """Show (once) the message left by the last command callback."""
    flash = st.session_state.pop("_flash", None)
    if flash:
        kind, text = flash
        (st.error if kind == "error" else st.success)(text)

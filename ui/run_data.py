"""What the pages and the live feed know of one run: its rows read so far, status, progress.

No Streamlit here: the same reader serves page scripts and the live feed's HTTP handlers
(``ui/live_feed.py``), so every tab and every poll shares one incremental read per run. Reads
are incremental: only rows after the last update / env step already read are fetched, so a long
run costs the same per refresh as a short one.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.config import ConfigError, RunConfig
from core.metrics import ENV_STEPS, UPDATE, WALL_TIME
from core.runtime.store import RunStore
from core.runtime.store_schema import ACTIVE_STATUSES

ACTIVE = ACTIVE_STATUSES
CACHE_RUNS = 12  # runs whose rows stay in memory (most recently read)
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
    """What has been read of one run so far."""

    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    last_update: int = 0
    last_step: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def version(self) -> str:
        """Names what has been read: equal versions, equal rows (rows are only appended)."""
        return f"{len(self.metrics)}.{len(self.episodes)}.{len(self.events)}"


_CACHE: OrderedDict[tuple[str, str], RunData] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cached(store: RunStore, run_id: str) -> RunData:
    key = (str(store.path), run_id)
    with _CACHE_LOCK:
        data = _CACHE.pop(key, None) or RunData()
        _CACHE[key] = data  # most recently used last
        while len(_CACHE) > CACHE_RUNS:
            _CACHE.popitem(last=False)
        return data


def read_run(store: RunStore, run_id: str) -> RunData:
    """The run's metrics, episodes and events, reading only the rows added since the last call
    (from any page, tab or poll of this process)."""
    data = _cached(store, run_id)
    with data.lock:
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


def forget_run(store: RunStore, run_id: str) -> None:
    """Drop what was read of a run (it was deleted)."""
    with _CACHE_LOCK:
        _CACHE.pop((str(store.path), run_id), None)


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
    """A short human label as plain text: status icon, name (or algo on env) and the first
    characters of the id."""
    name = row.get("name") or f"{row['algo']} on {row['env_id']}"
    return f"{STATUS_ICONS.get(row['status'], '')} {name} · {str(row['run_id'])[:8]}"


def progress(row: dict[str, Any], metrics: pd.DataFrame) -> tuple[float, str]:
    """Fraction of the budget done and a one-line text with env steps, speed and ETA.

    ETA = (total_steps − env_steps) / (env_steps / wall_time) while the run is training.
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

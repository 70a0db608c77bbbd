"""Exports of a stored run: CSV files, and TensorBoard event files for the tool people know.

CSV: ``<run_id>_metrics.csv`` (one row per update, one column per metric: ``core/metrics.py``
says what each means), ``<run_id>_episodes.csv`` (env_step, ret, length) and
``<run_id>_events.csv``; for a run with observation or reward normalization also
``<run_id>_normalization.json``: the settings and running statistics (mean, variance, counts;
``core/engine/normalize.py``) of its newest readable checkpoint, which a policy needs to act on
raw observations (none is written before the first checkpoint). The TensorBoard export puts the
same file in its folder.

TensorBoard: ``<out>/<run_id>/events.out.tfevents.*`` with every metric as a scalar
``train/<name>`` against env steps, the training episodes as ``episodes/return`` and
``episodes/length``, events (pauses, hyperparameter changes, ...) as text, and the run's
hyperparameters in the HParams tab with the final mean return as its metric.

Every file name is plain ASCII (:func:`ascii_file_stem`; run ids are hex already).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path

import pandas as pd

from core.config import ConfigError, RunConfig
from core.engine.normalize import Normalizer
from core.metrics import ENV_STEPS, UPDATE, WALL_TIME
from core.runtime.checkpoint import CheckpointError, load_checkpoint
from core.runtime.store import RunStore
from core.runtime.store_schema import StoreError

FORMATS = ("csv", "tensorboard")


class ExportError(RuntimeError):
    """An export cannot be written; ``str()`` is one user-readable line."""


# Letters the names of runs and sweeps use that have no ASCII decomposition.
_SPELLED = {
    "λ": "lambda",
    "γ": "gamma",
    "δ": "delta",
    "ε": "eps",
    "θ": "theta",
    "π": "pi",
    "σ": "sigma",
    "μ": "mu",
    "β": "beta",
    "α": "alpha",
    "×": "x",
    "±": "pm",
}


def ascii_file_stem(text: str, max_len: int = 60, fallback: str = "export") -> str:
    """``text`` as a plain-ASCII file name part: Greek letters spelled out (λ → lambda), accents
    dropped (NFKD), every run of other characters (spaces, ``·``, ``=``, ``/``, ``,`` …) one
    ``_``, no leading or trailing ``_.-``, at most ``max_len`` characters; ``fallback`` if
    nothing is left. ``ppo · seed=1`` → ``ppo_seed_1``."""
    spelled = "".join(_SPELLED.get(c, c) for c in text)
    plain = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", plain).strip("_.-")[:max_len].strip("_.-")
    return stem or fallback


def _run_row(store: RunStore, run_id: str) -> dict:
    row = store.run(run_id)
    if row is None:
        raise StoreError(f"no run {run_id!r} in {store.path}")
    return row


def _out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create output directory {out}: {e.strerror or e}") from None
    return out


def events_frame(store: RunStore, run_id: str) -> pd.DataFrame:
    """The run's events with the payload as JSON text (for CSV)."""
    ev = store.events(run_id)
    ev["payload"] = [None if p is None else json.dumps(p) for p in ev["payload"]]
    return ev


def export_csv(store: RunStore, run_id: str, out_dir: str | Path) -> list[Path]:
    """Write the run's metrics, episodes and events as CSV files; return their paths."""
    _run_row(store, run_id)
    out = _out_dir(out_dir)
    frames = {
        "metrics": store.metrics(run_id),
        "episodes": store.episodes(run_id),
        "events": events_frame(store, run_id),
    }
    paths = []
    for kind, df in frames.items():
        path = out / f"{ascii_file_stem(run_id)}_{kind}.csv"
        try:
            df.to_csv(path, index=False)
        except OSError as e:
            raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
        paths.append(path)
    normalization = export_normalization(store, run_id, out)
    return paths if normalization is None else [*paths, normalization]


def export_normalization(store: RunStore, run_id: str, out_dir: str | Path) -> Path | None:
    """Write ``<run_id>_normalization.json`` from the run's newest readable checkpoint; None
    when the run normalizes nothing or has no such checkpoint."""
    config = store.config(run_id)
    if not (config.normalize_obs or config.normalize_reward):
        return None
    for stored in reversed(store.checkpoints(run_id)["path"].tolist()):
        try:
            payload = load_checkpoint(stored)
            state = payload["state"]["normalizer"]
            config = RunConfig.from_json(payload["config"])  # γ as it was at that checkpoint
        except (CheckpointError, ConfigError, KeyError, TypeError, ValueError):
            continue
        normalizer = Normalizer.for_run(config, tuple(state["obs"]["mean"].shape))
        normalizer.load_state_dict(state)
        path = _out_dir(out_dir) / f"{ascii_file_stem(run_id)}_normalization.json"
        try:
            path.write_text(json.dumps(normalizer.to_json(), indent=1))
        except OSError as e:
            raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
        return path
    return None


def _hparam_value(value: object) -> float | int | str | bool:
    """TensorBoard's HParams accept numbers, strings and booleans only."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def export_tensorboard(store: RunStore, run_id: str, out_dir: str | Path) -> Path:
    """Write the run as TensorBoard event files under ``out_dir/<run_id>``; return that folder."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    row = _run_row(store, run_id)
    log_dir = _out_dir(out_dir) / ascii_file_stem(run_id)
    metrics = store.metrics(run_id)
    episodes = store.episodes(run_id)
    config = store.config(run_id)
    t0 = float(row["created_at"])
    try:
        writer = SummaryWriter(log_dir=str(log_dir))
    except OSError as e:
        raise ExportError(f"cannot write to {log_dir}: {e.strerror or e}") from None
    with writer:
        names = [c for c in metrics.columns if c not in ("run_id", UPDATE.name, ENV_STEPS.name)]
        walltimes = t0 + metrics[WALL_TIME.name].fillna(0.0).to_numpy()
        steps = metrics[ENV_STEPS.name].to_numpy()
        for name in names:
            for step, value, wt in zip(steps, metrics[name].to_numpy(), walltimes):
                if not math.isnan(value):
                    writer.add_scalar(f"train/{name}", value, int(step), walltime=float(wt))
        for ep in episodes.itertuples():
            writer.add_scalar("episodes/return", ep.ret, int(ep.env_step), walltime=t0)
            writer.add_scalar("episodes/length", ep.length, int(ep.env_step), walltime=t0)
        for ev in store.events(run_id).itertuples():
            text = ev.kind if ev.payload is None else f"{ev.kind}: {json.dumps(ev.payload)}"
            writer.add_text("events", text, int(ev.env_step), walltime=ev.time)
        writer.add_text("config", f"```\n{config.to_json()}\n```", 0, walltime=t0)
        final = row["last_return"]
        metric_dict = {"hparam/final_return": float("nan") if final is None else float(final)}
        hp = {k: _hparam_value(v) for k, v in config.flat().items()}
        for summary in hparams(hp, metric_dict):
            writer.file_writer.add_summary(summary, walltime=t0)
        if not math.isnan(metric_dict["hparam/final_return"]):
            last_step = int(steps[-1]) if len(steps) else 0
            writer.add_scalar("hparam/final_return", metric_dict["hparam/final_return"], last_step)
    export_normalization(store, run_id, log_dir)
    return log_dir


def export_run(store: RunStore, run_id: str, fmt: str, out_dir: str | Path) -> list[Path]:
    """Export in ``fmt`` (one of ``FORMATS``); return what was written."""
    if fmt == "csv":
        return export_csv(store, run_id, out_dir)
    if fmt == "tensorboard":
        return [export_tensorboard(store, run_id, out_dir)]
    raise ExportError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")

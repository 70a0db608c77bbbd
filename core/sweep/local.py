"""Sweeps: a grid of hyperparameters × seeds × algorithms, run as ordinary runs in the one store.

A :class:`SweepSpec` expands to validated run configs: every grid value goes through the one
validation path (``RunConfig.with_changes``) before anything starts, so a bad value is a
``ConfigError`` naming its field and nothing is written. Each expanded config is a *trial*.

Executors:

- ``local`` (default): every trial is handed to the process's
:class:`~core.runtime.runner.RunManager`;
  its threads, its concurrency cap and its queue do the scheduling.
- ``ray`` (:mod:`core.sweep.ray_backend`, imported only when asked): every trial is a Ray task; its
update
  reports stream back to the driver and are written to the same store as they arrive.

Either way every run carries the sweep's ``sweep_id``, so the Compare page and the exports treat
sweep runs like any others. A trial is a chain of runs: resuming a sweep (``python -m core sweep
--resume SWEEP_ID``, after a stop or a driver restart, whose runs the next run manager marks
``interrupted``) re-launches each unfinished trial as a new run in the same sweep, continuing from
the old run's last checkpoint, with ``parent_id`` linking it to the run it replaces. Progress
counts trials (the newest run of each chain). A failed trial stays failed.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from core.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from core.engine.trainer import Trainer
    from core.runtime.runner import RunManager
    from core.runtime.store import RunStore

MAX_TRIALS = 1000
ACTIVE = ("queued", "running", "paused")
RESUMABLE = ("interrupted", "stopped")
BACKENDS = ("local", "ray")
TrainerFactory = Callable[[RunConfig], "Trainer"]


class SweepError(RuntimeError):
    """A sweep cannot do what was asked; ``str()`` is one readable line."""


# ---------------------------------------------------------------------------------------------
# The spec and its expansion
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One expanded point of a sweep: its validated config and a short label (``delta=0.01 …``)."""

    config: RunConfig
    label: str


@dataclass
class SweepSpec:
    """A base config, a grid over validated hyperparameters, seeds, and optionally algorithms.

    ``grid`` maps a flat hyperparameter name (``cfg.keys()``) to its values (typed or strings, as
    from a CLI). ``seeds`` is a count ``n`` (seeds ``base.seed … base.seed + n − 1``) or an explicit
    list of distinct seeds. ``algos`` (default: ``base.algo`` alone) multiplies the grid; a grid key
    applies to the algorithms that have it (``delta`` to TRPO/NPG only) and must exist for one.
    The sweep has |algos| · Π|grid values| · |seeds| trials (fewer where a key does not apply).
    """

    base: RunConfig
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: int | list[int] = 1
    algos: list[str] | None = None
    name: str = ""

    def seed_list(self) -> list[int]:
        """The seeds of every grid point, validated and distinct."""
        if isinstance(self.seeds, bool):
            raise ConfigError("seeds", f"{self.seeds!r} is not a count or a list of seeds")
        if isinstance(self.seeds, int):
            if not 1 <= self.seeds <= MAX_TRIALS:
                raise ConfigError(
                    "seeds", f"{self.seeds} is out of range; allowed [1, {MAX_TRIALS}]"
                )
            seeds: list[Any] = [self.base.seed + i for i in range(self.seeds)]
        else:
            seeds = list(self.seeds)
            if not seeds:
                raise ConfigError("seeds", "the sweep needs at least one seed")
        seeds = [self.base.with_changes(seed=s).seed for s in seeds]
        duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
        if duplicates:
            raise ConfigError("seeds", f"seeds must be distinct; repeated: {duplicates}")
        return seeds

    def trials(self) -> list[Trial]:
        """All trials in order algorithm → grid point → seed, every value validated first."""
        algos = list(self.algos) if self.algos else [self.base.algo]
        bases = [self.base.with_changes(algo=a) for a in algos]
        grid = self._checked_grid(bases)
        seeds = self.seed_list()
        n_points = len(bases) * math.prod(len(v) for v in grid.values()) * len(seeds)
        if n_points > MAX_TRIALS:
            raise ConfigError("grid", f"{n_points} trials is more than the {MAX_TRIALS} allowed")
        trials: list[Trial] = []
        seen: set[str] = set()
        for base in bases:
            known = set(base.keys())
            keys = [k for k in grid if k in known]
            for values in itertools.product(*(grid[k] for k in keys)):
                point = dict(zip(keys, values))
                for seed in seeds:
                    config = base.with_changes(**point, seed=seed)
                    if config.to_json() in seen:
                        continue
                    seen.add(config.to_json())
                    trials.append(Trial(config, _label(config, point, len(bases) > 1)))
        return trials

    def expand(self) -> list[RunConfig]:
        """The validated config of every trial (see :meth:`trials`)."""
        return [t.config for t in self.trials()]

    def _checked_grid(self, bases: list[RunConfig]) -> dict[str, list[Any]]:
        """Grid values coerced to their field's type; a bad key or value names its field."""
        grid: dict[str, list[Any]] = {}
        for key, values in self.grid.items():
            if key in ("algo", "seed"):
                raise ConfigError(key, f"sweep over {key} with the sweep's {key}s, not the grid")
            owners = [b for b in bases if key in set(b.keys())]
            if not owners:
                bases[0].owner_of(key)  # raises: unknown hyperparameter, with the known ones
            values = list(values)
            if not values:
                raise ConfigError(key, "the grid needs at least one value")
            coerced = [owners[0].with_changes(**{key: v}).get(key) for v in values]
            for other in owners[1:]:
                for v in coerced:
                    other.with_changes(**{key: v})
            repeated = [v for i, v in enumerate(coerced) if v in coerced[:i]]
            if repeated:
                raise ConfigError(key, f"{repeated[0]!r} is listed twice")
            grid[key] = coerced
        return grid


def _label(config: RunConfig, point: dict[str, Any], with_algo: bool) -> str:
    parts = [config.algo] if with_algo else []
    parts += [f"{k}={_fmt(v)}" for k, v in point.items()]
    parts.append(f"seed={config.seed}")
    return " ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def new_sweep_id() -> str:
    return "sw-" + uuid.uuid4().hex[:10]


def run_name(spec_name: str, trial: Trial) -> str:
    """The stored run name of a trial: the sweep's name (or ``sweep``) and the trial label."""
    return f"{spec_name or 'sweep'} · {trial.label}"


@dataclass(frozen=True)
class Job:
    """What an executor launches: a config, the run's name, the run it replaces (if any) and the
    checkpoint file to continue from (if any)."""

    config: RunConfig
    name: str
    parent_id: str | None = None
    resume_from: str | None = None


def jobs_of(spec: SweepSpec) -> list[Job]:
    """The spec's trials as jobs (this validates the whole sweep)."""
    return [Job(t.config, run_name(spec.name, t)) for t in spec.trials()]


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------


class RemoteSweep(Protocol):
    """A sweep driven by another engine from this process (Ray)."""

    sweep_id: str

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


_REMOTE: dict[str, RemoteSweep] = {}
_REMOTE_LOCK = threading.Lock()


def register_remote(sweep: RemoteSweep) -> None:
    with _REMOTE_LOCK:
        _REMOTE[sweep.sweep_id] = sweep


def unregister_remote(sweep_id: str) -> None:
    with _REMOTE_LOCK:
        _REMOTE.pop(sweep_id, None)


def remote_sweep(sweep_id: str) -> RemoteSweep | None:
    """The executor driving ``sweep_id`` from this process, if one does."""
    with _REMOTE_LOCK:
        return _REMOTE.get(sweep_id)


def launch_local(
    manager: RunManager,
    spec: SweepSpec,
    *,
    sweep_id: str | None = None,
    trainer_factory: TrainerFactory | None = None,
) -> str:
    """Validate the whole sweep, then start every trial on the run manager; returns the sweep id.

    Runs beyond the manager's concurrency cap wait in its queue (status ``queued``).
    """
    return _start_local(manager, jobs_of(spec), sweep_id or new_sweep_id(), trainer_factory)


def _start_local(
    manager: RunManager, jobs: list[Job], sweep_id: str, trainer_factory: TrainerFactory | None
) -> str:
    for i, job in enumerate(jobs):
        manager.start(
            job.config,
            name=job.name,
            request_id=f"{sweep_id}/{job.parent_id or i}",
            sweep_id=sweep_id,
            parent_id=job.parent_id,
            trainer_factory=trainer_factory,
            resume_from=job.resume_from,
        )
    return sweep_id


def launch(
    manager: RunManager,
    spec: SweepSpec,
    *,
    backend: str = "local",
    cpus_per_trial: float = 1.0,
    ray_cpus: int = 2,
    trainer_factory: TrainerFactory | None = None,
) -> str:
    """Validate the whole sweep, then start it on ``backend`` against the manager's store.

    ``local``: the manager's threads. ``ray``: one Ray task per trial with ``cpus_per_trial``
    CPUs, on ``RAY_ADDRESS`` or else a local runtime with ``ray_cpus`` CPUs.
    """
    if backend == "local":
        return launch_local(manager, spec, trainer_factory=trainer_factory)
    jobs = jobs_of(spec)
    return (
        load_ray_backend(backend)
        .start_ray(
            manager,
            jobs,
            new_sweep_id(),
            cpus_per_trial=cpus_per_trial,
            trainer_factory=trainer_factory,
            local_cpus=ray_cpus,
        )
        .sweep_id
    )


def load_ray_backend(backend: str = "ray") -> Any:
    """The Ray executor module, or a one-line :class:`SweepError` saying how to get it."""
    if backend not in BACKENDS:
        raise ConfigError(
            "backend", f"{backend!r} is not supported; allowed: {', '.join(BACKENDS)}"
        )
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SweepError(
            "the ray backend needs Ray: pip install -r requirements-ray.txt "
            "(or use --backend local)"
        ) from None
    from core.sweep import ray_backend as sweep_ray

    return sweep_ray


def stop_sweep(manager: RunManager, sweep_id: str) -> list[str]:
    """Stop every active run of the sweep (queued ones never start); returns their run ids.

    Raises :class:`SweepError` when the sweep's runs belong to another process (stop it there).
    """
    from core.runtime.runner import RunError

    progress = sweep_progress(manager.store, sweep_id)
    active = progress.runs.loc[progress.runs["status"].isin(ACTIVE), "run_id"].tolist()
    remote = remote_sweep(sweep_id)
    if remote is not None:
        remote.stop()
        return active
    stopped = []
    for run_id in active:
        try:
            manager.stop(run_id)
            stopped.append(run_id)
        except RunError:
            continue  # ended meanwhile, or trained by another process
    if active and not stopped and not sweep_progress(manager.store, sweep_id).is_done:
        raise SweepError(
            f"sweep {sweep_id} runs in another process; stop it there (Ctrl-C on its CLI)"
        )
    return stopped


def resume_sweep(
    manager: RunManager,
    sweep_id: str,
    *,
    backend: str = "local",
    cpus_per_trial: float = 1.0,
    ray_cpus: int = 2,
    max_in_flight: int | None = None,
    trainer_factory: TrainerFactory | None = None,
) -> list[str]:
    """Re-launch each interrupted or stopped trial as a new run linked to the old one.

    A trial continues from its last checkpoint (its metrics go on from that env step), or starts
    again from scratch where it has none. Returns the old run ids that were re-launched; refused
    while the sweep still has active runs. Failed trials stay failed.
    """
    progress = sweep_progress(manager.store, sweep_id)
    if progress.active:
        raise SweepError(f"sweep {sweep_id} still has {progress.active} active runs; stop it first")
    todo = progress.runs[progress.runs["status"].isin(RESUMABLE)]
    jobs = [_resume_job(manager.store, row.run_id, row.name) for row in todo.itertuples()]
    if not jobs:
        return []
    if backend == "local":
        _start_local(manager, jobs, sweep_id, trainer_factory)
    else:
        load_ray_backend(backend).start_ray(
            manager,
            jobs,
            sweep_id,
            cpus_per_trial=cpus_per_trial,
            trainer_factory=trainer_factory,
            local_cpus=ray_cpus,
            max_in_flight=max_in_flight,
        )
    return [j.parent_id for j in jobs if j.parent_id]


def _resume_job(store: RunStore, run_id: str, name: str) -> Job:
    """The job that takes over trial ``run_id``: from its newest readable checkpoint, if any."""
    from core.runtime.checkpoint import CheckpointError, load_checkpoint

    name = name if name.endswith("(resumed)") else f"{name} (resumed)"
    for path in reversed(store.checkpoints(run_id)["path"].tolist()):
        try:
            config = RunConfig.from_json(load_checkpoint(path)["config"])
        except (CheckpointError, ConfigError, KeyError):
            continue
        return Job(config, name, parent_id=run_id, resume_from=str(path))
    return Job(store.config(run_id), name, parent_id=run_id)


# ---------------------------------------------------------------------------------------------
# Progress, read from the store (so any process can watch any sweep)
# ---------------------------------------------------------------------------------------------


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
        if k not in ("seed", "name") and flat[k].map(_fmt).nunique(dropna=False) > 1
    ]
    table = flat[varying].copy()
    table.insert(0, "run_id", runs["run_id"].to_numpy())
    table["seed"] = flat["seed"].to_numpy()
    table["point"] = [
        " ".join(f"{k}={_fmt(v)}" for k, v in zip(varying, row)) or "all"
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


def progress_line(progress: SweepProgress, width: int = 30) -> str:
    """A one-line text progress bar over trials: ``[███░░░░░] 3/8 trials · 2 running · 41%``."""
    filled = round(width * progress.fraction)
    bar = "█" * filled + "░" * (width - filled)
    parts = [f"[{bar}] {progress.done}/{progress.total} trials"]
    for status in ("running", "queued", "failed", "stopped", "interrupted"):
        if progress.counts.get(status):
            parts.append(f"{progress.counts[status]} {status}")
    parts.append(f"{100 * progress.fraction:.0f}%")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------
# CLI: python -m core sweep …
# ---------------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "sweep",
        help="run a grid of hyperparameters × seeds (local threads, or Ray)",
        description="Run a grid of hyperparameters × seeds × algorithms as ordinary stored runs.",
    )
    p.add_argument("--algo", default="ppo", help="algorithm of the base config")
    p.add_argument("--algos", help="comma-separated algorithms to sweep over (overrides --algo)")
    p.add_argument("--env", default="CartPole-v1", help="environment id")
    p.add_argument("--steps", type=int, help="budget per run (env steps)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a hyperparameter and its values (repeatable; separate with ';' when a value "
        "has commas, e.g. hidden_sizes=64,64;32,32)",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="fixed base value"
    )
    p.add_argument("--seeds", default="1", help="a count (3) or a list of seeds (0,7,42)")
    p.add_argument("--name", default="", help="sweep name (prefix of run names)")
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once (local default: the number of cores; ray default: the "
        "cluster's CPUs / cpus-per-trial)",
    )
    p.add_argument(
        "--workers",
        choices=("process", "thread"),
        help="local: train in worker processes (default) or in threads of this process",
    )
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs per trial")
    p.add_argument(
        "--ray-cpus",
        type=int,
        default=2,
        help="ray: CPUs of the local runtime started when RAY_ADDRESS is not set",
    )
    p.add_argument("--resume", metavar="SWEEP_ID", help="re-launch a sweep's unfinished trials")
    p.add_argument("--data-dir", help="store directory (default $PLAYGROUND_DATA_DIR or ./data)")
    p.set_defaults(func=main)
    return p


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings → dict; a malformed item is a ConfigError naming the option."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(option, f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """``--grid delta=0.001,0.01`` items → ``{"delta": ["0.001", "0.01"]}``."""
    grid: dict[str, list[str]] = {}
    for key, text in parse_pairs(items, "grid").items():
        sep = ";" if ";" in text else ","
        grid[key] = [v.strip() for v in text.split(sep) if v.strip()]
    return grid


def parse_seeds(text: str) -> int | list[int]:
    """``3`` → 3 seeds; ``0,7,42`` → those seeds."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError("seeds", f"{text!r} is not a count or a list of integers") from None
    if "," in text:
        return values
    if len(values) != 1:
        raise ConfigError("seeds", f"{text!r} is not a count or a list of integers")
    return values[0]


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep the CLI arguments describe (validated by :meth:`SweepSpec.trials`)."""
    algos = [a.strip() for a in args.algos.split(",")] if args.algos else None
    base = RunConfig(algo=algos[0] if algos else args.algo)
    fixed: dict[str, Any] = {"env_id": args.env, **parse_pairs(args.set, "set")}
    if args.steps is not None:
        fixed["total_steps"] = args.steps
    base = base.with_changes(**fixed)
    return SweepSpec(base, parse_grid(args.grid), parse_seeds(args.seeds), algos, args.name)


def main(args: argparse.Namespace) -> int:
    """``python -m core sweep``: launch (or resume) a sweep, draw progress on stderr, wait.

    Prints the sweep id, then a table of the trials on stdout. Exit code 0 when every trial
    finished, 1 when one failed, 2 for bad input, 130 when stopped with Ctrl-C.
    """
    from core.runtime.runner import RunManager
    from core.runtime.store import RunStore

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise ConfigError("max_concurrent", f"{args.max_concurrent} must be at least 1")
    if not args.cpus_per_trial > 0:
        raise ConfigError("cpus_per_trial", f"{args.cpus_per_trial} must be a positive number")
    try:
        jobs = [] if args.resume else jobs_of(spec_from_args(args))  # all validated up front
        if args.backend == "ray":
            load_ray_backend()
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = RunStore(args.data_dir)
    manager = RunManager(store, max_concurrent=args.max_concurrent, workers=args.workers)
    try:
        sweep_id = _start_cli(manager, args, jobs)
        print(sweep_id, flush=True)
        progress, interrupted = _watch(manager, sweep_id)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        manager.shutdown()
        store.close()
    print(summary_table(progress).to_string(index=False))
    if interrupted:
        return 130
    return 0 if progress.status == "finished" and not progress.counts.get("failed") else 1


def _start_cli(manager: RunManager, args: argparse.Namespace, jobs: list[Job]) -> str:
    if args.resume:
        old = resume_sweep(
            manager,
            args.resume,
            backend=args.backend,
            cpus_per_trial=args.cpus_per_trial,
            ray_cpus=args.ray_cpus,
            max_in_flight=args.max_concurrent,
        )
        print(f"sweep {args.resume}: re-launching {len(old)} trials", file=sys.stderr)
        return args.resume
    sweep_id = new_sweep_id()
    if args.backend == "local":
        _start_local(manager, jobs, sweep_id, None)
    else:
        ray_backend = load_ray_backend()
        ray_backend.start_ray(
            manager,
            jobs,
            sweep_id,
            cpus_per_trial=args.cpus_per_trial,
            local_cpus=args.ray_cpus,
            max_in_flight=args.max_concurrent,
        )
    print(f"sweep {sweep_id}: {len(jobs)} trials on {args.backend}", file=sys.stderr)
    return sweep_id


class ProgressBar:
    """The sweep's progress on a stream: one redrawn line on a terminal; otherwise a line
    whenever a trial changes status or another tenth of the work is done."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._shown: tuple = ()

    def draw(self, progress: SweepProgress) -> None:
        line = progress_line(progress)
        if self.tty:
            self.stream.write("\r" + line)
        else:
            key = (tuple(sorted(progress.counts.items())), int(10 * progress.fraction))
            if key == self._shown:
                return
            self._shown = key
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _watch(manager: RunManager, sweep_id: str) -> tuple[SweepProgress, bool]:
    """Draw progress until the sweep ends; Ctrl-C stops the sweep and waits for its runs.

    Returns the final progress and whether Ctrl-C stopped it.
    """
    bar = ProgressBar()
    interrupted = False
    try:
        progress = wait_sweep(manager.store, sweep_id, on_progress=bar.draw)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\nstopping sweep {sweep_id} …", file=sys.stderr, flush=True)
        stop_sweep(manager, sweep_id)
        progress = wait_sweep(manager.store, sweep_id, on_progress=bar.draw)
    remote = remote_sweep(sweep_id)
    if remote is not None:
        remote.wait()  # the Ray driver thread has stored the last reports
    bar.end()
    return progress, interrupted


def summary_table(progress: SweepProgress) -> pd.DataFrame:
    """Per trial: run id, name, status, env steps, last training return."""
    columns = ["run_id", "name", "status", "env_steps", "last_return"]
    return progress.runs[columns]

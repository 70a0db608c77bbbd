"""``python -m core sweep``: the sweep's command line, and its progress bar on stderr.

``core/cli.py`` registers this subcommand (:func:`add_parser`) next to the others. The command
validates the whole sweep before it opens the store, starts it on the chosen backend
(``core/sweep/control.py``), prints the sweep id, draws progress until every trial has ended
(Ctrl-C stops the sweep after each trial's current update) and prints a table of the trials.
:func:`command_line` writes the command that launches a given sweep (the Compare page shows it).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from core.config import ConfigError, RunConfig
from core.config.specs import parse_pairs
from core.sweep.control import BACKENDS, load_ray_backend, resume_sweep, start_jobs, stop_sweep
from core.sweep.progress import SweepProgress, wait_sweep
from core.sweep.registry import remote_sweep
from core.sweep.spec import Job, SweepError, SweepSpec, jobs_of, new_sweep_id

if TYPE_CHECKING:
    from core.runtime.runner import RunManager


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


def command_line(spec: SweepSpec) -> str:
    """The command that launches ``spec`` from a shell (for a spec whose base config differs
    from the defaults only in environment, budget and seed)."""
    algos = spec.algos or [spec.base.algo]
    parts = ["python -m core sweep", f"--algos {','.join(algos)}", f"--env {spec.base.env_id}"]
    parts += [f"--grid {k}={','.join(map(str, v))}" for k, v in spec.grid.items()]
    parts += [f"--seeds {spec.seeds}", f"--steps {spec.base.total_steps}"]
    return " ".join(parts + ([f"--name {shlex.quote(spec.name)}"] if spec.name else []))


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
    new_id = new_sweep_id()  # the runs of an unnamed sweep carry it in their names
    try:
        jobs = [] if args.resume else jobs_of(spec_from_args(args), new_id)  # validated up front
        if args.backend == "ray":
            load_ray_backend()
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = RunStore(args.data_dir)
    manager = RunManager(store, max_concurrent=args.max_concurrent, workers=args.workers)
    try:
        sweep_id = _start(manager, args, jobs, new_id)
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


def _start(manager: RunManager, args: argparse.Namespace, jobs: list[Job], new_id: str) -> str:
    """Start the new sweep's ``jobs`` as ``new_id``, or resume ``--resume``; returns the sweep
    id."""
    backend = {
        "backend": args.backend,
        "cpus_per_trial": args.cpus_per_trial,
        "ray_cpus": args.ray_cpus,
        "max_in_flight": args.max_concurrent,
    }
    if args.resume:
        old = resume_sweep(manager, args.resume, **backend)
        print(f"sweep {args.resume}: re-launching {len(old)} trials", file=sys.stderr)
        return args.resume
    sweep_id = new_id
    start_jobs(manager, jobs, sweep_id, **backend)
    print(f"sweep {sweep_id}: {len(jobs)} trials on {args.backend}", file=sys.stderr)
    return sweep_id


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


class ProgressBar:
    """The sweep's progress on a stream: one redrawn line on a terminal; otherwise a line
    whenever a trial changes status or another tenth of the work is done."""

    def __init__(self, stream: IO[str] | None = None) -> None:
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

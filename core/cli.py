"""The headless CLI: ``python -m core train|continue|runs|export|sweep``.

Every subcommand is one ``add_*(subparsers)`` function that registers its parser and sets
``func``; adding a subcommand is one more entry in :func:`subcommands`. Bad input exits with
code 2 and one line on stderr (no usage dump, no traceback); a run that fails exits with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from core.config import ALGORITHMS, ConfigError, RunConfig
from core.config.environments import SUPPORTED_ENVS
from core.config.specs import parse_pairs
from core.metrics import ENV_STEPS, EPISODE_RETURN_MEAN, EVAL_RETURN_MEAN, UPDATE, WALL_TIME
from core.runtime.checkpoint import CheckpointError
from core.runtime.store import RunStore
from core.runtime.store_schema import ACTIVE_STATUSES, StoreError

FIRST_COLUMNS = (UPDATE.name, ENV_STEPS.name, WALL_TIME.name)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``prog: error: message``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def subcommands() -> list[Callable[[Any], argparse.ArgumentParser]]:
    """The ``add_*`` functions of every subcommand, in help order."""
    from core.sweep import cli as sweep_cli

    return [add_train, add_continue, add_runs, add_export, sweep_cli.add_parser]


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m core",
        description="Trust Region Playground, headless: train, list, export and sweep runs. "
        "Runs go to the same store as the app's ($PLAYGROUND_DATA_DIR, else ./data).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in subcommands():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 run failed or store error, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is meant for the user (imported late: the runner imports torch)."""
    from core.runtime.export import ExportError
    from core.runtime.runner import RunError

    return (StoreError, CheckpointError, RunError, ExportError, OSError)


def _data_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", help="run store directory (default: $PLAYGROUND_DATA_DIR, else ./data)"
    )


def workers_option(p: argparse.ArgumentParser) -> None:
    """``--workers process|thread`` (default: $PLAYGROUND_WORKERS, else process)."""
    p.add_argument(
        "--workers",
        choices=("process", "thread"),
        help="train in worker processes (default) or in threads of this process",
    )


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def add_train(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train one run (stored, so it appears in the app)",
        description="Train one run. Prints the run id first, draws progress on stderr, and with "
        "--out writes one CSV row per update (metric names as columns).",
    )
    p.add_argument("--algo", required=True, choices=ALGORITHMS)
    p.add_argument("--env", required=True, metavar="ENV", help=", ".join(SUPPORTED_ENVS))
    p.add_argument("--steps", type=int, help="budget in env steps (default: preset or 100000)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--preset", help="named preset, e.g. zoo (tuned hyperparameters)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config field, e.g. --set delta=0.02 --set hidden_sizes=64,64 (repeatable)",
    )
    p.add_argument("--out", type=Path, metavar="CSV", help="also write metrics to this CSV file")
    p.add_argument("--name", help="run name shown in the app")
    _data_dir_option(p)
    workers_option(p)
    p.set_defaults(func=cmd_train)
    return p


def train_config(args: argparse.Namespace) -> RunConfig:
    """The validated config the ``train`` arguments describe (preset, then --set, then flags)."""
    from core.engine.algos import preset_config

    changes: dict[str, Any] = parse_pairs(args.set, "set")
    if args.steps is not None:
        changes["total_steps"] = args.steps
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.name:
        changes["name"] = args.name
    if args.preset:
        return preset_config(args.algo, args.env, args.preset, **changes)
    return RunConfig(algo=args.algo).with_changes(env_id=args.env, **changes)


class CsvSink:
    """One CSV row per update with the metric names as columns.

    Names that first appear later (e.g. ``eval_return_mean`` at the first evaluation) widen the
    header: the file is rewritten once with the new column (earlier rows get empty cells).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, float]] = []
        self._file: IO[str] = path.open("w", newline="")
        self._writer: csv.DictWriter | None = None

    def write(self, metrics: dict[str, float]) -> None:
        counts = (UPDATE.name, ENV_STEPS.name)
        metrics = {k: int(v) if k in counts else v for k, v in metrics.items()}
        self.rows.append(metrics)
        new = [k for k in metrics if k not in self.columns]
        if new:
            self.columns = [c for c in FIRST_COLUMNS if c in metrics or c in self.columns] + [
                c for c in (*self.columns, *new) if c not in FIRST_COLUMNS
            ]
            self._file.seek(0)
            self._file.truncate()
            self._writer = csv.DictWriter(self._file, self.columns, restval="")
            self._writer.writeheader()
            self._writer.writerows(self.rows)
        else:
            self._writer.writerow(metrics)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def progress_line(metrics: dict[str, float], total: int, width: int = 24) -> str:
    """``[████░░░░] 40% 40,000/100,000 steps · 2,100 steps/s · return 87.3``."""
    steps = int(metrics.get(ENV_STEPS.name, 0))
    frac = min(1.0, steps / total) if total else 1.0
    filled = int(round(frac * width))
    parts = [
        f"[{'█' * filled}{'░' * (width - filled)}] {100 * frac:3.0f}% {steps:,}/{total:,} steps"
    ]
    wall = metrics.get(WALL_TIME.name, 0.0)
    if wall:
        parts.append(f"{steps / wall:,.0f} steps/s")
    for key, label in ((EPISODE_RETURN_MEAN.name, "return"), (EVAL_RETURN_MEAN.name, "eval")):
        value = metrics.get(key, math.nan)
        if not math.isnan(value):
            parts.append(f"{label} {value:.1f}")
    return " · ".join(parts)


class Progress:
    """Progress on stderr: one redrawn line on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.latest: dict[str, float] = {}
        self._shown = -1

    def draw(self) -> None:
        if not self.latest:
            return
        line = progress_line(self.latest, self.total)
        if self.tty:
            self.stream.write("\r" + line)
        else:
            decile = int(10 * min(1.0, self.latest.get(ENV_STEPS.name, 0) / self.total))
            if decile == self._shown:
                return
            self._shown = decile
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.latest:
            self.stream.write("\n")


def cmd_train(args: argparse.Namespace) -> int:
    config = train_config(args)
    return _train_in_foreground(
        args, lambda manager, on_update: manager.start(config, name=args.name, on_update=on_update)
    )


def _train_in_foreground(args: argparse.Namespace, start: Callable[[Any, Any], str]) -> int:
    """Start a run with ``start(manager, on_update)``, print its id, follow it to the end.

    Exit code: 0 finished, 130 stopped by Ctrl-C, 1 otherwise.
    """
    from core.runtime.runner import RunError, RunManager

    store = RunStore(args.data_dir)
    try:
        sink = CsvSink(args.out) if args.out else None
    except OSError:
        store.close()
        raise
    manager = RunManager(store, max_concurrent=1, workers=args.workers)
    progress = Progress(1)

    def on_update(run_id: str, report: Any) -> None:
        if sink is not None:
            sink.write(report.metrics)
        progress.latest = report.metrics

    t0 = time.perf_counter()
    try:
        run_id = start(manager, on_update)
        progress.total = int(store.run(run_id)["total_steps"])
        try:
            print(run_id, flush=True)
            status = _follow(manager, run_id, progress)
        except KeyboardInterrupt:
            print("\nstopping …", file=sys.stderr, flush=True)
            with contextlib.suppress(RunError):  # it may have ended meanwhile
                manager.stop(run_id)
            status = manager.wait(run_id)
        progress.end()
        _summary(store, run_id, status, time.perf_counter() - t0)
    finally:
        if sink is not None:
            sink.close()
        manager.shutdown()
        store.close()
    return {"finished": 0, "stopped": 130}.get(status, 1)


def _follow(manager: Any, run_id: str, progress: Progress) -> str:
    """Redraw the progress bar until the run ends; return its final status."""
    while True:
        status = manager.wait(run_id, timeout=0.25)
        progress.draw()
        if status not in ACTIVE_STATUSES:
            return status


def _summary(store: RunStore, run_id: str, status: str, seconds: float) -> None:
    row = store.run(run_id) or {}
    text = (
        f"{status}: run {run_id}, {row.get('updates', 0)} updates, "
        f"{row.get('env_steps', 0):,} env steps in {seconds:.1f} s"
    )
    last = row.get("last_return")
    if last is not None and not math.isnan(last):
        text += f", return {last:.1f}"
    print(text, file=sys.stderr)
    if status == "failed" and row.get("error"):
        print(row["error"].strip().splitlines()[-1], file=sys.stderr)


def add_continue(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "continue",
        help="continue a stopped, interrupted or finished run from its last checkpoint",
        description="Continue a run from its last checkpoint as a new run linked to it. Without "
        "--steps an interrupted or stopped run finishes its budget.",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--steps", type=int, help="extra env steps beyond the checkpoint")
    p.add_argument("--out", type=Path, metavar="CSV", help="also write metrics to this CSV file")
    _data_dir_option(p)
    workers_option(p)
    p.set_defaults(func=cmd_continue)
    return p


def cmd_continue(args: argparse.Namespace) -> int:
    return _train_in_foreground(
        args,
        lambda manager, on_update: manager.continue_run(
            args.run_id, args.steps, on_update=on_update
        ),
    )


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------

RUNS_COLUMNS = ["run_id", "status", "algo", "env_id", "updates", "env_steps", "last_return"]


def add_runs(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("runs", help="list stored runs", description="List the stored runs.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _data_dir_option(p)
    p.set_defaults(func=cmd_runs)
    return p


def cmd_runs(args: argparse.Namespace) -> int:
    store = RunStore(args.data_dir)
    try:
        df = store.runs()
    finally:
        store.close()
    if args.json:
        records = df[[*RUNS_COLUMNS, "name", "created_at", "parent_id", "sweep_id"]]
        rows = json.loads(records.to_json(orient="records"))
        print(json.dumps(rows, indent=1))
        return 0
    if df.empty:
        print(f"no runs in {store.path}", file=sys.stderr)
        return 0
    table = df[[*RUNS_COLUMNS, "name"]].copy()
    table["created"] = [time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) for t in df.created_at]
    table["last_return"] = [f"{x:.1f}" if not math.isnan(x) else "" for x in df.last_return]
    print(table.to_string(index=False))
    return 0


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def add_export(sub: Any) -> argparse.ArgumentParser:
    from core.runtime.export import FORMATS

    p = sub.add_parser(
        "export",
        help="export a run as CSV or TensorBoard event files",
        description="Export a stored run: CSV files (metrics, episodes, events) or TensorBoard "
        "event files (open with: tensorboard --logdir OUT).",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--out", type=Path, default=Path("exports"), help="output directory")
    _data_dir_option(p)
    p.set_defaults(func=cmd_export)
    return p


def cmd_export(args: argparse.Namespace) -> int:
    from core.runtime.export import export_run

    store = RunStore(args.data_dir)
    try:
        for path in export_run(store, args.run_id, args.format, args.out):
            print(path)
    finally:
        store.close()
    return 0

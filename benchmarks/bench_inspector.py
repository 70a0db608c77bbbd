"""Update Inspector costs: snapshot size on disk, the training slowdown of writing them, and the
time to the first and to a cached view of an update.

1. Disk: one snapshot of CartPole TRPO (RL-Zoo preset, 1,024 samples), CartPole PPO (256) and
   Pendulum TRPO (2,048), and what a run keeps under the retention rule (every update of the
   latest 200, every 10th before) for its preset budget and for 10× that.
2. Slowdown: CartPole TRPO and PPO runs (zoo presets, one torch thread, as in a worker) whose
   updates alternate between snapshots off and on: the CPU time of the capture and of the write
   against an update's, and the medians of the two kinds of update.
3. Views: ``compute_view`` (load the file, grid, Fisher, slice) and both figures for CartPole
   and Pendulum TRPO and CartPole PPO on one torch thread (as the web server has it,
   ``ui/state.py``); a cached view: the page
   keeps the figures (``st.cache_resource``), so a rerun serializes them as ``st.plotly_chart``
   does, timed here.

    .venv/bin/python -m benchmarks.bench_inspector --updates 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import plotly.io
import plotly.tools
import torch

from core.engine.algos import make_trainer, preset_config
from core.runtime.snapshots import SnapshotLog, SnapshotPolicy, SnapshotWriter, save_snapshot
from ui.inspector_data import compute_view
from ui.inspector_figures import plane_figure, slice_figure

CASES = (("trpo", "CartPole-v1"), ("ppo", "CartPole-v1"), ("trpo", "Pendulum-v1"))


def kept_count(updates: int, policy: SnapshotPolicy) -> int:
    return sum(policy.on_disk(u, updates) for u in range(1, updates + 1))


def snapshot_file(algo: str, env_id: str, folder: Path, updates: int = 3) -> tuple[Path, int]:
    """A snapshot of update ``updates`` of the preset; also returns the preset's update count."""
    config = preset_config(algo, env_id, "zoo", eval_every=0)
    trainer = make_trainer(config)
    trainer.capture_snapshots = True
    for _ in range(updates):
        trainer.update()
    path = save_snapshot(folder, updates, trainer.last_snapshot)
    return path, config.total_steps // (config.n_envs * config.n_steps)


def disk(folder: Path) -> dict[tuple[str, str], Path]:
    policy, files = SnapshotPolicy(), {}
    print("## Snapshot size\n")
    print("| run | one update | updates in budget | kept | per run | 10× budget: kept, size |")
    print("|---|---|---|---|---|---|")
    for algo, env_id in CASES:
        path, n = snapshot_file(algo, env_id, folder / f"{algo}-{env_id}")
        files[algo, env_id] = path
        size = path.stat().st_size / 1e3
        k, k10 = kept_count(n, policy), kept_count(10 * n, policy)
        print(
            f"| {algo} {env_id} | {size:.1f} KB | {n} | {k} | {k * size / 1e3:.1f} MB "
            f"| {k10}, {k10 * size / 1e3:.1f} MB |"
        )
    return files


def _trainer(algo: str):
    trainer = make_trainer(preset_config(algo, "CartPole-v1", "zoo", eval_every=0))
    trainer.update()  # first-call costs out of the timing
    return trainer


def _alternate(trainer, updates: int, clock: Callable[[], float], hand_over) -> dict[bool, float]:
    """``2 · updates`` updates alternating between snapshots off and on, each snapshot handed to
    ``hand_over(update, snapshot)``: the median ``clock`` seconds per update of each kind."""
    spent: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * updates):
        on = bool(i % 2)
        trainer.capture_snapshots = on
        start = clock()
        trainer.update()
        if on:
            hand_over(trainer.book.update, trainer.last_snapshot)
        spent[on].append(clock() - start)
    return {on: statistics.median(ts) for on, ts in spent.items()}


def alternating(algo: str, updates: int) -> dict[str, float]:
    """One run whose updates alternate between snapshots off and on, writing in line: median CPU
    s per update of each, and the mean CPU s of the capture itself (the trainer's ``_snapshot``)
    and of the append to the log and the pruning the writer thread does after an update."""
    trainer = _trainer(algo)
    capture = type(trainer)._snapshot
    spent = {"capture": 0.0, "write": 0.0}

    def timed(self, *args):
        start = time.process_time()
        try:
            return capture(self, *args)
        finally:
            spent["capture"] += time.process_time() - start

    type(trainer)._snapshot = timed
    try:
        with tempfile.TemporaryDirectory() as d:
            log = SnapshotLog(d, SnapshotPolicy())

            def write(update: int, snap) -> None:
                start = time.process_time()
                log.write(update, snap)
                spent["write"] += time.process_time() - start

            cpu = _alternate(trainer, updates, time.process_time, write)
            log.close()
    finally:
        type(trainer)._snapshot = capture
    return {"off": cpu[False], "on": cpu[True], **{k: v / updates for k, v in spent.items()}}


def wall_alternating(algo: str, updates: int) -> dict[bool, float]:
    """As the run loop does it: updates alternate between snapshots off and on, a snapshot is
    handed to the worker's writer thread (``SnapshotWriter``); median wall seconds per update of
    each kind (the writer's disk work overlaps the next update where a core is free)."""
    trainer = _trainer(algo)
    with tempfile.TemporaryDirectory() as d:
        writer = SnapshotWriter(d, SnapshotPolicy())
        wall = _alternate(trainer, updates, time.perf_counter, writer.put)
        writer.close()
    return wall


def slowdown(updates: int) -> None:
    """Per algorithm: the CPU cost of capture + write against the CPU time of an update (the
    direct measure), the medians of alternating updates off and on (CPU time, writing in line),
    and the wall-time medians with the writer thread as the run loop has it (noisy by a few per
    cent on a shared machine). One torch thread, as in a worker."""
    print("\n## Training slowdown (CartPole, zoo presets, one torch thread)\n")
    print(
        "| run | update (off) | capture | write + prune | CPU cost | CPU alternating: off, on "
        "| wall alternating, writer thread: off, on |"
    )
    print("|---|---|---|---|---|---|---|")
    for algo in ("trpo", "ppo"):
        r = alternating(algo, updates)
        w = wall_alternating(algo, updates)
        cost = (r["capture"] + r["write"]) / r["off"]
        change, wall_change = r["on"] / r["off"] - 1, w[True] / w[False] - 1
        print(
            f"| {algo} | {1e3 * r['off']:.1f} ms | {1e3 * r['capture']:.2f} ms "
            f"| {1e3 * r['write']:.2f} ms | {100 * cost:.1f} % "
            f"| {1e3 * r['off']:.1f}, {1e3 * r['on']:.1f} ms ({100 * change:+.1f} %) "
            f"| {1e3 * w[False]:.1f}, {1e3 * w[True]:.1f} ms ({100 * wall_change:+.1f} %) |"
        )


def views(files: dict[tuple[str, str], Path]) -> None:
    """First view: the file read, the view computed and both figures built. Cached view: what a
    rerun of the page does for an update it has shown (``st.cache_resource`` hands back the
    figures; ``st.plotly_chart`` turns each into its JSON, as timed here)."""
    print(f"\n## Views ({torch.get_num_threads()} torch threads)\n")
    print("| run | first view (compute + figures) | of which figures | cached view |")
    print("|---|---|---|---|")
    for algo, env_id in (("trpo", "CartPole-v1"), ("trpo", "Pendulum-v1"), ("ppo", "CartPole-v1")):
        path = files[algo, env_id]
        warm = compute_view(path, n=5)  # imports and first-call costs out of the timing
        plane_figure(warm), slice_figure(warm)
        start = time.perf_counter()
        view = compute_view(path)
        built = time.perf_counter()
        figures = plane_figure(view), slice_figure(view)
        first = time.perf_counter() - start
        figures_s = first - (built - start)
        start = time.perf_counter()
        for fig in figures:
            spec = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
            plotly.io.to_json(spec, validate=False)
        again = time.perf_counter() - start
        print(f"| {algo} {env_id} | {first:.2f} s | {figures_s:.2f} s | {again:.3f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a worker and in the web server
    with tempfile.TemporaryDirectory() as d:
        files = disk(Path(d))
        views(files)
    slowdown(args.updates)


if __name__ == "__main__":
    main()

"""Sweep executors: wall time of an 8-trial sweep on the local backend versus Ray, and the
overhead each adds per trial.

The sweep is 2 × 2 (γ × λ) × 2 seeds of short runs (``--algo``, ``--steps`` env steps each) with
2 trials at a time on both backends: the run manager's worker processes, and a local Ray runtime
with ``core.sweep.ray_runtime.connect(2)`` (a local runtime) and 1 CPU per trial. For each sweep it
prints

- wall time from launch until every trial's last report is in the store;
- Σ train: the trainers' own update time summed over trials (``wall_time`` of the last update);
- overhead per trial = (2 · wall − Σ train) / 8: what a trial costs beyond its updates with two
  slots busy (trainer construction, process start-up (and imports, for Ray), store writes, drain);
- first metrics: seconds from launch until the first update row is readable in the store;
- worker processes: how many processes trained the trials (Ray reuses idle workers).

Ray is measured twice in one runtime: ``cold`` (fresh worker processes import torch and gymnasium)
and ``warm`` (workers reused); ``ray.init`` is timed separately.

Usage: ``python -m benchmarks.bench_sweep [--algo ppo] [--steps 8192] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass

import torch

from core.config import RunConfig
from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from core.sweep.local import launch_local
from core.sweep.progress import sweep_progress
from core.sweep.spec import SweepSpec

CONCURRENCY = 2


@dataclass
class Result:
    label: str
    wall: float
    train: float
    first_metrics: float
    counts: dict[str, int]
    processes: int

    @property
    def overhead_per_trial(self) -> float:
        return (CONCURRENCY * self.wall - self.train) / sum(self.counts.values())

    def line(self) -> str:
        return (
            f"{self.label:<10} wall {self.wall:7.1f} s · Σ train {self.train:7.1f} s · "
            f"overhead/trial {self.overhead_per_trial:6.2f} s · first metrics "
            f"{self.first_metrics:5.2f} s · {self.processes} worker processes · {self.counts}"
        )


def spec(algo: str, steps: int) -> SweepSpec:
    base = RunConfig(algo=algo).with_changes(total_steps=steps, eval_every=0)
    return SweepSpec(base, {"gamma": [0.98, 0.99], "gae_lambda": [0.9, 0.95]}, seeds=2)


def measure(label: str, manager: RunManager, launch, is_done) -> Result:
    """Launch, then poll the store every 20 ms until ``is_done()``; time the milestones."""
    store = manager.store
    t0 = time.perf_counter()
    sweep_id = launch()
    first = float("nan")
    tick = threading.Event()
    while not is_done(sweep_id):
        if first != first:
            runs = store.runs()
            ids = runs.loc[runs["sweep_id"] == sweep_id, "run_id"].tolist()
            if not store.metrics(ids).empty:
                first = time.perf_counter() - t0
        tick.wait(0.02)
    wall = time.perf_counter() - t0
    progress = sweep_progress(store, sweep_id)
    metrics = store.metrics(progress.runs["run_id"].tolist())
    train = float(metrics.groupby("run_id")["wall_time"].max().sum())
    events = store.events(progress.runs["run_id"].tolist())
    started = events.loc[events["kind"] == "started", "payload"]
    pids = {p["pid"] for p in started if isinstance(p, dict) and "pid" in p} or {"this"}
    return Result(label, wall, train, first, progress.counts, len(pids))


def bench_local(sweep: SweepSpec) -> Result:
    with tempfile.TemporaryDirectory() as d:
        manager = RunManager(RunStore(d), max_concurrent=CONCURRENCY)
        try:
            return measure(
                "local",
                manager,
                lambda: launch_local(manager, sweep),
                lambda sid: sweep_progress(manager.store, sid).is_done,
            )
        finally:
            manager.shutdown()
            manager.store.close()


def bench_ray(sweep: SweepSpec) -> list[Result]:
    import ray

    from core.sweep.ray_backend import launch_ray
    from core.sweep.ray_runtime import LOCAL_CPUS, connect

    t0 = time.perf_counter()
    connect(LOCAL_CPUS)  # the local runtime the app starts: loopback only, ends with us
    print(f"local Ray runtime (num_cpus={LOCAL_CPUS}): {time.perf_counter() - t0:.1f} s")
    results = []
    try:
        for label in ("ray cold", "ray warm"):
            with tempfile.TemporaryDirectory() as d:
                manager = RunManager(RunStore(d), max_concurrent=CONCURRENCY)
                holder = {}

                def launch(manager=manager, holder=holder):
                    holder["sweep"] = launch_ray(manager, sweep)
                    return holder["sweep"].sweep_id

                try:
                    results.append(
                        measure(label, manager, launch, lambda _, h=holder: h["sweep"].done)
                    )
                finally:
                    manager.shutdown()
                    manager.store.close()
    finally:
        ray.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--steps", type=int, default=8192, help="env steps per trial")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sweep = spec(args.algo, args.steps)
    print(f"8 trials: {args.algo} on CartPole-v1, {args.steps} env steps each, 2 at a time")
    results = [bench_local(sweep)]
    print(results[0].line(), flush=True)
    if not args.skip_ray:
        for r in bench_ray(sweep):
            print(r.line(), flush=True)
            results.append(r)
    base = results[0].wall
    for r in results[1:]:
        print(f"{r.label}: {r.wall / base:.2f}× the local wall time ({r.wall - base:+.1f} s)")


if __name__ == "__main__":
    main()

"""Runtime overhead and latency: the run manager + store against the bare trainer loop.

1. Throughput: PPO on CartPole-v1 (RL-Zoo preset), env-steps/s of ``while not t.done:
   t.update()`` versus the same config through ``RunManager.start`` (worker process, store
   writes, checkpoints). Runs alternate bare/managed to share the machine's load; medians are
   reported. Target: managed ≥ 95% of bare.
2. Four PPO runs at once through one manager and store: the cost of ``append_update`` in the
   worker, the writer's commit time per batch, and the time until a reader polling every
   ``--poll`` seconds sees each new update. Target: < 1.5 s.
3. Read speed: ``metrics()`` of 4 runs × 2,000 updates × 25 metrics (full and incremental).
4. Scaling: one PPO run alone, then one per core at once, in worker processes and in threads;
   target: N runs on N cores ≥ 0.9·N times one run's env-steps/s.
5. Kills: ``--kills`` runs (half CLI ``python -m core train``, half started by a RunManager in
   a process standing in for the app) are killed with SIGKILL at a random moment of their first
   ``--kill-within`` seconds; for each, the training lost is the wall time and the env steps
   between the newest checkpoint that survived and the moment of the kill (everything after
   the start when none survived). TRPO on CartPole with 8×1024 env steps per update, so 20
   updates last longer than the 30 s checkpoint interval and both rules are exercised. Also
   the checkpoint cost: the time to save one checkpoint times the checkpoints written per
   second of training; target ≤ 2 %.

Usage: ``python -m benchmarks.bench_runtime [--steps 30000] [--repeats 3] [--poll 0.05]
[--scale-window 20] [--kills 20] [--kill-within 60] [--only read|throughput|four|scaling|kills]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from core.engine.algos import make_trainer, preset_config
from core.runtime.runner import RunManager
from core.runtime.store import RunStore


def _config(steps: int, seed: int):
    return preset_config("ppo", "CartPole-v1", "zoo", total_steps=steps, seed=seed, eval_every=0)


def bare(steps: int, seed: int) -> tuple[float, float]:
    """(wall, CPU) env-steps/s of the plain loop (trainer construction excluded)."""
    trainer = make_trainer(_config(steps, seed))
    t0, c0 = time.perf_counter(), time.process_time()
    while not trainer.done:
        trainer.update()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return trainer.book.env_steps / wall, trainer.book.env_steps / cpu


class TimedStore(RunStore):
    """A store that records how long each commit batch takes and how many items it held."""

    def __init__(self, *args, **kwargs) -> None:
        self.commits: list[tuple[float, int]] = []
        super().__init__(*args, **kwargs)

    def _commit(self, batch: list) -> None:
        t0 = time.perf_counter()
        super()._commit(batch)
        self.commits.append((time.perf_counter() - t0, len(batch)))


def _timed(fn, spent: list[float]):
    """``fn`` wrapped to add its duration to ``spent[0]``."""

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    return wrapper


def managed(steps: int, seed: int, data_dir: Path, workers: str = "process"):
    """(wall, CPU) env-steps/s through the manager, from the run's "started" event to its end,
    and the supervisor's own share of that wall time (append_update + checkpoint bookkeeping in
    the supervisor thread, commits in the writer), which does not depend on the machine's load
    the way wall time does.

    CPU time is this process's plus its reaped children's (the worker process).
    """
    store = TimedStore(data_dir)
    manager = RunManager(store, max_concurrent=1, workers=workers)
    spent = [0.0]
    store.append_update = _timed(store.append_update, spent)
    manager._on_checkpoint = _timed(manager._on_checkpoint, spent)
    cpu0 = _cpu_with_children()
    run_id = manager.start(_config(steps, seed))
    status = manager.wait(run_id)
    manager.shutdown()  # reaps the worker, so its CPU time is counted
    cpu = _cpu_with_children() - cpu0
    assert status == "finished", store.run(run_id)["error"]
    times = store.events(run_id).set_index("kind")["time"]
    wall = float(times["finished"] - times["started"])
    env_steps = store.run(run_id)["env_steps"]
    store.close()
    own = spent[0] + sum(c for c, _ in store.commits)
    return env_steps / wall, env_steps / cpu, own / wall


def _cpu_with_children() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def scaling(window: float, root: Path, workers: str) -> None:
    """One run alone, then one per core at once: total env-steps/s over ``window`` seconds of
    steady training (every run past its third update), read from the store."""
    cores = len(os.sched_getaffinity(0))
    print(f"\n4. scaling ({workers}): 1 run, then {cores} at once, {window:g} s windows")
    rates = {}
    for n in (1, cores):
        store = RunStore(root / f"scale-{workers}-{n}")
        manager = RunManager(store, max_concurrent=n, workers=workers)
        run_ids = [manager.start(_config(10**8, seed=20 + i)) for i in range(n)]
        tick = threading.Event()
        while (store.runs(run_ids)["updates"] < 3).any():
            tick.wait(0.1)
        s0, t0 = store.runs(run_ids)["env_steps"].sum(), time.perf_counter()
        tick.wait(window)
        s1, t1 = store.runs(run_ids)["env_steps"].sum(), time.perf_counter()
        rates[n] = float(s1 - s0) / (t1 - t0)
        for run_id in run_ids:
            manager.stop(run_id)
        manager.shutdown()
        store.close()
        print(f"   {n} run(s): {rates[n]:8,.0f} env-steps/s in total")
    ratio = rates[cores] / (cores * rates[1])
    print(
        f"   {cores} runs give {ratio * cores:.2f}× one run's speed: {100 * ratio:.0f}% per core "
        "(target ≥ 90%)"
    )


def throughput(steps: int, repeats: int, root: Path) -> None:
    print(f"\n1. PPO CartPole-v1 (zoo preset), {steps:,} env steps, {repeats} alternating pairs")
    b, m = [], []
    for i in range(repeats):
        b.append(bare(steps, seed=i))
        m.append(managed(steps, seed=i, data_dir=root / f"tp{i}"))
        print(
            f"   pair {i}: bare {b[-1][0]:7,.0f} steps/s wall, {b[-1][1]:7,.0f} per CPU-s   "
            f"managed {m[-1][0]:7,.0f} wall, {m[-1][1]:7,.0f} per CPU-s, "
            f"runtime's own share {100 * m[-1][2]:.2f}%"
        )
    for j, clock in enumerate(("wall-clock", "CPU-time")):
        mb = statistics.median(x[j] for x in b)
        mm = statistics.median(x[j] for x in m)
        print(
            f"   median {clock}: bare {mb:,.0f}  managed {mm:,.0f}  "
            f"ratio {100 * mm / mb:.1f}% (target ≥ 95%)"
        )
    own = statistics.median(x[2] for x in m)
    print(f"   runtime's own share of a managed run's wall time: median {100 * own:.2f}%")


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def four_runs(steps: int, poll: float, root: Path) -> None:
    print(f"\n2. four PPO runs at once ({steps:,} steps each), reader polling every {poll:g} s")
    store = TimedStore(root / "four")
    manager = RunManager(store, max_concurrent=4)
    appended: dict[tuple[str, int], float] = {}
    append_cost: list[float] = []
    lock = threading.Lock()
    orig_append = store.append_update

    def timed_append(run_id, metrics, episodes):
        t0 = time.perf_counter()
        orig_append(run_id, metrics, episodes)
        t1 = time.perf_counter()
        with lock:
            append_cost.append(t1 - t0)
            appended[(run_id, int(metrics["update"]))] = t1

    store.append_update = timed_append
    run_ids = [manager.start(_config(steps, seed=10 + i)) for i in range(4)]
    seen: dict[tuple[str, int], float] = {}
    cursors = dict.fromkeys(run_ids, 0)
    reads: list[float] = []
    tick = threading.Event()
    while manager.active():
        for rid in run_ids:  # as a page does: one incremental read per run
            t0 = time.perf_counter()
            df = store.metrics(rid, after_update=cursors[rid])
            now = time.perf_counter()
            reads.append(now - t0)
            for u in df["update"]:
                seen.setdefault((rid, int(u)), now)
            if not df.empty:
                cursors[rid] = int(df["update"].iloc[-1])
        tick.wait(poll)
    df = store.metrics(run_ids)
    now = time.perf_counter()
    for key in zip(df.run_id, df["update"]):
        seen.setdefault((key[0], int(key[1])), now)
    lag = [seen[k] - t for k, t in appended.items() if k in seen]
    commit_s = [c for c, _ in store.commits]
    sizes = [n for _, n in store.commits]
    print(
        f"   updates stored: {len(df)} ({len(appended)} appended), statuses: "
        f"{sorted(manager.status(r) for r in run_ids)}"
    )
    print(
        f"   append_update in the worker: median {1e6 * _pct(append_cost, 50):.0f} µs, "
        f"p99 {1e6 * _pct(append_cost, 99):.0f} µs"
    )
    print(
        f"   writer commits: {len(commit_s)} batches, median {1e3 * _pct(commit_s, 50):.2f} ms, "
        f"p99 {1e3 * _pct(commit_s, 99):.2f} ms, max {1e3 * max(commit_s):.2f} ms; "
        f"items per batch median {_pct(sizes, 50):.0f}"
    )
    print(
        f"   time until a reader sees an update: median {_pct(lag, 50):.3f} s, "
        f"p95 {_pct(lag, 95):.3f} s, max {max(lag):.3f} s (target < 1.5 s)"
    )
    print(f"   incremental metrics() read: median {1e3 * _pct(reads, 50):.2f} ms")
    manager.shutdown()
    store.close()


def read_speed(root: Path, n_updates: int = 2000, n_runs: int = 4, n_metrics: int = 25) -> None:
    print(f"\n3. reads of {n_runs} runs × {n_updates:,} updates × {n_metrics} metrics")
    store = RunStore(root / "reads")
    cfg = _config(1000, 0)
    names = [f"metric_{j}" for j in range(n_metrics)]
    rng = np.random.default_rng(0)
    run_ids = [store.create_run(cfg) for _ in range(n_runs)]
    t0 = time.perf_counter()
    for rid in run_ids:
        for u in range(1, n_updates + 1):
            values = dict(zip(names, rng.standard_normal(n_metrics).tolist()))
            store.append_update(rid, {"update": u, "env_steps": 256 * u, **values}, [])
    store.flush()
    write = time.perf_counter() - t0
    full, narrow, incr = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        df = store.metrics(run_ids)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.metrics(run_ids, columns=["metric_0", "metric_1"])
        narrow.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.metrics(run_ids, after_update=n_updates - 10)
        incr.append(time.perf_counter() - t0)
    assert df.shape == (n_runs * n_updates, 4 + n_metrics)
    print(
        f"   writing {n_runs * n_updates:,} updates: {write:.2f} s "
        f"({n_runs * n_updates / write:,.0f} updates/s)"
    )
    print(
        f"   full read: median {1e3 * statistics.median(full):.1f} ms; two named columns: "
        f"{1e3 * statistics.median(narrow):.1f} ms; "
        f"incremental (last 10 per run): median {1e3 * statistics.median(incr):.2f} ms"
    )
    store.close()


KILL_SETTINGS = ["--set", "n_envs=8", "--set", "n_steps=1024", "--set", "critic_minibatch=256"]
APP_STANDIN = """
import sys, threading
from core.config import RunConfig
from core.runtime.runner import RunManager
from core.runtime.store import RunStore
if __name__ == "__main__":
    manager = RunManager(RunStore(sys.argv[1]))
    config = RunConfig(algo="trpo", env_id="CartPole-v1").with_changes(
        total_steps=10**8, n_envs=8, n_steps=1024, critic_minibatch=256)
    manager.start(config)
    threading.Event().wait()
"""


def _training_start(data: Path, proc) -> float:
    """The time of the run's "started" event (training begins), read from its store."""
    tick = threading.Event()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the run's process ended early (exit code {proc.returncode})")
        if (data / "runs.sqlite").exists():
            store = RunStore(data)
            runs = store.runs()["run_id"].tolist()
            ev = store.events(runs) if runs else None
            store.close()
            if ev is not None and (ev.kind == "started").any():
                return float(ev.loc[ev.kind == "started", "time"].iloc[0])
        tick.wait(0.05)


def _one_kill(data: Path, cli: bool, after: float) -> dict[str, float]:
    """Start a run (CLI or app stand-in), SIGKILL its process ``after`` s into training, and
    measure what the newest surviving checkpoint leaves out."""
    import signal
    import subprocess
    import sys

    if cli:
        argv = ["-m", "core", "train", "--algo", "trpo", "--env", "CartPole-v1"]
        argv += ["--steps", str(10**8), *KILL_SETTINGS, "--data-dir", str(data)]
    else:
        argv = ["-c", APP_STANDIN, str(data)]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, *argv], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        started = _training_start(data, proc)
        threading.Event().wait(max(0.0, started + after - time.time()))
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.time()
    finally:
        proc.kill()  # whatever went wrong, nothing keeps training after the benchmark
        proc.wait()
    store = RunStore(data)
    run_id = store.runs()["run_id"].iloc[0]
    metrics = store.metrics(run_id)
    ckpts = store.checkpoints(run_id)
    reached = int(metrics["env_steps"].iloc[-1]) if not metrics.empty else 0
    # the checkpoint's file time: when the training it holds was saved
    kept = int(ckpts["env_steps"].iloc[-1]) if not ckpts.empty else 0
    saved = ckpts["time"].iloc[-1] if not ckpts.empty else started
    result = {
        "trained_s": killed - started,
        "lost_s": killed - saved,
        "lost_steps": reached - kept,
        "checkpointed": float(not ckpts.empty),
        "update_s": float(metrics["wall_time"].diff().median()) if len(metrics) > 2 else 0.0,
    }
    store.close()
    return result


def _save_seconds() -> float:
    """Median seconds to write one checkpoint of the kill benchmark's TRPO trainer."""
    from core.config import RunConfig
    from core.runtime.checkpoint import save_checkpoint

    config = RunConfig(algo="trpo", env_id="CartPole-v1").with_changes(
        n_envs=8, n_steps=1024, critic_minibatch=256
    )
    trainer = make_trainer(config)
    trainer.update()
    times = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(20):
            t0 = time.perf_counter()
            save_checkpoint(
                Path(d) / f"c{i}.pt",
                run_id="bench",
                update=1,
                env_steps=trainer.book.env_steps,
                config_json=config.to_json(),
                state=trainer.state_dict(),
            )
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kills(n: int, within: float, root: Path) -> None:
    """Section 5 of the module docstring."""
    import random

    print(f"\n5. {n} kills (SIGKILL) at random moments of the first {within:g} s of training")
    rng = random.Random(0)
    results = []
    for i in range(n):
        cli = i % 2 == 0
        after = rng.uniform(0.5, within)
        r = _one_kill(root / f"kill{i}", cli, after)
        results.append((cli, r))
        print(
            f"   {'CLI' if cli else 'app'} kill at {r['trained_s']:5.1f} s of training: "
            f"lost {r['lost_s']:5.1f} s, {r['lost_steps']:7,.0f} env steps"
            + ("" if r["checkpointed"] else " (no checkpoint yet)")
        )
    for label, keep in (("CLI", True), ("app", False), ("all", None)):
        rs = [r for cli, r in results if keep is None or cli == keep]
        lost_s = [r["lost_s"] for r in rs]
        lost = [r["lost_steps"] for r in rs]
        print(
            f"   {label}: training lost median {statistics.median(lost_s):.1f} s, "
            f"max {max(lost_s):.1f} s; env steps lost median {statistics.median(lost):,.0f}, "
            f"max {max(lost):,.0f}"
        )
    save = _save_seconds()
    update_s = statistics.median(r["update_s"] for _, r in results if r["update_s"] > 0)
    per_second = max(1 / 30, 1 / (20 * update_s))  # the 30 s rule, or every 20 updates
    print(
        f"   one checkpoint takes {1e3 * save:.1f} ms to write; an update {update_s:.2f} s; "
        f"one checkpoint per {1 / per_second:.0f} s of training costs "
        f"{100 * save * per_second:.3f}% of training time (target ≤ 2%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--four-steps", type=int, default=20_000)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--scale-window", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-within", type=float, default=60.0)
    parser.add_argument("--only", choices=("read", "throughput", "four", "scaling", "kills"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only in (None, "read"):
            read_speed(root)
        if args.only in (None, "throughput"):
            throughput(args.steps, args.repeats, root)
        if args.only in (None, "four"):
            four_runs(args.four_steps, args.poll, root)
        if args.only in (None, "scaling"):
            for workers in ("process", "thread"):
                scaling(args.scale_window, root, workers)
        if args.only in (None, "kills"):
            kills(args.kills, args.kill_within, root)


if __name__ == "__main__":
    main()

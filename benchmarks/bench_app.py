"""Does the open Train page slow training down, and how long does one page refresh take?

Two phases of ``--window`` seconds each, in one process (as in ``streamlit run``):
1. headless: ``--runs`` runs train through the RunManager, nothing reads them;
2. page open: the same runs (fresh, same configs) while the Train page (Streamlit's AppTest, same
   process) is rerun once a second, as its live fragment does, showing one of them.
Prints total env steps/s in both phases, their ratio (target ≥ 90%), and the page's server time
(median and p95; target < 300 ms): for the live-chart refresh (the fragment that reruns every
second, timed inside the page: wall time, which includes waiting for the GIL held by the trainer
threads, and the script thread's own CPU time) and for a whole-page rerun (a widget interaction).

    .venv/bin/python benchmarks/bench_app.py [--runs 4] [--window 30] [--algo trpo]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PLAYGROUND_DATA_DIR", tempfile.mkdtemp(prefix="bench-app-"))

import torch  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.config import RunConfig  # noqa: E402
from core.runner import RunManager  # noqa: E402
from ui.run_view import REFRESH_SECONDS  # noqa: E402
from ui.state import get_manager  # noqa: E402

WARMUP_S = 5.0


def configs(algo: str, n: int) -> list[RunConfig]:
    base = RunConfig(algo=algo, env_id="CartPole-v1")
    return [base.with_changes(total_steps=50_000_000, seed=s, eval_every=0) for s in range(n)]


def steps(manager: RunManager, run_ids: list[str]) -> int:
    manager.store.flush()
    return int(manager.store.runs(run_ids)["env_steps"].sum())


def phase(
    manager: RunManager, cfgs: list[RunConfig], window: float, page: bool
) -> tuple[float, list[float]]:
    """Env steps/s summed over the runs during ``window`` s (after a warm-up), refresh times."""
    run_ids = [manager.start(c) for c in cfgs]
    refresh: list[float] = []
    at = None
    if page:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.run()
        at.query_params["run"] = run_ids[0]
        at.switch_page("pages/train.py").run()
    deadline = time.monotonic() + WARMUP_S
    while time.monotonic() < deadline:
        tick(at, refresh)
    refresh.clear()
    REFRESH_SECONDS.clear()
    s0, t0 = steps(manager, run_ids), time.monotonic()
    while time.monotonic() - t0 < window:
        tick(at, refresh)
    s1, t1 = steps(manager, run_ids), time.monotonic()
    for run_id in run_ids:
        manager.stop(run_id)
    for run_id in run_ids:
        manager.wait(run_id, timeout=60)
    return (s1 - s0) / (t1 - t0), refresh


def tick(at: AppTest | None, refresh: list[float]) -> None:
    """One second of wall time; with the page open, one refresh at its start."""
    start = time.perf_counter()
    if at is not None:
        at.run()
        if at.exception:
            raise RuntimeError(at.exception[0].message)
        refresh.append(time.perf_counter() - start)
    time.sleep(max(0.0, 1.0 - (time.perf_counter() - start)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--algo", default="trpo")
    args = parser.parse_args()
    torch.set_num_threads(1)
    manager = get_manager()  # the page's manager: same process, same store
    manager.max_concurrent = args.runs
    cfgs = configs(args.algo, args.runs)
    headless, _ = phase(manager, cfgs, args.window, page=False)
    with_page, refresh = phase(manager, cfgs, args.window, page=True)
    manager.shutdown()
    charts_ms = milliseconds(wall for wall, _ in REFRESH_SECONDS)
    charts_cpu = milliseconds(cpu for _, cpu in REFRESH_SECONDS)
    page_ms = milliseconds(refresh)
    print(f"cpu cores: {os.cpu_count()}, runs: {args.runs} × {args.algo} on CartPole-v1")
    print(f"headless throughput:      {headless:9.0f} env steps/s (sum over runs)")
    print(f"with Train page open:     {with_page:9.0f} env steps/s")
    print(f"ratio:                    {100 * with_page / headless:9.1f} %   (target ≥ 90 %)")
    print(f"live-chart refresh, wall: {summary(charts_ms)}  (target < 300 ms)")
    print(f"live-chart refresh, CPU:  {summary(charts_cpu)}  (script thread only)")
    print(f"whole-page rerun:         {summary(page_ms)}")


def milliseconds(seconds) -> list[float]:
    return sorted(1000 * s for s in seconds)


def summary(ms: list[float]) -> str:
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"median {statistics.median(ms):4.0f} ms, p95 {p95:4.0f} ms over {len(ms)} refreshes"


if __name__ == "__main__":
    main()

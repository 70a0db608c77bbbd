"""Does the open Train page slow training down, and how long does one page refresh take?

``--runs`` runs train through the app's RunManager (worker processes, as under
``streamlit run``; ``--workers thread`` for the in-process fallback), and windows of ``--window``
seconds alternate ``--rounds`` times between
1. headless: nothing reads the runs;
2. page open: the Train page shows one of them: its run panel polls the live feed
   (``ui/live_feed.run_state``: store reads, and the figure dicts when they changed) as
   ``ui/js/run_panel.js`` does, every ``POLL_S`` with the charts every ``FIGURES_EVERY``-th
   poll, plus a whole-page rerun (Streamlit's AppTest, same process) every 10 s, as when a user
   touches a widget.
Prints total env steps/s in both modes, their ratio (target ≥ 95%), and the server time per
refresh (median and p95; target p95 ≤ 150 ms) of the feed's answers that carry the charts
(wall time, and the handler thread's own CPU time) and of a whole-page rerun.

    .venv/bin/python benchmarks/bench_app.py [--runs 4] [--window 10] [--rounds 4] [--algo trpo]
"""

from __future__ import annotations

import argparse
import json
import logging
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
from core.runtime.runner import RunManager  # noqa: E402
from ui import live_feed  # noqa: E402
from ui.state import get_manager  # noqa: E402

WARMUP_S = 5.0
PAGE_EVERY = 10
POLL_S = 0.5  # as POLL_MS in ui/js/run_panel.js
FIGURES_EVERY = 2  # the charts at most every 0.9 s there (FIGURES_MS): every second poll here
TICKS: list[float] = []
ANSWERS: list[tuple[float, float]] = []  # feed answers with charts: (wall s, CPU s of the thread)
HAVE: dict[str, str | None] = {}


def configs(algo: str, n: int) -> list[RunConfig]:
    base = RunConfig(algo=algo, env_id="CartPole-v1")
    return [base.with_changes(total_steps=50_000_000, seed=s, eval_every=0) for s in range(n)]


def steps(manager: RunManager, run_ids: list[str]) -> int:
    manager.store.flush()
    return int(manager.store.runs(run_ids)["env_steps"].sum())


def measure(manager: RunManager, cfgs: list[RunConfig], window: float, rounds: int):
    """Alternate windows without and with the page open on the same runs; env steps/s of each.

    Interleaving (A B A B …) cancels most of the drift in machine load between the two modes.
    """
    run_ids = [manager.start(c) for c in cfgs]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.query_params["run"] = run_ids[0]
    at.switch_page("pages/train.py").run()
    view = (at, manager, run_ids[0])
    deadline = time.monotonic() + WARMUP_S
    while time.monotonic() < deadline:
        tick(None, [])
    totals = {False: [0, 0.0], True: [0, 0.0]}
    refresh: list[float] = []
    ANSWERS.clear()
    for _ in range(rounds):
        for page in (False, True):
            s0, t0 = steps(manager, run_ids), time.monotonic()
            while time.monotonic() - t0 < window:
                tick(view if page else None, refresh)
            totals[page][0] += steps(manager, run_ids) - s0
            totals[page][1] += time.monotonic() - t0
    for run_id in run_ids:
        manager.stop(run_id)
    for run_id in run_ids:
        manager.wait(run_id, timeout=60)
    rate = {page: n / t for page, (n, t) in totals.items()}
    return rate[False], rate[True], refresh


def tick(view: tuple[AppTest, RunManager, str] | None, refresh: list[float]) -> None:
    """One poll period of wall time; with the page open, one poll of the live feed at its start
    (with the charts every ``FIGURES_EVERY``-th) and a whole-page rerun every ``PAGE_EVERY``
    seconds."""
    start = time.perf_counter()
    if view is not None:
        at, manager, run_id = view
        TICKS.append(start)
        figures = len(TICKS) % FIGURES_EVERY == 0
        cpu = time.thread_time()
        state = live_feed.run_state(manager, run_id, have=HAVE.get(run_id), figures=figures)
        if state["figures"] is not None:
            json.dumps(state, allow_nan=False)  # what the route's JSONResponse does
            HAVE[run_id] = state["version"]
            ANSWERS.append((time.perf_counter() - start, time.thread_time() - cpu))
        if len(TICKS) % round(PAGE_EVERY / POLL_S) == 0:
            at.run()
            if at.exception:
                raise RuntimeError(at.exception[0].message)
            refresh.append(time.perf_counter() - start)
    time.sleep(max(0.0, POLL_S - (time.perf_counter() - start)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--algo", default="trpo")
    parser.add_argument("--workers", choices=("process", "thread"), default="process")
    args = parser.parse_args()
    os.environ["PLAYGROUND_WORKERS"] = args.workers
    torch.set_num_threads(1)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare-mode warnings of the live area
    manager = get_manager()  # the page's manager: same process, same store
    manager.max_concurrent = args.runs
    cfgs = configs(args.algo, args.runs)
    headless, with_page, refresh = measure(manager, cfgs, args.window, args.rounds)
    manager.shutdown()
    charts_ms = milliseconds(wall for wall, _ in ANSWERS)
    charts_cpu = milliseconds(cpu for _, cpu in ANSWERS)
    page_ms = milliseconds(refresh)
    print(
        f"cpu cores: {os.cpu_count()}, runs: {args.runs} × {args.algo} on CartPole-v1, "
        f"workers: {args.workers}"
    )
    print(f"headless throughput:      {headless:9.0f} env steps/s (sum over runs)")
    print(f"with Train page open:     {with_page:9.0f} env steps/s")
    print(f"ratio:                    {100 * with_page / headless:9.1f} %   (target ≥ 95 %)")
    print(f"feed answer with charts, wall: {summary(charts_ms)}  (target p95 ≤ 150 ms)")
    print(f"feed answer with charts, CPU:  {summary(charts_cpu)}  (handler thread only)")
    print(f"whole-page rerun:         {summary(page_ms)}  (AppTest, every {PAGE_EVERY} s)")


def milliseconds(seconds) -> list[float]:
    return sorted(1000 * s for s in seconds)


def summary(ms: list[float]) -> str:
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"median {statistics.median(ms):4.0f} ms, p95 {p95:4.0f} ms over {len(ms)} refreshes"


if __name__ == "__main__":
    main()

"""Helper process for the kill -9 test: trains a fake run forever, reporting commits on stdout.

Usage: ``python -m tests.train_until_killed DATA_DIR [EXIT_AFTER]``. Prints ``run RUN_ID``;
then every ~0.3 s ``alive N`` (N updates committed so far, by the store's own periodic batches),
except once, when 100 updates are committed: ``store.flush()`` and ``flushed N``. Each update
reports ``t``, the wall-clock time it was produced, so the test can bound how much training a
kill loses. With EXIT_AFTER, the process exits normally once that many updates are committed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from core.engine.trainer import UpdateReport
from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from tests.fake_trainer import FakeTrainer, fake_config


class ClockedTrainer(FakeTrainer):
    """A fake trainer whose updates take ~2 ms and carry their wall-clock time."""

    def update(self) -> UpdateReport:
        threading.Event().wait(0.002)
        report = super().update()
        report.metrics["t"] = time.time()
        return report


def launch(data_dir: Path, *args: str) -> subprocess.Popen:
    """This script in a child process (repository root as cwd), its stdout readable as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.train_until_killed", str(data_dir), *args],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def main(data_dir: str, exit_after: int | None = None) -> None:
    store = RunStore(data_dir)
    manager = RunManager(store, checkpoint_every=50)
    # The class under its importable name (this file runs as __main__): a worker unpickles it.
    from tests import train_until_killed

    factory = train_until_killed.ClockedTrainer
    run_id = manager.start(fake_config(total_steps=10**8), trainer_factory=factory)
    print(f"run {run_id}", flush=True)
    manager.wait_for_status(run_id, ("running",), timeout=60)
    print(f"worker {manager.worker_pid(run_id)}", flush=True)
    tick = threading.Event()
    flushed = False
    while True:
        committed = store.run(run_id)["updates"]
        if exit_after is not None and committed >= exit_after:
            return  # a normal interpreter exit while the run trains
        if not flushed and committed >= 100:
            store.flush()
            flushed = True
            print(f"flushed {store.run(run_id)['updates']}", flush=True)
        else:
            print(f"alive {committed}", flush=True)
        tick.wait(0.3)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)

"""Runs in worker processes (core/runtime/worker.py): faults, factories, acknowledgements.

The manager's commands in both worker modes are covered by tests/test_runner.py; this file holds
what only worker processes have: a killed worker, factories that cannot travel.
"""

from __future__ import annotations

import functools
import os
import runpy
import signal
from pathlib import Path

import pytest

from core.runtime.runner import RunError, RunManager
from core.runtime.store import RunStore
from tests.fake_trainer import FakeTrainer, ProcessGate, Unbuildable, fake_config


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def gate():
    g = ProcessGate()
    yield g
    g.close()


def test_a_worker_killed_by_sigkill_fails_its_run_and_the_neighbour_finishes(store, gate):
    manager = RunManager(store, max_concurrent=2, workers="process")
    held = manager.start(
        fake_config(total_steps=10_000),
        trainer_factory=functools.partial(FakeTrainer, gate=gate.hook),
    )
    other = manager.start(fake_config(), trainer_factory=FakeTrainer)
    assert gate.wait_entered(1)
    pid = manager.worker_pid(held)
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    assert manager.wait(held, timeout=30) == "failed"
    assert manager.wait(other, timeout=30) == "finished"
    row = store.run(held)
    assert "SIGKILL" in row["error"] and "out of memory" in row["error"]
    assert list(store.events(held).kind) == ["started", "failed"]
    assert store.run(other)["updates"] == 10
    manager.shutdown()


def test_a_worker_trains_at_a_lower_priority_than_the_app(store, gate):
    """When trainers and the web server want the same core, the server answers first."""
    from core.runtime.worker import WORKER_NICE

    manager = RunManager(store, max_concurrent=1, workers="process")
    held = manager.start(
        fake_config(total_steps=10_000),
        trainer_factory=functools.partial(FakeTrainer, gate=gate.hook),
    )
    assert gate.wait_entered(1)
    pid = manager.worker_pid(held)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICE)
    manager.stop(held)
    gate.open()
    assert manager.wait(held, timeout=30) == "stopped"
    manager.shutdown()


def test_a_factory_that_cannot_travel_is_refused_before_anything_is_stored(store):
    manager = RunManager(store, workers="process")
    for factory in (lambda config: FakeTrainer(config), _local_factory()):
        with pytest.raises(RunError, match="picklable"):
            manager.start(fake_config(), trainer_factory=factory)
    assert store.runs().empty
    manager.shutdown()


def _local_factory():
    class Local(FakeTrainer):
        pass

    return Local


def test_a_factory_the_worker_cannot_rebuild_fails_the_run_with_the_reason(store):
    manager = RunManager(store, workers="process")
    factory = functools.partial(FakeTrainer, gate=Unbuildable())
    run_id = manager.start(fake_config(), trainer_factory=factory)
    assert manager.wait(run_id, timeout=60) == "failed"
    assert "cannot be rebuilt in the worker" in store.run(run_id)["error"]
    manager.shutdown()


def test_commands_are_acknowledged_at_once_and_confirmed_by_the_worker(store, gate):
    manager = RunManager(store, workers="process")
    run_id = manager.start(
        fake_config(total_steps=10_000),
        trainer_factory=functools.partial(FakeTrainer, gate=gate.hook),
    )
    assert gate.wait_entered(1)
    assert manager.wait_for_status(run_id, ("running",), timeout=30) == "running"
    assert manager.requested(run_id) is None
    manager.pause(run_id)
    assert manager.requested(run_id) == "pausing" and manager.status(run_id) == "running"
    gate.open()
    assert manager.wait_for_status(run_id, ("paused",), timeout=30) == "paused"
    assert manager.requested(run_id) is None
    manager.stop(run_id)
    assert manager.requested(run_id) == "stopping"
    assert manager.wait(run_id, timeout=30) == "stopped"
    assert manager.requested(run_id) is None
    manager.shutdown()


def test_an_unknown_worker_mode_is_a_clear_error(store, monkeypatch):
    with pytest.raises(ValueError, match="process, thread"):
        RunManager(store, workers="fibers")
    monkeypatch.setenv("PLAYGROUND_WORKERS", "fibers")
    with pytest.raises(ValueError, match="PLAYGROUND_WORKERS"):
        RunManager(store)


def test_a_worker_given_the_app_script_as_its_main_module_builds_nothing():
    """Under ``streamlit run`` the session's script is ``__main__``, so multiprocessing has each
    worker import ``app.py`` as ``__mp_main__``; it must not build the web server there."""
    namespace = runpy.run_path(str(Path(__file__).parents[1] / "app.py"), run_name="__mp_main__")
    assert "app" not in namespace and "st" not in namespace

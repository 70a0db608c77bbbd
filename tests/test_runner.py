"""The run manager under misuse and faults (issue 3, "Bad input and faults")."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer
from core.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.runtime.owners import process_owner
from core.runtime.runner import WORKER_MODES, RunError, RunManager
from core.runtime.store import RunStore
from tests import train_until_killed
from tests.fake_trainer import Concurrency, FakeTrainer, Gate, ProcessGate, fake_config
from tests.helpers import run_module


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture(params=WORKER_MODES)
def mode(request):
    """Every manager test runs with worker processes and with worker threads."""
    return request.param


@pytest.fixture
def manager(store, mode):
    m = RunManager(store, max_concurrent=2, checkpoint_every=4, workers=mode)
    yield m
    m.shutdown()


@pytest.fixture
def gate(mode):
    """A gate that holds updates in this process (threads) or in worker processes."""
    g = Gate() if mode == "thread" else ProcessGate()
    yield g
    if isinstance(g, ProcessGate):
        g.close()


def _fake(**kw):
    """A picklable trainer factory (a worker process can rebuild it)."""
    if "gate" in kw:
        kw["gate"] = kw["gate"].hook
    return functools.partial(FakeTrainer, **kw)


def _in_threads(n: int, fn) -> list:
    """Run ``fn(i)`` in n threads released at once; return the results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def body(i: int) -> None:
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_twenty_threads_with_one_request_id_start_exactly_one_run(manager, store):
    ids = _in_threads(
        20, lambda i: manager.start(fake_config(), request_id="click-1", trainer_factory=_fake())
    )
    assert len(set(ids)) == 1
    assert manager.wait(ids[0], timeout=20) == "finished"
    assert list(store.runs().run_id) == [ids[0]]


def test_concurrency_cap_holds_under_concurrent_starts(manager, store, gate, mode):
    conc = Concurrency() if mode == "thread" else None  # counts updates of this process only
    factory = _fake(gate=gate, concurrency=conc)
    ids = _in_threads(8, lambda i: manager.start(fake_config(), trainer_factory=factory))
    assert len(set(ids)) == 8
    assert gate.wait_entered(2)
    first_two = store.runs(ids).sort_values("created_at")["run_id"].iloc[:2]
    for run_id in first_two:  # a worker process's "started" may still be on its way
        assert manager.wait_for_status(run_id, ("running",), timeout=20) == "running"
    statuses = sorted(manager.status(r) for r in ids)
    assert statuses == ["queued"] * 6 + ["running"] * 2
    assert gate.entered == 2
    gate.open()
    assert [manager.wait(r, timeout=30) for r in ids] == ["finished"] * 8
    assert conc is None or conc.max == 2
    assert (store.runs().updates == 10).all()


def test_invalid_config_raises_config_error_naming_the_field_and_writes_nothing(manager, store):
    bad = fake_config()
    bad.gamma = 1.5
    with pytest.raises(ConfigError) as e:
        manager.start(bad, trainer_factory=_fake())
    assert e.value.field == "gamma"
    assert store.runs().empty and manager.active() == []


def test_invalid_hyperparameter_change_raises_config_error_and_records_nothing(
    manager, store, gate
):
    run_id = manager.start(fake_config(), trainer_factory=_fake(gate=gate))
    assert gate.wait_entered(1)
    for changes, field in (({"lr": -1.0}, "lr"), ({"n_envs": 4}, "n_envs"), ({"nope": 1}, "nope")):
        with pytest.raises(ConfigError) as e:
            manager.set_hyperparams(run_id, **changes)
        assert e.value.field == field
    gate.open()
    assert manager.wait(run_id, timeout=20) == "finished"
    assert "hyperparams" not in set(store.events(run_id).kind)
    assert (store.metrics(run_id).lr == fake_config().lr).all()


def test_live_change_applies_at_the_next_update_and_is_recorded_with_old_and_new(
    manager, store, gate
):
    run_id = manager.start(fake_config(), trainer_factory=_fake(gate=gate))
    assert gate.wait_entered(1)
    assert manager.set_hyperparams(run_id, lr="0.01") == {"lr": (3e-4, 0.01)}
    assert not manager.wait_for_changes(run_id, timeout=0.01)  # the loop is held in update 1
    gate.open()
    assert manager.wait_for_changes(run_id, timeout=20)
    assert "hyperparams" in set(store.events(run_id).kind)  # recorded when the wait returns
    assert manager.wait(run_id, timeout=20) == "finished"
    assert not manager.wait_for_changes(run_id, timeout=0.01)  # an ended run has none to wait for
    lr = store.metrics(run_id).lr.tolist()
    assert lr[0] == 3e-4 and lr[1:] == [0.01] * 9  # update 1 was already under way
    ev = store.events(run_id)
    change = ev[ev.kind == "hyperparams"].iloc[0]
    assert change.payload == {"lr": [3e-4, 0.01]} and change.env_step == 8


def test_trainer_failing_on_third_update_is_failed_with_traceback_and_neighbour_finishes(
    manager, store
):
    bad = manager.start(fake_config(), trainer_factory=_fake(fail_on=3))
    good = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(bad, timeout=20) == "failed"
    assert manager.wait(good, timeout=20) == "finished"
    row = store.run(bad)
    assert row["status"] == "failed" and row["updates"] == 2
    assert "Traceback (most recent call last)" in row["error"]
    assert "RuntimeError: boom on update 3" in row["error"]
    assert store.run(good)["updates"] == 10
    assert list(store.events(bad).kind) == ["started", "failed"]


def test_stop_lands_within_one_update(manager, store, gate):
    run_id = manager.start(fake_config(total_steps=10_000), trainer_factory=_fake(gate=gate))
    assert gate.wait_entered(1)
    manager.stop(run_id)
    gate.open()
    assert manager.wait(run_id, timeout=20) == "stopped"
    assert store.run(run_id)["updates"] == 1
    assert list(store.events(run_id).kind) == ["started", "stopped"]


def test_stopping_a_queued_run_means_it_never_starts(store, mode, gate):
    manager = RunManager(store, max_concurrent=1, workers=mode)
    first = manager.start(fake_config(), trainer_factory=_fake(gate=gate))
    queued = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.status(queued) == "queued"
    manager.stop(queued)
    gate.open()
    assert manager.wait(first, timeout=20) == "finished"
    assert manager.status(queued) == "stopped" and store.run(queued)["updates"] == 0
    manager.shutdown()


def test_paused_run_uses_no_cpu_and_resumes_where_it_paused(manager, store):
    run_id = manager.start(fake_config(total_steps=400_000), trainer_factory=_fake())
    manager.pause(run_id)
    assert manager.wait_for_status(run_id, ("paused",), timeout=20) == "paused"
    store.flush()
    paused_at = store.run(run_id)["updates"]
    cpu0 = time.process_time()
    threading.Event().wait(1.0)  # a measurement window, not a synchronisation
    cpu = time.process_time() - cpu0
    assert cpu < 0.1, f"a paused run burned {cpu:.3f} s of CPU in 1 s"
    store.flush()
    assert store.run(run_id)["updates"] == paused_at
    manager.resume(run_id)
    assert manager.wait_for_status(run_id, ("running",), timeout=20) == "running"
    manager.stop(run_id)
    assert manager.wait(run_id, timeout=20) == "stopped"
    updates = store.metrics(run_id)["update"].tolist()
    assert updates == list(range(1, len(updates) + 1)) and len(updates) > paused_at
    kinds = list(store.events(run_id).kind)
    assert kinds == ["started", "paused", "resumed", "stopped"]


def test_checkpoint_round_trip_and_continue_run_resumes_as_linked_run(manager, store):
    run_id = manager.start(fake_config(lr=0.5), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    ckpts = store.checkpoints(run_id)
    assert ckpts["update"].tolist() == [4, 8, 10]
    last = load_checkpoint(ckpts.path.iloc[-1])
    assert last["update"] == 10 and last["env_steps"] == 80
    fresh = FakeTrainer(fake_config())
    fresh.load_state_dict(last["state"])
    assert torch.equal(fresh.weight, torch.full((4,), 5.0)) and fresh.book.env_steps == 80

    with pytest.raises(RunError, match="whole budget"):
        manager.continue_run(run_id)
    child = manager.continue_run(run_id, extra_steps=16)
    assert manager.wait(child, timeout=20) == "finished"
    row = store.run(child)
    assert row["parent_id"] == run_id and row["total_steps"] == 96
    m = store.metrics(child)
    assert m["update"].tolist() == [11, 12] and m.env_steps.tolist() == [88, 96]
    assert m.loss.tolist() == [22.0, 24.0]  # the weight went on from 5.0 per entry


def test_old_checkpoints_are_pruned_to_the_newest_few(store, mode):
    manager = RunManager(store, checkpoint_every=1, keep_checkpoints=2, workers=mode)
    run_id = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    ckpts = store.checkpoints(run_id)
    assert ckpts["update"].tolist() == [9, 10]
    assert sorted(p.name for p in store.checkpoint_dir(run_id).iterdir()) == [
        "update_0000009.pt",
        "update_0000010.pt",
    ]
    manager.shutdown()


def test_corrupt_or_foreign_checkpoint_gives_a_clear_one_line_error(manager, store, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 50)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path, text in ((garbage, "corrupt"), (foreign, "not a playground checkpoint")):
        with pytest.raises(CheckpointError, match=text) as e:
            load_checkpoint(path)
        assert "\n" not in str(e.value)

    run_id = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    paths = store.checkpoints(run_id).path.tolist()
    assert len(paths) >= 2
    for path in paths:
        Path(path).write_bytes(b"truncated")
    runs_before = len(store.runs())
    with pytest.raises(RunError, match="no usable checkpoint.*corrupt") as e:
        manager.continue_run(run_id, extra_steps=8)
    assert "\n" not in str(e.value)
    assert len(store.runs()) == runs_before  # nothing was created


def test_continue_falls_back_to_the_newest_checkpoint_that_loads(manager, store):
    run_id = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    ckpts = store.checkpoints(run_id)
    Path(ckpts.path.iloc[-1]).write_bytes(b"truncated")
    child = manager.continue_run(run_id, extra_steps=8)
    assert manager.wait(child, timeout=20) == "finished"
    assert store.metrics(child)["env_steps"].iloc[0] == ckpts.env_steps.iloc[-2] + 8


@pytest.mark.parametrize(
    "forge, message",
    [
        (lambda run_id, path: {"run_id": "a1b2c3d4e5f6"}, "belongs to run 'a1b2c3d4e5f6', not"),
        (
            lambda run_id, path: {"config_json": RunConfig(algo="dqn").to_json()},
            "is a dqn checkpoint; run .* is a2c",
        ),
        (lambda run_id, path: {"state": {"actor": 1}}, "does not load into the a2c trainer"),
    ],
)
def test_continue_refuses_a_checkpoint_of_another_run_algorithm_or_shape(
    manager, store, forge, message
):
    run_id = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    for path in store.checkpoints(run_id).path:  # every file replaced by a forged one
        real = load_checkpoint(path)
        fields = {
            "run_id": run_id,
            "update": real["update"],
            "env_steps": real["env_steps"],
            "config_json": real["config"],
            "state": real["state"],
            **forge(run_id, path),
        }
        save_checkpoint(path, **fields)
    runs_before = len(store.runs())
    with pytest.raises(RunError, match=message) as e:
        manager.continue_run(run_id, extra_steps=8)
    assert "\n" not in str(e.value)
    assert len(store.runs()) == runs_before  # nothing was created


def test_delete_is_refused_while_active_and_allowed_after(manager, store, gate):
    run_id = manager.start(fake_config(), trainer_factory=_fake(gate=gate))
    assert gate.wait_entered(1)
    with pytest.raises(RunError, match="stop it"):
        manager.delete(run_id)
    gate.open()
    assert manager.wait(run_id, timeout=20) == "finished"
    manager.delete(run_id)
    assert store.runs().empty and not store.checkpoint_dir(run_id).exists()


def test_commands_on_unknown_or_finished_runs_give_run_errors(manager):
    with pytest.raises(RunError, match="no run"):
        manager.stop("nope")
    run_id = manager.start(fake_config(), trainer_factory=_fake())
    assert manager.wait(run_id, timeout=20) == "finished"
    for command in (manager.pause, manager.resume, manager.stop):
        with pytest.raises(RunError, match="finished"):
            command(run_id)
    with pytest.raises(RunError, match="finished"):
        manager.set_hyperparams(run_id, lr=0.1)


def test_startup_marks_orphaned_runs_interrupted_and_leaves_live_ones(store):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead_process = json.dumps({"host": socket.gethostname(), "pid": ended.pid, "start": None})
    orphans = {
        store.create_run(fake_config(), status="running", owner=dead_process),
        store.create_run(fake_config(), status="paused", owner=process_owner("gone-manager")),
        store.create_run(fake_config(), status="queued", owner="garbage"),
    }
    ours = store.create_run(fake_config(), status="running")  # owned by this live process
    manager = RunManager(store)
    assert set(manager.interrupted) == orphans
    for run_id in orphans:
        assert store.run(run_id)["status"] == "interrupted"
        assert list(store.events(run_id).kind) == ["interrupted"]
    assert store.run(ours)["status"] == "running"
    manager.shutdown()


def test_shutdown_interrupts_runs_with_a_checkpoint_to_continue_from(store, mode, gate):
    manager = RunManager(store, checkpoint_every=1000, workers=mode)
    run_id = manager.start(fake_config(total_steps=10_000), trainer_factory=_fake(gate=gate))
    assert gate.wait_entered(1)
    gate.open()
    manager.shutdown()
    assert store.run(run_id)["status"] == "interrupted"
    assert len(store.checkpoints(run_id)) == 1
    again = RunManager(store)
    child = again.continue_run(run_id, trainer_factory=_fake())
    assert again.status(child) in ("queued", "running")
    again.shutdown()


def test_kill_9_keeps_every_update_before_the_last_flush_and_run_becomes_interrupted(tmp_path):
    data = tmp_path / "killed"
    proc = train_until_killed.launch(data)
    run_id, worker, flushed, lines_after = None, None, 0, 0
    try:
        for line in proc.stdout:  # kill ~0.6 s after the flush: only periodic commits since
            kind, value = line.split()
            if kind == "run":
                run_id = value
            elif kind == "worker":
                worker = int(value)
            elif kind == "flushed":
                flushed = int(value)
            elif flushed:
                lines_after += 1
                if lines_after == 2:
                    break
        os.kill(proc.pid, 9)
        killed_at = time.time()
    finally:
        proc.kill()
        proc.wait()
    assert run_id is not None and worker is not None and flushed >= 100
    assert _exits_within(worker, 2.0), "the worker process outlived its app by over 2 s"
    store = RunStore(data)
    m = store.metrics(run_id)
    updates = m["update"].tolist()
    assert updates == list(range(1, len(updates) + 1))  # no holes
    assert updates[-1] >= flushed >= 100
    lost = killed_at - m.t.iloc[-1]  # training time after the last committed update
    assert lost < 1.0, f"{lost:.2f} s of training lost"
    assert store.run(run_id)["status"] == "interrupted"  # any reader sees the owner is gone
    assert list(store.events(run_id).kind).count("interrupted") == 1
    manager = RunManager(store)
    assert manager.interrupted == []  # nothing left to recover
    assert len(store.metrics(run_id)) == len(updates)
    manager.shutdown()
    store.close()


def _exits_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` (not our child) is gone within ``seconds`` (looked at each 20 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(") ")[-1].startswith("Z"):
            return True
        threading.Event().wait(0.02)
    return False


def _state_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN == NaN here


REAL_CONFIGS = {  # algo: (tiny config changes, a metric only that algorithm reports)
    "ppo": ({"minibatch_size": 64, "epochs": 2}, "clip_frac"),
    "a2c": ({}, "entropy"),
    "trpo": ({"critic_iters": 2}, "ls_accepted"),
    "dqn": ({"learning_starts": 64, "batch_size": 32, "buffer_size": 1000}, "td_loss"),
}


@pytest.mark.parametrize("algo", sorted(REAL_CONFIGS))
def test_real_trainer_runs_checkpoints_and_continues_through_the_manager(algo, store):
    manager = RunManager(store, checkpoint_every=2)
    changes, own_metric = REAL_CONFIGS[algo]
    config = RunConfig(algo=algo).with_changes(
        n_envs=2, n_steps=64, total_steps=512, eval_every=256, eval_episodes=2, **changes
    )
    run_id = manager.start(config)
    assert manager.wait(run_id, timeout=300) == "finished", store.run(run_id)["error"]
    m = store.metrics(run_id)
    assert m["update"].tolist() == [1, 2, 3, 4] and m.env_steps.tolist() == [128, 256, 384, 512]
    assert {own_metric, "episode_return_mean", "eval_return_mean", "fps"} <= set(m.columns)
    assert store.checkpoints(run_id)["update"].tolist() == [
        1,
        2,
        4,
    ]  # the first update, then every 2nd

    ckpt = load_checkpoint(store.checkpoints(run_id).path.iloc[-1])
    trainer = make_trainer(RunConfig.from_json(ckpt["config"]))
    trainer.load_state_dict(ckpt["state"])
    assert _state_equal(trainer.state_dict(), ckpt["state"])
    assert trainer.book.env_steps == 512

    child = manager.continue_run(run_id, extra_steps=256)
    assert manager.wait(child, timeout=300) == "finished", store.run(child)["error"]
    c = store.metrics(child)
    assert c["update"].tolist() == [5, 6] and c.env_steps.tolist() == [640, 768]
    manager.shutdown()


def test_normal_process_exit_interrupts_runs_with_a_checkpoint(tmp_path):
    data = tmp_path / "exited"
    proc = run_module("tests.train_until_killed", str(data), "20")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[1]
    store = RunStore(data)
    row = store.run(run_id)
    assert row["status"] == "interrupted" and row["updates"] >= 20
    ckpt = store.checkpoints(run_id)
    assert ckpt["update"].iloc[-1] == row["updates"]  # the state at exit is saved
    assert store.events(run_id).kind.tolist()[-1] == "interrupted"
    store.close()


def test_wait_for_updates_returns_once_they_are_committed_and_not_after_the_end(manager):
    run_id = manager.start(fake_config(), trainer_factory=_fake())  # 10 updates of 8 env steps
    assert manager.wait_for_updates(run_id, 3, timeout=30)
    assert len(manager.store.metrics(run_id)) >= 3  # a reader sees them at once
    assert manager.wait(run_id, timeout=30) == "finished"
    assert manager.wait_for_updates(run_id, 10, timeout=5)
    assert not manager.wait_for_updates(run_id, 11, timeout=5)  # ended short of 11
    assert not manager.wait_for_updates("no-such-run", 1, timeout=5)

"""The run loop with a real trainer: commands that arrive in the middle of an update.

The bookkeeper calls the loop every few dozen env steps inside an update
(``core/engine/trainer.py``); these tests release a command at a chosen env step and check what the
loop reports and what the trainer does. TRPO on CartPole (every algorithm for live changes), 128 env
steps per update (64 vector steps × 2 envs), so the loop looks at its commands twice inside each
update.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest

import core.engine.trainer
import core.runtime.run_loop
from core.config import ALGORITHMS, RunConfig
from core.engine.algos import make_trainer
from core.runtime.run_loop import LoopSpec, RunLoop

BATCH = 128
TIMING = {"wall_time", "fps"}


def _config(updates: int, algo: str = "trpo") -> RunConfig:
    small = {"learning_starts": 0} if algo == "dqn" else {}
    return RunConfig(algo=algo, env_id="CartPole-v1").with_changes(
        n_steps=64, n_envs=2, total_steps=updates * BATCH, eval_every=0, **small
    )


class Scripted:
    """A command source: ``commands`` are released once the trainer has taken ``after`` env
    steps; a blocking read takes the next of ``then`` (the loop blocks only while paused)."""

    def __init__(self, after: int, commands: list[tuple], then: list[tuple] = ()) -> None:
        self.after, self.commands, self.then = after, list(commands), list(then)
        self.trainer: Any = None
        self.on_block = lambda: None

    def get(self, block: bool = True) -> tuple:
        if block:
            self.on_block()
            return self.then.pop(0)
        if self.commands and self.trainer.book.env_steps >= self.after:
            return self.commands.pop(0)
        raise queue.Empty


def _run(tmp_path, updates: int, script: Scripted) -> tuple[list[tuple], list[float]]:
    """Run a loop; return its messages and δ as the trainer held it after each update."""
    messages: list[tuple] = []
    deltas: list[float] = []

    def factory(config: RunConfig):
        script.trainer = make_trainer(config)
        return script.trainer

    def emit(message: tuple) -> None:
        messages.append(message)
        if message[0] == "update":
            deltas.append(script.trainer.config.params.delta)

    spec = LoopSpec("r", _config(updates).to_json(), str(tmp_path), checkpoint_every=100)
    RunLoop(spec, factory, script, emit).run()
    return messages, deltas


def _kinds(messages: list[tuple]) -> list[str]:
    """The kinds of the messages, checkpoint notices left out (one follows the first update)."""
    return [m[0] for m in messages if m[0] != "checkpoint"]


def test_a_stop_inside_an_update_ends_the_run_at_its_last_finished_update(tmp_path):
    script = Scripted(after=BATCH + 1, commands=[("stop", "stopped")])
    messages, _ = _run(tmp_path, 5, script)
    assert _kinds(messages) == ["started", "update", "ended"]
    assert messages[-1] == ("ended", "stopped", BATCH)  # the half-done 2nd update is dropped
    checkpoints = [m[1:3] for m in messages if m[0] == "checkpoint"]
    assert checkpoints == [(1, BATCH)]  # the last checkpoint holds update 1
    assert script.trainer.book.env_steps == BATCH


def test_a_pause_inside_an_update_changes_nothing_but_its_time(tmp_path, monkeypatch):
    plain, _ = _run(tmp_path / "plain", 3, Scripted(after=0, commands=[]))

    clock = [1000.0]  # a paused hour that must not count in the update's time
    monkeypatch.setattr(core.engine.trainer.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(core.runtime.run_loop.time, "perf_counter", lambda: clock[0])
    script = Scripted(after=BATCH + 1, commands=[("pause",)], then=[("resume",)])
    script.on_block = lambda: clock.__setitem__(0, clock[0] + 3600.0)
    paused, _ = _run(tmp_path / "paused", 3, script)

    kinds = _kinds(paused)
    assert kinds[:5] == ["started", "update", "paused", "resumed", "update"]
    (at,) = [m[1] for m in paused if m[0] == "paused"]
    assert BATCH < at < 2 * BATCH  # it paused inside the 2nd update, not at its end
    updates = [m[1] for m in paused if m[0] == "update"]
    expected = [m[1] for m in plain if m[0] == "update"]
    assert len(updates) == len(expected) == 3
    for got, want in zip(updates, expected):
        assert {k: v for k, v in got.items() if k not in TIMING} == pytest.approx(
            {k: v for k, v in want.items() if k not in TIMING}, nan_ok=True
        )
    assert updates[1]["wall_time"] < 3600.0


def test_a_stop_while_paused_inside_an_update_ends_the_run(tmp_path):
    script = Scripted(after=BATCH + 1, commands=[("pause",)], then=[("stop", "stopped")])
    messages, _ = _run(tmp_path, 5, script)
    assert _kinds(messages) == ["started", "update", "paused", "ended"]
    assert messages[-1] == ("ended", "stopped", BATCH)


@pytest.mark.parametrize("algo", ["trpo", "ppo"])
def test_a_pause_in_the_learning_phase_lands_there_and_changes_nothing(tmp_path, algo):
    """Released once the 2nd rollout is complete (its last rollout poll comes 2 env steps
    before), the pause can only land between two epochs of learning (TRPO's critic, PPO's)."""
    plain = _run_algo(tmp_path / "plain", algo, Scripted(after=0, commands=[]))
    script = Scripted(after=2 * BATCH, commands=[("pause",)], then=[("resume",)])
    paused = _run_algo(tmp_path / "paused", algo, script)
    kinds = _kinds(paused)
    assert kinds[:6] == ["started", "update", "paused", "resumed", "update", "update"]
    assert [m[1] for m in paused if m[0] == "paused"] == [2 * BATCH]
    updates = [m[1] for m in paused if m[0] == "update"]
    expected = [m[1] for m in plain if m[0] == "update"]
    for got, want in zip(updates, expected, strict=True):
        assert {k: v for k, v in got.items() if k not in TIMING} == pytest.approx(
            {k: v for k, v in want.items() if k not in TIMING}, nan_ok=True
        )


def test_a_stop_in_the_learning_phase_lets_the_update_finish(tmp_path):
    """No checkpoint may hold half-trained weights: the 2nd update ends, then the run."""
    script = Scripted(after=2 * BATCH, commands=[("stop", "stopped")])
    messages = _run_algo(tmp_path, "trpo", script)
    assert _kinds(messages) == ["started", "update", "update", "ended"]
    assert messages[-1] == ("ended", "stopped", 2 * BATCH)
    assert [m[1:3] for m in messages if m[0] == "checkpoint"][-1] == (2, 2 * BATCH)


def _run_algo(tmp_path, algo: str, script: Scripted, updates: int = 3) -> list[tuple]:
    """Run ``updates`` updates of ``algo``; return the loop's messages."""
    messages: list[tuple] = []

    def factory(config: RunConfig):
        script.trainer = make_trainer(config)
        return script.trainer

    spec = LoopSpec("r", _config(updates, algo).to_json(), str(tmp_path), checkpoint_every=100)
    RunLoop(spec, factory, script, messages.append).run()
    return messages


def test_a_live_change_inside_an_update_takes_effect_at_the_next_one(tmp_path):
    script = Scripted(after=BATCH + 1, commands=[("set", {"delta": 0.02})])
    messages, deltas = _run(tmp_path, 4, script)
    change = [m for m in messages if m[0] == "hyperparams"]
    assert change == [("hyperparams", 2 * BATCH, {"delta": [0.01, 0.02]})]
    assert messages.index(change[0]) < [m[0] for m in messages].index("update", 2)
    assert deltas == [0.01, 0.01, 0.02, 0.02]  # the 2nd update kept the δ it started with


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_trainer_is_reconfigured_between_updates_only(tmp_path, algo):
    """The loop's one idiom for every algorithm: a change arriving inside update 2 is reported
    at once with update 3's first env step, and ``reconfigure`` runs once, between updates 2
    and 3, with the validated config."""
    script = Scripted(after=BATCH + 1, commands=[("set", {"gamma": 0.9})])
    calls: list[tuple[int, int, float]] = []
    gammas: list[float] = []
    messages: list[tuple] = []

    def factory(config: RunConfig):
        trainer = script.trainer = make_trainer(config)
        reconfigure = trainer.reconfigure

        def spy(new: RunConfig) -> None:
            calls.append((trainer.book.update, trainer.book.env_steps, new.gamma))
            reconfigure(new)

        trainer.reconfigure = spy
        return trainer

    def emit(message: tuple) -> None:
        messages.append(message)
        if message[0] == "update":
            gammas.append(script.trainer.config.gamma)

    spec = LoopSpec("r", _config(4, algo).to_json(), str(tmp_path), checkpoint_every=100)
    RunLoop(spec, factory, script, emit).run()
    assert messages[-1] == ("ended", "finished", 4 * BATCH)
    assert [m for m in messages if m[0] == "hyperparams"] == [
        ("hyperparams", 2 * BATCH, {"gamma": [0.99, 0.9]})
    ]
    assert calls == [(2, 2 * BATCH, 0.9)]
    assert gammas == [0.99, 0.99, 0.9, 0.9]
    assert script.trainer.config == _config(4, algo).with_changes(gamma=0.9)


def test_a_live_change_while_paused_is_reported_before_the_run_resumes(tmp_path):
    script = Scripted(
        after=BATCH + 1,
        commands=[("pause",)],
        then=[("set", {"delta": 0.03}), ("resume",)],
    )
    messages, deltas = _run(tmp_path, 3, script)
    kinds = _kinds(messages)
    assert kinds[:5] == ["started", "update", "paused", "hyperparams", "resumed"]
    (change,) = [m for m in messages if m[0] == "hyperparams"]
    assert change == ("hyperparams", 2 * BATCH, {"delta": [0.01, 0.03]})
    assert deltas == [0.01, 0.01, 0.03]


def test_checkpoints_come_after_the_first_update_and_every_checkpoint_seconds(
    tmp_path, monkeypatch
):
    clock = [0.0]
    monkeypatch.setattr(core.runtime.run_loop.time, "monotonic", lambda: clock[0])
    messages: list[tuple] = []

    def emit(message: tuple) -> None:
        messages.append(message)
        if message[0] == "update":
            clock[0] += 12.0  # each update takes 12 s of training

    spec = LoopSpec(
        "r", _config(6).to_json(), str(tmp_path), checkpoint_every=100, checkpoint_seconds=30.0
    )
    RunLoop(spec, make_trainer, Scripted(after=0, commands=[]), emit).run()
    saved = [m[1] for m in messages if m[0] == "checkpoint"]
    # update 1; the first update ending 30 s or more after it (update 4); the end (update 6)
    assert saved == [1, 4, 6]
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())  # not snapshots/
    assert files == [f"update_{u:07d}.pt" for u in (1, 4, 6)]

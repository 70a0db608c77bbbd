"""Shared by the sweep tests: a short real sweep, and a trainer factory whose one trial raises
(and, held, whose trials wait for a test's gate before their last update).

Lives in an importable module (not a closure) so that Ray workers can unpickle the factory.
"""

from __future__ import annotations

from typing import Any

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.sweep.spec import SweepSpec

ALGO = "a2c"
UPDATES = 4
FAILING_TRIAL = {"gamma": 0.95, "gae_lambda": 0.9, "seed": 1}


def short_sweep(total_updates: int = UPDATES, seeds: int = 2) -> SweepSpec:
    """2 × 2 grid × ``seeds`` seeds of tiny runs (2 envs × 64 steps per update)."""
    base = RunConfig(
        algo=ALGO,
        n_envs=2,
        n_steps=64,
        total_steps=2 * 64 * total_updates,
        eval_every=0,
        hidden_sizes=(16,),
    )
    return SweepSpec(base, {"gamma": [0.95, 0.99], "gae_lambda": [0.9, 0.97]}, seeds, name="t")


def is_failing_trial(config: RunConfig) -> bool:
    return all(config.get(k) == v for k, v in FAILING_TRIAL.items())


class Wrapped:
    """A trainer seen through a wrapper: everything but what a subclass overrides."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trainer, name)

    @property
    def done(self) -> bool:
        return self._trainer.done


class FailsAtSecondUpdate(Wrapped):
    """Wraps a real trainer; its second ``update()`` raises."""

    def __init__(self, trainer: Any) -> None:
        super().__init__(trainer)
        self._calls = 0

    def update(self) -> Any:
        self._calls += 1
        if self._calls == 2:
            raise RuntimeError("injected failure in the second update")
        return self._trainer.update()


def one_trial_fails(config: RunConfig) -> Any:
    """The real trainer, except that the :data:`FAILING_TRIAL` trial raises in its 2nd update."""
    trainer = make_trainer(config)
    return FailsAtSecondUpdate(trainer) if is_failing_trial(config) else trainer


class HeldBeforeLastUpdate(Wrapped):
    """Wraps a trainer; before its last update (``last``) it waits for ``gate`` to open (a
    ``tests.fake_trainer.GateClient``: the test counts who waits, and opens it)."""

    def __init__(self, trainer: Any, gate: Any, last: int) -> None:
        super().__init__(trainer)
        self._gate, self._last = gate, last

    def update(self) -> Any:
        if self._trainer.book.update == self._last - 1:
            self._gate()
        return self._trainer.update()


def held_one_trial_fails(gate: Any, config: RunConfig) -> Any:
    """:func:`one_trial_fails`, each trial holding its last update (of :data:`UPDATES`) until the
    gate opens (``functools.partial(held_one_trial_fails, gate.client)``)."""
    return HeldBeforeLastUpdate(one_trial_fails(config), gate, UPDATES)

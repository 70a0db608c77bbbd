"""The trainer contract and the bookkeeping every trainer shares.

A trainer is built from a validated :class:`~core.config.RunConfig`; each ``update()`` is one
collect-and-learn iteration returning an :class:`UpdateReport`: a flat dict of floats with the fixed
metric names, plus the episodes that finished during it. :class:`Trainer` lists the whole contract.

Live changes: :func:`apply_changes` validates them against a config; the trainer adopts the
resulting config in ``reconfigure(config)``, which is only ever called between two updates, so a
change takes effect at the first env step of the next update. The run loop holds the changes that
arrive during an update until then (``core/runtime/run_loop.py``); :func:`set_hyperparams` does
both steps at once for code that drives a trainer by hand.

Evaluation seeds, one convention for every trainer (:func:`eval_seed`): each evaluation of a run
resets a separate vector env of ``n`` sub-envs with seed ``config.seed + EVAL_SEED_OFFSET`` (sub-env
i gets that seed + i). The start states are the same at every evaluation, so evaluation curves
compare policies on the same episodes, and they never coincide with the training envs' seeds
``config.seed + i`` (i < n_envs).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from core.config import RunConfig
from core.engine.envs import make_env

RECENT_EPISODES = 20
EVAL_SEED_OFFSET = 100_000  # see the module docstring
POLL_EVERY = 32  # vector env steps between two calls of ``Bookkeeper.on_poll`` (~5–30 ms)


@dataclass
class Episode:
    """One finished training episode: the env step at which it ended, its return and length."""

    env_step: int
    ret: float
    length: int


@dataclass
class UpdateReport:
    """What one update produced: metric name → value, and the episodes finished during it."""

    metrics: dict[str, float]
    episodes: list[Episode] = field(default_factory=list)


@runtime_checkable
class Trainer(Protocol):
    """What the run loop, the runner and its worker, the CLI, the sweeps, playback and the
    benchmarks use of a trainer.

    - ``config``: the config in force; ``book``: its :class:`Bookkeeper` (env steps, updates,
      wall time, and the ``on_poll`` hook the run loop sets);
    - ``done``: the budget is spent, ``book.env_steps >= config.total_steps``;
    - ``update()``: one collect-and-learn iteration under ``config``;
    - ``reconfigure(config)``: adopt a config from :func:`apply_changes` (it differs from the
      current one in live keys only: learning rates, δ, ε, …); called between two updates;
    - ``policy(obs)``: deterministic env actions for a batch of raw observations (greedy, or the
      Gaussian mean clipped to the action bounds), normalized first with the run's statistics
      when it normalizes observations (``core/engine/normalize.py``), which it never changes;
    - ``evaluate(n)``: returns of ``n`` episodes of ``policy`` on a separate env seeded with
      :func:`eval_seed`;
    - ``state_dict()`` / ``load_state_dict(state)``: the checkpoint, tensors and plain values only
      (``torch.load(weights_only=True)`` reads it), with the config's JSON under ``"config"``.
    """

    config: RunConfig
    book: Bookkeeper

    @property
    def done(self) -> bool: ...

    def update(self) -> UpdateReport: ...

    def reconfigure(self, config: RunConfig) -> None: ...

    def policy(self, obs: torch.Tensor) -> torch.Tensor: ...

    def evaluate(self, n_episodes: int) -> list[float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Bookkeeper:
    """Counts env steps, updates and time; tracks training episodes; schedules evaluations.

    Reports ``episode_return_mean``/``episode_length_mean`` over the last 20 finished episodes
    (as the RL-Zoo and SB3 logs do), NaN until the first episode ends.

    ``on_poll(stoppable)``, when set, is called every ``POLL_EVERY`` vector steps of the rollout
    (stoppable: a stop drops the unfinished update) and from :meth:`poll` between learning steps
    (not stoppable): the run loop looks at its commands there, so a pause, a live change or a stop
    lands within a few milliseconds instead of at the end of the update
    (``core/runtime/run_loop.py``).
    """

    def __init__(self, config: RunConfig) -> None:
        self.eval_every = config.eval_every
        self.update = 0
        self.env_steps = 0
        self.wall_time = 0.0
        self.next_eval = config.eval_every
        self._ret = np.zeros(config.n_envs)
        self._len = np.zeros(config.n_envs, dtype=np.int64)
        self._recent: deque[Episode] = deque(maxlen=RECENT_EPISODES)
        self._finished: list[Episode] = []
        self._t0 = 0.0
        self._steps0 = 0
        self.on_poll: Callable[[bool], None] | None = None
        self._until_poll = POLL_EVERY

    def start(self) -> None:
        """Mark the start of an update (for ``fps`` and ``wall_time``)."""
        self._t0 = time.perf_counter()
        self._steps0 = self.env_steps

    @property
    def steps_at_start(self) -> int:
        """Env steps when the current (or last) update started."""
        return self._steps0

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (a pause in the middle of an update) out of its time and ``fps``."""
        self._t0 += seconds

    def discard_update(self) -> None:
        """Forget the unfinished update (a stop in its middle): its env steps and episodes, so
        the counters match the last finished update, as a checkpoint of it expects."""
        self.env_steps = self._steps0
        self._finished = []

    def poll(self) -> None:
        """Let the run loop look at its commands between two learning steps (each epoch of PPO,
        each critic epoch of TRPO): a pause or a live change lands there; a stop waits for the
        update's end (a few hundred ms at most), so saved weights always belong to a finished
        update."""
        if self.on_poll is not None:
            self.on_poll(False)

    def on_step(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Account one vector-env step: ``rewards`` and ``dones`` (terminated | truncated)."""
        if self.on_poll is not None:
            self._until_poll -= 1
            if self._until_poll <= 0:
                self._until_poll = POLL_EVERY
                self.on_poll(True)
        self.env_steps += len(rewards)
        self._ret += rewards
        self._len += 1
        if dones.any():
            for i in np.flatnonzero(dones):
                ep = Episode(self.env_steps, float(self._ret[i]), int(self._len[i]))
                self._finished.append(ep)
                self._recent.append(ep)
            self._ret[dones] = 0.0
            self._len[dones] = 0

    def finish(
        self, metrics: dict[str, float], evaluate: Callable[[], list[float]] | None = None
    ) -> UpdateReport:
        """Close the update: add the shared metrics, run a due evaluation, hand out episodes."""
        self.update += 1
        elapsed = time.perf_counter() - self._t0
        if evaluate is not None and self.eval_every > 0 and self.env_steps >= self.next_eval:
            metrics["eval_return_mean"] = float(np.mean(evaluate()))
            while self.next_eval <= self.env_steps:
                self.next_eval += self.eval_every
        self.wall_time += elapsed
        steps = self.env_steps - self._steps0
        nan = float("nan")
        metrics.update(
            update=float(self.update),
            env_steps=float(self.env_steps),
            wall_time=self.wall_time,
            fps=steps / elapsed if elapsed > 0 else nan,
            episode_return_mean=float(np.mean([e.ret for e in self._recent]))
            if self._recent
            else nan,
            episode_length_mean=float(np.mean([e.length for e in self._recent]))
            if self._recent
            else nan,
        )
        episodes, self._finished = self._finished, []
        return UpdateReport({k: float(v) for k, v in metrics.items()}, episodes)

    def state_dict(self) -> dict[str, Any]:
        return {
            "update": self.update,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time,
            "next_eval": self.next_eval,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.update = int(state["update"])
        self.env_steps = int(state["env_steps"])
        self.wall_time = float(state["wall_time"])
        self.next_eval = int(state["next_eval"])


def eval_seed(config: RunConfig) -> int:
    """The seed of every evaluation of a run: ``config.seed + EVAL_SEED_OFFSET``."""
    return config.seed + EVAL_SEED_OFFSET


def evaluate_policy(
    env_id: str, policy: Callable[[torch.Tensor], torch.Tensor], n_episodes: int, seed: int
) -> list[float]:
    """Returns of ``n_episodes`` episodes, one per sub-env of a separate vector env.

    ``policy`` maps a batch of observations to env actions (greedy / mean action).
    """
    env = SyncVectorEnv(
        [lambda: make_env(env_id) for _ in range(n_episodes)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    obs, _ = env.reset(seed=seed)
    returns = np.zeros(n_episodes)
    running = np.ones(n_episodes, dtype=bool)
    with torch.no_grad():
        while running.any():
            actions = policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, rewards, terminated, truncated, _ = env.step(actions)
            returns += rewards * running
            running &= ~(terminated | truncated)
    env.close()
    return returns.tolist()


def apply_changes(
    config: RunConfig, changes: dict[str, Any]
) -> tuple[RunConfig, dict[str, tuple[Any, Any]]]:
    """Validate live hyperparameter ``changes`` against ``config``.

    Returns the new config and ``{key: (old, new)}``; raises ``ConfigError`` for a key that may
    not change while training or a value out of range.
    """
    from core.config import ConfigError

    live = set(config.live_keys())
    for key in changes:
        config.owner_of(key)  # raises for unknown keys
        if key not in live:
            raise ConfigError(
                key, "cannot be changed while a run trains; live: " + ", ".join(sorted(live))
            )
    new = config.with_changes(**changes)
    diff = {k: (config.get(k), new.get(k)) for k in changes if config.get(k) != new.get(k)}
    return new, diff


def set_hyperparams(trainer: Trainer, **changes: Any) -> dict[str, tuple[Any, Any]]:
    """Validate live ``changes`` against ``trainer.config`` and reconfigure the trainer now.

    For code that drives a trainer by hand between two updates (tests, scripts); the run loop
    takes the same two steps, holding a change that arrives during an update until it ends.
    Returns ``{key: (old, new)}``; raises ``ConfigError`` as :func:`apply_changes` does.
    """
    new, diff = apply_changes(trainer.config, changes)
    trainer.reconfigure(new)
    return diff

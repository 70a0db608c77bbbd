"""The on-policy base: what every trainer that learns from its own fresh rollouts shares.

:class:`OnPolicyTrainer` builds the vector env (seeded with ``config.seed``), the actor π_θ
(Gaussian log σ₀ = ``params.log_std_init`` where the algorithm's parameters define it), the critic
V, the rollout buffer and the bookkeeper. An update starts with
:meth:`OnPolicyTrainer.start_update`: n_steps × n_envs transitions collected with π_old,
advantages Â by GAE(γ, λ), returns R = Â + V. With ``normalize_obs`` / ``normalize_reward`` the
batch holds normalized observations and rewards (``core/engine/normalize.py``; ``self.obs`` stays
raw, the episode returns counted by the bookkeeper too). The base implements the rest of the
trainer contract (``core/engine/trainer.py``): ``done``, ``reconfigure``, ``policy`` (on raw
observations, normalized with the current statistics), ``evaluate`` (statistics frozen) and the
checkpoint, whose ``state_dict`` holds ``actor``, ``critic``, each optimizer's state under its
key, ``book``, ``config``, ``normalizer`` and a subclass's :meth:`OnPolicyTrainer.extra_state`.

A new on-policy algorithm is one module in ``core/engine/algos/``. Its trainer subclasses
:class:`OnPolicyTrainer`, or :class:`ActorCriticTrainer` for a loss on the flat actor-critic of
``core/engine/algos/actor_critic.py`` stepped by one optimizer, and writes:

- ``__init__``: ``super().__init__(config)``, then its optimizers and other learning state;
- ``update()``: ``batch = self.start_update()``, the learning step on ``batch`` under
  ``self.config``, then ``return self.finish(metrics)`` (the shared metrics, a due evaluation);
- ``optimizers()``: its optimizers by checkpoint key (``ActorCriticTrainer`` has it);
- when it has any: ``extra_state()`` / ``load_extra_state(state)`` for other learning state,
  and ``reconfigure(config)``, calling ``super()``, for what it caches from the config.

The module also defines ``PRESETS`` and is listed in the registry of
``core/engine/algos/__init__.py``; its hyperparameters are declared in
``core/config/algorithms.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from core.config import RunConfig
from core.engine.algos.actor_critic import ActorCritic, PolicyEval
from core.engine.envs import make_vec_env
from core.engine.nets import Critic, make_actor
from core.engine.normalize import Normalizer
from core.engine.rollout import Batch, RolloutBuffer
from core.engine.snapshot import UpdateSnapshot
from core.engine.trainer import Bookkeeper, UpdateReport, eval_seed, evaluate_policy


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) (NaN when the returns do not vary)."""
    var = returns.var()
    return float("nan") if var == 0 else float(1 - (returns - values).var() / var)


def normalized(adv: torch.Tensor) -> torch.Tensor:
    """(Â − mean) / (std + 1e-8), as SB3 does per minibatch."""
    return (adv - adv.mean()) / (adv.std() + 1e-8) if len(adv) > 1 else adv


def kl_metrics(final: PolicyEval, batch: Batch) -> dict[str, float]:
    """KL(π_old‖π_new) on the batch: exact mean and max, and k3 = mean((r − 1) − log r)."""
    log_ratio = final.logp - batch.logp
    return {
        "kl_mean": float(final.kl.mean()),
        "kl_max": float(final.kl.max()),
        "approx_kl": float((log_ratio.exp() - 1 - log_ratio).mean()),
    }


class OnPolicyTrainer(ABC):
    """Env, actor, critic, rollout buffer, bookkeeper and the trainer contract around
    ``update()``; see the module docstring for what a subclass writes.

    With ``capture_snapshots`` (off by default; the run loop turns it on) a trainer that supports
    it (TRPO, NPG, PPO) leaves its policy step in ``last_snapshot``
    (``core/engine/snapshot.py``); ``start_update`` clears it."""

    capture_snapshots: bool = False
    last_snapshot: UpdateSnapshot | None = None

    def __init__(self, config: RunConfig) -> None:
        self.config = config.validate()
        torch.manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        self.obs, _ = self.env.reset(seed=config.seed)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        self.normalizer = Normalizer.for_run(config, obs_space.shape)
        self.normalizer.update_obs(self.obs)
        self.actor = make_actor(obs_space, act_space, config.hidden_sizes, config.activation)
        log_std_init = getattr(config.params, "log_std_init", None)
        if log_std_init is not None and not self.actor.discrete:
            with torch.no_grad():
                self.actor.log_std.fill_(log_std_init)
        self.critic = Critic(int(obs_space.shape[0]), config.hidden_sizes, config.activation)
        self.buffer = RolloutBuffer(config.n_steps, config.n_envs, obs_space, act_space)
        self.book = Bookkeeper(config)
        continuous = not self.actor.discrete
        self.act_low = torch.as_tensor(act_space.low) if continuous else None
        self.act_high = torch.as_tensor(act_space.high) if continuous else None

    # -- what a subclass writes -----------------------------------------------------------------

    @abstractmethod
    def update(self) -> UpdateReport:
        """One update: :meth:`start_update`, learn, :meth:`finish`."""

    @abstractmethod
    def optimizers(self) -> dict[str, Any]:
        """Checkpoint key → optimizer (each with ``state_dict``/``load_state_dict``)."""

    def extra_state(self) -> dict[str, Any]:
        """A subclass's own checkpoint entries (none here)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what :meth:`extra_state` saved (nothing here)."""

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) for the rollout's bootstrap values (called without gradient)."""
        return self.critic(obs)

    # -- the update's frame ---------------------------------------------------------------------

    def start_update(self) -> Batch:
        """Start the book, collect n_steps × n_envs transitions with π_old and return them with
        GAE(γ, λ) advantages."""
        self.book.start()
        self.last_snapshot = None
        norm = self.normalizer if self.normalizer.active else None
        self.obs = self.buffer.collect(self.env, self.obs, self.actor, self.values, self.book, norm)
        return self.buffer.batch(self.config.gamma, self.config.gae_lambda)

    def finish(self, metrics: dict[str, float]) -> UpdateReport:
        """Close the update (``Bookkeeper.finish``), evaluating ``eval_episodes`` when due."""
        return self.book.finish(metrics, lambda: self.evaluate(self.config.eval_episodes))

    def remaining(self) -> float:
        """Share of the budget left, 1 − env_steps / total_steps (≥ 0): the linear schedules."""
        return max(0.0, 1.0 - self.book.env_steps / self.config.total_steps)

    # -- the rest of the contract ---------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    def reconfigure(self, config: RunConfig) -> None:
        """Adopt a config with new live values; the updates read it from ``self.config``, the
        normalizer's return discount follows γ."""
        self.config = config
        self.normalizer.gamma = config.gamma

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic env actions for raw observations (normalized with the current
        statistics, which this does not change; continuous actions clipped to the bounds)."""
        actions, _ = self.actor.act(self.normalizer.obs_tensor(obs), deterministic=True)
        if self.act_low is None:
            return actions
        return torch.clamp(actions, self.act_low, self.act_high)

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of :meth:`policy` on a separate env (the seeds of ``eval_seed``), with the
        normalization statistics frozen."""
        with self.normalizer.frozen_stats():
            return evaluate_policy(
                self.config.env_id, self.policy, n_episodes, eval_seed(self.config)
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": {k: v.clone() for k, v in self.actor.state_dict().items()},
            "critic": {k: v.clone() for k, v in self.critic.state_dict().items()},
            **{key: opt.state_dict() for key, opt in self.optimizers().items()},
            **self.extra_state(),
            "book": self.book.state_dict(),
            "config": self.config.to_json(),
            "normalizer": self.normalizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reconfigure(RunConfig.from_json(state["config"]))
        if "normalizer" in state:  # checkpoints written before normalization have none
            self.normalizer.load_state_dict(state["normalizer"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        for key, optimizer in self.optimizers().items():
            optimizer.load_state_dict(state[key])
        self.load_extra_state(state)
        self.book.load_state_dict(state["book"])


class ActorCriticTrainer(OnPolicyTrainer):
    """An on-policy trainer on :class:`ActorCritic`: the actor's and the critic's parameters in
    one flat tensor ``ac.flat``, with the hand-derived gradient of the loss in ``ac.grad``,
    stepped by one ``optimizer`` that the subclass builds (PPO, A2C)."""

    optimizer: Any

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.ac = ActorCritic(self.actor, self.critic)

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.ac.values(obs)

    def optimizers(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer}

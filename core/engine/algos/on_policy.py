"""What the on-policy actor-critic trainers (PPO, A2C) share.

:class:`OnPolicyTrainer` builds the vector env, the actor π_θ (Gaussian log σ₀ =
``params.log_std_init``), the critic V, their flat-parameter :class:`ActorCritic` and the rollout
buffer; it collects the rollout that starts each update (:meth:`OnPolicyTrainer.start_update`)
and implements the trainer contract around ``update()``: ``done``, ``set_hyperparams``,
``evaluate``, ``policy`` and the checkpoint (``state_dict`` keys ``actor``, ``critic``,
``optimizer``, ``book``, ``config`` plus a subclass's :meth:`OnPolicyTrainer.extra_state`).
"""

from __future__ import annotations

from typing import Any

import torch

from core.config import RunConfig
from core.engine.algos.actor_critic import ActorCritic, PolicyEval
from core.engine.envs import make_vec_env
from core.engine.nets import Critic, make_actor
from core.engine.rollout import Batch, RolloutBuffer
from core.engine.trainer import Bookkeeper, apply_changes, evaluate_policy

EVAL_SEED_OFFSET = 100_000


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


class OnPolicyTrainer:
    """Env, actor, critic, rollout buffer and the trainer contract; subclasses add ``update()``
    and an ``optimizer`` (with ``state_dict``/``load_state_dict``)."""

    optimizer: Any

    def __init__(self, config: RunConfig) -> None:
        self.config = self._next_config = config.validate()
        torch.manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        self.obs, _ = self.env.reset(seed=config.seed)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        self.actor = make_actor(obs_space, act_space, config.hidden_sizes, config.activation)
        if not self.actor.discrete:
            with torch.no_grad():
                self.actor.log_std.fill_(config.params.log_std_init)
        self.critic = Critic(obs_space.shape[0], config.hidden_sizes, config.activation)
        self.ac = ActorCritic(self.actor, self.critic, config.activation)
        self.buffer = RolloutBuffer(config.n_steps, config.n_envs, obs_space, act_space)
        self.book = Bookkeeper(config)

    def start_update(self) -> Batch:
        """Apply the pending live changes, start the book, collect n_steps × n_envs transitions
        with π_old and return them with GAE(γ, λ) advantages."""
        self.config = self._next_config
        self.book.start()
        self.obs = self.buffer.collect(self.env, self.obs, self.actor, self.ac.values, self.book)
        return self.buffer.batch(self.config.gamma, self.config.gae_lambda)

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    def remaining(self) -> float:
        """Share of the budget left, 1 − env_steps / total_steps (≥ 0): the linear schedules."""
        return max(0.0, 1.0 - self.book.env_steps / self.config.total_steps)

    def set_hyperparams(self, **changes: Any) -> dict[str, tuple[Any, Any]]:
        """Validate live changes now; they take effect at the next ``update()``."""
        self._next_config, diff = apply_changes(self._next_config, changes)
        return diff

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of the deterministic policy (greedy / mean action) on a separate env."""
        return evaluate_policy(
            self.config.env_id, self.policy, n_episodes, self.config.seed + EVAL_SEED_OFFSET
        )

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic env actions (continuous ones clipped to the action bounds)."""
        actions, _ = self.actor.act(obs, deterministic=True)
        if self.actor.discrete:
            return actions
        space = self.env.single_action_space
        return actions.clamp(torch.as_tensor(space.low), torch.as_tensor(space.high))

    def extra_state(self) -> dict[str, Any]:
        """A subclass's own checkpoint entries (none here)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved (nothing here)."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": {k: v.clone() for k, v in self.actor.state_dict().items()},
            "critic": {k: v.clone() for k, v in self.critic.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            **self.extra_state(),
            "book": self.book.state_dict(),
            "config": self._next_config.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.config = self._next_config = RunConfig.from_json(state["config"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_extra_state(state)
        self.book.load_state_dict(state["book"])

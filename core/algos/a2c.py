"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016) with GAE advantages.

One update:

1. Collect n_steps × n_envs transitions; advantages Â by GAE(γ, λ) (λ = 1: n-step returns, as
   SB3's A2C default), returns R = Â + V; Â normalized only when ``normalize_advantage``.
2. One gradient step on

       loss = −mean(Â · log π_θ(a|s)) + c_v · mean((V(s) − R)²) − c_H · mean(H(π_θ(·|s)))

   with the gradient clipped to norm ``max_grad_norm``; RMSprop (α 0.99, ε 1e-5, SB3's choice)
   or Adam (ε 1e-5) via ``optimizer``; with ``anneal_lr`` lr decays linearly to 0 over the budget.

The gradient is the hand-derived one of ``core.algos.actor_critic`` (objective "pg": at θ = θ_old
the ratio r = 1 and ∇(r·Â) = Â ∇log π). Reported: ``policy_loss`` (−mean(Â·log π) before the
step), ``value_loss``, ``entropy`` (after the step), ``explained_variance``, ``approx_kl`` (k3) and
``kl_mean``/``kl_max`` (exact KL(π_old‖π_new) on the batch after the step), ``lr``.
"""

from __future__ import annotations

from typing import Any

import torch

from core.algos.actor_critic import ActorCritic, FlatAdam, FlatRMSprop
from core.algos.ppo import EVAL_SEED_OFFSET, explained_variance, normalized
from core.config import RunConfig
from core.envs import make_vec_env
from core.nets import Critic, make_actor
from core.rollout import RolloutBuffer
from core.trainer import Bookkeeper, UpdateReport, apply_changes, evaluate_policy

OPTIMIZER_EPS = 1e-5
RMSPROP_ALPHA = 0.99

# SB3's A2C defaults (n_steps 5, lr 7e-4, γ 0.99, λ 1, RMSprop, vf_coef 0.5, max_grad_norm 0.5, no
# advantage normalization) with the RL-Zoo (hyperparams/a2c.yml) entries on top. Without
# VecNormalize and gSDE here: Acrobot runs unnormalized; the zoo's Pendulum entry (written for
# Pendulum-v0) keeps its settings with a plain Gaussian at log σ₀ = −2 instead of gSDE.
_SB3_A2C: dict[str, Any] = {
    "n_steps": 5,
    "lr": 7e-4,
    "gamma": 0.99,
    "gae_lambda": 1.0,
    "normalize_advantage": False,
    "optimizer": "rmsprop",
    "vf_coef": 0.5,
    "ent_coef": 0.0,
    "max_grad_norm": 0.5,
}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "CartPole-v1": {"zoo": {**_SB3_A2C, "n_envs": 8, "total_steps": 500_000}},
    "Acrobot-v1": {"zoo": {**_SB3_A2C, "n_envs": 16, "total_steps": 500_000}},
    "Pendulum-v1": {
        "zoo": {
            **_SB3_A2C,
            "n_envs": 8,
            "total_steps": 1_000_000,
            "n_steps": 8,
            "gae_lambda": 0.9,
            "vf_coef": 0.4,
            "anneal_lr": True,
            "log_std_init": -2.0,
        }
    },
}


class A2C:
    """A2C trainer (one gradient step per rollout)."""

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
        if config.params.optimizer == "adam":
            self.optimizer = FlatAdam(self.ac.flat, config.lr, eps=OPTIMIZER_EPS)
        else:
            self.optimizer = FlatRMSprop(
                self.ac.flat, config.lr, eps=OPTIMIZER_EPS, alpha=RMSPROP_ALPHA
            )
        self.buffer = RolloutBuffer(config.n_steps, config.n_envs, obs_space, act_space)
        self.book = Bookkeeper(config)

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    def update(self) -> UpdateReport:
        self.config = self._next_config
        cfg, p = self.config, self.config.params
        self.book.start()

        # 1. rollout, advantages by GAE
        self.obs = self.buffer.collect(self.env, self.obs, self.ac, self.ac.values, self.book)
        batch = self.buffer.batch(cfg.gamma, cfg.gae_lambda)
        adv = normalized(batch.advantages) if cfg.normalize_advantage else batch.advantages
        actions = batch.actions.long() if self.actor.discrete else batch.actions

        # 2. one clipped-gradient step on policy loss + c_v · value loss − c_H · entropy
        remaining = max(0.0, 1.0 - self.book.env_steps / cfg.total_steps)
        self.optimizer.lr = cfg.lr * remaining if p.anneal_lr else cfg.lr
        with torch.no_grad():
            old = self.ac.old_policy(batch.obs)
        step = self.ac.loss_grad(
            batch.obs,
            actions,
            batch.logp,
            adv,
            batch.returns,
            old,
            objective="pg",
            vf_coef=p.vf_coef,
            ent_coef=p.ent_coef,
        )
        self.ac.clip_grad_norm(p.max_grad_norm)
        self.optimizer.step(self.ac.grad)

        # 3. report: KL between the policies before and after the step
        with torch.no_grad():
            final = self.ac.evaluate(batch.obs, actions, old)
        log_ratio = final.logp - batch.logp
        metrics = {
            "policy_loss": float(-(adv * batch.logp).mean()),
            "value_loss": float(step.value_error.pow(2).mean()),
            "entropy": float(final.entropy.mean()),
            "explained_variance": explained_variance(batch.values, batch.returns),
            "approx_kl": float((log_ratio.exp() - 1 - log_ratio).mean()),
            "kl_mean": float(final.kl.mean()),
            "kl_max": float(final.kl.max()),
            "lr": self.optimizer.lr,
        }
        return self.book.finish(metrics, lambda: self.evaluate(cfg.eval_episodes))

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

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": {k: v.clone() for k, v in self.actor.state_dict().items()},
            "critic": {k: v.clone() for k, v in self.critic.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "book": self.book.state_dict(),
            "config": self._next_config.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.config = self._next_config = RunConfig.from_json(state["config"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.book.load_state_dict(state["book"])

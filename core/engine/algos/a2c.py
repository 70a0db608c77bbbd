"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016) with GAE advantages.

One update:

1. Collect n_steps × n_envs transitions; advantages Â by GAE(γ, λ) (λ = 1: n-step returns, as
   SB3's A2C default), returns R = Â + V; Â normalized only when ``normalize_advantage``.
2. One gradient step on

       loss = −mean(Â · log π_θ(a|s)) + c_v · mean((V(s) − R)²) − c_H · mean(H(π_θ(·|s)))

   with the gradient clipped to norm ``max_grad_norm``; RMSprop (α 0.99, ε 1e-5, SB3's choice)
   or Adam (ε 1e-5) via ``optimizer``; with ``anneal_lr`` lr decays linearly to 0 over the budget.

The gradient is the hand-derived one of ``core.engine.algos.actor_critic`` (objective "pg": at θ =
θ_old the ratio r = 1 and ∇(r·Â) = Â ∇log π). Reported: ``policy_loss`` (−mean(Â·log π) before the
step), ``value_loss``, ``entropy`` (after the step), ``explained_variance``, ``approx_kl`` (k3) and
``kl_mean``/``kl_max`` (exact KL(π_old‖π_new) on the batch after the step), ``lr``.
"""

from __future__ import annotations

from typing import Any

import torch

from core.config import RunConfig
from core.engine.algos.on_policy import (
    ActorCriticTrainer,
    explained_variance,
    kl_metrics,
    normalized,
)
from core.engine.fast.optim import Adam, RMSprop
from core.engine.trainer import UpdateReport

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


class A2C(ActorCriticTrainer):
    """A2C trainer (one gradient step per rollout)."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        if config.params.optimizer == "adam":
            self.optimizer = Adam(self.ac.flat, config.lr, eps=OPTIMIZER_EPS)
        else:
            self.optimizer = RMSprop(
                self.ac.flat, config.lr, eps=OPTIMIZER_EPS, alpha=RMSPROP_ALPHA
            )

    def update(self) -> UpdateReport:
        # 1. rollout, advantages by GAE
        batch = self.start_update()
        cfg, p = self.config, self.config.params
        adv = normalized(batch.advantages) if cfg.normalize_advantage else batch.advantages
        actions = batch.actions.long() if self.actor.discrete else batch.actions

        # 2. one clipped-gradient step on policy loss + c_v · value loss − c_H · entropy
        self.optimizer.lr = cfg.lr * self.remaining() if p.anneal_lr else cfg.lr
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
        metrics = {
            "policy_loss": float(-(adv * batch.logp).mean()),
            "value_loss": float(step.value_error.pow(2).mean()),
            "entropy": float(final.entropy.mean()),
            "explained_variance": explained_variance(batch.values, batch.returns),
            **kl_metrics(final, batch),
            "lr": self.optimizer.lr,
        }
        return self.finish(metrics)

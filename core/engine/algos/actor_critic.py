"""The actor-critic loss of PPO and A2C with its gradient derived by hand, on flat parameters.

One gradient step of PPO on CartPole (two 64-64 MLPs, batch 256) costs ~2–3 ms with autograd and
torch.optim.Adam, much of it per-operation overhead; the same step written as ~50 plain tensor
operations (forward, hand-derived backward, one flat Adam) takes ~2.5× less
(``benchmarks/bench_ppo.py`` prints both). The loss is the one of the papers,
for a minibatch of B samples with ratio r_i = π_θ(a_i|s_i) / π_old(a_i|s_i):

    loss = −(1/B) Σ_i obj_i + c_v · (1/B) Σ_i (V(s_i) − R_i)² − c_H · (1/B) Σ_i H(π_θ(·|s_i))

    obj_i = min(r_i Â_i, clip(r_i, 1−ε, 1+ε) Â_i)      objective "clip"  (PPO, clipped)
    obj_i = r_i Â_i − β · KL(π_old(·|s_i) ‖ π_θ(·|s_i))  objective "kl"    (PPO, adaptive KL)
    obj_i = r_i Â_i                                       objective "pg"    (A2C: at θ = θ_old
                                                          its gradient is Â ∇ log π)

The gradient is the chain rule through the kernels of ``core/engine/fast/``: ∂obj/∂log π =
r·Â·1[unclipped], then the heads' derivatives with respect to the actor's output
(``core/engine/fast/heads.py``: log π, entropy and KL, categorical or Gaussian with a
state-independent log σ), then the MLP's vjp (``core/engine/fast/mlp.py``) for the actor and the
critic. The readable loss, with ``torch.distributions`` and autograd, is
``core/engine/algos/actor_critic_reference.py``; ``tests/test_ppo.py`` checks the gradient against
autograd on it.

The ``nn.Module`` parameters of the actor and the critic are rebound as views of one flat tensor, so
acting, evaluation and checkpoints keep using the modules while the optimizer
(``core/engine/fast/optim.py``) sees one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.engine.fast import heads
from core.engine.fast.mlp import FlatMLP, bind
from core.engine.nets import Actor, Critic

OBJECTIVES = ("clip", "kl", "pg")


@dataclass
class OldPolicy:
    """π_old on a batch: its logits (Categorical) or its mean and log σ (Gaussian)."""

    logits: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    log_std: torch.Tensor | None = None

    def subset(self, idx: torch.Tensor | slice) -> OldPolicy:
        if self.logits is not None:
            return OldPolicy(logits=self.logits[idx])
        return OldPolicy(mean=self.mean[idx], log_std=self.log_std)


@dataclass
class StepStats:
    """Per-sample terms of one minibatch loss, kept as computed (summaries are taken afterwards,
    so the gradient loop spends no operations on them): log r, the objective obj_i and V − R."""

    log_ratio: torch.Tensor
    objective: torch.Tensor
    value_error: torch.Tensor

    def approx_kl(self) -> float:
        """k3 estimate of KL(π_old‖π_θ) on the minibatch: mean((r − 1) − log r)."""
        return float((self.log_ratio.exp() - 1 - self.log_ratio).mean())


def summarize(steps: list[StepStats], clip_eps: float) -> dict[str, float]:
    """Means over all samples of all steps: policy loss −obj, value loss (V − R)², clip fraction
    (share of ratios with |r − 1| > ε); NaN when no step was taken."""
    if not steps:
        return {"policy_loss": math.nan, "value_loss": math.nan, "clip_frac": math.nan}
    log_ratio = torch.cat([s.log_ratio for s in steps])
    return {
        "policy_loss": -float(torch.cat([s.objective for s in steps]).mean()),
        "value_loss": float(torch.cat([s.value_error for s in steps]).pow(2).mean()),
        "clip_frac": float(((log_ratio.exp() - 1).abs() > clip_eps).float().mean()),
    }


@dataclass
class PolicyEval:
    """The current policy on a batch: log π(a|s), entropy and exact KL(π_old‖π_θ) per sample."""

    logp: torch.Tensor
    entropy: torch.Tensor
    kl: torch.Tensor


class ActorCritic:
    """Actor and critic whose parameters live in one flat tensor ``flat`` (gradient in ``grad``):
    the actor's MLP, the critic's MLP, then log σ (Gaussian actors)."""

    def __init__(self, actor: Actor, critic: Critic) -> None:
        self.actor, self.critic = actor, critic
        self.discrete = actor.discrete
        parts = [
            FlatMLP.n_params(actor.sizes),
            FlatMLP.n_params(critic.sizes),
            0 if self.discrete else actor.sizes[-1],
        ]
        self.flat = torch.zeros(sum(parts))
        self.grad = torch.zeros_like(self.flat)
        (pa, pc, ps), (ga, gc, gs) = self.flat.split(parts), self.grad.split(parts)
        self.actor_mlp = FlatMLP(actor.sizes, actor.activation, pa, ga)
        self.critic_mlp = FlatMLP(critic.sizes, critic.activation, pc, gc)
        self.actor_mlp.bind(actor.net.parameters())
        self.critic_mlp.bind(critic.net.parameters())
        if not self.discrete:
            bind([actor.log_std], [ps])
            self.log_std, self.log_std_grad = ps, gs

    # -- forward ------------------------------------------------------------------------------

    def old_policy(self, obs: torch.Tensor) -> OldPolicy:
        """The current policy's parameters on ``obs``, kept as π_old for the coming epochs."""
        out = self.actor_mlp.forward(obs)
        if self.discrete:
            return OldPolicy(logits=out)
        return OldPolicy(mean=out, log_std=self.log_std.clone())

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor, old: OldPolicy) -> PolicyEval:
        """log π_θ(a|s), H(π_θ(·|s)) and the exact KL(π_old(·|s) ‖ π_θ(·|s)) per sample."""
        out = self.actor_mlp.forward(obs)
        if self.discrete:
            lsm = torch.log_softmax(out, -1)
            return PolicyEval(
                heads.categorical_log_prob(lsm, actions),
                heads.categorical_entropy(lsm),
                heads.categorical_kl(torch.log_softmax(old.logits, -1), lsm),
            )
        s = self.log_std
        return PolicyEval(
            heads.gaussian_log_prob((actions - out) / s.exp(), s),
            heads.gaussian_entropy(s).expand(len(obs)),
            heads.gaussian_kl(old.mean, old.log_std, out, s),
        )

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) (the rollout's bootstrap values, no gradient)."""
        return self.critic_mlp.forward(obs).squeeze(-1)

    # -- loss and hand-derived gradient ---------------------------------------------------------

    def loss_grad(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        logp_old: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        old: OldPolicy,
        *,
        objective: str,
        clip_eps: float = 0.2,
        beta: float = 0.0,
        vf_coef: float = 0.5,
        ent_coef: float = 0.0,
    ) -> StepStats:
        """Write ∂loss/∂θ (the loss in the module docstring) into ``grad``; return its terms."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective {objective!r}; allowed: {', '.join(OBJECTIVES)}")
        B = len(obs)
        actor_cache: list[torch.Tensor] = []
        critic_cache: list[torch.Tensor] = []
        out = self.actor_mlp.forward(obs, actor_cache)
        v = self.critic_mlp.forward(obs, critic_cache).squeeze(-1)
        if self.discrete:
            lsm = torch.log_softmax(out, -1)
            p = lsm.exp()
            logp = heads.categorical_log_prob(lsm, actions)
        else:
            s = self.log_std
            sigma = s.exp()
            u = (actions - out) / sigma
            logp = heads.gaussian_log_prob(u, s)
        log_ratio = logp - logp_old
        ratio = log_ratio.exp()
        surrogate = ratio * advantages
        if objective == "clip":
            clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages
            obj = torch.minimum(surrogate, clipped)
            # ∂obj/∂r = Â where r·Â is the smaller term, 0 where the clipped term is
            g_logp = torch.where(surrogate <= clipped, surrogate, 0.0).mul_(-1.0 / B)
        else:
            obj = surrogate
            g_logp = surrogate * (-1.0 / B)
        # ∂loss/∂(actor output): cotangents −r·Â/B on log π, −c_H/B on H, β/B on KL
        if self.discrete:
            d_out = heads.categorical_log_prob_vjp(p, actions, g_logp)
            if ent_coef:
                d_out += heads.categorical_entropy_vjp(lsm, p, -ent_coef / B)
            if objective == "kl":
                p_old = torch.softmax(old.logits, -1)
                obj = obj - beta * heads.categorical_kl(
                    torch.log_softmax(old.logits, -1), lsm, p_old
                )
                d_out += heads.categorical_kl_vjp(p, p_old, beta / B)
        else:
            d_out, d_s = heads.gaussian_log_prob_vjp(u, sigma, g_logp)
            d_s = d_s - ent_coef  # ∂H/∂log σ = 1 in every state: Σ_i (−c_H/B) = −c_H
            if objective == "kl":
                obj = obj - beta * heads.gaussian_kl(old.mean, old.log_std, out, s)
                d_mean, d_log_std = heads.gaussian_kl_vjp(old.mean, old.log_std, out, s, beta / B)
                d_out += d_mean
                d_s += d_log_std
            self.log_std_grad.copy_(d_s)
        v_err = v - returns
        self.actor_mlp.vjp(actor_cache, d_out)
        self.critic_mlp.vjp(critic_cache, ((2 * vf_coef / B) * v_err).unsqueeze(-1))
        return StepStats(log_ratio, obj, v_err)

    def clip_grad_norm(self, max_norm: float) -> float:
        """Scale ``grad`` to norm ≤ max_norm (as ``nn.utils.clip_grad_norm_``); return the norm."""
        norm = float(torch.linalg.vector_norm(self.grad))
        if norm > max_norm:
            self.grad.mul_(max_norm / (norm + 1e-6))
        return norm

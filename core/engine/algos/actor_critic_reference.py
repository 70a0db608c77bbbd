"""The PPO / A2C loss written the readable way: ``torch.distributions`` and autograd.

This is the loss whose gradient :meth:`core.engine.algos.actor_critic.ActorCritic.loss_grad`
computes by hand (read this first); ``tests/test_ppo.py`` differentiates it with autograd and
compares. For a minibatch of B samples, r = π_θ(a|s) / π_old(a|s):

    loss = −mean(obj) + c_v · mean((V(s) − R)²) − c_H · mean(H(π_θ(·|s)))
    clip:  obj = min(r·Â, clip(r, 1−ε, 1+ε)·Â)
    kl:    obj = r·Â − β · KL(π_old(·|s) ‖ π_θ(·|s))
    pg:    obj = r·Â           (A2C: at θ = θ_old its gradient is Â ∇log π)
"""

from __future__ import annotations

import torch

from core.engine.algos.actor_critic import OBJECTIVES, OldPolicy
from core.engine.fast import reference
from core.engine.nets import Actor, Critic


def policy_params(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """π_θ(·|s)'s parameters: (logits,) or (μ, log σ)."""
    out = actor.net(obs)
    return (out,) if actor.discrete else (out, actor.log_std)


def old_params(old: OldPolicy) -> tuple[torch.Tensor, ...]:
    """π_old(·|s)'s parameters: (logits,) or (μ, log σ)."""
    return (old.logits,) if old.logits is not None else (old.mean, old.log_std)


def loss(
    actor: Actor,
    critic: Critic,
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
) -> torch.Tensor:
    """The loss of the module docstring, differentiable by autograd in the modules' parameters."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    pi = reference.distribution(policy_params(actor, obs))
    ratio = torch.exp(pi.log_prob(actions) - logp_old)
    if objective == "clip":
        obj = torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    else:
        obj = ratio * advantages
    if objective == "kl":
        pi_old = reference.distribution(old_params(old))
        obj = obj - beta * torch.distributions.kl_divergence(pi_old, pi)
    value_loss = (critic(obs) - returns).pow(2).mean()
    return -obj.mean() + vf_coef * value_loss - ent_coef * pi.entropy().mean()

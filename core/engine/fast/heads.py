"""Policy heads: π(·|s) from the network's output z in closed form, with the derivatives the fast
paths need.

Categorical over K actions, logits z, p = softmax(z), log p = log_softmax(z):

    log π(a)      = log p_a                                  ∂/∂z = onehot(a) − p
    H             = −Σ_k p_k log p_k                         ∂/∂z = −p ⊙ (log p + H)
    KL(p_old ‖ p) = Σ_k p_old,k (log p_old,k − log p_k)      ∂/∂z = p − p_old
    M             = ∂²KL/∂z² at z = z_old = diag(p_old) − p_old p_oldᵀ

Diagonal Gaussian N(μ, diag σ²), s = log σ state-independent, u = (a − μ)/σ:

    log π(a)      = Σ_d (−½ u_d² − s_d − ½ log 2π)           ∂/∂μ = u/σ,  ∂/∂s = u² − 1
    H             = Σ_d (½ + ½ log 2π + s_d)                 ∂/∂μ = 0,    ∂/∂s = 1
    KL(old ‖ new) = Σ_d [s − s_old + (σ_old² + (μ − μ_old)²) / (2σ²) − ½]
                    ∂/∂μ = (μ − μ_old)/σ²,  ∂/∂s = 1 − (σ_old² + (μ − μ_old)²)/σ²
    M             at (μ_old, s_old): M_μμ = diag(1/σ²), M_ss = 2·I, M_μs = 0

With J = ∂z/∂θ, the Fisher matrix of the policy is F = ∇²_θ KL = JᵀMJ at θ_old: the other term,
Σ (∂KL/∂z) ∇²_θ z, vanishes there because KL(π_old‖π_θ) is minimal (∂KL/∂z = 0). TRPO's Fisher
product (``MLPFisher`` in ``core/engine/algos/trpo.py``) is this form, with J and Jᵀ the products
of ``core/engine/fast/mlp.py``.

Conventions: a ``*_vjp`` function returns g·∂f/∂z, the gradient of the loss term Σ_i g_i f_i, for a
cotangent g given per state ([B]) or as one number for every state. Categorical functions take the
log-probabilities of every action ``logp_all`` = log_softmax(z) (and p = its exp), computed once by
the caller; Gaussian functions take u. ``log_prob``, ``entropy``, ``kl`` and ``fisher`` take either
head's distribution parameters z = (logits,) or (μ, log σ). The readable ``torch.distributions`` /
autograd versions are in ``core/engine/fast/reference.py``; ``tests/test_fast_kernels.py``
compares the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

Params = tuple[torch.Tensor, ...]
"""Distribution parameters per state: (logits,) or (μ, log σ)."""

Cotangent = torch.Tensor | float


def _per_state(g: Cotangent) -> Cotangent:
    """A per-state cotangent [B] as a column [B, 1]; a number as it is."""
    return g.unsqueeze(-1) if isinstance(g, torch.Tensor) else g


# -- categorical ----------------------------------------------------------------------------------


def categorical_log_prob(logp_all: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log π(a|s) = log p_a."""
    return logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logp_all: torch.Tensor) -> torch.Tensor:
    """H = −Σ_k p_k log p_k."""
    return -(logp_all.exp() * logp_all).sum(-1)


def categorical_kl(
    logp_old: torch.Tensor, logp: torch.Tensor, p_old: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(p_old ‖ p) = Σ_k p_old,k (log p_old,k − log p_k); ``p_old`` defaults to exp(logp_old)
    (pass softmax(z_old) where the caller has it)."""
    p_old = logp_old.exp() if p_old is None else p_old
    return (p_old * (logp_old - logp)).sum(-1)


def categorical_log_prob_vjp(
    p: torch.Tensor, actions: torch.Tensor, g: torch.Tensor
) -> torch.Tensor:
    """g_i ∂log p_{a_i}/∂z_i = g_i (onehot(a_i) − p_i), for g of shape [B]."""
    g = g.unsqueeze(-1)
    d = g * (-p)
    return d.scatter_add_(-1, actions.long().unsqueeze(-1), g)


def categorical_entropy_vjp(logp_all: torch.Tensor, p: torch.Tensor, g: Cotangent) -> torch.Tensor:
    """g ∂H/∂z = −g p ⊙ (log p + H)."""
    entropy = -(p * logp_all).sum(-1, keepdim=True)
    return (-_per_state(g)) * p * (logp_all + entropy)


def categorical_kl_vjp(p: torch.Tensor, p_old: torch.Tensor, g: Cotangent) -> torch.Tensor:
    """g ∂KL(p_old ‖ p)/∂z = g (p − p_old)."""
    return _per_state(g) * (p - p_old)


# -- diagonal Gaussian ----------------------------------------------------------------------------


def gaussian_log_prob(u: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log π(a|s) = Σ_d (−½ u_d² − s_d − ½ log 2π), u = (a − μ)/σ."""
    return (-0.5 * u.pow(2) - log_std - HALF_LOG_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """H = Σ_d (½ + ½ log 2π + s_d) (one number when log σ is not broadcast to the states)."""
    return (0.5 + HALF_LOG_2PI + log_std).sum(-1)


def gaussian_kl(
    mean_old: torch.Tensor, log_std_old: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """KL(old ‖ new) = Σ_d [s − s_old + ½ (σ_old²/σ² + (μ − μ_old)²/σ²) − ½]."""
    var_ratio = torch.exp(2 * (log_std_old - log_std))
    per_dim = (
        log_std - log_std_old + 0.5 * (var_ratio + (mean - mean_old).pow(2) / (2 * log_std).exp())
    )
    return (per_dim - 0.5).sum(-1)


def gaussian_log_prob_vjp(
    u: torch.Tensor, std: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_i u_i/σ, Σ_i g_i (u_i² − 1)): the μ part per state and the log σ part summed over the
    states (log σ is state-independent), for g of shape [B]."""
    g = g.unsqueeze(-1)
    return g * u / std, (g * (u.pow(2) - 1)).sum(0)


def gaussian_kl_vjp(
    mean_old: torch.Tensor,
    log_std_old: torch.Tensor,
    mean: torch.Tensor,
    log_std: torch.Tensor,
    g: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g (μ − μ_old)/σ², g Σ_i [1 − (σ_old² + (μ_i − μ_old,i)²)/σ²]): the μ part per state and
    the log σ part summed over the states, for one g for every state."""
    var = (2 * log_std).exp()
    var_old = (2 * log_std_old).exp()
    diff = mean - mean_old
    return g * diff / var, g * (1 - (var_old + diff.pow(2)) / var).sum(0)


# -- either head, on its distribution parameters z ---------------------------------------------


def log_prob(z: Params, actions: torch.Tensor) -> torch.Tensor:
    """log π(a|s) per state."""
    if len(z) == 1:
        return categorical_log_prob(torch.log_softmax(z[0], -1), actions)
    mean, log_std = z
    # u = (a − μ)·e^(−s): TRPO's recorded runs (tests/data/seeded_reference.json) rounded it so
    return gaussian_log_prob((actions - mean) * torch.exp(-log_std), log_std)


def entropy(z: Params) -> torch.Tensor:
    """H(π(·|s)) per state (log σ broadcast to the states for a Gaussian)."""
    if len(z) == 1:
        return categorical_entropy(torch.log_softmax(z[0], -1))
    return gaussian_entropy(z[1])


def kl(z_old: Params, z: Params) -> torch.Tensor:
    """KL(π_old(·|s) ‖ π(·|s)) per state."""
    if len(z) == 1:
        return categorical_kl(torch.log_softmax(z_old[0], -1), torch.log_softmax(z[0], -1))
    return gaussian_kl(*z_old, *z)


def fisher(z_old: Params) -> Callable[[Params], Params]:
    """u ↦ M u, M = ∂²/∂z² of the mean over the N states of KL(π_old ‖ π_z), at z = z_old.

    Categorical: M_s = (diag(p) − p pᵀ)/N. Gaussian (log σ broadcast to the states):
    1/(N σ²) for μ and 2/N for log σ.
    """
    n = z_old[0].shape[0]
    if len(z_old) == 1:
        p = torch.softmax(z_old[0], -1) / n

        def categorical(u: Params) -> Params:
            pu = p * u[0]
            return (pu - p * pu.sum(-1, keepdim=True) * n,)

        return categorical
    inv_var = torch.exp(-2 * z_old[1]) / n

    def gaussian(u: Params) -> Params:
        return inv_var * u[0], (2.0 / n) * u[1]

    return gaussian

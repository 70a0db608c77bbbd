"""The readable references of the fast kernels: read these first.

Each function here says what a kernel of ``core/engine/fast/`` computes, written with
``torch.nn.functional``, ``torch.func``, ``torch.distributions`` and ``torch.optim``, and nothing
else. The kernels compute the same numbers with fewer, larger operations and no autograd;
``tests/test_fast_kernels.py`` checks every one against its reference here (values, gradients and
the Fisher metric, in float64). :func:`fisher_vector_product` is the readable form of TRPO's
Fisher product, which composes the MLP and head kernels (``tests/test_trust_region.py``).

Parameter layout (``mlp``): W_1 (row-major [out, in]), b_1, W_2, b_2, … in one flat tensor.
Distribution parameters (``distribution``): z = (logits,) or (μ, log σ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.distributions import Categorical, Distribution, Independent, Normal, kl_divergence
from torch.nn import functional

# -- the MLP (fast: core/engine/fast/mlp.py) ------------------------------------------------------


def mlp(
    params: torch.Tensor,
    sizes: Sequence[int],
    activation: str,
    x: torch.Tensor,
    activate_output: bool = False,
) -> torch.Tensor:
    """y = act(… act(x W_1ᵀ + b_1) …) W_Lᵀ + b_L; act on y too with ``activate_output``."""
    act = torch.tanh if activation == "tanh" else torch.relu
    h, offset, n_layers = x, 0, len(sizes) - 1
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = params[offset : offset + n_out * n_in].view(n_out, n_in)
        offset += n_out * n_in
        bias = params[offset : offset + n_out]
        offset += n_out
        h = functional.linear(h, weight, bias)
        if layer < n_layers - 1 or activate_output:
            h = act(h)
    return h


def mlp_vjp(
    params: torch.Tensor,
    sizes: Sequence[int],
    activation: str,
    x: torch.Tensor,
    cotangent: torch.Tensor,
    activate_output: bool = False,
) -> torch.Tensor:
    """Jᵀδ = ∂(Σ δ ⊙ y)/∂θ, J = ∂y/∂θ, by reverse-mode autodiff."""
    _, pullback = torch.func.vjp(lambda p: mlp(p, sizes, activation, x, activate_output), params)
    return pullback(cotangent)[0]


def mlp_jvp(
    params: torch.Tensor,
    sizes: Sequence[int],
    activation: str,
    x: torch.Tensor,
    tangent: torch.Tensor,
    activate_output: bool = False,
) -> torch.Tensor:
    """J v = d/dε y(θ + εv) at ε = 0, by forward-mode autodiff."""
    return torch.func.jvp(
        lambda p: mlp(p, sizes, activation, x, activate_output), (params,), (tangent,)
    )[1]


# -- the policy heads (fast: core/engine/fast/heads.py) -------------------------------------------


def distribution(z: tuple[torch.Tensor, ...]) -> Distribution:
    """π(·|s): Categorical(logits) for z = (logits,); for z = (μ, log σ) the diagonal Gaussian
    N(μ, diag σ²) as one event (log-probability and entropy summed over the action dimensions)."""
    if len(z) == 1:
        return Categorical(logits=z[0])
    mean, log_std = z
    return Independent(Normal(mean, log_std.exp().expand_as(mean)), 1)


def log_prob(z: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
    """log π(a|s) per state."""
    return distribution(z).log_prob(actions)


def entropy(z: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """H(π(·|s)) per state."""
    return distribution(z).entropy()


def kl(z_old: tuple[torch.Tensor, ...], z: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """KL(π_old(·|s) ‖ π(·|s)) per state."""
    return kl_divergence(distribution(z_old), distribution(z))


def fisher_metric(z_old: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """M = ∂²/∂z² mean_s KL(π_old(·|s) ‖ π_z(·|s)) at z = z_old, by autograd: a matrix over the
    concatenated, flattened tensors of z (each with its own value per state)."""
    shapes = [t.shape for t in z_old]
    sizes = [t.numel() for t in z_old]

    def mean_kl(flat: torch.Tensor) -> torch.Tensor:
        z = tuple(part.view(s) for part, s in zip(flat.split(sizes), shapes))
        return kl(z_old, z).mean()

    flat_old = torch.cat([t.detach().reshape(-1) for t in z_old])
    return torch.autograd.functional.hessian(mean_kl, flat_old)


def fisher_vector_product(
    kl_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    v: torch.Tensor,
    damping: float = 0.0,
) -> torch.Tensor:
    """(F + c·I)v with F = ∇²_θ D̄_KL(θ_old, θ) at θ = θ_old, by double back-propagation: the
    readable form of TRPO's Fisher product (``MLPFisher`` in ``core/engine/algos/trpo.py``).

    ``kl_fn()`` returns the closed-form mean KL(π_old ‖ π_θ) with π_old held constant (detached),
    at the current parameters (= θ_old); then Fv = ∇_θ((∇_θ D̄_KL) · v).
    """
    params = list(params)
    grads = torch.autograd.grad(kl_fn(), params, create_graph=True)
    grad = torch.cat([g.reshape(-1) for g in grads])
    hvp = torch.autograd.grad(grad @ v, params, allow_unused=True)
    flat = [(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hvp, params)]
    return torch.cat(flat) + damping * v


# -- the optimizers (fast: core/engine/fast/optim.py) ---------------------------------------------


def optimizer(
    name: str, params: list[torch.Tensor], lr: float, eps: float, **options: float
) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` or ``torch.optim.RMSprop`` (``name`` "adam" / "rmsprop")."""
    kind = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[name]
    return kind(params, lr=lr, eps=eps, **options)

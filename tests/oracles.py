"""Test-only oracles: independent autograd / ``torch.distributions`` computations that the engine's
fast paths are checked against (the kernels' own references are in
``core/engine/fast/reference.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution

from core.engine.fast import reference
from core.engine.nets import Actor


def distribution(actor: Actor, obs: torch.Tensor) -> Distribution:
    """π(·|s) of an actor module as a ``torch.distributions`` object (a Gaussian as one event:
    log-probability, entropy and KL summed over the action dimensions)."""
    out = actor.net(obs)
    return reference.distribution((out,) if actor.discrete else (out, actor.log_std))


def flat_grad(
    output: torch.Tensor,
    params: Sequence[torch.Tensor],
    retain_graph: bool = False,
    create_graph: bool = False,
) -> torch.Tensor:
    """∇_θ output, flattened into one vector over ``params``.

    With ``create_graph`` the forward graph is kept as well (a second derivative needs it).
    """
    grads = torch.autograd.grad(
        output,
        params,
        retain_graph=retain_graph or create_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]
    )

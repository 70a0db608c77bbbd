"""The TD loss of DQN and its fast gradient on a flat Q-network.

    L(θ) = (1/B) Σ_i w_i · ℓ(q(s_i, a_i; θ) − y_i)
    y_i  = r_i + γ (1 − terminated_i) · q(s′_i, a*_i; θ⁻)

with ℓ Huber (threshold 1) or squared error, and a* chosen by θ (Double DQN) or θ⁻.
:func:`td_target` builds y, :func:`td_loss` evaluates L with ``torch.nn.functional`` (the readable
form the tests differentiate by autograd), and :class:`FlatQ` computes ∇θL by hand: the Q-network
as a :class:`~core.engine.fast.mlp.FlatMLP` and the loss's backward by its vjp
(``tests/test_dqn.py`` checks it against autograd on :func:`td_loss`). The trainer is
``core/engine/algos/dqn.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from core.engine.fast.mlp import FlatMLP, bind, numpy_forward
from core.engine.nets import QNetwork


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    q_next_target: torch.Tensor,
    gamma: float,
    q_next_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = r + γ(1 − terminated) · q(s′, a*; θ⁻).

    ``q_next_target`` holds q(s′, ·; θ⁻) (actions last). With ``q_next_online`` = q(s′, ·; θ) the
    action is chosen by the online network (Double DQN: a* = argmax_a q(s′, a; θ)); without it
    a* = argmax_a q(s′, a; θ⁻), i.e. the plain max.
    """
    chooser = q_next_target if q_next_online is None else q_next_online
    a_star = chooser.argmax(-1, keepdim=True)
    bootstrap = q_next_target.gather(-1, a_star).squeeze(-1)
    return rewards + gamma * (1.0 - terminated) * bootstrap


class FlatQ:
    """A :class:`~core.engine.nets.QNetwork` on one flat parameter tensor, with the TD loss's
    backward.

    The plain network is one :class:`~core.engine.fast.mlp.FlatMLP`; the dueling one is a FlatMLP
    trunk whose output h is activated too, then the heads v = h W_vᵀ + b_v and A = h W_aᵀ + b_a,
    q = v + A − mean_a A. ``flat`` holds every weight and bias in the module's parameter order
    (the module's parameters are rebound as views of it, so the module, its ``state_dict`` and
    checkpoints keep working); ``grad`` is laid out alike. Backward through the dueling heads, for
    ∂L/∂q = D (shape [B, n_actions]): ∂L/∂v = Σ_a D_a, ∂L/∂A = D − mean_a D, each head's
    ∂W = (∂L/∂out)ᵀh and ∂b = Σ_i ∂L/∂out_i, and ∂L/∂h = (∂L/∂v) W_v + (∂L/∂A) W_a into the
    trunk's vjp.
    """

    def __init__(self, net: QNetwork) -> None:
        self.net = net
        self.dueling = net.dueling
        self.activation = net.activation
        if not self.dueling:
            self.mlp = FlatMLP(net.sizes, net.activation, transposed_input_grad=True)
            self.mlp.bind(net.parameters())
            self.flat, self.grad = self.mlp.flat, self.mlp.grad
            # numpy views of the same memory (``flat`` is only ever updated in place) for acting
            self.np_layers = self.mlp.numpy_layers(copy=False)
            return
        trunk, head_v, head_a = net.sizes[:-1], (net.sizes[-2], 1), net.sizes[-2:]
        parts = [FlatMLP.n_params(sizes) for sizes in (trunk, head_v, head_a)]
        self.flat = torch.zeros(sum(parts))
        self.grad = torch.zeros_like(self.flat)
        (pt, pv, pa), (gt, gv, ga) = self.flat.split(parts), self.grad.split(parts)
        self.mlp = FlatMLP(
            trunk, net.activation, pt, gt, activate_output=True, transposed_input_grad=True
        )
        self.value = FlatMLP(head_v, net.activation, pv, gv)
        self.advantage = FlatMLP(head_a, net.activation, pa, ga)
        bind(net.parameters(), self.mlp.views + self.value.views + self.advantage.views)
        # with the dueling head argmax_a q = argmax_a A(s, a): V(s) and mean_a A are the same for
        # every action, so acting needs the trunk and the advantage head only
        self.np_layers = self.mlp.numpy_layers(copy=False) + self.advantage.numpy_layers(copy=False)

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a q(s, a; θ) for a handful of states, in numpy (a fraction of torch's per-call
        cost at this size)."""
        return numpy_forward(self.np_layers, self.activation, obs).argmax(-1)

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        """q(x, ·; θ); if ``cache`` is given, the input of every layer is appended to it."""
        if x.dim() > 2:  # a stack of minibatches [..., obs_dim], in cache-sized chunks
            rows = x.reshape(-1, x.shape[-1]).split(1024)
            return torch.cat([self.forward(c) for c in rows]).unflatten(0, x.shape[:-1])
        h = self.mlp.forward(x, cache)
        if not self.dueling:
            return h
        a = self.advantage.forward(h)
        return (a - a.mean(-1, keepdim=True)).add_(self.value.forward(h))

    def backward(self, cache: list[torch.Tensor], dq: torch.Tensor) -> None:
        """Write ∂L/∂θ into ``grad`` given ∂L/∂q = ``dq`` and the ``cache`` of a forward pass."""
        if not self.dueling:
            self.mlp.vjp(cache, dq)
            return
        h = cache[-1]
        dv = dq.sum(-1, keepdim=True)
        da = dq - dq.mean(-1, keepdim=True)
        self.value.vjp([h], dv)
        self.advantage.vjp([h], da)
        dh = torch.addmm(dv.mm(self.value.layers[0].W), da, self.advantage.layers[0].W)
        self.mlp.vjp(cache, dh)

    def td_grad(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        onehot_over_b: torch.Tensor,
        y: torch.Tensor,
        weights: torch.Tensor | None,
        huber: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """∇θ of L = (1/B) Σ_i w_i ℓ(δ_i), δ_i = q(s_i, a_i; θ) − y_i, into ``grad``.

        ``actions`` has shape [B, 1]; ``onehot_over_b`` is onehot(a_i)/B, shape [B, n_actions].
        ℓ′(δ) = clamp(δ, −1, 1) for Huber (ℓ = ½δ² if |δ| < 1 else |δ| − ½) and 2δ for ℓ = δ², so
        ∂L/∂q = onehot(a_i) · w_i ℓ′(δ_i) / B. Returns (δ, q(s_i, a_i; θ)); :func:`td_loss` gives L.
        """
        inputs: list[torch.Tensor] = []
        q = self.forward(obs, inputs)
        return self.td_backward(inputs, q, actions, onehot_over_b, y, weights, huber)

    def td_backward(
        self,
        inputs: list[torch.Tensor],
        q: torch.Tensor,
        actions: torch.Tensor,
        onehot_over_b: torch.Tensor,
        y: torch.Tensor,
        weights: torch.Tensor | None,
        huber: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of :meth:`td_grad` after the forward pass that gave ``q`` and ``inputs``."""
        q_sa = q.gather(-1, actions).squeeze(-1)
        td = q_sa - y
        dl = td.clamp(-1.0, 1.0) if huber else 2.0 * td
        if weights is not None:
            dl = dl * weights
        self.backward(inputs, onehot_over_b * dl.unsqueeze(-1))
        return td, q_sa


def td_loss(td: torch.Tensor, weights: torch.Tensor | None, huber: bool) -> torch.Tensor:
    """(1/B) Σ_i w_i ℓ(δ_i) over the last axis (Huber with threshold 1, or δ²)."""
    zero = torch.zeros_like(td)
    if huber:
        per_sample = functional.smooth_l1_loss(td, zero, reduction="none")
    else:
        per_sample = functional.mse_loss(td, zero, reduction="none")
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean(-1)

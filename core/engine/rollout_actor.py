"""The actor as numpy arrays, for sampling actions during one rollout.

A rollout evaluates the actor on a handful of observations once per env step. At that size the
fixed cost of each torch operator call (several µs) is most of the step, while numpy's is about
one µs. The weights do not change within a rollout, so :class:`RolloutActor` copies them once,
draws all the rollout's noise at once, and per step does only the forward pass and one or two
array operations:

    h_0 = s,  h_l = act(W_l h_{l−1} + b_l),  out = W_L h_{L−1} + b_L

    Categorical (Gumbel-max): a = argmax_k (out_k + g_k) with g_k = −log(−log u_k), u_k ~ U(0, 1)
                 i.i.d., is an exact draw from softmax(out) (no exp of the logits, so no overflow).
    Gaussian:    a = μ + σ ⊙ ξ with ξ ~ N(0, I) and μ = out.

log π(a|s) is not needed to act; the rollout computes it afterwards for the whole batch with the
torch actor (``log_prob_entropy``), the same function the update differentiates. The forward pass
is :func:`core.engine.fast.mlp.numpy_forward` on a snapshot of the actor's layers.
"""

from __future__ import annotations

import numpy as np

from core.engine.fast.mlp import numpy_forward, numpy_layers
from core.engine.nets import Actor


class RolloutActor:
    """A snapshot of ``actor`` (an MLP actor from :mod:`core.engine.nets`) that acts in numpy."""

    def __init__(self, actor: Actor) -> None:
        self.layers = numpy_layers(actor.net.parameters(), copy=True)
        self.activation = actor.activation
        self.discrete = actor.discrete
        self.std = None if actor.discrete else np.exp(actor.log_std.detach().numpy())
        self.out_dim = actor.sizes[-1]

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network's output (logits or μ) for a batch of observations."""
        return numpy_forward(self.layers, self.activation, obs)

    def draw_noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Noise for ``shape`` = (steps, envs) acts: Gumbel g (categorical) or ξ (Gaussian)."""
        full = (*shape, self.out_dim)
        if self.discrete:
            return (-np.log(-np.log(rng.random(full)))).astype(np.float32)  # u = 0: p = 2⁻⁵³
        return rng.standard_normal(full, dtype=np.float32)

    def act(self, obs: np.ndarray, noise: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Sampled actions for ``obs`` given one step's ``noise`` (module docstring), also
        written into ``out`` when given (a rollout buffer's row; a float row keeps discrete
        actions as floats, the returned array keeps them as integers)."""
        z = self.forward(obs)
        if not self.discrete:
            return np.add(z, self.std * noise, out=out)
        actions = (z + noise).argmax(-1)
        if out is not None:
            out[...] = actions
        return actions

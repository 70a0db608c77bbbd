"""Update snapshots: what the Update Inspector (``core/labs/inspector.py``) needs to redraw one
policy step of TRPO, NPG or PPO on the real network.

A snapshot of update k holds, in float32:

- θ_old, the policy's flat parameters before the step, laid out as ``actor.parameters()``:
  log σ first for a Gaussian actor, then the MLP's W_1, b_1, W_2, … (:func:`policy_vector`);
- the batch the policy step used: observations s_i, actions a_i, log π_old(a_i|s_i) (the ratio's
  denominator as the trainer used it) and the advantages Â_i as the objective saw them
  (normalized over the batch when ``normalize_advantage``; PPO normalizes per minibatch, so its
  snapshot holds the whole-batch normalization, the objective of one full-batch step);
- g = ∇_θ L(θ_old) with L(θ) = (1/N) Σ_i r_i(θ) Â_i, r_i = π_θ(a_i|s_i) / π_old(a_i|s_i): TRPO's
  own g; a PPO snapshot leaves it out (its step never forms g, and the ~1 ms its vjp costs is
  most of the 3 % a CartPole update can spare), and :func:`gradient` computes it from θ_old and
  the batch when the inspector reads the snapshot;
- the step: TRPO/NPG the full step s = √(2δ / xᵀ(F + cI)x) · x (x ≈ (F + cI)⁻¹g by CG) and its
  scale β (so x = s / β); PPO d = θ_new − θ_old after the epochs;
- the line-search trials (αʲ, exact KL, ΔL, accepted), the accepted α (0 when every trial was
  rejected; 1 for NPG and PPO), δ, the damping c, PPO's clip ε for this update;
- the CG iterates x_k as coordinates in the inspector's plane (:func:`plane_basis`), each scaled
  like the final step, β_k x_k with β_k = √(2δ / gᵀx_k) (CG from x₀ = 0 keeps r_k ⟂ x_k, so
  x_kᵀ(F + cI)x_k = gᵀx_k in exact arithmetic), and the distance of β_k x_k from the plane: the
  iterates themselves (15 × |θ| floats) would make a snapshot five times larger.

Capture is off by default (``OnPolicyTrainer.capture_snapshots``): the run loop turns it on for
the runs the runtime trains and writes each snapshot beside the run's checkpoints
(``core/runtime/snapshots.py``). Capturing copies tensors the step computed anyway and adds no
random draw, so it changes no training number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from core.engine.fast import heads
from core.engine.fast.mlp import FlatMLP

FORMAT_VERSION = 1


@dataclass
class UpdateSnapshot:
    """One policy step (module docstring); tensors float32 except ``actions`` (int64 or float32)."""

    algo: str
    discrete: bool
    sizes: tuple[int, ...]
    activation: str
    theta_old: torch.Tensor  # [P]
    obs: torch.Tensor  # [N, obs_dim]
    actions: torch.Tensor  # [N] or [N, act_dim]
    logp_old: torch.Tensor  # [N]
    advantages: torch.Tensor  # [N]
    grad: torch.Tensor | None  # g, [P] (None in a PPO snapshot: see :func:`gradient`)
    step: torch.Tensor  # TRPO/NPG s, PPO d, [P]
    accepted_frac: float  # α of θ_new = θ_old + α·step (0: kept θ_old)
    delta: float  # TRPO/NPG δ; PPO the KL bound if any (target_kl or d_targ), else NaN
    damping: float = 0.0
    beta: float = math.nan  # x = step / β (TRPO/NPG)
    clip_eps: float = math.nan  # PPO-clip's ε of this update
    trials: torch.Tensor | None = None  # [J, 4]: αʲ, exact KL, ΔL, accepted (1/0)
    cg_coords: torch.Tensor | None = None  # [K, 3]: plane coordinates (a, b), off-plane distance
    cg_residuals: torch.Tensor | None = None  # [K + 1] rᵀr

    @property
    def n_log_std(self) -> int:
        """Entries of θ before the MLP's (log σ of a Gaussian actor)."""
        return 0 if self.discrete else self.sizes[-1]

    @property
    def theta_new(self) -> torch.Tensor:
        return self.theta_old + self.accepted_frac * self.step

    def arrays(self) -> dict[str, object]:
        """The fields as a flat dict (tensors, numbers, strings), for writing."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def policy_vector(log_std: torch.Tensor | None, mlp_flat: torch.Tensor) -> torch.Tensor:
    """θ in the snapshot layout: (log σ, MLP flat) for a Gaussian, the MLP flat for a categorical
    actor (the order of ``actor.parameters()``)."""
    parts = [mlp_flat.detach().reshape(-1)]
    if log_std is not None:
        parts.insert(0, log_std.detach().reshape(-1))
    return torch.cat(parts).to(torch.float32)


def plane_basis(g: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """U = [u₁, u₂] ([P, 2]), orthonormal, spanning g and the step (Gram–Schmidt):

        u₁ = g / ‖g‖,   u₂ = (d − (u₁ᵀd) u₁) / ‖d − (u₁ᵀd) u₁‖.

    Returns (U, degenerate): when the step is (numerically) parallel to g, u₂ is a fixed
    pseudo-random direction orthogonal to u₁ and ``degenerate`` is True.
    """
    g64, d64 = g.double(), step.double()
    u1 = g64 / g64.norm()
    r = d64 - (u1 @ d64) * u1
    degenerate = not float(r.norm()) > 1e-6 * max(float(d64.norm()), 1e-30)
    if degenerate:
        gen = torch.Generator().manual_seed(0)
        r = torch.randn(len(g64), generator=gen, dtype=torch.float64)
        r = r - (u1 @ r) * u1
    return torch.stack([u1, r / r.norm()], 1), degenerate


def cg_coordinates(
    U: torch.Tensor, g: torch.Tensor, iterates: list[torch.Tensor], delta: float
) -> torch.Tensor:
    """[K, 3]: for each CG iterate x_k, β_k x_k (β_k = √(2δ / gᵀx_k), module docstring) as plane
    coordinates and its distance from the plane (NaN where gᵀx_k ≤ 0)."""
    if not iterates:
        return torch.zeros(0, 3)
    X, U32 = torch.stack(iterates).float(), U.float()  # [K, P], [P, 2] (float32: ~0.2 ms)
    gx = X @ g.float()
    X.mul_(torch.sqrt(2 * delta / gx.clamp_min(1e-30)).unsqueeze(1))
    coords = X @ U32
    off = torch.linalg.vector_norm(X.sub_(coords @ U32.T), dim=1)
    out = torch.cat([coords, off.unsqueeze(1)], 1)
    out[~(gx > 0)] = math.nan
    return out


def trials_tensor(trials: list) -> torch.Tensor:
    """The line-search trials (``core.engine.trust_region.Trial``) as [J, 4] rows."""
    rows = [[t.frac, t.kl, t.surrogate_change, float(t.accepted)] for t in trials]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def surrogate_gradient(
    sizes: tuple[int, ...],
    activation: str,
    discrete: bool,
    theta: torch.Tensor,
    obs: torch.Tensor,
    actions: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
) -> torch.Tensor:
    """g = ∇_θ (1/N) Σ_i r_i Â_i at θ (snapshot layout), by the MLP's vjp on a private copy.

    ∂L/∂log π_i = r_i Â_i / N, then the head's ∂log π/∂z (``core.engine.fast.heads``) and Jᵀ.
    Used for PPO, whose step does not compute g; it touches no state of the trainer.
    """
    n_s = 0 if discrete else sizes[-1]
    mlp = FlatMLP(sizes, activation, theta[n_s:].clone().float())
    cache: list[torch.Tensor] = []
    with torch.no_grad():
        out = mlp.forward(obs, cache)
        n = len(obs)
        if discrete:
            lsm = torch.log_softmax(out, -1)
            logp = heads.categorical_log_prob(lsm, actions)
            d_logp = torch.exp(logp - logp_old) * advantages / n
            d_out = heads.categorical_log_prob_vjp(lsm.exp(), actions, d_logp)
            d_s = None
        else:
            s = theta[:n_s].float()
            sigma = s.exp()
            u = (actions - out) / sigma
            logp = heads.gaussian_log_prob(u, s)
            d_logp = torch.exp(logp - logp_old) * advantages / n
            d_out, d_s = heads.gaussian_log_prob_vjp(u, sigma, d_logp)
        mlp.vjp(cache, d_out)
    return policy_vector(d_s, mlp.grad)


def gradient(snap: UpdateSnapshot) -> torch.Tensor:
    """g of a snapshot: the stored one, else :func:`surrogate_gradient` at θ_old on its batch."""
    if snap.grad is not None:
        return snap.grad
    batch = (snap.obs, snap.actions, snap.logp_old, snap.advantages)
    return surrogate_gradient(snap.sizes, snap.activation, snap.discrete, snap.theta_old, *batch)

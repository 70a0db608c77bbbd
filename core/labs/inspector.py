"""The Update Inspector's math: one real policy step of TRPO, NPG or PPO, drawn in a plane.

From an update snapshot (``core/engine/snapshot.py``: θ_old, the batch, g, the step d (TRPO/NPG
the full step s, PPO θ_new − θ_old), the trials, δ) everything is recomputed exactly on the stored
batch of N states:

- The plane through θ_old spanned by g and d, orthonormalized (``plane_basis``): u₁ = g/‖g‖,
  u₂ ∝ d − (u₁ᵀd)u₁, and θ(a, b) = θ_old + a·u₁ + b·u₂ (a, b in parameter units).
- On an n × n grid of (a, b): the exact mean KL
  D̄(θ) = (1/N) Σ_i KL(π_old(·|s_i) ‖ π_θ(·|s_i)) in closed form, and the surrogate change
  ΔL(θ) = (1/N) Σ_i (r_i − 1) Â_i with r_i = π_θ(a_i|s_i) / π_old(a_i|s_i); for PPO also the
  clipped objective's change ΔL^CLIP(θ) = L^CLIP(θ) − L^CLIP(θ_old),
  L^CLIP(θ) = (1/N) Σ_i min(r_i Â_i, clip(r_i, 1 − ε, 1 + ε) Â_i). Every grid point is one
  parameter vector; the MLP runs on all of them at once (:func:`batched_forward`: one batched
  matrix product per layer over chunks of grid points).
- The Fisher matrix restricted to the plane, H = UᵀFU (2 × 2), from two products F·u_j of the
  engine's ``MLPFisher`` (F = JᵀMJ, undamped, float64), and the quadratic ellipse
  {(a, b) : ½ [a b] H [a b]ᵀ = δ}. The level δ is the run's KL bound (TRPO/NPG δ, PPO-KL d_targ,
  PPO's early-stop KL); a PPO run without one is drawn at the KL its epochs reached.
- The window: each axis spans, padded, the ellipse, the exact ball's extent along rays through
  the ellipse (:func:`ball_points`), the arrows, the CG iterates and the trials; the grid then
  resolves the ball however uneven the metric.
- g and the natural direction x ≈ F⁻¹g, each scaled to the ellipse (√(2δ / vᵀFv)·v) and
  projected; the share ‖Uᵀx‖/‖x‖ of x in the plane. TRPO/NPG: x = s/β, the trainer's own damped
  CG solution (so it lies in the plane); PPO: x by the engine's conjugate gradient on F + cI
  (c = 0.1, 10 iterations).
- The CG iterates (stored as plane coordinates and off-plane distances), the line-search trials,
  θ_new = θ_old + α·d.
- The slice along the step, θ(t) = θ_old + t·d: ΔL(t) with its linear model t·gᵀd, the exact KL
  D̄(t) with its quadratic model ½t²dᵀFd, and δ.
- The numbers: δ, ‖g‖, gᵀF⁻¹g, α, the exact and quadratic KL at θ_new, the angle between g and
  F⁻¹g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.utils import vector_to_parameters

from core.engine.algos.trpo import MLPFisher
from core.engine.fast import heads
from core.engine.fast.mlp import tanh_
from core.engine.nets import CategoricalActor, GaussianActor
from core.engine.snapshot import UpdateSnapshot, gradient, plane_basis
from core.engine.trust_region import conjugate_gradient
from core.metrics import KL_BOUNDS

SUPPORTED = ("trpo", "npg", "ppo", "ppo-kl")
PPO_DAMPING, PPO_CG_ITERS = 0.1, 10  # the natural direction x = (F + cI)⁻¹g of a PPO snapshot
CHUNK_ELEMENTS = 1 << 22  # grid points per batched forward: ≤ this many activations per layer


def unavailable_reason(algo: str, n_snapshots: int) -> str | None:
    """Why a run has no inspector view (None if it has one)."""
    if algo not in SUPPORTED:
        return (
            f"The Update Inspector draws trust-region steps of TRPO, NPG and PPO; this run is "
            f"{algo.upper()}, whose update is not a step of one policy network from θ_old."
        )
    if n_snapshots == 0:
        return (
            "This run has no update snapshots: it was trained before they were kept, outside the "
            "app's run manager, or deleted them. Train a new run to inspect its updates."
        )
    return None


# -- the policy on many parameter vectors at once ---------------------------------------------


def batched_forward(
    sizes: tuple[int, ...], activation: str, params: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """y[g] = MLP(x; params[g]) for G parameter vectors ([G, P] in ``FlatMLP``'s layout:
    W_1, b_1, W_2, …) on the same rows x ([N, in]); returns the outputs transposed, [G, out, N]
    (the heads' sums over a handful of outputs then run along contiguous rows).

    Hidden layers h_l = act(h_{l−1} W_lᵀ + b_l) as [G, N, width] batched products (tanh in place
    by ``core/engine/fast/mlp.py``'s ``tanh_``); the last layer y = W_L hᵀ + b_L.
    """
    G, h, offset = params.shape[0], x, 0
    layers = list(zip(sizes[:-1], sizes[1:]))
    for layer, (i, o) in enumerate(layers):
        W = params[:, offset : offset + o * i].view(G, o, i)
        b = params[:, offset + o * i : offset + o * i + o]
        offset += o * i + o
        if layer == len(layers) - 1:
            hT = h.mT if h.dim() == 3 else h.T.expand(G, -1, -1)
            return b.unsqueeze(2).baddbmm(W, hT)
        h = (
            torch.matmul(h, W.mT).add_(b.unsqueeze(1))
            if h.dim() == 2
            else b.unsqueeze(1).baddbmm(h, W.mT)
        )
        if activation == "tanh":
            tanh_(h)
        else:
            h.relu_()
    raise ValueError(f"an MLP needs at least two sizes, not {sizes}")


@dataclass
class _Head:
    """π_θ on the batch for G parameter vectors, outputs transposed ([G, out, N]):
    log π(a_i|s_i) [G, N] and KL(π_old(·|s_i) ‖ π_θ(·|s_i)) [G, N] in closed form
    (``core/engine/fast/heads.py``'s formulas):

        categorical  log π(a) = z_a − log Σ_k e^{z_k},  KL = Σ_k p_old,k (log p_old,k − log p_k)
        Gaussian     log π(a) = Σ_d (−½ u_d² − s_d − ½ log 2π), u = (a − μ)/σ,
                     KL = Σ_d [s − s_old + (σ_old² + (μ − μ_old)²) / (2σ²) − ½]
    """

    logp: torch.Tensor
    kl: torch.Tensor


def _head(
    snap: UpdateSnapshot, thetas: torch.Tensor, obs: torch.Tensor, old: tuple | None
) -> _Head:
    """:class:`_Head` for ``thetas`` [G, P]; ``old`` is :func:`_old` (None: KL left as zeros)."""
    k = snap.n_log_std
    out = batched_forward(snap.sizes, snap.activation, thetas[:, k:], obs)  # [G, out, N]
    actions = snap.actions
    if snap.discrete:
        logp_all = out - _logsumexp(out)
        index = actions.long().view(1, 1, -1).expand(len(out), 1, -1)
        logp = logp_all.gather(1, index).squeeze(1)
        kl = torch.zeros_like(logp) if old is None else (old[1] * (old[0] - logp_all)).sum(1)
        return _Head(logp, kl)
    log_std = thetas[:, :k].unsqueeze(2)  # [G, A, 1]
    u = (actions.T.to(out.dtype).unsqueeze(0) - out) * torch.exp(-log_std)
    logp = (-0.5 * u.square() - log_std - heads.HALF_LOG_2PI).sum(1)
    if old is None:
        return _Head(logp, torch.zeros_like(logp))
    mean_old, log_std_old = old
    var_ratio = torch.exp(2 * (log_std_old - log_std))
    per_dim = (
        log_std
        - log_std_old
        + 0.5 * (var_ratio + (out - mean_old).square() * torch.exp(-2 * log_std))
    )
    return _Head(logp, (per_dim - 0.5).sum(1))


def _logsumexp(z: torch.Tensor) -> torch.Tensor:
    """log Σ_k e^{z_k} over dim 1 of [G, K, N], kept as [G, 1, N]: m + log Σ_k e^{z_k − m} with
    m = max_k z_k, written as K elementwise steps (a reduction over a dimension of 2–4 entries
    costs more than the arithmetic)."""
    rows = z.unbind(1)
    m = rows[0]
    for row in rows[1:]:
        m = torch.maximum(m, row)
    total = torch.zeros_like(m)
    for row in rows:
        total += torch.exp(row - m)
    return (m + total.log_()).unsqueeze(1)


def _old(snap: UpdateSnapshot, obs: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """π_old's parameters, transposed: (log p_old [K, N], p_old) or (μ_old [A, N], log σ_old)."""
    theta = snap.theta_old.to(dtype)[None]
    out = batched_forward(snap.sizes, snap.activation, theta[:, snap.n_log_std :], obs)[0]
    if snap.discrete:
        logp_all = out - _logsumexp(out[None])[0]
        return logp_all, logp_all.exp()
    return out, theta[0, : snap.n_log_std].unsqueeze(1)


@dataclass
class Values:
    """Per parameter vector: exact mean KL, ΔL, ΔL^CLIP (PPO, else None), each [G]."""

    kl: torch.Tensor
    surrogate: torch.Tensor
    clipped: torch.Tensor | None


def evaluate(
    snap: UpdateSnapshot, thetas: torch.Tensor, dtype: torch.dtype = torch.float32
) -> Values:
    """D̄(θ), ΔL(θ) and (PPO) ΔL^CLIP(θ) of the module docstring for each row of ``thetas``."""
    obs, adv, logp_old = (t.to(dtype) for t in (snap.obs, snap.advantages, snap.logp_old))
    thetas = thetas.to(dtype)
    eps = snap.clip_eps
    rows = max(1, CHUNK_ELEMENTS // (len(obs) * max(snap.sizes)))
    kl, surrogate, clipped = [], [], []
    with torch.no_grad():
        old = _old(snap, obs, dtype)
        clip_at_old = None
        if not math.isnan(eps):
            r_old = torch.exp(
                _head(snap, snap.theta_old.to(dtype)[None], obs, None).logp - logp_old
            )
            clip_at_old = _clip_objective(r_old, adv, eps).mean()
        for chunk in thetas.split(rows):
            head = _head(snap, chunk, obs, old)
            kl.append(head.kl.mean(-1))
            r = torch.exp(head.logp - logp_old)
            surrogate.append(((r - 1.0) * adv).mean(-1))
            if clip_at_old is not None:
                clipped.append(_clip_objective(r, adv, eps).mean(-1) - clip_at_old)
    return Values(torch.cat(kl), torch.cat(surrogate), torch.cat(clipped) if clipped else None)


def _clip_objective(r: torch.Tensor, adv: torch.Tensor, eps: float) -> torch.Tensor:
    """min(r·Â, clip(r, 1 − ε, 1 + ε)·Â) per sample."""
    return torch.minimum(r * adv, r.clamp(1.0 - eps, 1.0 + eps) * adv)


def clip_objective(snap: UpdateSnapshot, theta: torch.Tensor) -> float:
    """L^CLIP(θ) = (1/N) Σ_i min(r_i Â_i, clip(r_i, 1 ± ε) Â_i) at one θ (float64)."""
    with torch.no_grad():
        logp = _head(snap, theta.double()[None], snap.obs.double(), None).logp[0]
        r = torch.exp(logp - snap.logp_old.double())
        return float(_clip_objective(r, snap.advantages.double(), snap.clip_eps).mean())


# -- the Fisher matrix ---------------------------------------------------------------------------


def fisher_product(snap: UpdateSnapshot, damping: float = 0.0) -> MLPFisher:
    """v ↦ (F + cI)v at θ_old on the stored batch, float64 (the engine's ``MLPFisher``)."""
    obs_dim, out = snap.sizes[0], snap.sizes[-1]
    hidden = tuple(snap.sizes[1:-1])
    with torch.random.fork_rng(devices=[]):  # the module's initialisation draws numbers
        if snap.discrete:
            actor = CategoricalActor(obs_dim, out, hidden, snap.activation)
        else:
            actor = GaussianActor(obs_dim, out, hidden, snap.activation)
    actor = actor.double()
    vector_to_parameters(snap.theta_old.double(), actor.parameters())
    return MLPFisher(actor, snap.obs.double(), damping)


def ellipse(H: np.ndarray, level: float, n: int = 200) -> np.ndarray:
    """Points d of the plane with ½dᵀHd = level: d = √(2·level) Σ_j λ_j^{-½} v_j (cos t, sin t)_j,
    H = VΛVᵀ ([n, 2]; empty when H is not positive-definite or the level not positive)."""
    lam, V = np.linalg.eigh(H)
    if not (lam.min() > 0 and level > 0):
        return np.zeros((0, 2))
    t = np.linspace(0, 2 * math.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)], -1)
    return math.sqrt(2 * level) * (circle / np.sqrt(lam)) @ V.T


# -- the view ------------------------------------------------------------------------------------


@dataclass
class InspectorView:
    """Everything the inspector's figures and numbers show for one update (numpy, picklable)."""

    algo: str
    update: int
    level: float  # the KL level drawn: δ (TRPO/NPG, PPO with a bound), else the KL reached
    level_name: str
    a: np.ndarray  # grid axis along u₁ (along g)
    b: np.ndarray  # grid axis along u₂ (the step's part orthogonal to g)
    kl: np.ndarray  # [len(b), len(a)]: rows follow b, columns a
    surrogate: np.ndarray
    clipped: np.ndarray | None
    H: np.ndarray  # UᵀFU
    ellipse: np.ndarray  # [M, 2]
    g_arrow: np.ndarray  # g scaled to the ellipse, plane coordinates
    natural_arrow: np.ndarray  # F⁻¹g scaled to the ellipse, projected
    step: np.ndarray  # d (TRPO/NPG: the full step s)
    theta_new: np.ndarray
    cg: np.ndarray  # [K, 3]: a, b, off-plane distance
    trials: np.ndarray  # [J, 6]: a, b, αʲ, exact KL, ΔL, accepted
    slice: dict[str, np.ndarray]
    numbers: dict[str, float]
    degenerate: bool = False
    notes: list[str] = field(default_factory=list)


def _scaled(v: torch.Tensor, Fv: torch.Tensor, level: float) -> torch.Tensor:
    """√(2·level / vᵀFv)·v (v itself when vᵀFv ≤ 0)."""
    vFv = float(v @ Fv)
    return v * math.sqrt(2 * level / vFv) if vFv > 0 and level > 0 else v


def _natural(snap: UpdateSnapshot, g: torch.Tensor) -> torch.Tensor:
    """x ≈ F⁻¹g: TRPO/NPG the trainer's x = s/β; PPO CG on F + cI (module docstring)."""
    if snap.algo in ("trpo", "npg") and snap.beta > 0:
        return snap.step.double() / snap.beta
    x, _ = conjugate_gradient(fisher_product(snap, PPO_DAMPING), g, PPO_CG_ITERS)
    return x


def ball_points(
    snap: UpdateSnapshot,
    U: torch.Tensor,
    ring: np.ndarray,
    level: float,
    rays: int = 16,
    scales: tuple[float, ...] = (1.0, 1.25, 1.6, 2.0, 3.0),
) -> np.ndarray:
    """Where the exact KL ball ends along ``rays`` directions of the ellipse: on each ray
    through an ellipse point e, the first of c·e (c in ``scales``) with D̄ > level, else 3·e
    (the exact ball need not be bounded); [rays, 2] plane coordinates, for the plot window."""
    if not len(ring):
        return np.zeros((0, 2))
    ends = ring[:: max(1, len(ring) // rays)][:rays]
    c = np.asarray(scales)
    coords = torch.from_numpy((ends[:, None, :] * c[None, :, None]).reshape(-1, 2))
    kl = evaluate(snap, snap.theta_old.double() + coords @ U.T).kl.double().numpy()
    outside = kl.reshape(len(ends), len(c)) > level
    first = np.where(outside.any(1), outside.argmax(1), len(c) - 1)
    return ends * c[first][:, None]


def inspect(snap: UpdateSnapshot, update: int, n: int = 41, pad: float = 1.35) -> InspectorView:
    """The whole view of one update (module docstring) on an n × n grid."""
    g, d = gradient(snap).double(), snap.step.double()
    U, degenerate = plane_basis(g, d)
    F = fisher_product(snap)
    FU = torch.stack([F(U[:, 0].contiguous()), F(U[:, 1].contiguous())], 1)
    H = (U.T @ FU).numpy()
    H = 0.5 * (H + H.T)
    alpha = snap.accepted_frac
    theta_new = snap.theta_new  # in float32, as the trainer formed it
    at_new = evaluate(snap, theta_new[None], torch.float64)
    kl_new = float(at_new.kl[0])
    Fd = F(d)
    half_dFd = 0.5 * float(d @ Fd)
    ppo = snap.algo in ("ppo", "ppo-kl")
    level, level_name = snap.delta, KL_BOUNDS[snap.algo].label  # δ, d_targ, early-stop KL
    if math.isnan(level):
        level, level_name = kl_new, "KL reached"
    x = _natural(snap, g)
    Fx, Fg = F(x.contiguous()), F(g)
    proj = lambda v: (U.T @ v).numpy()  # noqa: E731
    g_arrow, natural_arrow = proj(_scaled(g, Fg, level)), proj(_scaled(x, Fx, level))
    step, new = proj(d), proj(d) * alpha
    ring = ellipse(H, level)
    trials = np.zeros((0, 6))
    if snap.trials is not None and len(snap.trials):
        t = snap.trials.double().numpy()
        trials = np.column_stack([t[:, :1] * step[None, :], t])
    cg = snap.cg_coords.double().numpy() if snap.cg_coords is not None else np.zeros((0, 3))
    points = [ring, g_arrow[None], natural_arrow[None], step[None], trials[:, :2], cg[:, :2]]
    points.append(ball_points(snap, U, ring, level))
    half = pad * np.maximum(np.nanmax(np.abs(np.concatenate(points)), 0), 1e-8)
    a_axis, b_axis = np.linspace(-half[0], half[0], n), np.linspace(-half[1], half[1], n)
    A, B = np.meshgrid(a_axis, b_axis)  # rows follow b, columns a
    coords = torch.from_numpy(np.stack([A.ravel(), B.ravel()], -1))
    thetas = snap.theta_old.double() + coords @ U.T
    grid = evaluate(snap, thetas, torch.float32)
    cut = slice_along(snap, d, g, half_dFd, t_max=1.5 if ppo else 1.25)
    gx, gx_norms, x_norm = float(g @ x), float(g.norm() * x.norm()), float(x.norm())
    cos = max(-1.0, min(1.0, gx / gx_norms)) if gx_norms > 0 else math.nan
    numbers = {
        "delta": snap.delta,
        "grad_norm": float(g.norm()),
        "g_natural": gx,
        "alpha": alpha,
        "kl_exact": kl_new,
        "kl_quadratic": alpha**2 * half_dFd,
        "angle_deg": math.degrees(math.acos(cos)) if cos == cos else math.nan,
        "natural_in_plane": float((U.T @ x).norm()) / x_norm if x_norm > 0 else math.nan,
        "surrogate_new": float(at_new.surrogate[0]),
        "predicted": alpha * float(g @ d),
        "step_norm": alpha * float(d.norm()),
        "clip_eps": snap.clip_eps,
    }
    if at_new.clipped is not None:
        numbers["clipped_new"] = float(at_new.clipped[0])
    shape = (n, n)
    return InspectorView(
        algo=snap.algo,
        update=update,
        level=level,
        level_name=level_name,
        a=a_axis,
        b=b_axis,
        kl=grid.kl.double().numpy().reshape(shape),
        surrogate=grid.surrogate.double().numpy().reshape(shape),
        clipped=None if grid.clipped is None else grid.clipped.double().numpy().reshape(shape),
        H=H,
        ellipse=ring,
        g_arrow=g_arrow,
        natural_arrow=natural_arrow,
        step=step,
        theta_new=new,
        cg=cg,
        trials=trials,
        slice=cut,
        numbers=numbers,
        degenerate=degenerate,
    )


def slice_along(
    snap: UpdateSnapshot,
    d: torch.Tensor,
    g: torch.Tensor,
    half_dFd: float,
    t_max: float = 1.25,
    n: int = 81,
) -> dict[str, np.ndarray]:
    """Along θ(t) = θ_old + t·d: ΔL(t), the linear model t·gᵀd, the exact KL D̄(t), the
    quadratic model ½t²dᵀFd (and ΔL^CLIP(t) for PPO), float64."""
    t = torch.linspace(0.0, t_max, n, dtype=torch.float64)
    values = evaluate(snap, snap.theta_old.double() + t[:, None] * d, torch.float64)
    out = {
        "t": t.numpy(),
        "surrogate": values.surrogate.numpy(),
        "linear": (t * float(g @ d)).numpy(),
        "kl": values.kl.numpy(),
        "kl_quadratic": (t**2 * half_dFd).numpy(),
    }
    if values.clipped is not None:
        out["clipped"] = values.clipped.numpy()
    return out

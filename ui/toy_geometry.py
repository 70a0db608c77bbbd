"""Plot geometry of the Trust Region Lab: what the figures in ``ui.toy_figures`` draw.

The values of a toy on a contour grid and along the step, the quadratic KL ellipse
½dᵀFd = δ, the exact KL ball's extent and the plot windows that hold them. Pure tensors in and
out (no Streamlit, no Plotly); the problems and the step are in ``core.labs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.labs.toy_problems import DTYPE, Bounds, Tensor, ToyProblem, as_theta
from core.labs.toy_step import LabStep, Path


def slice_along(
    problem: ToyProblem, theta_old: Tensor, step: Tensor, fracs: Tensor
) -> dict[str, Tensor]:
    """Along θ(t) = θ_old + t·s: ΔL(t), its linear model t·gᵀs, ΔJ(t), exact D̄_KL(t) and the
    quadratic model ½t²sᵀFs (undamped F)."""
    theta_old = as_theta(theta_old)
    thetas = theta_old + fracs[:, None] * step
    g, F = problem.grad(theta_old), problem.fisher(theta_old)
    return {
        "t": fracs,
        "surrogate": problem.surrogate(thetas, theta_old),
        "linear": fracs * float(g @ step),
        "objective": problem.objective(thetas) - problem.objective(theta_old),
        "kl": problem.kl(theta_old, thetas),
        "kl_quadratic": 0.5 * fracs**2 * float(step @ F @ step),
    }


@dataclass
class Grid:
    """Values on a regular grid over the plot bounds (rows follow y = θ₂, columns x = θ₁)."""

    x: Tensor
    y: Tensor
    surrogate: Tensor
    objective: Tensor
    kl: Tensor


def grid_values(problem: ToyProblem, theta_old: Tensor, bounds: Bounds, n: int = 121) -> Grid:
    """ΔL(θ), J(θ) and D̄_KL(θ_old, θ) on an n×n grid."""
    theta_old = as_theta(theta_old)
    x = torch.linspace(*bounds[0], n, dtype=DTYPE)
    y = torch.linspace(*bounds[1], n, dtype=DTYPE)
    Y, X = torch.meshgrid(y, x, indexing="ij")
    thetas = torch.stack([X, Y], dim=-1)
    return Grid(
        x=x,
        y=y,
        surrogate=problem.surrogate(thetas, theta_old),
        objective=problem.objective(thetas),
        kl=problem.kl(theta_old, thetas),
    )


def quadratic_ellipse(F: Tensor, delta: float, n: int = 200) -> Tensor:
    """Displacements d with ½dᵀFd = δ: d = √(2δ) Σ λᵢ^{-½} uᵢ (cos t, sin t)ᵢ, F = UΛUᵀ."""
    lam, U = torch.linalg.eigh(F)
    t = torch.linspace(0, 2 * math.pi, n, dtype=DTYPE)
    circle = torch.stack([torch.cos(t), torch.sin(t)], dim=-1)
    return math.sqrt(2 * delta) * (circle / torch.sqrt(lam)) @ U.T


def kl_ball_radii(
    problem: ToyProblem, theta_old: Tensor, delta: float, r_max: float, n_rays: int = 72
) -> Tensor:
    """Along n_rays directions u from θ_old, the distance to the first point with
    D̄_KL(θ_old, θ_old + r·u) > δ, searched on r ∈ [0, r_max] (r_max if none)."""
    angles = torch.linspace(0, 2 * math.pi, n_rays + 1, dtype=DTYPE)[:-1]
    rays = torch.stack([torch.cos(angles), torch.sin(angles)], -1)
    r = torch.linspace(0, r_max, 241, dtype=DTYPE)
    kl = problem.kl(theta_old, theta_old + r[:, None, None] * rays)  # (r, ray)
    outside = kl > delta
    first = torch.where(outside.any(0), outside.float().argmax(0), len(r) - 1)
    return r[first]


def step_bounds(problem: ToyProblem, step: LabStep, delta: float, pad: float = 1.15) -> Bounds:
    """A square window around θ_old holding the ellipse ½dᵀFd = δ, both arrows, every trial and
    the exact KL ball (up to 3 × the ellipse's size: the exact ball need not be bounded), padded."""
    points = torch.cat(
        [
            quadratic_ellipse(step.fisher, delta, n=64),
            torch.stack([step.vanilla_step, step.natural_step, step.step]),
        ]
    )
    model = float(points.abs().max())
    ball = float(kl_ball_radii(problem, step.theta_old, delta, 3 * model).max())
    half = pad * max(model, ball)
    x, y = step.theta_old.tolist()
    return (x - half, x + half), (y - half, y + half)


def paths_bounds(paths: list[Path], bounds: Bounds, limit: float = 12.0) -> Bounds:
    """The problem's window widened to hold the paths, up to |θᵢ| ≤ ``limit`` (an unconstrained
    natural step can jump much further; those points are left outside the window)."""
    pts = torch.cat([p.thetas for p in paths]).clamp(-limit, limit)
    lo = torch.minimum(pts.min(0).values, as_theta([bounds[0][0], bounds[1][0]]))
    hi = torch.maximum(pts.max(0).values, as_theta([bounds[0][1], bounds[1][1]]))
    pad = 0.05 * float((hi - lo).max())
    return (float(lo[0]) - pad, float(hi[0]) + pad), (float(lo[1]) - pad, float(hi[1]) + pad)


def fit_bounds(paths: list[Path], pad: float = 0.06, min_span: float = 1.0) -> Bounds:
    """The smallest window holding every point of every path (θ₀ included), each axis padded by
    ``pad`` of its span and at least ``min_span`` wide (a path that does not move along an axis
    still gets a window). The axes are fitted separately: draw it without equal aspect."""
    pts = torch.cat([p.thetas for p in paths])
    lo, hi = pts.min(0).values, pts.max(0).values
    window = []
    for a, b in zip(lo.tolist(), hi.tolist()):
        span = max(b - a, min_span)
        mid = 0.5 * (a + b)
        half = 0.5 * span * (1 + 2 * pad)
        window.append((mid - half, mid + half))
    return window[0], window[1]

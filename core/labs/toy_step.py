"""One TRPO step on a two-parameter toy, traced, and N successive updates of three rules.

A TRPO step on a toy (:func:`lab_step`) calls the engine's own solver in
``core.engine.trust_region`` (``conjugate_gradient`` with the toy's exact Fisher-vector product,
``max_step``, ``backtracking_line_search`` with the toy's exact KL and surrogate), so the lab shows
exactly what TRPO does. :func:`update` and :func:`run_updates` compare it with the
vanilla gradient and NPG (the same step without the line search). The problems are in
``core.labs.toy_problems``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from core.engine.trust_region import backtracking_line_search, conjugate_gradient, max_step
from core.labs.toy_problems import Rescaled, Tensor, ToyProblem, as_theta

# ---------------------------------------------------------------------------------------------
# One TRPO step, traced
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSettings:
    """The solver's knobs, as in ``TRPOConfig``: KL bound δ, damping c, CG iterations, αʲ."""

    delta: float = 0.01
    damping: float = 0.0
    cg_iters: int = 10
    backtrack_coef: float = 0.5
    max_backtracks: int = 10
    scale: float = 1.0  # coordinate scaling k (θ₁ = k·φ₁) seen by the optimizer


@dataclass
class TrialPoint:
    """One line-search trial θ_old + αʲ s with its exact KL, ΔL and ΔJ."""

    j: int
    frac: float
    theta: Tensor
    kl: float
    surrogate_change: float
    objective_change: float
    accepted: bool
    reason: str


@dataclass
class LabStep:
    """Everything one TRPO step did, in the problem's own θ coordinates.

    ``vanilla_step`` = √(2δ / gᵀFg)·g and ``natural_step`` = √(2δ / gᵀF⁻¹g)·F⁻¹g both end on the
    quadratic ellipse ½dᵀFd = δ (undamped F); ``step`` is TRPO's full step s (CG with damping,
    then max_step); ``cg_points`` are the CG iterates x_k, each scaled the way max_step scales the
    final one (√(2δ / x_kᵀ(F + cI)x_k)), so the last one is s. In 2-D and without damping, the
    first lies on the vanilla arrow and the second on the natural one.
    """

    theta_old: Tensor
    objective_old: float
    grad: Tensor
    fisher: Tensor
    vanilla_dir: Tensor
    natural_dir: Tensor
    vanilla_step: Tensor
    natural_step: Tensor
    cg_iterates: list[Tensor]
    cg_points: list[Tensor]
    cg_residuals: list[float]
    step: Tensor
    beta: float
    trials: list[TrialPoint]
    accepted: bool
    theta_new: Tensor
    predicted_improvement: float  # gᵀs
    quadratic_kl: float  # ½ sᵀFs (undamped F)
    notes: list[str] = field(default_factory=list)


def _quad(F: Tensor, d: Tensor) -> float:
    return float(0.5 * d @ F @ d)


def scaled_to_kl(F: Tensor, direction: Tensor, delta: float) -> Tensor:
    """√(2δ / dᵀFd)·d: the direction scaled to the quadratic KL ellipse ½dᵀFd = δ.

    Zero when dᵀFd is not positive (d = 0, or a saturated policy whose Fisher underflows).
    """
    dFd = float(direction @ F @ direction)
    if not dFd > 0 or not math.isfinite(dFd):
        return torch.zeros_like(direction)
    return math.sqrt(2 * delta / dFd) * direction


def lab_step(problem: ToyProblem, theta_old: Tensor, settings: StepSettings) -> LabStep:
    """One traced TRPO step from θ_old with the engine's solver (see the module docstring).

    The optimizer works in the coordinates φ of :class:`Rescaled` (θ₁ = k·φ₁); the trace is mapped
    back to θ. CG solves (F_φ + cI)x = ∇_φ J with x₀ = 0; s = max_step(x); the line search tries
    θ_old + αʲ s and accepts the first with exact D̄_KL ≤ δ and ΔL > 0.
    """
    theta_old = as_theta(theta_old)
    opt = Rescaled(problem, settings.scale)
    D = opt.scale
    phi_old = opt.from_theta(theta_old)
    g_phi = opt.grad(phi_old)
    F_phi = opt.fisher(phi_old)

    def Fvp(v: Tensor) -> Tensor:
        return F_phi @ v + settings.damping * v

    # In n = 2 dimensions CG is exact after n iterations (in exact arithmetic), so it runs
    # min(cg_iters, n) of them and stops early only on a residual of exactly zero. A tolerance
    # relative to gᵀg stops too soon where F is nearly singular: deep on Kakade's plateau g's part
    # along F's small eigenvector is tiny while F⁻¹g's is large, and one iteration leaves x on the
    # vanilla direction (tests/test_toy.py checks the plateau's steps against a direct solve).
    iters = min(settings.cg_iters, g_phi.numel())
    x, cg_trace = conjugate_gradient(Fvp, g_phi, iters, tol=torch.finfo(g_phi.dtype).tiny)
    s_phi, beta = max_step(x, Fvp(x), settings.delta)
    J_old = float(problem.objective(theta_old))

    def evaluate(frac: float) -> tuple[float, float]:
        phi = phi_old + frac * s_phi
        return float(opt.kl(phi_old, phi)), float(opt.surrogate(phi, phi_old))

    accepted, ls_trace = backtracking_line_search(
        evaluate, settings.delta, settings.backtrack_coef, settings.max_backtracks
    )
    step = D * s_phi
    trials = []
    for t in ls_trace.trials:
        theta = theta_old + t.frac * step
        dJ = float(problem.objective(theta)) - J_old
        trials.append(
            TrialPoint(t.j, t.frac, theta, t.kl, t.surrogate_change, dJ, t.accepted, t.reason)
        )
    g, F = problem.grad(theta_old), problem.fisher(theta_old)
    vanilla_dir = D * g_phi  # the plain-gradient ascent direction the optimizer takes, in θ
    natural_dir = torch.linalg.solve(F, g)
    cg_points = [
        D * math.sqrt(2 * settings.delta / float(xk @ Fvp(xk))) * xk for xk in cg_trace.iterates
    ]
    return LabStep(
        theta_old=theta_old,
        objective_old=J_old,
        grad=g,
        fisher=F,
        vanilla_dir=vanilla_dir,
        natural_dir=natural_dir,
        vanilla_step=scaled_to_kl(F, vanilla_dir, settings.delta),
        natural_step=scaled_to_kl(F, natural_dir, settings.delta),
        cg_iterates=[D * xk for xk in cg_trace.iterates],
        cg_points=cg_points,
        cg_residuals=cg_trace.residuals,
        step=step,
        beta=beta,
        trials=trials,
        accepted=accepted,
        theta_new=trials[-1].theta if accepted else theta_old,
        predicted_improvement=float(g @ step),
        quadratic_kl=_quad(F, step),
    )


# ---------------------------------------------------------------------------------------------
# N successive updates
# ---------------------------------------------------------------------------------------------


METHODS = ("vanilla", "npg", "trpo")


@dataclass
class Path:
    """θ and J after each of N updates (index 0 is the start); ``accepted`` per TRPO update."""

    method: str
    thetas: Tensor
    objectives: Tensor
    accepted: list[bool]


def solvable(problem: ToyProblem, theta: Tensor) -> bool:
    """Whether the lab's picture is defined at θ: F positive-definite and gᵀF⁻¹g > 1e-24 (zero up
    to round-off, e.g. equal rewards). False when the policy is deterministic to float64
    precision (a saturated sigmoid or softmax makes F and g underflow) or a state is never
    visited (γ = 0 in the two-state MDP)."""
    g, F = problem.grad(theta), problem.fisher(theta)
    if not float(torch.linalg.eigvalsh(F).min()) > 0:
        return False
    return float(g @ torch.linalg.solve(F, g)) > 1e-24


def update(
    problem: ToyProblem, theta: Tensor, method: str, settings: StepSettings, lr: float | None = None
) -> tuple[Tensor, bool]:
    """One update of ``method`` from θ: the new θ and whether it moved.

    vanilla: Δθ = D²g·η with a fixed learning rate η = ``lr`` (in the optimizer's coordinates),
    or, with ``lr=None``, the plain-gradient direction scaled to ½ΔθᵀFΔθ = δ; npg: TRPO's full
    step s (no line search); trpo: the line-searched step.
    """
    if not solvable(problem, theta):
        return theta, False
    if method == "vanilla":
        opt = Rescaled(problem, settings.scale)
        direction = opt.scale * opt.grad(opt.from_theta(theta))
        if lr is not None:
            return theta + lr * direction, True
        return theta + scaled_to_kl(problem.fisher(theta), direction, settings.delta), True
    step = lab_step(problem, theta, settings)
    if method == "npg":
        return theta + step.step, True
    if method == "trpo":
        return step.theta_new, step.accepted
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def run_updates(
    problem: ToyProblem,
    theta0: Tensor,
    method: str,
    settings: StepSettings,
    n_updates: int,
    lr: float | None = None,
) -> Path:
    """N successive updates of ``method`` from θ₀ (see :func:`update`)."""
    theta = as_theta(theta0)
    thetas, accepted = [theta], []
    for _ in range(n_updates):
        theta, ok = update(problem, theta, method, settings, lr)
        thetas.append(theta)
        accepted.append(ok)
    stacked = torch.stack(thetas)
    return Path(method, stacked, problem.objective(stacked), accepted)


def escape_iteration(path: Path, level: float) -> int | None:
    """The first update index at which J ≥ ``level``, or None."""
    hits = (path.objectives >= level).nonzero()
    return int(hits[0]) if len(hits) else None

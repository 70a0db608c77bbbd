"""Two-parameter trust-region problems with closed forms, and TRPO / NPG / vanilla steps on them.

Each problem gives, for a parameter vector θ ∈ ℝ² (all functions broadcast over leading dims):

- ``objective(θ)``: the true objective J(θ);
- ``surrogate(θ, θ_old)``: TRPO's surrogate advantage
  L_{θ_old}(θ) − L_{θ_old}(θ_old) = Σ_s d^{π_old}(s) Σ_a π_θ(a|s) A^{π_old}(s, a),
  which has the same gradient as J at θ_old but uses the *old* state visitation;
- ``grad(θ)``: ∇J(θ) (= ∇L at θ_old), in closed form;
- ``fisher(θ)``: F(θ) = ∇²_θ′ D̄_KL(θ, θ′) at θ′ = θ, in closed form;
- ``kl(θ_old, θ)``: the exact mean KL D̄_KL(θ_old, θ) = Σ_s d^{π_old}(s) KL(π_old(·|s) ‖ π_θ(·|s)).

A TRPO step on a toy (:func:`lab_step`) calls the engine's own solver in
``core.engine.trust_region`` (``conjugate_gradient`` with the toy's exact Fisher-vector product,
``max_step``, ``backtracking_line_search`` with the toy's exact KL and surrogate), so the lab shows
exactly what TRPO does. Everything is float64 torch, so tests can check each closed form with
autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch

from core.engine.trust_region import backtracking_line_search, conjugate_gradient, max_step

Tensor = torch.Tensor
DTYPE = torch.float64
Bounds = tuple[tuple[float, float], tuple[float, float]]


def as_theta(x: Tensor | list[float] | tuple[float, ...]) -> Tensor:
    """A float64 tensor of parameters (…, 2)."""
    return torch.as_tensor(x, dtype=DTYPE)


class ToyProblem(Protocol):
    """The interface the page and the solver use; see the module docstring for the math."""

    key: str
    title: str
    param_labels: tuple[str, str]
    description: str
    start: tuple[float, float]
    bounds: Bounds

    def objective(self, theta: Tensor) -> Tensor: ...

    def surrogate(self, theta: Tensor, theta_old: Tensor) -> Tensor: ...

    def grad(self, theta: Tensor) -> Tensor: ...

    def fisher(self, theta: Tensor) -> Tensor: ...

    def kl(self, theta_old: Tensor, theta: Tensor) -> Tensor: ...

    def best_value(self) -> float: ...


# ---------------------------------------------------------------------------------------------
# The three problems
# ---------------------------------------------------------------------------------------------


class OneStateBandit:
    """A bandit (one state, exact expectations): the old and new visitations are the same, so
    TRPO's surrogate is the true improvement, L_{θ_old}(θ) − L_{θ_old}(θ_old) = J(θ) − J(θ_old).
    """

    def objective(self, theta: Tensor) -> Tensor:
        raise NotImplementedError

    def surrogate(self, theta: Tensor, theta_old: Tensor) -> Tensor:
        return self.objective(theta) - self.objective(theta_old)


@dataclass(frozen=True)
class SoftmaxBandit(OneStateBandit):
    """Three-action bandit, π = softmax(θ₁, θ₂, 0), rewards r ∈ ℝ³.

    J = Σᵢ pᵢ rᵢ;  ∂J/∂θⱼ = pⱼ (rⱼ − J);  F = diag(p₁, p₂) − p̃p̃ᵀ with p̃ = (p₁, p₂);
    F⁻¹g = (r₁ − r₃, r₂ − r₃) and gᵀF⁻¹g = Var_π(r);
    KL(θ ‖ θ′) = Σ_{j≤2} pⱼ(θ)(θⱼ − θ′ⱼ) + log Z(θ′) − log Z(θ).
    One state, so the surrogate equals the true improvement: L(θ) − L(θ_old) = J(θ) − J(θ_old).
    """

    rewards: tuple[float, float, float] = (1.0, 0.2, 0.0)
    start: tuple[float, float] = (-2.0, 2.0)
    bounds: Bounds = ((-4.0, 3.0), (-1.0, 4.0))
    key: str = "softmax"
    title: str = "3-action softmax bandit"
    param_labels: tuple[str, str] = ("θ₁ (logit of a₁)", "θ₂ (logit of a₂)")
    description: str = (
        "One state, three actions with rewards r₁, r₂, r₃; the policy is softmax(θ₁, θ₂, 0). "
        "The surrogate equals the true objective here (one state, exact expectations), so every "
        "rejection is caused by the KL constraint, not by a wrong surrogate."
    )

    def _r(self) -> Tensor:
        return as_theta(self.rewards)

    def logits(self, theta: Tensor) -> Tensor:
        return torch.cat([theta, torch.zeros_like(theta[..., :1])], dim=-1)

    def probs(self, theta: Tensor) -> Tensor:
        return torch.softmax(self.logits(theta), dim=-1)

    def objective(self, theta: Tensor) -> Tensor:
        return self.probs(theta) @ self._r()

    def grad(self, theta: Tensor) -> Tensor:
        p = self.probs(theta)
        J = p @ self._r()
        return p[..., :2] * (self._r()[:2] - J[..., None])

    def fisher(self, theta: Tensor) -> Tensor:
        p = self.probs(theta)[..., :2]
        return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]

    def kl(self, theta_old: Tensor, theta: Tensor) -> Tensor:
        p_old = self.probs(theta_old)[..., :2]
        log_z = torch.logsumexp(self.logits(theta), dim=-1)
        log_z_old = torch.logsumexp(self.logits(theta_old), dim=-1)
        return (p_old * (theta_old - theta)).sum(-1) + log_z - log_z_old

    def best_value(self) -> float:
        """sup J = max_i rᵢ (approached as the policy becomes deterministic)."""
        return max(self.rewards)


@dataclass(frozen=True)
class GaussianBandit(OneStateBandit):
    """Gaussian policy a ~ N(μ, σ²), σ = e^ω, θ = (μ, ω), on a 1-D bandit with reward −(a − a*)².

    J = E[−(a − a*)²] + α·H(π) = −(μ − a*)² − e^{2ω} + α(ω + ½ log 2πe);
    ∇J = (−2(μ − a*), −2e^{2ω} + α);  F = diag(1/σ², 2);
    KL(θ ‖ θ′) = ω′ − ω + (e^{2ω} + (μ − μ′)²) / (2e^{2ω′}) − ½.
    The optimum is μ = a*, σ² = α/2 (σ → 0 when α = 0). One state: L − L_old = J − J_old.
    """

    target: float = 2.0
    entropy_coef: float = 0.5
    start: tuple[float, float] = (-1.0, -1.5)
    bounds: Bounds = ((-2.0, 3.0), (-2.5, 0.5))
    key: str = "gaussian"
    title: str = "Gaussian policy on a 1-D bandit"
    param_labels: tuple[str, str] = ("μ (mean action)", "ω = log σ")
    description: str = (
        "One state, continuous action a ~ N(μ, σ²), reward −(a − a*)² plus an entropy bonus α·H. "
        "The Fisher matrix diag(1/σ², 2) makes a step in μ expensive when σ is small: the "
        "vanilla gradient ignores that, the natural gradient scales the μ-step by σ²."
    )

    def objective(self, theta: Tensor) -> Tensor:
        mu, omega = theta[..., 0], theta[..., 1]
        entropy = omega + 0.5 * math.log(2 * math.pi * math.e)
        return -((mu - self.target) ** 2) - torch.exp(2 * omega) + self.entropy_coef * entropy

    def grad(self, theta: Tensor) -> Tensor:
        mu, omega = theta[..., 0], theta[..., 1]
        return torch.stack(
            [-2 * (mu - self.target), -2 * torch.exp(2 * omega) + self.entropy_coef], dim=-1
        )

    def fisher(self, theta: Tensor) -> Tensor:
        omega = theta[..., 1]
        diag = torch.stack([torch.exp(-2 * omega), torch.full_like(omega, 2.0)], dim=-1)
        return torch.diag_embed(diag)

    def kl(self, theta_old: Tensor, theta: Tensor) -> Tensor:
        mu0, om0 = theta_old[..., 0], theta_old[..., 1]
        mu1, om1 = theta[..., 0], theta[..., 1]
        return om1 - om0 + (torch.exp(2 * om0) + (mu0 - mu1) ** 2) / (2 * torch.exp(2 * om1)) - 0.5

    def best_value(self) -> float:
        """sup J: at μ = a*, e^{2ω} = α/2 (J → 0 as σ → 0 when α = 0)."""
        alpha = self.entropy_coef
        if alpha == 0:
            return 0.0
        return -alpha / 2 + alpha * 0.5 * (math.log(alpha / 2) + math.log(2 * math.pi * math.e))


@dataclass(frozen=True)
class TwoStateMDP:
    """Kakade's two-state MDP: in each state s ∈ {1, 2} the agent stays (reward r_s) or switches
    to the other state (reward 0), with π(stay | s) = σ(θ_s); discount γ; it starts in state 1.

    With P^π the 2×2 transition matrix (stay probabilities on the diagonal), r_π(s) = π_s r_s:
    V = (I − γP^π)⁻¹ r_π,  d^π = (1 − γ) ρ₀ᵀ(I − γP^π)⁻¹ (normalised discounted visitation),
    J = (1 − γ) ρ₀ᵀV = Σ_s d^π(s) r_π(s).
    The advantage of staying over switching is Δ_s = r_s + γ(V(s) − V(s̄)), so
    ∂J/∂θ_s = d^π(s) π_s(1 − π_s) Δ_s and, with the old visitation weighting the mean KL,
    F = diag(d^π(s) π_s(1 − π_s)): the natural gradient is F⁻¹g = (Δ₁, Δ₂), free of the
    visitation and of the sigmoid's saturation.
    Surrogate: L − L_old = Σ_s d^{π_old}(s)(π_s − π_old,s)Δ_s^{old}; the true change J − J_old is
    the same sum weighted by d^{π_new} (the performance-difference identity).
    """

    rewards: tuple[float, float] = (1.0, 2.0)
    gamma: float = 0.9
    start: tuple[float, float] = (3.0, -3.0)
    bounds: Bounds = ((-6.0, 6.0), (-6.0, 6.0))
    key: str = "kakade"
    title: str = "Kakade's two-state MDP"
    param_labels: tuple[str, str] = ("θ₁: logit P(stay | s₁)", "θ₂: logit P(stay | s₂)")
    description: str = (
        "Two states; in each the agent stays (reward r₁ in s₁, r₂ in s₂) or switches (reward 0); "
        "it starts in s₁. When it rarely reaches s₂, the gradient for θ₂ is tiny (weighted by "
        "the visitation d(s₂)) and the vanilla gradient crawls along a plateau near J = r₁; the "
        "natural gradient divides that weight out. The surrogate uses the old visitation, the true "
        "objective the new one, so here they differ."
    )

    def stay(self, theta: Tensor) -> Tensor:
        return torch.sigmoid(theta)

    def _solve(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(π_stay, V, d) for parameters θ (…, 2)."""
        pi = self.stay(theta)
        g = self.gamma
        eye = torch.eye(2, dtype=DTYPE)
        P = torch.stack(
            [
                torch.stack([pi[..., 0], 1 - pi[..., 0]], -1),
                torch.stack([1 - pi[..., 1], pi[..., 1]], -1),
            ],
            dim=-2,
        )
        M = eye - g * P
        r_pi = pi * as_theta(self.rewards)
        V = torch.linalg.solve(M, r_pi[..., None])[..., 0]
        rho0 = as_theta([1.0, 0.0]).expand_as(pi)
        d = (1 - g) * torch.linalg.solve(M.transpose(-1, -2), rho0[..., None])[..., 0]
        return pi, V, d

    def values(self, theta: Tensor) -> Tensor:
        """V^π(s), s = 1, 2."""
        return self._solve(theta)[1]

    def visitation(self, theta: Tensor) -> Tensor:
        """d^π(s) = (1 − γ) Σ_t γᵗ P(s_t = s)."""
        return self._solve(theta)[2]

    def stay_advantage(self, theta: Tensor) -> Tensor:
        """Δ_s = Q(s, stay) − Q(s, switch) = r_s + γ(V(s) − V(s̄))."""
        V = self.values(theta)
        return as_theta(self.rewards) + self.gamma * (V - V.flip(-1))

    def objective(self, theta: Tensor) -> Tensor:
        pi, _, d = self._solve(theta)
        return (d * pi * as_theta(self.rewards)).sum(-1)

    def surrogate(self, theta: Tensor, theta_old: Tensor) -> Tensor:
        d_old = self.visitation(theta_old)
        delta_old = self.stay_advantage(theta_old)
        return (d_old * (self.stay(theta) - self.stay(theta_old)) * delta_old).sum(-1)

    def grad(self, theta: Tensor) -> Tensor:
        pi, _, d = self._solve(theta)
        return d * pi * (1 - pi) * self.stay_advantage(theta)

    def fisher(self, theta: Tensor) -> Tensor:
        pi, _, d = self._solve(theta)
        return torch.diag_embed(d * pi * (1 - pi))

    def kl(self, theta_old: Tensor, theta: Tensor) -> Tensor:
        p, q = self.stay(theta_old), self.stay(theta)
        kl_s = p * (torch.log(p) - torch.log(q)) + (1 - p) * (torch.log1p(-p) - torch.log1p(-q))
        return (self.visitation(theta_old) * kl_s).sum(-1)

    def best_value(self) -> float:
        """sup J: an optimal policy is deterministic, so the best of the four corners θ = ±∞."""
        corners = as_theta([[a, b] for a in (-40.0, 40.0) for b in (-40.0, 40.0)])
        return float(self.objective(corners).max())


PROBLEMS: dict[str, type] = {
    "softmax": SoftmaxBandit,
    "gaussian": GaussianBandit,
    "kakade": TwoStateMDP,
}


def make_problem(key: str, **params: object) -> ToyProblem:
    """The problem named ``key`` with its reward parameters (``rewards``, ``target``, …)."""
    if key not in PROBLEMS:
        raise ValueError(f"unknown problem {key!r}; choose one of {', '.join(PROBLEMS)}")
    return PROBLEMS[key](**params)


# ---------------------------------------------------------------------------------------------
# Coordinate scaling: θ₁ = k·φ₁
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rescaled:
    """The same problem seen in coordinates φ = D⁻¹θ, D = diag(k, 1) (θ₁ = k·φ₁).

    ∇_φ J = D ∇_θ J and F_φ = D F_θ D, so a vanilla step Δφ = η D g maps to Δθ = η D² g (its
    direction depends on k), while the natural step Δφ = F_φ⁻¹∇_φ J = D⁻¹F⁻¹g maps to
    Δθ = F⁻¹g: the natural gradient does not depend on the coordinates (with zero damping).
    """

    base: ToyProblem
    k: float = 1.0

    @property
    def scale(self) -> Tensor:
        return as_theta([self.k, 1.0])

    def to_theta(self, phi: Tensor) -> Tensor:
        return phi * self.scale

    def from_theta(self, theta: Tensor) -> Tensor:
        return theta / self.scale

    def objective(self, phi: Tensor) -> Tensor:
        return self.base.objective(self.to_theta(phi))

    def surrogate(self, phi: Tensor, phi_old: Tensor) -> Tensor:
        return self.base.surrogate(self.to_theta(phi), self.to_theta(phi_old))

    def grad(self, phi: Tensor) -> Tensor:
        return self.base.grad(self.to_theta(phi)) * self.scale

    def fisher(self, phi: Tensor) -> Tensor:
        D = self.scale
        return self.base.fisher(self.to_theta(phi)) * D[:, None] * D[None, :]

    def kl(self, phi_old: Tensor, phi: Tensor) -> Tensor:
        return self.base.kl(self.to_theta(phi_old), self.to_theta(phi))

    def best_value(self) -> float:
        return self.base.best_value()


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

    # Relative tolerance: stop once ‖r‖ ≤ 1e-10‖g‖ (the toys' gradients span many scales).
    x, cg_trace = conjugate_gradient(
        Fvp, g_phi, settings.cg_iters, tol=1e-20 * float(g_phi @ g_phi)
    )
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
# The 1-D slice along the step, the contour grid, the path of N updates
# ---------------------------------------------------------------------------------------------


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


def paths_bounds(paths: list[Path], bounds: Bounds, limit: float = 12.0) -> Bounds:
    """The problem's window widened to hold the paths, up to |θᵢ| ≤ ``limit`` (an unconstrained
    natural step can jump much further; those points are left outside the window)."""
    pts = torch.cat([p.thetas for p in paths]).clamp(-limit, limit)
    lo = torch.minimum(pts.min(0).values, as_theta([bounds[0][0], bounds[1][0]]))
    hi = torch.maximum(pts.max(0).values, as_theta([bounds[0][1], bounds[1][1]]))
    pad = 0.05 * float((hi - lo).max())
    return (float(lo[0]) - pad, float(hi[0]) + pad), (float(lo[1]) - pad, float(hi[1]) + pad)


def escape_iteration(path: Path, level: float) -> int | None:
    """The first update index at which J ≥ ``level``, or None."""
    hits = (path.objectives >= level).nonzero()
    return int(hits[0]) if len(hits) else None


# ---------------------------------------------------------------------------------------------
# A lab scenario: everything the page shows, as plain values (and as URL query parameters)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One numeric knob of a scenario: URL name, label, default and allowed range [low, high]."""

    name: str
    label: str
    default: float
    low: float
    high: float
    integer: bool = False

    def clip(self, value: float) -> float:
        value = min(max(float(value), self.low), self.high)
        return float(round(value)) if self.integer else value


PROBLEM_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "softmax": (
        ParamSpec("r1", "reward r₁", 1.0, -10.0, 10.0),
        ParamSpec("r2", "reward r₂", 0.2, -10.0, 10.0),
        ParamSpec("r3", "reward r₃", 0.0, -10.0, 10.0),
    ),
    "gaussian": (
        ParamSpec("target", "best action a*", 2.0, -5.0, 5.0),
        ParamSpec("alpha", "entropy bonus α", 0.5, 0.0, 5.0),
    ),
    "kakade": (
        ParamSpec("r1", "reward for staying in s₁", 1.0, 0.0, 10.0),
        ParamSpec("r2", "reward for staying in s₂", 2.0, 0.0, 10.0),
        ParamSpec("gamma", "discount γ", 0.9, 0.0, 0.99),
    ),
}

SOLVER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("delta", "KL bound δ", 0.01, 1e-4, 1.0),
    ParamSpec("damping", "damping c", 0.0, 0.0, 1.0),
    ParamSpec("cg_iters", "CG iterations", 10, 1, 20, integer=True),
    ParamSpec("backtrack_coef", "backtrack coefficient α", 0.5, 0.05, 0.95),
    ParamSpec("scale", "coordinate scaling k (θ₁ = k·φ₁)", 1.0, 0.1, 10.0),
    ParamSpec("n_updates", "number of updates N", 30, 1, 100, integer=True),
    ParamSpec("lr", "vanilla learning rate η", 5.0, 1e-3, 100.0),
)
START_LIMIT = 50.0
VIEWS = ("surrogate", "objective")
MODES = ("step", "updates")
VANILLA_STEPS = ("kl", "lr")


def build_problem(key: str, values: dict[str, float]) -> ToyProblem:
    """The problem ``key`` with the knob values of :data:`PROBLEM_PARAMS` (defaults if absent)."""
    v = {p.name: values.get(p.name, p.default) for p in PROBLEM_PARAMS[key]}
    if key == "softmax":
        return SoftmaxBandit(rewards=(v["r1"], v["r2"], v["r3"]))
    if key == "gaussian":
        return GaussianBandit(target=v["target"], entropy_coef=v["alpha"])
    return TwoStateMDP(rewards=(v["r1"], v["r2"]), gamma=v["gamma"])


@dataclass(frozen=True)
class Scenario:
    """A bookmarkable lab state: problem and its rewards, θ₀, solver knobs and what to show."""

    problem: str = "softmax"
    params: tuple[tuple[str, float], ...] = ()
    start: tuple[float, float] | None = None
    delta: float = 0.01
    damping: float = 0.0
    cg_iters: int = 10
    backtrack_coef: float = 0.5
    scale: float = 1.0
    view: str = "surrogate"
    mode: str = "step"
    n_updates: int = 30
    vanilla: str = "kl"
    lr: float = 5.0

    def values(self) -> dict[str, float]:
        """The problem's knob values, defaults filled in."""
        given = dict(self.params)
        return {p.name: given.get(p.name, p.default) for p in PROBLEM_PARAMS[self.problem]}

    def build(self) -> ToyProblem:
        return build_problem(self.problem, self.values())

    def theta0(self) -> Tensor:
        return as_theta(self.start if self.start is not None else self.build().start)

    def settings(self) -> StepSettings:
        return StepSettings(
            delta=self.delta,
            damping=self.damping,
            cg_iters=self.cg_iters,
            backtrack_coef=self.backtrack_coef,
            scale=self.scale,
        )

    def to_query(self) -> dict[str, str]:
        """URL query parameters (all strings) that :meth:`from_query` reads back."""
        query = {"problem": self.problem}
        query.update({k: f"{v:g}" for k, v in self.values().items()})
        theta0 = self.theta0().tolist()
        query["start"] = f"{theta0[0]:g},{theta0[1]:g}"
        for p in SOLVER_PARAMS:
            query[p.name] = f"{getattr(self, p.name):g}"
        query.update(view=self.view, mode=self.mode, vanilla=self.vanilla)
        return query

    @classmethod
    def from_query(cls, query: dict[str, str]) -> Scenario:
        """Read a scenario from URL parameters; unknown or malformed values fall back to the
        defaults and numbers are clipped to their allowed ranges, so any URL gives a valid lab."""
        problem = query.get("problem", "softmax")
        if problem not in PROBLEM_PARAMS:
            problem = "softmax"
        params = tuple((p.name, _number(query.get(p.name), p)) for p in PROBLEM_PARAMS[problem])
        solver = {p.name: _number(query.get(p.name), p) for p in SOLVER_PARAMS}
        solver["cg_iters"], solver["n_updates"] = int(solver["cg_iters"]), int(solver["n_updates"])
        return cls(
            problem=problem,
            params=params,
            start=_start(query.get("start")),
            view=_choice(query.get("view"), VIEWS),
            mode=_choice(query.get("mode"), MODES),
            vanilla=_choice(query.get("vanilla"), VANILLA_STEPS),
            **solver,
        )


def _number(text: str | None, spec: ParamSpec) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return spec.default
    return spec.clip(value) if math.isfinite(value) else spec.default


def _start(text: str | None) -> tuple[float, float] | None:
    try:
        a, b = (float(part) for part in (text or "").split(","))
    except ValueError:
        return None
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return (min(max(a, -START_LIMIT), START_LIMIT), min(max(b, -START_LIMIT), START_LIMIT))


def _choice(text: str | None, choices: tuple[str, ...]) -> str:
    return text if text in choices else choices[0]


PRESETS: dict[str, Scenario] = {
    "Rejected full step": Scenario(
        problem="softmax",
        params=(("r1", 1.0), ("r2", 0.2), ("r3", 0.0)),
        start=(-2.0, 2.0),
        delta=0.01,
        backtrack_coef=0.5,
    ),
    "Kakade's plateau": Scenario(
        problem="kakade",
        params=(("r1", 1.0), ("r2", 2.0), ("gamma", 0.9)),
        start=(3.0, -3.0),
        delta=0.01,
        mode="updates",
        view="objective",
        n_updates=30,
    ),
    "Kakade: surrogate ≠ J": Scenario(
        problem="kakade",
        params=(("r1", 1.0), ("r2", 2.0), ("gamma", 0.9)),
        start=(2.0, -1.0),
        delta=0.2,
    ),
    "Gaussian, small σ": Scenario(
        problem="gaussian",
        params=(("target", 2.0), ("alpha", 0.5)),
        start=(-1.0, -1.5),
        delta=0.05,
    ),
    "Gaussian, rejected step": Scenario(
        problem="gaussian",
        params=(("target", 2.0), ("alpha", 0.5)),
        start=(-1.0, 0.0),
        delta=0.2,
    ),
    "Coordinate scaling k = 3": Scenario(
        problem="softmax",
        params=(("r1", 1.0), ("r2", 0.2), ("r3", 0.0)),
        start=(-2.0, 2.0),
        delta=0.01,
        scale=3.0,
    ),
}

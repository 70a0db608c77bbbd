"""Two-parameter policy-optimization problems with closed forms (the Trust Region Lab's toys).

Each problem gives, for a parameter vector θ ∈ ℝ² (all functions broadcast over leading dims):

- ``objective(θ)``: the true objective J(θ);
- ``surrogate(θ, θ_old)``: TRPO's surrogate advantage
  L_{θ_old}(θ) − L_{θ_old}(θ_old) = Σ_s d^{π_old}(s) Σ_a π_θ(a|s) A^{π_old}(s, a),
  which has the same gradient as J at θ_old but uses the *old* state visitation;
- ``grad(θ)``: ∇J(θ) (= ∇L at θ_old), in closed form;
- ``fisher(θ)``: F(θ) = ∇²_θ′ D̄_KL(θ, θ′) at θ′ = θ, in closed form;
- ``kl(θ_old, θ)``: the exact mean KL D̄_KL(θ_old, θ) = Σ_s d^{π_old}(s) KL(π_old(·|s) ‖ π_θ(·|s)).

:class:`Rescaled` shows the same problem in scaled coordinates (θ₁ = k·φ₁). Everything is float64
torch, so tests can check each closed form with autograd. The step taken on them is in
``core.labs.toy_step``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

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

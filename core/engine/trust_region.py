"""The trust-region solver shared by TRPO, NPG and the Trust Region Lab.

TRPO (Schulman et al. 2015, App. C) maximises the surrogate L(θ) subject to D̄_KL(θ_old, θ) ≤ δ:

1. g = ∇L(θ_old);  F = ∇²D̄_KL(θ_old, ·) at θ_old (the Fisher matrix), damped: F + c·I.
2. x ≈ F⁻¹g by conjugate gradient, using only products F·v.
3. s = √(2δ / xᵀFx) · x, the step to the boundary of the quadratic model ½ sᵀFs = δ.
4. Backtracking: θ = θ_old + αʲ s for j = 0, 1, …; accept the first trial whose *exact* mean KL is
   ≤ δ and whose surrogate change is > 0. The quadratic model is only a model: the exact KL of the
   full step can exceed δ, and then the line search must reject it.

Each function returns a trace so the UI can draw exactly what the solver did. The functions take
closures, so the lab's closed-form toy problems use the very same code as the neural-net trainer,
whose Fisher products come from ``MLPFisher`` in ``core/engine/algos/trpo.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class CGTrace:
    """Conjugate-gradient history: rᵀr before each iteration and every iterate x_k."""

    residuals: list[float] = field(default_factory=list)
    iterates: list[torch.Tensor] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.iterates)


def conjugate_gradient(
    Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int, tol: float = 1e-10
) -> tuple[torch.Tensor, CGTrace]:
    """Solve A x = b for symmetric positive-definite A given only products A·v.

    Starts at x₀ = 0 (so r₀ = b, and the first iterate is parallel to b); stops after ``iters``
    iterations or when rᵀr < ``tol``. In n dimensions it is exact after n iterations (in exact
    arithmetic). ``trace.residuals[k]`` is rᵀr after k iterations.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    trace = CGTrace(residuals=[float(rr)])
    for _ in range(iters):
        if float(rr) < tol:
            break
        Ap = Avp(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
        trace.iterates.append(x.detach().clone())
        trace.residuals.append(float(rr))
    return x, trace


def max_step(x: torch.Tensor, Fx: torch.Tensor, delta: float) -> tuple[torch.Tensor, float]:
    """s = √(2δ / xᵀFx) · x, so that ½ sᵀFs = δ. Returns s and the scale β = √(2δ / xᵀFx)."""
    xFx = float(torch.dot(x, Fx))
    if not xFx > 0:
        raise ValueError(
            f"xᵀFx = {xFx} is not positive: the Fisher product is not positive-definite"
        )
    beta = (2.0 * delta / xFx) ** 0.5
    return beta * x, beta


@dataclass
class Trial:
    """One line-search trial θ_old + frac·s."""

    j: int
    frac: float
    kl: float
    surrogate_change: float
    accepted: bool
    reason: str


@dataclass
class LineSearchTrace:
    """Every trial in order; ``accepted_frac`` is αʲ of the accepted one, or None."""

    trials: list[Trial] = field(default_factory=list)
    accepted_frac: float | None = None

    @property
    def backtracks(self) -> int:
        """Number of rejected trials before the accepted one (all of them if none was)."""
        return sum(1 for t in self.trials if not t.accepted)


def backtracking_line_search(
    trial: Callable[[float], tuple[float, float]],
    delta: float,
    backtrack_coef: float = 0.8,
    max_backtracks: int = 10,
) -> tuple[bool, LineSearchTrace]:
    """Try step fractions αʲ, j = 0 … max_backtracks − 1; accept the first with exact KL ≤ δ and
    surrogate change > 0.

    ``trial(frac)`` evaluates θ_old + frac·s and returns (exact mean KL, L(θ) − L(θ_old)). It may
    leave the parameters at the trial point; if nothing is accepted the caller restores θ_old.
    """
    trace = LineSearchTrace()
    for j in range(max_backtracks):
        frac = backtrack_coef**j
        kl, change = trial(frac)
        if not (kl == kl and change == change):  # NaN
            ok, reason = False, "not finite"
        elif kl > delta:
            ok, reason = False, f"KL {kl:.4g} > δ {delta:.4g}"
        elif change <= 0:
            ok, reason = False, f"surrogate change {change:.4g} ≤ 0"
        else:
            ok, reason = True, "accepted"
        trace.trials.append(Trial(j, frac, float(kl), float(change), ok, reason))
        if ok:
            trace.accepted_frac = frac
            return True, trace
    return False, trace

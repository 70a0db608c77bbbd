"""The Trust Region Lab's step-through: one TRPO step (or N updates) revealed in stages.

Pure data (no Streamlit, no Plotly): :func:`step_stages` lists, for a traced ``LabStep``, what the
main chart draws at each stage and the one sentence that explains it:

1. θ_old and the contours;
2. g = ∇L(θ_old), drawn scaled to the ellipse (√(2δ / gᵀFg)·g);
3. the quadratic model of the trust region, ½dᵀFd = δ;
4. the CG iterates x₁, x₂, … one at a time (x₀ = 0, so x₁ ∥ g; in 2-D x₂ = (F + cI)⁻¹g);
5. F⁻¹g and the max step s = √(2δ / xᵀ(F + cI)x)·x, which ends on the ellipse;
6. the exact KL ball D̄_KL(θ_old, θ) = δ;
7. each line-search trial θ_old + αʲs with its verdict (exact D̄_KL ≤ δ and ΔL > 0);
8. the accepted step θ_new (or none: θ_old is kept).

:func:`path_stages` does the same for N successive updates: stage k shows updates 0…k.
``ui.toy_figures`` draws a :class:`Stage`; the page moves through them (``ui.stepper``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.labs.toy_step import LabStep, Path

# The layers of the step figure, in the order they are revealed.
LAYERS = ("start", "gradient", "ellipse", "cg", "natural", "kl_ball", "trials", "accepted")
METHOD_SHORT = {"vanilla": "vanilla", "npg": "NPG", "trpo": "TRPO"}


@dataclass(frozen=True)
class Stage:
    """What one stage shows: the figure's layers, how many CG iterates and line-search trials
    (the first ``cg_shown`` / ``trials_shown``), and a title and one sentence for the page."""

    key: str
    title: str
    text: str
    layers: frozenset[str]
    cg_shown: int = 0
    trials_shown: int = 0
    updates_shown: int = 0  # for N-update paths: updates 0…updates_shown are drawn


def _vec(v) -> str:
    return "(" + ", ".join(f"{x:.3g}" for x in v.tolist()) + ")"


def _upto(layer: str) -> frozenset[str]:
    return frozenset(LAYERS[: LAYERS.index(layer) + 1])


def step_stages(step: LabStep, delta: float, damping: float = 0.0) -> list[Stage]:
    """The stages of one traced TRPO step (see the module docstring); the last shows everything."""
    n_cg, n_trials = len(step.cg_points), len(step.trials)
    stages = [
        Stage(
            "start",
            "θ_old and the landscape",
            f"We stand at θ_old = {_vec(step.theta_old)}: TRPO looks for the best point near it, "
            "where near means a small KL between the old and the new policy, not a short "
            "distance in θ.",
            _upto("start"),
        ),
        Stage(
            "gradient",
            "The gradient g",
            f"g = ∇L(θ_old) = {_vec(step.grad)} is the steepest way up in θ's own coordinates; "
            "the orange arrow is g scaled to the size of the trust region.",
            _upto("gradient"),
        ),
        Stage(
            "ellipse",
            "The trust region's quadratic model",
            f"The pink ellipse ½dᵀFd = δ = {delta:g} is the second-order model of the KL ball, "
            "with F the Fisher matrix (the KL's Hessian at θ_old).",
            _upto("ellipse"),
        ),
    ]
    solve = "(F + cI)x = g" if damping else "Fx = g"
    for k in range(1, n_cg + 1):
        residual = step.cg_residuals[k] if k < len(step.cg_residuals) else float("nan")
        if k == 1:
            text = (
                f"Conjugate gradient solves {solve} from products Fv alone; it starts at x₀ = 0, "
                f"so its first iterate x₁ lies along g (residual rᵀr = {residual:.2e}; drawn "
                "scaled to the ellipse)."
            )
        else:
            text = (
                f"CG iterate x{_sub(k)} (residual rᵀr = {residual:.2e}): in two dimensions the "
                f"second iterate solves {solve} exactly."
            )
        stages.append(Stage(f"cg{k}", f"CG iterate x{_sub(k)}", text, _upto("cg"), cg_shown=k))
    quad = "xᵀ(F + cI)x" if damping else "xᵀFx"
    stages.append(
        Stage(
            "natural",
            "F⁻¹g and the max step s",
            f"The natural direction is F⁻¹g = {_vec(step.natural_dir)} (purple); CG's x scaled by "
            f"β = √(2δ / {quad}) = {step.beta:.3g} is the max step s = {_vec(step.step)}, which "
            f"ends on the ellipse (predicted gain gᵀs = {step.predicted_improvement:.3g}).",
            _upto("natural"),
            cg_shown=n_cg,
        )
    )
    full = step.trials[0]
    side = "outside" if full.kl > delta else "inside"
    stages.append(
        Stage(
            "kl_ball",
            "The exact KL ball",
            f"The black curve is the exact ball D̄_KL(θ_old, θ) = δ; the ellipse only models it "
            f"to second order, and the full step's exact KL is {full.kl:.4g}: {side} the ball.",
            _upto("kl_ball"),
            cg_shown=n_cg,
        )
    )
    for i, t in enumerate(step.trials):
        alpha = f"α{_sup(t.j)} = {t.frac:.3g}"
        if t.accepted:
            verdict = f"exact KL {t.kl:.4g} ≤ δ and ΔL = {t.surrogate_change:.3g} > 0: accepted"
        elif t.kl > delta:
            verdict = f"exact KL {t.kl:.4g} > δ = {delta:g}: rejected, shrink and retry"
        else:
            verdict = f"ΔL = {t.surrogate_change:.3g} ≤ 0: rejected ({t.reason})"
        stages.append(
            Stage(
                f"trial{t.j}",
                f"Line search, trial j = {t.j}",
                f"Trial θ_old + {alpha}·s: {verdict}.",
                _upto("trials"),
                cg_shown=n_cg,
                trials_shown=i + 1,
            )
        )
    if step.accepted:
        last = step.trials[-1]
        text = (
            f"TRPO takes the step: θ_new = {_vec(step.theta_new)}, with ΔL = "
            f"{last.surrogate_change:.3g} and a true change ΔJ = {last.objective_change:+.3g}."
        )
    else:
        text = f"No trial passed both tests in {n_trials}: TRPO keeps θ_old and makes no step."
    stages.append(
        Stage(
            "accepted",
            "The update",
            text,
            frozenset(LAYERS),
            cg_shown=n_cg,
            trials_shown=n_trials,
        )
    )
    return stages


def path_stages(paths: Sequence[Path]) -> list[Stage]:
    """Stage k (k = 0…N) of N successive updates: every path drawn up to update k, and J there."""
    n = min(len(p.thetas) for p in paths) - 1
    stages = []
    for k in range(n + 1):
        values = ", ".join(
            f"{METHOD_SHORT.get(p.method, p.method)} {float(p.objectives[k]):.4g}" for p in paths
        )
        head = "The start θ₀" if k == 0 else f"After update {k} of {n}"
        stages.append(
            Stage(f"update{k}", head, f"{head}: J = {values}.", frozenset(), updates_shown=k)
        )
    return stages


def clamp_stage(stage: int | None, n_stages: int) -> int | None:
    """A stage index inside 0…n_stages − 1; None (or the last) is the whole picture: None."""
    if stage is None or stage >= n_stages - 1:
        return None
    return max(stage, 0)


def _sub(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _sup(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))

"""The numbers beside the Trust Region Lab's step figure (``pages/trust_region_lab.py``): the
step's metrics, the numbers at θ_old and the line-search trials; stepping through the step
(``ui/toy_stages.py``), each number appears with the stage that reveals it."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from ui.toy_stages import Stage


def _fmt_vec(v: torch.Tensor) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in v.tolist()) + ")"


HIDDEN = "…"  # a number whose stage has not come yet


def step_numbers(step, delta: float, stage: Stage | None = None) -> None:
    """The step's numbers; stepping through (``stage``), each appears with its stage: ½sᵀFs with
    the max step, the full step's exact KL with its trial, α and ΔJ with the accepted step."""
    full = step.trials[0]
    accepted = next((t for t in step.trials if t.accepted), None)
    shows_s = stage is None or "natural" in stage.layers
    shows_full = stage is None or stage.trials_shown >= 1
    shows_end = stage is None or "accepted" in stage.layers
    c1, c2 = st.columns(2)
    c1.metric(
        "exact KL of full step",
        f"{full.kl:.4f}" if shows_full else HIDDEN,
        f"{full.kl - delta:+.4f} vs δ" if shows_full else None,
        delta_color="inverse",
    )
    c2.metric("quadratic ½sᵀFs", f"{step.quadratic_kl:.4f}" if shows_s else HIDDEN)
    alpha = "none: keep θ_old" if accepted is None else f"{accepted.frac:.4g}"
    c1.metric("accepted αʲ", alpha if shows_end else HIDDEN)
    change = f"{accepted.objective_change:+.4f}" if accepted else "0"
    c2.metric("ΔJ of the update", change if shows_end else HIDDEN)
    with st.expander("The numbers at θ_old"):
        F = step.fisher
        st.markdown(
            f"- g = {_fmt_vec(step.grad)}\n"
            f"- F = [{_fmt_vec(F[0])}, {_fmt_vec(F[1])}]\n"
            f"- F⁻¹g = {_fmt_vec(step.natural_dir)}, "
            f"gᵀF⁻¹g = {float(step.grad @ step.natural_dir):.5g}\n"
            f"- CG: {len(step.cg_iterates)} iterations, rᵀr = "
            + ", ".join(f"{r:.2e}" for r in step.cg_residuals)
            + f"\n- full step s = {_fmt_vec(step.step)} (β = {step.beta:.4g}), "
            f"predicted ΔL = gᵀs = {step.predicted_improvement:.5g}"
        )


def trials_table(step, stage: Stage | None = None) -> None:
    """The line-search trials as a static table (columns wrap; none is cut); stepping through,
    those the stage has tried."""
    trials = step.trials if stage is None else step.trials[: stage.trials_shown]
    if not trials:
        st.caption("No trial yet: the line search starts once the full step s is known.")
        return
    st.table(
        pd.DataFrame(
            [
                {
                    "j": t.j,
                    "αʲ": f"{t.frac:.4g}",
                    "exact KL": f"{t.kl:.5f}",
                    "ΔL": f"{t.surrogate_change:.5f}",
                    "ΔJ": f"{t.objective_change:.5f}",
                    "verdict": "accepted" if t.accepted else f"rejected: {t.reason}",
                }
                for t in trials
            ]
        ).set_index("j")
    )

"""Trust Region Lab: one TRPO step on a 2-parameter problem, drawn exactly.

The page is widgets + calls: the problems and the step are in ``core.labs.toy_problems`` and
``core.labs.toy_step`` (which runs the engine's own ``core.engine.trust_region`` solver), the plot
geometry in ``ui.toy_geometry``, the figures in ``ui.toy_figures``. The scenario lives in the URL
(``ui.toy_scenario``); every control keeps its value across page changes (``ui.widgets``).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from core.labs.toy_problems import PROBLEMS, ToyProblem
from core.labs.toy_step import METHODS, escape_iteration, lab_step, run_updates, solvable
from ui import widgets
from ui.state import ensure_app_navigation
from ui.toy_figures import (
    METHOD_NAMES,
    objective_figure,
    paths_figure,
    slice_figure,
    step_figure,
)
from ui.toy_geometry import grid_values, paths_bounds, quadratic_ellipse, slice_along, step_bounds
from ui.toy_scenario import (
    DEFAULT,
    PRESETS,
    PROBLEM_PARAMS,
    SOLVER_PARAMS,
    START_LIMIT,
    ParamSpec,
    Scenario,
)

ensure_app_navigation()

SOLVER = {p.name: p for p in SOLVER_PARAMS}
TITLES = {key: cls().title for key, cls in PROBLEMS.items()}
VIEW_LABELS = {"surrogate": "surrogate ΔL", "objective": "true objective J"}
MODE_LABELS = {"step": "one TRPO step", "updates": "run N updates"}
VANILLA_LABELS = {"kl": "same KL as TRPO (½dᵀFd = δ)", "lr": "fixed learning rate η"}
WINDOW_LABELS = {"trust": "zoom to the trust region", "landscape": "whole landscape"}
WINDOW = "trust"  # the window a scenario opens with
# The page-wide controls' defaults (each problem's own controls default to its knobs and start).
DEFAULTS: dict[str, object] = {f"trl_{p.name}": p.default for p in SOLVER_PARAMS} | {
    "trl_problem": DEFAULT.problem,
    "trl_view": DEFAULT.view,
    "trl_mode": DEFAULT.mode,
    "trl_vanilla": DEFAULT.vanilla,
    "trl_window": WINDOW,
}


# --- state: widget keys ⇄ Scenario ⇄ URL ------------------------------------------------------


def _scenario_values(sc: Scenario) -> dict[str, object]:
    """The widget values that show ``sc``."""
    values: dict[str, object] = {"trl_problem": sc.problem}
    values.update({f"trl_{sc.problem}_{k}": v for k, v in sc.values().items()})
    theta0 = sc.theta0().tolist()
    values[f"trl_{sc.problem}_start1"], values[f"trl_{sc.problem}_start2"] = theta0
    values.update({f"trl_{p.name}": getattr(sc, p.name) for p in SOLVER_PARAMS})
    values.update(trl_view=sc.view, trl_mode=sc.mode, trl_vanilla=sc.vanilla)
    return values


def _set(values: dict[str, object]) -> None:
    """Set (and remember) the value of each control in ``values`` (from a callback)."""
    for key, value in values.items():
        widgets.set_kept(key, value)


def _apply_preset(name: str) -> None:
    _set(_scenario_values(PRESETS[name]) | {"trl_window": WINDOW})


def _first_visit() -> None:
    """Load the scenario from the URL (or the first preset) once per session."""
    if "trl_loaded" in st.session_state:
        return
    st.session_state["trl_loaded"] = True
    query = st.query_params.to_dict()
    scenario = Scenario.from_query(query) if query else next(iter(PRESETS.values()))
    _set(_scenario_values(scenario) | {"trl_window": WINDOW})


def _set_start(x: float, y: float) -> None:
    problem = st.session_state["trl_problem"]
    _set({f"trl_{problem}_start1": round(x, 3), f"trl_{problem}_start2": round(y, 3)})


def _on_click() -> None:
    """Click-to-set: the clicked point of the main chart becomes θ₀."""
    points = st.session_state["trl_chart"]["selection"]["points"]
    if points:
        _set_start(float(points[0]["x"]), float(points[0]["y"]))


# --- controls ----------------------------------------------------------------------------------


def _start_spec(toy: ToyProblem, i: int) -> ParamSpec:
    """θ₀'s i-th coordinate as a knob: the problem's label and start, range ±START_LIMIT."""
    return ParamSpec(f"start{i + 1}", toy.param_labels[i], toy.start[i], -START_LIMIT, START_LIMIT)


def _number(container, spec: ParamSpec, key: str, fmt: str) -> float:
    """A number input (step 0.1) for ``spec`` under ``key``, showing its remembered value or the
    spec's default; returns the value it shows."""
    value = widgets.kept_widget(
        container.number_input,
        spec.label,
        key,
        spec.default,
        min_value=spec.low,
        max_value=spec.high,
        step=0.1,
        format=fmt,
    )
    return float(value)


def _control(widget: Callable[..., object], label: str, key: str, *args, **kwargs) -> object:
    """A page-wide control under ``key`` that keeps its value (default from :data:`DEFAULTS`)."""
    return widgets.kept_widget(widget, label, key, DEFAULTS[key], *args, **kwargs)


def _solver_input(widget: Callable[..., object], name: str, **kwargs: object) -> None:
    """A sidebar ``widget`` for the solver knob ``name``, with its label and range from
    ``SOLVER_PARAMS`` (integer knobs get integer bounds, so the widget returns ints)."""
    spec = SOLVER[name]
    cast = int if spec.integer else float
    _control(widget, spec.label, f"trl_{name}", cast(spec.low), cast(spec.high), **kwargs)


def _radio(label: str, labels: dict[str, str], key: str, horizontal: bool = False) -> str:
    """A sidebar radio over the keys of ``labels``, each shown by its label."""
    return _control(
        st.sidebar.radio,
        label,
        key,
        list(labels),
        format_func=labels.__getitem__,
        horizontal=horizontal,
    )


def _controls() -> Scenario:
    """Sidebar widgets; returns the scenario they describe."""
    sb = st.sidebar
    sb.header("Scenario")
    problem = _control(
        sb.selectbox, "Problem", "trl_problem", list(PROBLEMS), format_func=TITLES.__getitem__
    )
    params = [
        (spec.name, _number(col, spec, f"trl_{problem}_{spec.name}", "%.3g"))
        for col, spec in zip(sb.columns(len(PROBLEM_PARAMS[problem])), PROBLEM_PARAMS[problem])
    ]
    toy = PROBLEMS[problem]()
    sb.caption("Start θ₀ (or click the chart)")
    start = [
        _number(col, _start_spec(toy, i), f"trl_{problem}_start{i + 1}", "%.3f")
        for i, col in enumerate(sb.columns(2))
    ]

    sb.header("Solver")
    _solver_input(sb.number_input, "delta", step=0.005, format="%.4f")
    _solver_input(
        sb.number_input,
        "damping",
        step=0.01,
        format="%.3f",
        help="CG solves (F + c·I)x = g. Damping shortens the step inside the ellipse.",
    )
    _solver_input(
        sb.slider,
        "cg_iters",
        help="1 iteration gives a step along g; in 2-D, 2 iterations give F⁻¹g exactly.",
    )
    _solver_input(
        sb.slider, "backtrack_coef", step=0.05, help="Trials θ_old + αʲ·s for j = 0, 1, …, 9."
    )
    _solver_input(
        sb.slider,
        "scale",
        step=0.1,
        help="The optimizer sees φ₁ = θ₁ / k. The vanilla step changes with k; the "
        "natural step does not (with damping 0).",
    )

    sb.header("Display")
    for key in ("trl_view", "trl_window", "trl_vanilla", "trl_n_updates", "trl_lr"):
        widgets.kept(key, DEFAULTS[key])  # the value of a control this mode does not draw
    mode = _radio("Mode", MODE_LABELS, "trl_mode", horizontal=True)
    if mode == "step":
        _radio("Contours", VIEW_LABELS, "trl_view", horizontal=True)
        _radio("Window", WINDOW_LABELS, "trl_window", horizontal=True)
    else:
        _solver_input(sb.slider, "n_updates")
        _radio("Vanilla step size", VANILLA_LABELS, "trl_vanilla")
        if st.session_state["trl_vanilla"] == "lr":
            _solver_input(sb.number_input, "lr", step=0.5)
    ss = st.session_state
    return Scenario(
        problem=problem,
        params=tuple(params),
        start=(start[0], start[1]),
        delta=float(ss["trl_delta"]),
        damping=float(ss["trl_damping"]),
        cg_iters=int(ss["trl_cg_iters"]),
        backtrack_coef=float(ss["trl_backtrack_coef"]),
        scale=float(ss["trl_scale"]),
        view=ss["trl_view"],
        mode=mode,
        n_updates=int(ss["trl_n_updates"]),
        vanilla=ss["trl_vanilla"],
        lr=float(ss["trl_lr"]),
    )


# --- explanations ------------------------------------------------------------------------------

DERIVATION = r"""
**What TRPO solves.** $\max_\theta L_{\theta_{old}}(\theta)$ subject to
$\bar D_{KL}(\theta_{old}, \theta) \le \delta$.

**Its local model.** With $d = \theta - \theta_{old}$: $L \approx g^\top d$ and
$\bar D_{KL} \approx \tfrac12 d^\top F d$, $F$ the Fisher matrix (the Hessian of the KL at
$\theta_{old}$). The maximiser of the model is
$$s = \sqrt{\frac{2\delta}{g^\top F^{-1} g}}\; F^{-1} g,$$
the **purple** arrow, which ends on the **pink** ellipse $\tfrac12 d^\top F d = \delta$.
The **orange** arrow is the plain gradient scaled to the same ellipse: steepest in Euclidean
distance, so it depends on how θ is parametrised (try the scaling k).

**Conjugate gradient** finds $x \approx (F + cI)^{-1} g$ from products $Fv$ only. It starts
from $x_0 = 0$, so $x_1 \parallel g$; in 2-D, $x_2 = F^{-1}g$ exactly (for $c = 0$).

**Why the line search can reject.** $\tfrac12 d^\top F d$ is only the second-order Taylor
expansion of the KL; the exact KL (**black** curve) differs at third order, so the full step can
land outside the ball. TRPO tries $\theta_{old} + \alpha^j s$, $j = 0, 1, \dots$ and keeps the
first trial with exact $\bar D_{KL} \le \delta$ **and** $\Delta L > 0$ (**green**); failures are
**red**.
"""

PATHS_TEXT = r"""
**Three update rules from the same θ₀.**
- **Vanilla gradient**: $\theta \leftarrow \theta + \eta\, g$, with η fixed or chosen so that
  $\tfrac12 \Delta\theta^\top F \Delta\theta = \delta$.
- **NPG**: $\theta \leftarrow \theta + s$ with the natural step $s$ above, no line search.
- **TRPO**: the same $s$, then the backtracking line search on the exact KL and $\Delta L$.

The natural gradient $F^{-1}g$ divides out how much each parameter changes the policy (in
Kakade's MDP: the visitation $d^\pi(s)$ and the sigmoid's slope), so it does not stall where the
policy is almost deterministic. Without the line search NPG can overshoot: its step is exact only
for the quadratic model.
"""


def _fmt_vec(v: torch.Tensor) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in v.tolist()) + ")"


def _step_numbers(step, delta: float) -> None:
    full = step.trials[0]
    accepted = next((t for t in step.trials if t.accepted), None)
    c1, c2 = st.columns(2)
    c1.metric(
        "exact KL of full step",
        f"{full.kl:.4f}",
        f"{full.kl - delta:+.4f} vs δ",
        delta_color="inverse",
    )
    c2.metric("quadratic ½sᵀFs", f"{step.quadratic_kl:.4f}")
    c1.metric("accepted αʲ", "none: keep θ_old" if accepted is None else f"{accepted.frac:.4g}")
    c2.metric("ΔJ of the update", f"{accepted.objective_change:+.4f}" if accepted else "0")
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


def _trials_table(step) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "j": t.j,
                    "αʲ": t.frac,
                    "exact KL": t.kl,
                    "ΔL": t.surrogate_change,
                    "ΔJ": t.objective_change,
                    "verdict": "accepted" if t.accepted else f"rejected: {t.reason}",
                }
                for t in step.trials
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.5f") for c in ("exact KL", "ΔL", "ΔJ")
        },
    )


# --- the page ----------------------------------------------------------------------------------


def _main_chart(fig: go.Figure) -> None:
    """The main θ-plane chart; clicking a point sets θ₀ (:func:`_on_click`)."""
    st.plotly_chart(
        fig,
        key="trl_chart",
        on_select=_on_click,
        selection_mode="points",
        config={"displaylogo": False},
        theme=None,
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _step_view(scenario: Scenario, window: str):
    """The traced step and both figures for a scenario (pure; cached per scenario)."""
    problem, theta0 = scenario.build(), scenario.theta0()
    step = lab_step(problem, theta0, scenario.settings())
    bounds = step_bounds(problem, step, scenario.delta) if window == "trust" else problem.bounds
    grid = grid_values(problem, theta0, bounds, n=101)
    ellipse = quadratic_ellipse(step.fisher, scenario.delta)
    fig = step_figure(
        step, grid, ellipse, scenario.delta, problem.param_labels, bounds, scenario.view
    )
    cut = slice_along(problem, theta0, step.step, torch.linspace(0, 1.25, 121, dtype=torch.float64))
    return step, fig, slice_figure(cut, step, scenario.delta)


def _show_step(scenario: Scenario, problem) -> None:
    step, fig, cut_fig = _step_view(scenario, st.session_state["trl_window"])
    left, right = st.columns([2.5, 1], gap="medium")
    with left:
        _main_chart(fig)
    with right:
        _step_numbers(step, scenario.delta)
        st.button(
            "Take this step (θ₀ ← θ_new)",
            on_click=_set_start,
            args=tuple(step.theta_new.tolist()),
            disabled=not step.accepted,
            width="stretch",
        )
        st.markdown(DERIVATION)
    left, right = st.columns([1.4, 1], gap="large")
    with left:
        st.plotly_chart(cut_fig, key="trl_slice", theme=None)
    with right:
        st.subheader("Line-search trials")
        _trials_table(step)
        st.markdown(f"**{problem.title}.** {problem.description}")


@st.cache_data(max_entries=64, show_spinner=False)
def _paths_view(scenario: Scenario):
    """N updates of each method from θ₀ and both figures (pure; cached per scenario)."""
    problem, theta0 = scenario.build(), scenario.theta0()
    lr = scenario.lr if scenario.vanilla == "lr" else None
    paths = [
        run_updates(problem, theta0, m, scenario.settings(), scenario.n_updates, lr)
        for m in METHODS
    ]
    bounds = paths_bounds(paths, problem.bounds)
    grid = grid_values(problem, theta0, bounds, n=101)
    fig = paths_figure(paths, grid, problem.param_labels, bounds, theta0.numpy())
    return paths, fig, objective_figure(paths, problem.best_value())


def _show_updates(scenario: Scenario, problem) -> None:
    paths, fig, objective_fig = _paths_view(scenario)
    left, right = st.columns([1.8, 1], gap="medium")
    with left:
        _main_chart(fig)
    with right:
        best = problem.best_value()
        st.plotly_chart(objective_fig, key="trl_objective", theme=None)
        J0 = float(paths[0].objectives[0])
        level = J0 + 0.9 * (best - J0)
        rows = []
        for p in paths:
            reached = escape_iteration(p, level)
            rows.append(
                {
                    "method": METHOD_NAMES[p.method],
                    "final J": f"{float(p.objectives[-1]):.4f}",
                    f"updates to J ≥ {level:.3g}": "not reached" if reached is None else reached,
                    "updates without a step": sum(not a for a in p.accepted),
                }
            )
        st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, width="stretch")
        st.caption(
            f"sup J = {best:.4g}; the level is 90 % of the way from J(θ₀) to it. An update "
            "without a step: TRPO's line search rejected every trial, or the policy is "
            "deterministic to float64 precision."
        )
        st.markdown(PATHS_TEXT)


def main() -> None:
    _first_visit()
    st.title("Trust Region Lab")
    st.caption(
        "A policy with two parameters, so the whole trust region fits on one screen. Every "
        "number is exact (closed forms), and the step is computed by the engine's own TRPO "
        "solver: conjugate gradient, max step, backtracking line search."
    )
    cols = st.columns(len(PRESETS))
    for col, name in zip(cols, PRESETS):
        col.button(name, on_click=_apply_preset, args=(name,), width="stretch")
    scenario = _controls()
    query = scenario.to_query()
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    problem, theta0 = scenario.build(), scenario.theta0()
    if not solvable(problem, theta0):
        st.warning(
            "At this θ₀ the gradient is zero or the Fisher matrix is singular (equal rewards, a "
            "policy that is deterministic to float64 precision, or a state that is never "
            "visited): no trust-region step is defined. Move θ₀ or change the rewards."
        )
        return
    if scenario.mode == "step":
        _show_step(scenario, problem)
    else:
        _show_updates(scenario, problem)


main()

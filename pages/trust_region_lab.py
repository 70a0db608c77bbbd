"""Trust Region Lab: one TRPO step on a 2-parameter problem, drawn exactly.

The page is widgets + calls: the problems and the step are in ``core.labs.toy_problems`` and
``core.labs.toy_step`` (which runs the engine's own ``core.engine.trust_region`` solver), the plot
geometry in ``ui.toy_geometry``, the figures in ``ui.toy_figures``, the step-through stages in
``ui.toy_stages`` (moved through by ``ui.stepper``: buttons and → / ← / space). The scenario,
stage included, lives in the URL (``ui.toy_scenario``); every control keeps its value across page
changes (``ui.widgets``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from core.labs.toy_problems import PROBLEMS, ToyProblem
from core.labs.toy_step import METHODS, escape_iteration, lab_step, run_updates, solvable
from ui import deck_url, stepper, toy_figures, widgets
from ui.state import ensure_app_navigation
from ui.toy_figures import METHOD_NAMES, objective_figure, paths_figure, slice_figure, step_figure
from ui.toy_geometry import fit_bounds, grid_values, quadratic_ellipse, slice_along, step_bounds
from ui.toy_numbers import step_numbers, trials_table
from ui.toy_scenario import (
    DEFAULT,
    PRESETS,
    PROBLEM_PARAMS,
    SOLVER_PARAMS,
    START_LIMIT,
    ParamSpec,
    Scenario,
    UrlNote,
)
from ui.toy_stages import clamp_stage, path_stages, step_stages
from ui.toy_text import DERIVATION, PATHS_TEXT, VANILLA_KL_TEXT

ensure_app_navigation()

SOLVER = {p.name: p for p in SOLVER_PARAMS}
TITLES = {key: cls().title for key, cls in PROBLEMS.items()}
VIEW_LABELS = {"surrogate": "surrogate ΔL", "objective": "true objective J"}
MODE_LABELS = {"step": "one TRPO step", "updates": "run N updates"}
VANILLA_LABELS = {"lr": "fixed learning rate η", "kl": "same KL as TRPO (½dᵀFd = δ)"}
WINDOW_LABELS = {"trust": "zoom to the trust region", "landscape": "whole landscape"}
WINDOW = "trust"  # the window a scenario opens with
PATH_WINDOW_LABELS = {"fit": "fit the paths", "fixed": "fixed (the problem's window)"}
STAGE_KEYS = {"step": "trl_stage_step", "updates": "trl_stage_updates"}  # None: whole picture
# The page-wide controls' defaults (each problem's own controls default to its knobs and start).
DEFAULTS: dict[str, object] = {f"trl_{p.name}": p.default for p in SOLVER_PARAMS} | {
    "trl_problem": DEFAULT.problem,
    "trl_view": DEFAULT.view,
    "trl_mode": DEFAULT.mode,
    "trl_vanilla": DEFAULT.vanilla,
    "trl_window": WINDOW,
    "trl_path_window": "fit",
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
    for key in STAGE_KEYS.values():
        st.session_state[key] = None


def _first_visit() -> None:
    """Load the scenario from the URL (or the first preset) once per session; the values the
    URL could not give as they were are kept as notes for :func:`_url_warnings`."""
    if "trl_loaded" in st.session_state:
        return
    st.session_state["trl_loaded"] = True
    query = widgets.page_query()  # without ?present=1
    scenario, notes = Scenario.read_query(query) if query else (next(iter(PRESETS.values())), [])
    _set(_scenario_values(scenario) | {"trl_window": WINDOW})
    st.session_state[STAGE_KEYS[scenario.mode]] = scenario.stage
    st.session_state["trl_url_notes"] = [n.message() for n in notes]
    st.session_state["trl_url_stage"] = scenario.stage  # checked against the step's stages


def _url_warnings(query: dict[str, str]) -> None:
    """The link's corrected values, shown until the scenario changes (one warning each)."""
    notes = st.session_state.get("trl_url_notes")
    if not notes:
        return
    first = st.session_state.setdefault("trl_url_query", query)
    if first != query:
        st.session_state["trl_url_notes"] = []
        return
    for note in notes:
        st.warning(note, icon="⚠️")


def _check_url_stage(n_stages: int) -> None:
    """A stage that came with the link beyond this scenario's last one is noted."""
    given = st.session_state.pop("trl_url_stage", None)
    if given is not None and given > n_stages - 1:
        allowed, used = f"an integer in [0, {n_stages - 1}] here", f"{n_stages - 1} (all)"
        note = UrlNote("stage", str(given), allowed, used, "step-through stage").message()
        st.session_state.setdefault("trl_url_notes", []).append(note)


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
    widgets.kept("trl_path_window", DEFAULTS["trl_path_window"])
    mode = _radio("Mode", MODE_LABELS, "trl_mode", horizontal=True)
    if mode == "step":
        _radio("Contours", VIEW_LABELS, "trl_view", horizontal=True)
        _radio("Window", WINDOW_LABELS, "trl_window", horizontal=True)
    else:
        _solver_input(sb.slider, "n_updates")
        _radio("Window", PATH_WINDOW_LABELS, "trl_path_window", horizontal=True)
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
        stage=ss.get(STAGE_KEYS[mode]),
    )


# --- numbers and tables ------------------------------------------------------------------------


def _paths_table(paths, best: float) -> None:
    """Final J, updates to 90 % of the way to sup J and updates without a step, per method."""
    J0 = float(paths[0].objectives[0])
    level = J0 + 0.9 * (best - J0)
    rows = []
    for p in paths:
        reached = escape_iteration(p, level)
        rows.append(
            {
                "method": METHOD_NAMES[p.method],
                "final J": f"{float(p.objectives[-1]):.4f}",
                f"updates to J ≥ {level:.3g}": "not reached" if reached is None else str(reached),
                "no step": str(sum(not a for a in p.accepted)),
            }
        )
    st.table(pd.DataFrame(rows).set_index("method"))
    st.caption(
        f"sup J = {best:.4g}; the level is 90 % of the way from J(θ₀) to it. No step: TRPO's "
        "line search rejected every trial, or the policy is deterministic to float64 precision."
    )


# --- the page ----------------------------------------------------------------------------------


def _main_chart(fig: go.Figure) -> None:
    """The main θ-plane chart; clicking a point sets θ₀ (:func:`_on_click`). In presentation
    mode it fills the screen (``ui.presentation``) with its legend beside it."""
    st.plotly_chart(
        toy_figures.for_screen(fig) if widgets.presentation_on() else fig,
        key="trl_chart",
        on_select=_on_click,
        selection_mode="points",
        config={"displaylogo": False},
        theme=None,
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _step_view(scenario: Scenario, window: str):
    """The traced step, its stages and what the figures need (pure; cached per scenario)."""
    problem, theta0 = scenario.build(), scenario.theta0()
    step = lab_step(problem, theta0, scenario.settings())
    bounds = step_bounds(problem, step, scenario.delta) if window == "trust" else problem.bounds
    grid = grid_values(problem, theta0, bounds, n=101)
    ellipse = quadratic_ellipse(step.fisher, scenario.delta)
    cut = slice_along(problem, theta0, step.step, torch.linspace(0, 1.25, 121, dtype=torch.float64))
    stages = step_stages(step, scenario.delta, scenario.damping)
    return step, stages, (grid, ellipse, bounds), slice_figure(cut, step, scenario.delta)


def _show_step(scenario: Scenario, problem, view) -> None:
    step, stages, (grid, ellipse, bounds), cut_fig = view
    left, right = st.columns([2.5, 1], gap="medium")
    with left:
        stage = stepper.stage_controls(STAGE_KEYS["step"], stages, keyboard_key="trl_keys")
        fig = step_figure(
            step,
            grid,
            ellipse,
            scenario.delta,
            problem.param_labels,
            bounds,
            scenario.view,
            stage=None if stage is stages[-1] else stage,
        )
        _main_chart(fig)
    shown = None if stage is stages[-1] else stage
    with right:
        step_numbers(step, scenario.delta, shown)
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
        trials_table(step, shown)
        st.markdown(f"**{problem.title}.** {problem.description}")


@st.cache_data(max_entries=64, show_spinner=False)
def _paths_view(scenario: Scenario):
    """N updates of each method from θ₀ and their stages (pure; cached per scenario)."""
    problem, theta0 = scenario.build(), scenario.theta0()
    lr = scenario.lr if scenario.vanilla == "lr" else None
    paths = [
        run_updates(problem, theta0, m, scenario.settings(), scenario.n_updates, lr)
        for m in METHODS
    ]
    return paths, path_stages(paths)


@st.cache_data(max_entries=64, show_spinner=False)
def _paths_grid(scenario: Scenario, window: str):
    """The window (fitted to the paths, or the problem's own) and J on a grid over it."""
    problem, theta0 = scenario.build(), scenario.theta0()
    paths, _ = _paths_view(scenario)
    bounds = fit_bounds(paths) if window == "fit" else problem.bounds
    return bounds, grid_values(problem, theta0, bounds, n=101)


def _show_updates(scenario: Scenario, problem, view) -> None:
    paths, stages = view
    window = st.session_state["trl_path_window"]
    bounds, grid = _paths_grid(replace(scenario, stage=None), window)
    left, right = st.columns([1.8, 1], gap="medium")
    with left:
        stage = stepper.stage_controls(STAGE_KEYS["updates"], stages, keyboard_key="trl_keys")
        upto = None if stage is stages[-1] else stage.updates_shown
        fig = paths_figure(
            paths,
            grid,
            problem.param_labels,
            bounds,
            scenario.theta0().numpy(),
            equal_aspect=window == "fixed",
            upto=upto,
        )
        _main_chart(fig)
    with right:
        best = problem.best_value()
        st.plotly_chart(objective_figure(paths, best, upto=upto), key="trl_objective", theme=None)
        _paths_table(paths, best)
        if scenario.vanilla == "kl":
            st.info(VANILLA_KL_TEXT)
        st.markdown(PATHS_TEXT)


def main() -> None:
    _first_visit()
    st.title("Trust Region Lab")
    if not widgets.presentation_on():  # presentation mode: the chart needs the room
        st.caption(
            "A policy with two parameters, so the whole trust region fits on one screen. Every "
            "number is exact (closed forms), and the step is computed by the engine's own TRPO "
            "solver: conjugate gradient, max step, backtracking line search. Step through it "
            "with ◀ / ▶ or the keyboard (→ or space: next, ←: back)."
        )
    cols = st.columns(len(PRESETS))
    for col, name in zip(cols, PRESETS):
        col.button(name, on_click=_apply_preset, args=(name,), width="stretch")
    notes = st.container()
    scenario = _controls()
    problem, theta0 = scenario.build(), scenario.theta0()
    if not solvable(problem, theta0):
        _write_url(scenario, notes)
        st.warning(
            "At this θ₀ the gradient is zero or the Fisher matrix is singular (equal rewards, a "
            "policy that is deterministic to float64 precision, or a state that is never "
            "visited): no trust-region step is defined. Move θ₀ or change the rewards."
        )
        return
    base = replace(scenario, stage=None)  # the stage does not change what is computed
    if scenario.mode == "step":
        view = _step_view(base, st.session_state["trl_window"])
    else:
        view = _paths_view(base)
    key = STAGE_KEYS[scenario.mode]
    n_stages = len(view[1])
    _check_url_stage(n_stages)
    st.session_state[key] = clamp_stage(st.session_state.get(key), n_stages)
    if scenario.mode == "step":
        _show_step(scenario, problem, view)
    else:
        _show_updates(scenario, problem, view)
    _write_url(replace(scenario, stage=st.session_state[key]), notes)


def _write_url(scenario: Scenario, notes) -> None:
    """Put the scenario in the URL, and show the link's corrected values in ``notes``."""
    query = scenario.to_query()
    if widgets.page_query() != query:
        st.query_params.from_dict(deck_url.carried(widgets.with_flag(query)))  # ?present, ?deck
    with notes:
        _url_warnings(query)


main()

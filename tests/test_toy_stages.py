"""The Trust Region Lab's step-through stages, N-update paths (window, coinciding paths, the
vanilla crawl) and the URL notes: pure data and figures, no Streamlit run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.labs.toy_step import METHODS, lab_step, run_updates
from ui.stepper import move
from ui.toy_figures import (
    PATH_STYLES,
    TRACE_ACCEPTED,
    TRACE_CG,
    TRACE_ELLIPSE,
    TRACE_KL,
    TRACE_NATURAL,
    TRACE_NEW,
    TRACE_REJECTED,
    TRACE_STEP,
    TRACE_VANILLA,
    paths_figure,
    step_figure,
)
from ui.toy_geometry import fit_bounds, grid_values, quadratic_ellipse, step_bounds
from ui.toy_scenario import DEFAULT, PRESETS, Scenario
from ui.toy_stages import LAYERS, clamp_stage, path_stages, step_stages

DOCUMENTED = PRESETS["Rejected full step"]
PLATEAU = PRESETS["Kakade's plateau"]


def _step(scenario: Scenario):
    return lab_step(scenario.build(), scenario.theta0(), scenario.settings())


def _paths(scenario: Scenario) -> list:
    lr = scenario.lr if scenario.vanilla == "lr" else None
    problem, theta0, settings = scenario.build(), scenario.theta0(), scenario.settings()
    return [run_updates(problem, theta0, m, settings, scenario.n_updates, lr) for m in METHODS]


# --- the stages of one step ---------------------------------------------------------------------


def test_documented_step_is_revealed_in_the_lecture_order():
    stages = step_stages(_step(DOCUMENTED), DOCUMENTED.delta)
    assert [s.key for s in stages] == [
        "start",
        "gradient",
        "ellipse",
        "cg1",
        "cg2",
        "natural",
        "kl_ball",
        "trial0",
        "trial1",
        "accepted",
    ]
    # Each stage adds to the last: layers, CG iterates and trials never disappear.
    for before, after in zip(stages, stages[1:]):
        assert before.layers <= after.layers
        assert before.cg_shown <= after.cg_shown and before.trials_shown <= after.trials_shown
    assert [s.cg_shown for s in stages[3:5]] == [1, 2]
    assert [s.trials_shown for s in stages[7:]] == [1, 2, 2]
    assert stages[-1].layers == frozenset(LAYERS)


def test_each_stage_says_what_it_shows_with_its_numbers():
    step = _step(DOCUMENTED)
    text = {s.key: s.text for s in step_stages(step, DOCUMENTED.delta)}
    assert "θ_old = (-2, 2)" in text["start"]
    assert "g = ∇L(θ_old) = (0.0129, 0.00933)" in text["gradient"]
    assert "½dᵀFd = δ = 0.01" in text["ellipse"]
    assert "x₁ lies along g" in text["cg1"]
    assert f"{step.cg_residuals[2]:.2e}" in text["cg2"]  # rᵀr after two iterations: ≈ 0
    assert "F⁻¹g = (1, 0.2)" in text["natural"] and "max step s" in text["natural"]
    assert "0.0126: outside the ball" in text["kl_ball"]
    assert "exact KL 0.0126 > δ = 0.01: rejected" in text["trial0"]
    assert "accepted" in text["trial1"] and "α¹ = 0.5" in text["trial1"]
    assert "θ_new = (-1.42, 2.12)" in text["accepted"]
    for sentence in text.values():  # one sentence each
        assert sentence.count(". ") == 0 and sentence.endswith(".")


def test_a_step_with_no_accepted_trial_ends_by_keeping_theta_old():
    """(Rare on these toys: a tiny enough trial always passes. Built from the documented step.)"""
    step = _step(DOCUMENTED)
    step.trials = [
        replace(t, accepted=False, reason="surrogate change -1 ≤ 0") for t in step.trials
    ]
    step.trials[1].surrogate_change = -1.0
    step.accepted, step.theta_new = False, step.theta_old
    stages = step_stages(step, DOCUMENTED.delta)
    assert "ΔL = -1 ≤ 0: rejected" in stages[-2].text
    assert "keeps θ_old" in stages[-1].text and "no step" in stages[-1].text
    traces = _figure_of(step, stages[-1])
    assert TRACE_NEW not in traces and TRACE_ACCEPTED not in traces


def _figure(scenario: Scenario, stage):
    return _figure_of(_step(scenario), stage, scenario)


def _figure_of(step, stage, scenario: Scenario = DOCUMENTED):
    problem = scenario.build()
    bounds = step_bounds(problem, step, scenario.delta)
    grid = grid_values(problem, scenario.theta0(), bounds, n=21)
    ellipse = quadratic_ellipse(step.fisher, scenario.delta)
    fig = step_figure(
        step, grid, ellipse, scenario.delta, problem.param_labels, bounds, "surrogate", stage
    )
    return {t.name: t for t in fig.data if t.name}


def test_each_stage_draws_only_what_it_has_revealed_and_keeps_the_rest_in_the_legend():
    step = _step(DOCUMENTED)
    stages = step_stages(step, DOCUMENTED.delta)
    layer_of = {
        TRACE_VANILLA: "gradient",
        TRACE_ELLIPSE: "ellipse",
        TRACE_CG: "cg",
        TRACE_NATURAL: "natural",
        TRACE_STEP: "natural",
        TRACE_KL: "kl_ball",
        TRACE_REJECTED: "trials",
        TRACE_ACCEPTED: "trials",
        TRACE_NEW: "accepted",
    }
    for stage in stages:
        traces = _figure(DOCUMENTED, stage)
        assert set(layer_of) <= set(traces)  # the legend is the same at every stage
        for name, layer in layer_of.items():
            expected = True if layer in stage.layers else "legendonly"
            assert traces[name].visible == expected, (stage.key, name)
        assert len(traces[TRACE_CG].x) == stage.cg_shown + 1  # θ_old, then x₁ … x_k
        trials = len(traces[TRACE_REJECTED].x) + len(traces[TRACE_ACCEPTED].x)
        assert trials == stage.trials_shown
    trial0 = next(s for s in stages if s.key == "trial0")
    assert len(_figure(DOCUMENTED, trial0)[TRACE_ACCEPTED].x) == 0  # the verdict comes later


def test_the_whole_picture_is_the_last_stage():
    stages = step_stages(_step(DOCUMENTED), DOCUMENTED.delta)
    whole, last = _figure(DOCUMENTED, None), _figure(DOCUMENTED, stages[-1])
    assert whole.keys() == last.keys()
    for name in whole:
        assert whole[name].visible in (None, True) and last[name].visible in (None, True)
        if whole[name].x is not None:
            assert np.allclose(np.asarray(whole[name].x), np.asarray(last[name].x))


@pytest.mark.parametrize(
    ("stage", "action", "expected"),
    [
        (0, "next", 1),
        (1, "back", 0),
        (0, "back", 0),
        (8, "next", None),  # the last of 10 stages is the whole picture
        (None, "next", None),
        (None, "back", 8),
        (5, "first", 0),
        (5, "last", None),
        (42, "back", 8),
    ],
)
def test_moving_between_stages(stage, action, expected):
    assert move(stage, action, 10) == expected


def test_a_stage_beyond_the_last_is_the_whole_picture():
    assert clamp_stage(3, 10) == 3
    assert (
        clamp_stage(9, 10) is None and clamp_stage(40, 10) is None and clamp_stage(None, 4) is None
    )


# --- N-update paths -----------------------------------------------------------------------------


@pytest.mark.parametrize("vanilla", ["lr", "kl"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_the_fitted_window_holds_every_point_of_every_path(name, vanilla):
    scenario = replace(PRESETS[name], vanilla=vanilla, n_updates=30)
    paths = _paths(scenario)
    (x0, x1), (y0, y1) = fit_bounds(paths)
    points = torch.cat([p.thetas for p in paths])
    assert bool(((points[:, 0] > x0) & (points[:, 0] < x1)).all())
    assert bool(((points[:, 1] > y0) & (points[:, 1] < y1)).all())
    grid = grid_values(scenario.build(), scenario.theta0(), ((x0, x1), (y0, y1)), n=11)
    fig = paths_figure(paths, grid, ("a", "b"), ((x0, x1), (y0, y1)), scenario.theta0().numpy(),
                       equal_aspect=False)  # fmt: skip
    assert not any(a.text and "outside" in a.text for a in fig.layout.annotations)


def test_the_fixed_window_counts_the_points_it_cannot_show():
    paths = _paths(PLATEAU)  # NPG and TRPO climb to θ₂ ≈ 40, far above the ±6 window
    problem = PLATEAU.build()
    grid = grid_values(problem, PLATEAU.theta0(), problem.bounds, n=11)
    fig = paths_figure(paths, grid, ("a", "b"), problem.bounds, PLATEAU.theta0().numpy())
    (note,) = [a.text for a in fig.layout.annotations if "outside" in a.text]
    assert int(note.split()[0]) > 10


def test_coinciding_npg_and_trpo_paths_stay_distinguishable():
    npg, trpo = _paths(PLATEAU)[1:]
    assert torch.allclose(npg.thetas[:5], trpo.thetas[:5])  # every early line search accepts s
    problem = PLATEAU.build()
    bounds = fit_bounds([npg, trpo])
    grid = grid_values(problem, PLATEAU.theta0(), bounds, n=11)
    fig = paths_figure([npg, trpo], grid, ("a", "b"), bounds, PLATEAU.theta0().numpy())
    below, above = (t for t in fig.data if t.name in ("NPG (no line search)", "TRPO"))
    assert below.name.startswith("NPG")  # drawn first, so TRPO lies on top of it
    assert below.line.dash != above.line.dash
    assert below.marker.symbol != above.marker.symbol and "open" in below.marker.symbol
    # NPG's line and ring are wider than TRPO's: both show where the points are the same.
    assert below.line.width > above.line.width and below.marker.size > above.marker.size + 4
    assert PATH_STYLES["vanilla"]["symbol"] not in (below.marker.symbol, above.marker.symbol)


def test_vanilla_with_a_fixed_learning_rate_crawls_across_the_plateau_by_default():
    assert DEFAULT.vanilla == PLATEAU.vanilla == "lr"
    vanilla = _paths(PLATEAU)[0]
    J = vanilla.objectives
    assert bool((J[1:] >= J[:-1]).all())  # it climbs at every update …
    assert float(J[-1]) < 1.0 < 0.9 * PLATEAU.build().best_value()  # … but stays on the plateau
    steps = (vanilla.thetas[1:] - vanilla.thetas[:-1]).norm(dim=1)
    assert float(steps.max()) < 1.0 and float(vanilla.thetas[:, 0].max()) < 10
    kl_vanilla = _paths(Scenario(**{**PLATEAU.__dict__, "vanilla": "kl"}))[0]
    assert float(kl_vanilla.thetas[:, 0].max()) > 1000  # the jump the page explains


def test_path_stages_play_one_update_at_a_time():
    paths = _paths(PLATEAU)
    stages = path_stages(paths)
    assert len(stages) == PLATEAU.n_updates + 1
    assert [s.updates_shown for s in stages] == list(range(PLATEAU.n_updates + 1))
    assert "After update 3 of 30" in stages[3].text and "TRPO" in stages[3].text
    problem = PLATEAU.build()
    bounds = fit_bounds(paths)
    grid = grid_values(problem, PLATEAU.theta0(), bounds, n=11)
    fig = paths_figure(paths, grid, ("a", "b"), bounds, PLATEAU.theta0().numpy(), upto=3)
    for trace in fig.data:
        if trace.name in ("vanilla gradient", "NPG (no line search)", "TRPO"):
            assert len(trace.x) == 4


# --- the URL ------------------------------------------------------------------------------------


def test_url_corrections_name_the_field_the_value_the_range_and_the_value_used():
    query = {"delta": "-1", "n_updates": "500", "problem": "cartpole", "stage": "two"}
    scenario, notes = Scenario.read_query(query | {"start": "1,-90"})
    assert scenario.delta == 1e-4 and scenario.n_updates == 100 and scenario.stage is None
    messages = {n.field: n.message() for n in notes}
    assert set(messages) == {"delta", "n_updates", "problem", "stage", "start"}
    assert messages["delta"] == (
        "The link's KL bound δ (`delta`) = \\-1 is not allowed (allowed: [0.0001, 1]); "
        "the lab uses `0.0001`."
    )
    assert (
        "= 500 is not allowed" in messages["n_updates"]
        and "an integer in [1, 100]" in messages["n_updates"]
    )
    assert "one of softmax, gaussian, kakade" in messages["problem"]
    assert "`1,-50`" in messages["start"]


def test_a_valid_url_has_no_notes_and_keeps_its_stage():
    query = PRESETS["Gaussian, rejected step"].to_query() | {"stage": "4"}
    scenario, notes = Scenario.read_query(query)
    assert notes == [] and scenario.stage == 4
    assert scenario.to_query()["stage"] == "4"
    assert (
        "stage" not in Scenario.from_query(PRESETS["Gaussian, rejected step"].to_query()).to_query()
    )

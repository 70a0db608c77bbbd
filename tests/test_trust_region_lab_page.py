"""The Trust Region Lab page, rendered headless with Streamlit's AppTest."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.toy_figures import (
    TRACE_ACCEPTED,
    TRACE_CG,
    TRACE_ELLIPSE,
    TRACE_KL,
    TRACE_NATURAL,
    TRACE_REJECTED,
    TRACE_VANILLA,
)
from ui.toy_scenario import PRESETS

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "trust_region_lab.py")


def _run(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if query:
        at.query_params.update(query)
    return at.run()


def _main_figure(at: AppTest) -> dict:
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "trl_chart" in c.proto.id]
    return json.loads(chart.proto.spec)


def _decode(value):
    """Plotly ≥ 6 writes numpy arrays as {"dtype", "bdata" (base64), "shape"}: read them back."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _traces(figure: dict) -> dict[str, dict]:
    return {t["name"]: _decode(t) for t in figure["data"] if t.get("name")}


def _press(at: AppTest, label: str) -> AppTest:
    (button,) = [b for b in at.button if b.label == label]
    return button.click().run()


def _assert_step_figure(at: AppTest, delta: float) -> dict[str, dict]:
    traces = _traces(_main_figure(at))
    kl = traces[TRACE_KL]
    assert kl["type"] == "contour"
    assert kl["contours"]["start"] == kl["contours"]["end"] == pytest.approx(delta)
    assert len(traces[TRACE_ELLIPSE]["x"]) > 50
    for arrow in (TRACE_VANILLA, TRACE_NATURAL):
        assert len(traces[arrow]["x"]) == 2
        assert traces[arrow]["marker"]["symbol"] == "arrow"
    assert len(traces[TRACE_CG]["x"]) >= 2
    assert TRACE_ACCEPTED in traces or TRACE_REJECTED in traces
    return traces


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_renders_ellipse_kl_contour_arrows_and_trials(name):
    at = _press(_run(), name)
    assert not at.exception
    preset = PRESETS[name]
    if preset.mode == "updates":
        traces = _traces(_main_figure(at))
        assert {"vanilla gradient", "NPG (no line search)", "TRPO"} <= set(traces)
        at = at.sidebar.radio(key="trl_mode").set_value("step").run()
        assert not at.exception
    _assert_step_figure(at, preset.delta)
    assert at.query_params["problem"] == preset.problem


def test_documented_case_shows_rejected_full_step_and_accepted_half_step():
    at = _run()  # the first preset is the default scenario
    traces = _assert_step_figure(at, 0.01)
    rejected, accepted = traces[TRACE_REJECTED], traces[TRACE_ACCEPTED]
    assert [row[1] for row in rejected["customdata"]] == [1.0]
    assert rejected["customdata"][0][2] == pytest.approx(0.0126, abs=5e-5)
    assert [row[1] for row in accepted["customdata"]] == [0.5]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["exact KL of full step"] == "0.0126"
    assert metrics["accepted αʲ"] == "0.5"


def test_scenario_is_read_from_the_url_and_written_back():
    at = _run({"problem": "gaussian", "target": "1", "start": "0.5,-0.25", "delta": "0.03"})
    assert not at.exception
    start = _traces(_main_figure(at))["θ_old"]
    assert (start["x"][0], start["y"][0]) == (0.5, -0.25)
    _assert_step_figure(at, 0.03)
    assert at.query_params["target"] == "1"
    at = at.sidebar.number_input(key="trl_delta").set_value(0.02).run()
    _assert_step_figure(at, 0.02)
    assert at.query_params["delta"] == "0.02"


def test_malformed_url_falls_back_to_defaults():
    at = _run({"problem": "cartpole", "delta": "lots", "start": "a,b", "mode": "fast"})
    assert not at.exception
    assert at.query_params["problem"] == "softmax"
    _assert_step_figure(at, 0.01)


def test_url_values_at_the_edges_of_every_range_render():
    query = {"problem": "kakade", "gamma": "0.99", "delta": "1", "damping": "1"}
    query |= {"cg_iters": "20", "backtrack_coef": "0.33", "scale": "0.1", "lr": "100"}
    at = _run(query | {"mode": "updates", "n_updates": "500", "vanilla": "lr"})
    assert not at.exception
    assert at.query_params["n_updates"] == "100"
    at = at.sidebar.radio(key="trl_mode").set_value("step").run()
    assert not at.exception
    _assert_step_figure(at, 1.0)


def test_take_this_step_moves_theta0_to_the_accepted_point():
    at = _run()
    accepted = _traces(_main_figure(at))[TRACE_ACCEPTED]
    at = _press(at, "Take this step (θ₀ ← θ_new)")
    start = _traces(_main_figure(at))["θ_old"]
    assert start["x"][0] == pytest.approx(accepted["x"][0], abs=1e-3)
    assert start["y"][0] == pytest.approx(accepted["y"][0], abs=1e-3)


def test_each_problem_keeps_its_own_start_when_switching():
    at = _run()
    at = at.sidebar.number_input(key="trl_softmax_start1").set_value(-1.0).run()
    at = at.sidebar.selectbox(key="trl_problem").set_value("kakade").run()
    assert not at.exception
    start = _traces(_main_figure(at))["θ_old"]
    assert (start["x"][0], start["y"][0]) == (3.0, -3.0)
    at = at.sidebar.selectbox(key="trl_problem").set_value("softmax").run()
    assert at.sidebar.number_input(key="trl_softmax_start1").value == -1.0


def test_coordinate_scaling_moves_vanilla_arrow_not_natural_arrow():
    at = _run()
    before = _traces(_main_figure(at))
    at = at.sidebar.slider(key="trl_scale").set_value(3.0).run()
    after = _traces(_main_figure(at))
    assert after[TRACE_NATURAL]["x"] == pytest.approx(before[TRACE_NATURAL]["x"])
    assert after[TRACE_NATURAL]["y"] == pytest.approx(before[TRACE_NATURAL]["y"])
    assert after[TRACE_VANILLA]["x"][1] != pytest.approx(before[TRACE_VANILLA]["x"][1], abs=1e-3)


@pytest.mark.parametrize(
    "query",
    [
        {"problem": "kakade", "start": "-50,50"},
        {"problem": "kakade", "gamma": "0", "damping": "0.1"},
        {"problem": "softmax", "r1": "1", "r2": "1", "r3": "1"},
    ],
    ids=["saturated", "unvisited-state", "equal-rewards"],
)
def test_degenerate_scenario_shows_a_warning_instead_of_a_step(query):
    at = _run(query)
    assert not at.exception
    assert any("no trust-region step" in w.value for w in at.warning)


def test_lab_state_survives_leaving_the_page_and_coming_back():
    app = str(Path(PAGE).parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=120).run()
    at = at.switch_page("pages/trust_region_lab.py").run()
    at = at.sidebar.number_input(key="trl_delta").set_value(0.03).run()
    at = at.switch_page("pages/home.py").run()
    assert not at.exception
    at = at.switch_page("pages/trust_region_lab.py").run()
    assert not at.exception
    assert at.sidebar.number_input(key="trl_delta").value == 0.03
    _assert_step_figure(at, 0.03)


# --- step-through, URL warnings, N-update paths (issue 17) ---------------------------------------


def _visible(traces: dict[str, dict], name: str) -> bool:
    return traces[name].get("visible", True) is True


def test_next_and_back_step_through_the_trpo_step_and_keep_the_stage_in_the_url():
    at = _run({"stage": "0"})  # the documented case, from its first stage
    assert not at.exception
    traces = _traces(_main_figure(at))
    assert not _visible(traces, TRACE_VANILLA) and not _visible(traces, TRACE_KL)
    assert any("1 / 10" in m.value for m in at.markdown)
    at = _press(at, "Next ▶")
    assert at.query_params["stage"] == "1"
    traces = _traces(_main_figure(at))
    assert _visible(traces, TRACE_VANILLA) and not _visible(traces, TRACE_ELLIPSE)
    assert any(m.value.startswith("g = ∇L(θ_old)") for m in at.markdown)
    at = _press(_press(at, "Next ▶"), "◀ Back")
    assert at.query_params["stage"] == "1"
    at = _press(at, "⏭")  # the whole picture: no stage in the URL
    assert "stage" not in at.query_params
    traces = _traces(_main_figure(at))
    assert all(_visible(traces, name) for name in (TRACE_VANILLA, TRACE_KL, TRACE_ACCEPTED))
    at = _press(at, "◀ Back")
    assert at.query_params["stage"] == "8"  # the last trial, before the accepted step
    assert len(_traces(_main_figure(at))[TRACE_ACCEPTED]["x"]) == 1


FINAL = {"accepted αʲ": "0.5", "ΔJ of the update": "+0.0101"}


@pytest.mark.parametrize(
    "stage, shown",
    [
        ("0", {}),
        ("5", {"quadratic ½sᵀFs": "0.0100"}),  # the max step s on the ellipse
        ("7", {"quadratic ½sᵀFs": "0.0100", "exact KL of full step": "0.0126"}),  # trial 1
        ("9", {"quadratic ½sᵀFs": "0.0100", "exact KL of full step": "0.0126"} | FINAL),
    ],
)
def test_stepping_through_each_number_appears_with_its_stage(stage, shown):
    at = _run({"stage": stage})
    metrics = {m.label: m.value for m in at.metric}
    assert {k: v for k, v in metrics.items() if v != "…"} == shown
    trials = [t for t in at.table if "verdict" in str(t.value.columns.tolist())]
    rows = len(trials[0].value) if trials else 0
    assert rows == {"0": 0, "5": 0, "7": 1, "9": 2}[stage]


def test_a_url_stage_beyond_the_last_shows_the_whole_picture_and_says_so():
    at = _run({"stage": "40"})
    assert not at.exception
    (warning,) = at.warning
    assert (
        "`stage`" in warning.value
        and "= 40 is not allowed" in warning.value
        and "[0, 9]" in warning.value
    )
    assert "stage" not in at.query_params


def test_out_of_range_url_values_are_named_in_a_warning_until_the_scenario_changes():
    at = _run({"problem": "softmax", "delta": "-1", "n_updates": "500", "backtrack_coef": "x"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    (delta,) = [w for w in warnings if "`delta`" in w]
    assert "= \\-1 is not allowed" in delta and "[0.0001, 1]" in delta and "`0.0001`" in delta
    assert any("`n_updates`" in w and "= 500 is" in w and "`100`" in w for w in warnings)
    assert any("`backtrack_coef`" in w and "= x is" in w and "`0.5`" in w for w in warnings)
    assert at.query_params["delta"] == "0.0001"
    at = at.sidebar.number_input(key="trl_delta").set_value(0.02).run()
    assert not at.warning


def test_a_valid_url_shows_no_warning():
    at = _run(PRESETS["Gaussian, small σ"].to_query())
    assert not at.exception and not at.warning


def _path_traces(at: AppTest) -> dict[str, dict]:
    names = ("vanilla gradient", "NPG (no line search)", "TRPO")
    return {k: v for k, v in _traces(_main_figure(at)).items() if k in names}


def test_plateau_paths_fit_the_window_play_one_update_at_a_time_and_show_every_column():
    at = _press(_run(), "Kakade's plateau")
    assert not at.exception
    figure = _main_figure(at)
    (x0, x1), (y0, y1) = figure["layout"]["xaxis"]["range"], figure["layout"]["yaxis"]["range"]
    for trace in _path_traces(at).values():
        assert len(trace["x"]) == 31
        assert all(x0 < x < x1 for x in trace["x"]) and all(y0 < y < y1 for y in trace["y"])
    (table,) = at.table
    assert list(table.value.columns) == ["final J", "updates to J ≥ 1.71", "no step"]
    assert not any("same KL" in m.value for m in at.info)
    at = _press(at, "⏮")
    assert at.query_params["stage"] == "0"
    assert all(len(t["x"]) == 1 for t in _path_traces(at).values())
    at = _press(at, "Next ▶")
    assert all(len(t["x"]) == 2 for t in _path_traces(at).values())
    at = at.sidebar.radio(key="trl_path_window").set_value("fixed").run()
    figure = _main_figure(at)
    assert figure["layout"]["yaxis"]["range"] == [-6.0, 6.0]


def test_same_kl_vanilla_comes_with_its_explanation():
    query = PRESETS["Kakade's plateau"].to_query() | {"vanilla": "kl"}
    at = _run(query)
    assert not at.exception
    assert any("same KL as TRPO" in m.value and "6000" in m.value for m in at.info)

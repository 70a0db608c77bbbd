"""The GAE Lab page under Streamlit's AppTest: renders every scenario, keeps it in the URL,
checks itself by sampling, launches a λ sweep through the run manager and reads sweeps back."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.config import RunConfig
from core.engine.trainer import Episode
from core.labs import gae_lab as lab
from tests.helpers import chart_specs, run_ok, values
from ui import presentation

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "gae_lab.py")
DEADLINE_S = 60.0


@pytest.fixture
def page(app_manager):
    """The page alone, on a fresh process-wide manager in this test's data directory."""
    return AppTest.from_file(PAGE, default_timeout=60), app_manager


def trace(specs: list[dict], name: str) -> dict:
    return next(t for s in specs for t in s["data"] if t.get("name", "").startswith(name))


@pytest.mark.parametrize("mdp", list(lab.MDPS))
@pytest.mark.parametrize("kind", lab.ERROR_KINDS)
def test_page_renders_every_mdp_and_critic_error(page, mdp, kind):
    at, _ = page
    at.query_params["mdp"] = mdp
    at.query_params["err"] = kind
    run_ok(at)
    assert at.selectbox(key="gae.mdp").value == mdp
    assert at.radio(key="gae.err").value == kind
    specs = chart_specs(at)
    assert len(specs) >= 4  # λ curves, γ×λ heatmap, per-(s, a) bars, critic
    curve = lab.lambda_curve(lab.Scenario(mdp=mdp, error=kind), [1.0])
    mse = values(trace(specs, "MSE (centred")["y"])
    assert mse[-1] == pytest.approx(curve["mse_centred"].iloc[0], rel=1e-9)


def test_scenario_is_read_from_and_written_to_the_url(page):
    at, _ = page
    at.query_params.update({"mdp": "grid", "lam": "0.4", "n": "64", "gamma": "0.95"})
    run_ok(at)
    assert at.slider(key="gae.lam").value == pytest.approx(0.4)
    assert at.select_slider(key="gae.n").value == 64
    at.slider(key="gae.lam").set_value(0.7)
    run_ok(at)
    assert at.query_params["lam"] == "0.7"
    assert at.query_params["mdp"] == "grid"
    assert at.query_params["n"] == "64"


def test_bad_url_values_fall_back_to_defaults(page):
    at, _ = page
    at.query_params.update({"mdp": "maze", "lam": "7", "n": "abc"})
    run_ok(at)
    assert at.selectbox(key="gae.mdp").value == "chain"
    assert at.slider(key="gae.lam").value == pytest.approx(0.95)
    assert at.select_slider(key="gae.n").value == 16
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3
    (lam,) = [w for w in warnings if "`lam`" in w]
    assert (
        "= 7 is not allowed" in lam and "[0, 1]" in lam and "`0.95`" in lam
    )  # given, allowed, used
    assert any("`mdp`" in w and "= maze is" in w and "chain, grid" in w for w in warnings)
    assert any("`n`" in w and "= abc is" in w and "`16`" in w for w in warnings)
    at.slider(key="gae.lam").set_value(0.5)
    run_ok(at)
    assert not at.warning  # shown until the lab's state changes


def test_a_valid_url_shows_no_warning(page):
    at, _ = page
    at.query_params.update({"mdp": "grid", "lam": "0.4", "n": "64"})
    run_ok(at)
    assert not at.warning


def test_presentation_mode_leads_with_the_metrics_and_the_chart(page):
    """Presentation mode (``?present=1``): no intro, the controls folded under a line naming the
    scenario, the metrics in one row and the main chart keyed to fill the screen. Its larger
    text is ``ui.presentation``'s style sheet (``app.py``), not the page's own."""
    at, _ = page
    run_ok(at)
    assert "Generalized advantage estimation" in " ".join(md.value for md in at.markdown)
    assert not at.expander
    at.query_params["present"] = "1"  # presentation mode (``ui.presentation``): a link
    run_ok(at)
    assert not [h for h in at.get("html") if "stMetricValue" in h.proto.body]
    assert "Generalized advantage estimation" not in " ".join(md.value for md in at.markdown)
    (controls,) = at.expander
    assert "Slippery chain" in controls.label and "λ 0.95" in controls.label
    assert controls.slider(key="gae.lam").value == pytest.approx(0.95)
    assert len(at.metric) == 5
    assert "gae_chart" in presentation.SCREEN_CHARTS


def test_best_lambda_metric_matches_the_exact_curve(page):
    at, _ = page
    run_ok(at)
    curve = lab.lambda_curve(lab.Scenario(), np.round(np.linspace(0, 1, 101), 3))
    best = next(m for m in at.metric if m.label == "best λ")
    assert float(best.value) == pytest.approx(lab.best_lambda(curve), abs=1e-9)


def test_explanation_states_the_bias_variance_direction_correctly(page):
    at, _ = page
    run_ok(at)
    text = " ".join(md.value for md in at.markdown)
    zero = text[text.index("λ = 0: the one-step TD error") : text.index("λ = 1:")]
    one = text[text.index("λ = 1: the Monte-Carlo return minus V̂") :]
    assert "low variance" in zero and "biases" in zero
    assert "variance is high" in one and "centred bias = 0" in one
    assert "high variance" not in zero and "low variance" not in one


def test_monte_carlo_check_agrees_with_the_exact_moments(page):
    at, _ = page
    run_ok(at)
    at.button(key="gae.mc").click()
    run_ok(at)
    table = at.dataframe[0].value
    assert len(table) == 10  # 5 live states × 2 actions of the chain
    assert (table["|z|"] < 5).all()


def test_launch_starts_a_tagged_lambda_sweep_through_the_run_manager(page):
    at, manager = page
    run_ok(at)
    at.select_slider(key="gae.budget").set_value(10_000)
    run_ok(at)
    next(b for b in at.button if b.label.startswith("Launch")).click()
    run_ok(at)
    runs = manager.store.runs()
    try:
        assert len(runs) == 10
        assert runs["sweep_id"].str.startswith("gae-").all() and runs["sweep_id"].nunique() == 1
        configs = [RunConfig.from_json(c) for c in runs["config"]]
        assert sorted({c.gae_lambda for c in configs}) == [0.0, 0.5, 0.9, 0.95, 1.0]
        assert {c.seed for c in configs} == {0, 1}
        assert {c.total_steps for c in configs} == {10_000}
        assert at.selectbox(key="gae.sweep").value == runs["sweep_id"].iloc[0]
    finally:
        for run_id in manager.active():
            manager.stop(run_id)
        deadline = time.monotonic() + DEADLINE_S
        while manager.active():
            assert time.monotonic() < deadline, "runs did not stop"
            manager.wait(manager.active()[0], timeout=5)


def test_sweep_panel_plots_final_return_against_lambda_from_the_store(page):
    at, manager = page
    store = manager.store
    base = RunConfig(algo="ppo", env_id="CartPole-v1", total_steps=1000)
    expected = {}
    for lam in (0.0, 1.0):
        finals = []
        for seed in (0, 1):
            config = base.with_changes(gae_lambda=lam, seed=seed)
            run_id = store.create_run(config, sweep_id="gae-fixture", status="finished")
            rets = [10.0 * (k + 1) * (1 + lam) + seed for k in range(12)]
            episodes = [
                Episode(env_step=80 * (k + 1), ret=r, length=20) for k, r in enumerate(rets)
            ]
            store.append_update(run_id, {"env_steps": 1000.0, "update": 1.0}, episodes)
            finals.append(np.mean(rets[-10:]))
        expected[lam] = np.mean(finals)
    store.flush()
    run_ok(at)
    assert at.selectbox(key="gae.sweep").value == "gae-fixture"
    mean = trace(chart_specs(at), "mean over seeds")
    np.testing.assert_allclose(values(mean["x"]), [0.0, 1.0])
    np.testing.assert_allclose(values(mean["y"]), [expected[0.0], expected[1.0]])


def test_longer_gamma_true_shows_gammas_own_bias_at_lambda_one(page):
    at, _ = page
    at.query_params.update({"gamma": "0.9", "longer": "1", "gtrue": "1", "lam": "1", "size": "0"})
    run_ok(at)
    assert at.toggle(key="gae.longer").value is True
    centred = next(m for m in at.metric if m.label == "centred bias² at λ")
    expected = lab.lambda_curve(
        lab.Scenario(error_size=0.0, gamma=0.9, gamma_true=1.0), [1.0]
    ).iloc[0]["bias2_centred"]
    assert expected > 1e-4
    assert float(centred.value) == pytest.approx(expected, rel=1e-2)
    assert any("γ_true = 1" in s["layout"]["title"]["text"] for s in chart_specs(at))

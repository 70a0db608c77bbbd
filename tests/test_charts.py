"""Figure builders on synthetic frames: the traces hold the data, references and markers exist."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.config import RunConfig
from core.metrics import ENTROPY, VALUE_LOSS
from core.sweep.progress import sweep_points
from ui.charts import comparison, events, run, trust_region
from ui.downsample import downsample


def metrics_frame(n: int = 30, run_id: str = "r1", **extra: np.ndarray) -> pd.DataFrame:
    steps = np.arange(1, n + 1) * 1000
    data = {
        "run_id": run_id,
        "update": np.arange(1, n + 1),
        "env_steps": steps,
        "wall_time": np.arange(1, n + 1) * 0.5,
        "episode_return_mean": np.linspace(10, 200, n),
        "kl_mean": np.full(n, 0.008),
        "kl_quadratic": np.full(n, 0.01),
        "ls_accepted": (np.arange(n) % 5 != 0).astype(float),
        "ls_step_frac": np.where(np.arange(n) % 5 != 0, 0.8 ** (np.arange(n) % 3), 0.0),
        "ls_backtracks": (np.arange(n) % 3).astype(float),
        "surrogate_predicted": np.full(n, 0.02),
        "surrogate_actual": np.full(n, 0.015),
        "entropy": np.linspace(0.69, 0.4, n),
        "value_loss": np.linspace(50, 5, n),
        "clip_frac": np.full(n, np.nan),
    }
    data.update(extra)
    return pd.DataFrame(data)


def events_frame(changes: list[tuple[int, dict]]) -> pd.DataFrame:
    rows = [{"run_id": "r1", "time": 0.0, "env_step": 0, "kind": "started", "payload": None}]
    rows += [
        {"run_id": "r1", "time": float(i + 1), "env_step": s, "kind": "hyperparams", "payload": p}
        for i, (s, p) in enumerate(changes)
    ]
    return pd.DataFrame(rows)


def episodes_frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "run_id": "r1",
            "env_step": np.sort(rng.integers(1, 30_000, n)),
            "ret": rng.uniform(0, 200, n),
            "length": rng.integers(10, 200, n),
        }
    )


def trace(fig: dict, name: str) -> dict:
    """The trace called ``name`` (a prefix is enough) of a figure dict."""
    return next(t for t in fig["data"] if t["name"].startswith(name))


def axes_of(layout: dict) -> dict[str, dict]:
    return {k: v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}


def trpo_figures(**kw: object) -> dict[str, dict]:
    ev = events_frame([(8_000, {"delta": [0.01, 0.05]}), (20_000, {"gae_lambda": [0.95, 0.9]})])
    return run.run_figure_dicts(
        metrics_frame(), episodes_frame(), ev, algo="trpo", config_values={"delta": 0.01}, **kw
    )


# --- downsampling ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2_001, 10_000, 123_457])
def test_downsample_bounds_count_and_keeps_first_and_last(n):
    df = pd.DataFrame({"x": np.arange(n), "y": np.arange(n) ** 2})
    out = downsample(df, max_points=2000)
    assert len(out) <= 2000
    assert out["x"].iloc[0] == 0 and out["x"].iloc[-1] == n - 1
    assert out["x"].is_monotonic_increasing
    # rows are real rows, unchanged
    assert (out["y"] == out["x"] ** 2).all()


def test_downsample_leaves_short_frames_untouched():
    df = pd.DataFrame({"x": np.arange(10)})
    assert downsample(df, max_points=2000) is df


# --- one run -----------------------------------------------------------------------------------


def test_return_figure_holds_every_episode_and_the_moving_average():
    eps = episodes_frame(50)
    fig = run.return_figure(metrics_frame(), eps, smooth=10)
    np.testing.assert_array_equal(trace(fig, "episode return")["y"], eps["ret"].to_numpy())
    # independent moving average: mean of the last 10 returns (fewer at the start)
    r = eps["ret"].to_numpy()
    expected = [r[max(0, i - 9) : i + 1].mean() for i in range(len(r))]
    np.testing.assert_allclose(trace(fig, "moving average")["y"], expected)


def test_long_runs_are_downsampled_in_the_figure():
    n = 50_000
    eps = pd.DataFrame(
        {"run_id": "r1", "env_step": np.arange(1, n + 1), "ret": np.ones(n), "length": 1}
    )
    fig = run.return_figure(metrics_frame(), eps)
    for t in fig["data"]:
        assert len(t["x"]) <= 2000
    assert fig["data"][0]["x"][-1] == n


def test_kl_figure_draws_exact_and_quadratic_kl_against_the_delta_step_line():
    m = metrics_frame()
    ev = events_frame([(12_000, {"delta": [0.01, 0.02]})])
    ref = events.parameter_history(0.01, ev, "delta", x_end=30_000)
    fig = trust_region.kl_figure(m, ev, reference=ref, reference_label="δ")
    np.testing.assert_array_equal(trace(fig, trust_region.KL_NAMES["kl_mean"])["y"], m["kl_mean"])
    assert trust_region.KL_NAMES["kl_quadratic"] in [t["name"] for t in fig["data"]]
    delta = trace(fig, "δ")
    assert delta["x"] == [0.0, 12_000.0, 30_000.0]
    assert delta["y"] == [0.01, 0.02, 0.02]
    assert delta["line"]["shape"] == "hv"


def test_parameter_history_breaks_where_an_option_is_switched_off():
    ev = events_frame([(5_000, {"target_kl": [0.02, None]})])
    hist = events.parameter_history(0.02, ev, "target_kl", x_end=9_000)
    assert hist["value"].iloc[0] == 0.02
    assert np.isnan(hist["value"].iloc[1]) and np.isnan(hist["value"].iloc[2])


def test_hyperparameter_changes_are_markers_on_every_chart():
    figs = run.run_figures(
        metrics_frame(),
        episodes_frame(),
        events_frame([(8_000, {"delta": [0.01, 0.05]}), (20_000, {"gae_lambda": [0.95, 0.9]})]),
        algo="trpo",
        config_values={"delta": 0.01},
        revision="r1",
    )
    assert set(figs) == {"return", "kl", "line_search", "diagnostics"}
    for name, fig in figs.items():
        lines = {s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1}
        assert sorted(lines) == [8_000, 20_000], name
        texts = [a.text for a in fig.layout.annotations]
        assert "δ 0.01→0.05" in texts and "λ 0.95→0.9" in texts, name
        assert "hyperparameter change" in [t.name for t in fig.data], name
        assert fig.layout.uirevision == "r1"


def test_marker_texts_use_the_widget_labels_not_field_names():
    ev = events_frame(
        [(1_000, {"delta": [0.01, 0.02], "gae_lambda": [0.95, 0.9]}), (2_000, {"lr": [1e-3, 2e-3]})]
    )
    (_, both), (_, lr) = events.hyperparameter_changes(ev)
    assert both == "δ 0.01→0.02, λ 0.95→0.9"
    assert "delta" not in both and "gae_lambda" not in both
    assert lr == "Learning rate 0.001→0.002"  # no symbol in its label: the whole label
    unknown = events_frame([(3_000, {"not_a_field": [1, 2]})])
    assert events.hyperparameter_changes(unknown) == [(3_000.0, "not_a_field 1→2")]
    assert events.change_text({"clip_eps": [0.2, 0.1], "kl_target": [0.01, 0.02]}) == (
        "ε 0.2→0.1, d_targ 0.01→0.02"
    )


def test_line_search_figure_separates_accepted_and_rejected_updates():
    m = metrics_frame()
    fig = trust_region.line_search_figure(m)
    accepted, rejected = trace(fig, "accepted"), trace(fig, "rejected")
    ok = m["ls_accepted"] > 0.5
    np.testing.assert_array_equal(accepted["x"], m.loc[ok, "env_steps"])
    np.testing.assert_array_equal(accepted["y"], m.loc[ok, "ls_step_frac"])
    np.testing.assert_array_equal(rejected["x"], m.loc[~ok, "env_steps"])
    assert rejected["y"] == [0.0] * int((~ok).sum())
    bars = trace(fig, "backtracks")
    np.testing.assert_array_equal(bars["y"], m["ls_backtracks"])
    assert (bars["xaxis"], bars["yaxis"]) == ("x2", "y2")
    assert {t["name"] for t in fig["data"]} >= {"predicted gᵀs", "actual ΔL"}
    # three rows that share the x axis of the bottom one, titled as before
    layout = fig["layout"]
    assert [layout[f"xaxis{k}"].get("matches") for k in ("", "2", "3")] == ["x3", "x3", None]
    assert [a["text"] for a in layout["annotations"]] == [
        "accepted step fraction αⁱ",
        "backtracks",
        "surrogate improvement",
    ]


def test_diagnostics_show_only_reported_metrics():
    m = metrics_frame()  # clip_frac is all NaN: a TRPO run does not report it
    assert run.available_diagnostics(m) == ["value_loss", "entropy"]
    fig = run.diagnostics_figure(m)
    assert [a["text"] for a in fig["layout"]["annotations"]][:2] == [
        VALUE_LOSS.label,
        ENTROPY.label,
    ]
    np.testing.assert_array_equal(fig["data"][1]["y"], m["entropy"])


def test_diagnostics_with_an_odd_count_draw_no_empty_subplot():
    m = metrics_frame(explained_variance=np.linspace(0, 1, 30))
    layout = run.diagnostics_figure(m)["layout"]
    assert set(axes_of(layout)) == {f"{a}axis{k}" for a in "xy" for k in ("", "2", "3")}
    # the right column ends after its first row: that subplot shows the x ticks and title
    assert layout["xaxis2"]["title"]["text"] == "env steps"
    assert layout["xaxis"]["matches"] == "x3"


def test_empty_charts_say_what_they_wait_for():
    m = metrics_frame().drop(columns=["entropy", "value_loss"])
    empty = pd.DataFrame(columns=["run_id", "env_step", "ret", "length"])
    figs = run.run_figure_dicts(
        m.drop(columns=["episode_return_mean"]), empty, None, algo="trpo", config_values={}
    )
    assert figs["return"]["layout"]["annotations"][0]["text"].startswith("waiting")
    assert figs["diagnostics"]["layout"]["annotations"][0]["text"].startswith("no diagnostics")


def test_non_trust_region_runs_get_no_line_search_chart():
    m = metrics_frame().drop(columns=["ls_accepted", "ls_step_frac", "ls_backtracks"])
    figs = run.run_figures(m, episodes_frame(), None, algo="dqn", config_values={}, revision="r")
    assert "line_search" not in figs


def test_figure_dicts_hold_the_same_traces_as_the_go_figures():
    m = metrics_frame(eval_return_mean=np.where(np.arange(30) % 10 == 9, 150.0, np.nan))
    ev = events_frame([(8_000, {"delta": [0.01, 0.05]})])
    kw = {"algo": "trpo", "config_values": {"delta": 0.01}, "revision": "r"}
    dicts = run.run_figure_dicts(m, episodes_frame(), ev, **kw)
    figs = run.run_figures(m, episodes_frame(), ev, **kw)
    assert list(dicts) == list(figs)
    for name, fig in figs.items():
        assert len(fig.data) == len(dicts[name]["data"]), name
        for built, drawn in zip(dicts[name]["data"], fig.data):
            assert built["name"] == drawn.name and built["type"] == drawn.type
            np.testing.assert_array_equal(np.asarray(built["x"], float), np.asarray(drawn.x, float))
            np.testing.assert_array_equal(np.asarray(built["y"], float), np.asarray(drawn.y, float))
        assert fig.layout.height == dicts[name]["layout"]["height"]
        assert fig.layout.title.text == dicts[name]["layout"]["title"]["text"]


def test_figure_dicts_are_plain_json_with_none_for_nan():
    nan = np.nan
    m = metrics_frame(
        kl_mean=np.where(np.arange(30) % 4 == 0, nan, 0.008),
        ls_step_frac=np.where(np.arange(30) % 7 == 1, nan, 0.8),
        approx_kl=np.full(30, 0.01),
        entropy=np.where(np.arange(30) == 3, np.inf, 0.5),
    )
    eps = episodes_frame().assign(ret=lambda e: e["ret"].where(e.index % 9 != 0))
    ev = events_frame([(5_000, {"target_kl": [0.02, None]})])
    figs = run.run_figure_dicts(m, eps, ev, algo="ppo", config_values={"target_kl": 0.02})
    for name, fig in figs.items():
        json.dumps(fig, allow_nan=False)  # no NaN, no numpy: plain JSON
        go.Figure(fig)  # and valid Plotly input
        for t in fig["data"]:
            assert isinstance(t["x"], list) and isinstance(t["y"], list), name
    assert trace(figs["kl"], "early-stop KL")["y"] == [0.02, None, None]
    assert None in trace(figs["return"], "episode return")["y"]
    assert None in trace(figs["line_search"], "accepted")["y"]


def test_each_change_is_one_line_through_all_rows_of_a_subplot_figure():
    figs = trpo_figures()
    for shape in figs["line_search"]["layout"]["shapes"]:
        assert (shape["xref"], shape["yref"], shape["y0"], shape["y1"]) == ("x", "paper", 0, 1)
    assert [s["x0"] for s in figs["line_search"]["layout"]["shapes"]] == [8_000, 20_000]
    # diagnostics: two columns with their own x axes, one line per change in each column
    diag = figs["diagnostics"]["layout"]["shapes"]
    assert [(s["x0"], s["xref"]) for s in diag] == [
        (8_000, "x"),
        (8_000, "x2"),
        (20_000, "x"),
        (20_000, "x2"),
    ]
    assert all(s["yref"] == "paper" for s in diag)


@pytest.mark.parametrize("large", [False, True])
def test_legends_sit_under_the_plot_clear_of_the_titles(large):
    for name, fig in trpo_figures(large=large).items():
        layout = fig["layout"]
        legend, margin, height = layout["legend"], layout["margin"], layout["height"]
        assert legend["yanchor"] == "top" and legend["y"] < 0, name
        plot = height - margin["t"] - margin["b"]
        # the legend's top lies in the bottom margin, under the tick labels and the axis title
        below = -legend["y"] * plot
        assert 2.5 * layout["font"]["size"] < below < margin["b"], name
        title = layout["title"]
        assert title["x"] < 0.05 and title["y"] > 0.95 and title["yanchor"] == "top", name
        # the title's line (≈1.5 × font) ends above the subplot titles over the first row
        title_bottom = (1 - title["y"]) * height + 1.5 * title["font"]["size"]
        for note in layout["annotations"]:
            if note["yref"] == "paper" and note["y"] == 1.0 and note["yanchor"] == "bottom":
                assert margin["t"] - 1.5 * note["font"]["size"] >= title_bottom, name


def test_presentation_mode_enlarges_fonts_and_tick_labels():
    small, large = trpo_figures(), trpo_figures(large=True)
    for name in small:
        s, big = small[name]["layout"], large[name]["layout"]
        assert big["font"]["size"] > s["font"]["size"]
        assert big["title"]["font"]["size"] > s["title"]["font"]["size"]
        assert big["height"] > s["height"]
        assert set(axes_of(big)) == set(axes_of(s))
        for key, axis in axes_of(big).items():
            assert axis["tickfont"]["size"] > axes_of(s)[key]["tickfont"]["size"], (name, key)


# --- several runs ---------------------------------------------------------------------------


def test_seed_band_is_mean_and_std_across_seeds_on_a_common_grid():
    a = metrics_frame(10, "a", episode_return_mean=np.linspace(0, 90, 10))
    b = metrics_frame(10, "b", episode_return_mean=np.linspace(10, 100, 10))
    band = comparison.seed_band(pd.concat([a, b]), {"a": "ppo", "b": "ppo"}, grid_points=10)
    # both runs are linear in env steps on [1000, 10000]: interpolate by hand on the grid
    # plus the runs' first and last env steps
    grid = np.union1d(np.linspace(0, 10_000, 10), [1000, 10_000])
    inside = grid >= 1000
    ya = np.interp(grid, a["env_steps"], a["episode_return_mean"])
    yb = np.interp(grid, b["env_steps"], b["episode_return_mean"])
    np.testing.assert_allclose(band["x"], grid[inside])
    np.testing.assert_allclose(band["mean"], ((ya + yb) / 2)[inside])
    np.testing.assert_allclose(band["std"], (np.abs(ya - yb) / 2)[inside])
    assert (band["n"] == 2).all() and (band["runs"] == 2).all()


def test_seed_band_never_extrapolates_a_shorter_run():
    a = metrics_frame(10, "a")
    b = metrics_frame(5, "b")
    band = comparison.seed_band(pd.concat([a, b]), {"a": "g", "b": "g"}, grid_points=11)
    assert band.loc[band["x"] > 5_000, "n"].eq(1).all()
    assert band.loc[(band["x"] >= 1_000) & (band["x"] <= 5_000), "n"].eq(2).all()


def test_compare_figure_has_a_band_and_a_mean_line_per_group():
    a = metrics_frame(10, "a")
    b = metrics_frame(10, "b", episode_return_mean=np.linspace(0, 50, 10))
    band = comparison.seed_band(pd.concat([a, b]), {"a": "trpo", "b": "ppo"})
    fig = comparison.compare_figure(band, threshold=150.0)
    lines = [t for t in fig.data if t.fill != "toself" and t.showlegend is not False]
    fills = [t for t in fig.data if t.fill == "toself"]
    counts = [t for t in fig.data if t.meta == "seeds"]
    assert [t.name for t in lines] == ["ppo", "trpo"]  # groups by label, not by run id
    assert len(fills) == 2  # one seed each: every point has all its seeds, no faint part
    assert [t.yaxis for t in counts] == ["y2", "y2"]
    assert all(set(t.customdata) == {1} for t in counts)
    assert any(s.y0 == 150.0 for s in fig.layout.shapes)


def test_run_summary_finds_final_return_threshold_step_and_speed():
    a = metrics_frame(10, "a", episode_return_mean=np.linspace(0, 90, 10))
    summary = comparison.run_summary(a, {"a": "ppo"}, threshold=45.0)
    row = summary.iloc[0]
    assert row["final_return"] == 90.0
    assert row["steps_to_threshold"] == 6_000  # first value ≥ 45 is 50 at update 6
    assert row["env_steps_per_s"] == pytest.approx(10_000 / 5.0)
    never = comparison.run_summary(a, {"a": "ppo"}, threshold=1e9).iloc[0]
    assert np.isnan(never["steps_to_threshold"])
    groups = comparison.group_summary(pd.concat([summary, never.to_frame().T]))
    assert groups.iloc[0]["runs"] == 2 and groups.iloc[0]["reached threshold"] == 1


def _runs(configs: list) -> pd.DataFrame:
    return pd.DataFrame(
        {"run_id": [f"r{i}" for i in range(len(configs))], "config": [c.to_json() for c in configs]}
    )


def test_point_labels_give_the_seeds_of_one_grid_point_one_label():
    base = RunConfig(algo="trpo")
    configs = [
        base.with_changes(delta=d, gae_lambda=lam, seed=s)
        for d in (0.01, 0.05)
        for lam in (0.9, 0.97)
        for s in (0, 1)
    ]
    runs = _runs(configs)
    labels = comparison.point_labels(sweep_points(runs), dict.fromkeys(runs["run_id"], "x"))
    for run_id, config in zip(runs["run_id"], configs):
        assert (
            labels[run_id]
            == f"gae_lambda={config.get('gae_lambda'):g} delta={config.get('delta'):g}"
        )
    assert len(set(labels.values())) == 4


def test_point_labels_name_algorithms_without_the_keys_only_one_of_them_has():
    trpo = RunConfig(algo="trpo").with_changes(n_steps=512)
    ppo = RunConfig(algo="ppo").with_changes(n_steps=32)
    runs = _runs([trpo, trpo.with_changes(seed=1), ppo, ppo.with_changes(seed=1)])
    labels = comparison.point_labels(sweep_points(runs), dict.fromkeys(runs["run_id"], "x"))
    assert labels == {"r0": "trpo", "r1": "trpo", "r2": "ppo", "r3": "ppo"}


def test_point_labels_fall_back_when_runs_differ_only_in_seed():
    runs = _runs([RunConfig(algo="ppo", seed=s) for s in (0, 1)])
    fallback = {"r0": "mine", "r1": "mine"}
    assert comparison.point_labels(sweep_points(runs), fallback) == fallback


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trpo · seed 3", "trpo"),
        ("grid · delta=0.01 seed=2", "grid · delta=0.01"),
        ("sweep · seed=0", "sweep"),
        (None, "ppo"),
    ],
)
def test_seed_group_drops_only_the_seed_from_a_run_name(name, expected):
    assert comparison.seed_group(name, "ppo") == expected

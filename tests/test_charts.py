"""Figure builders on synthetic frames: the traces hold the data, references and markers exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import RunConfig
from core.sweep import sweep_points
from ui import charts
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


def vlines_at(fig) -> list[float]:
    return sorted({s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1})


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
    fig = charts.return_figure(metrics_frame(), eps, smooth=10)
    dots = next(t for t in fig.data if t.name == "episode return")
    avg = next(t for t in fig.data if t.name.startswith("moving average"))
    np.testing.assert_array_equal(dots.y, eps["ret"].to_numpy())
    # independent moving average: mean of the last 10 returns (fewer at the start)
    r = eps["ret"].to_numpy()
    expected = [r[max(0, i - 9) : i + 1].mean() for i in range(len(r))]
    np.testing.assert_allclose(avg.y, expected)


def test_long_runs_are_downsampled_in_the_figure():
    n = 50_000
    eps = pd.DataFrame(
        {"run_id": "r1", "env_step": np.arange(1, n + 1), "ret": np.ones(n), "length": 1}
    )
    fig = charts.return_figure(metrics_frame(), eps)
    for trace in fig.data:
        assert len(trace.x) <= 2000
    assert fig.data[0].x[-1] == n


def test_kl_figure_draws_exact_and_quadratic_kl_against_the_delta_step_line():
    m = metrics_frame()
    ev = events_frame([(12_000, {"delta": [0.01, 0.02]})])
    ref = charts.parameter_history(0.01, ev, "delta", x_end=30_000)
    fig = charts.kl_figure(m, ev, reference=ref, reference_label="δ")
    names = [t.name for t in fig.data]
    exact = fig.data[names.index(charts.KL_NAMES["kl_mean"])]
    np.testing.assert_array_equal(exact.y, m["kl_mean"].to_numpy())
    assert charts.KL_NAMES["kl_quadratic"] in names
    delta = fig.data[names.index("δ")]
    assert list(delta.x) == [0.0, 12_000.0, 30_000.0]
    assert list(delta.y) == [0.01, 0.02, 0.02]
    assert delta.line.shape == "hv"


def test_parameter_history_breaks_where_an_option_is_switched_off():
    ev = events_frame([(5_000, {"target_kl": [0.02, None]})])
    hist = charts.parameter_history(0.02, ev, "target_kl", x_end=9_000)
    assert hist["value"].iloc[0] == 0.02
    assert np.isnan(hist["value"].iloc[1]) and np.isnan(hist["value"].iloc[2])


def test_hyperparameter_changes_are_markers_on_every_chart():
    m = metrics_frame()
    ev = events_frame([(8_000, {"delta": [0.01, 0.05]}), (20_000, {"gae_lambda": [0.95, 0.9]})])
    figs = charts.run_figures(
        m, episodes_frame(), ev, algo="trpo", config_values={"delta": 0.01}, revision="r1"
    )
    assert set(figs) == {"return", "kl", "line_search", "diagnostics"}
    for name, fig in figs.items():
        assert vlines_at(fig) == [8_000, 20_000], name
        texts = [a.text for a in fig.layout.annotations]
        assert any("delta 0.01→0.05" in t for t in texts), name
        assert fig.layout.uirevision == "r1"


def test_line_search_figure_separates_accepted_and_rejected_updates():
    m = metrics_frame()
    fig = charts.line_search_figure(m)
    accepted = next(t for t in fig.data if t.name == "accepted")
    rejected = next(t for t in fig.data if t.name.startswith("rejected"))
    ok = m["ls_accepted"] > 0.5
    np.testing.assert_array_equal(accepted.x, m.loc[ok, "env_steps"])
    np.testing.assert_array_equal(accepted.y, m.loc[ok, "ls_step_frac"])
    np.testing.assert_array_equal(rejected.x, m.loc[~ok, "env_steps"])
    assert (np.asarray(rejected.y) == 0).all()
    bars = next(t for t in fig.data if t.name == "backtracks")
    np.testing.assert_array_equal(bars.y, m["ls_backtracks"])
    assert {t.name for t in fig.data} >= {"predicted gᵀs", "actual ΔL"}


def test_diagnostics_show_only_reported_metrics():
    m = metrics_frame()  # clip_frac is all NaN: a TRPO run does not report it
    assert charts.available_diagnostics(m) == ["value_loss", "entropy"]
    fig = charts.diagnostics_figure(m)
    assert [a.text for a in fig.layout.annotations][:2] == [
        charts.METRIC_LABELS["value_loss"],
        charts.METRIC_LABELS["entropy"],
    ]
    np.testing.assert_array_equal(fig.data[1].y, m["entropy"])


def test_non_trust_region_runs_get_no_line_search_chart():
    m = metrics_frame().drop(columns=["ls_accepted", "ls_step_frac", "ls_backtracks"])
    figs = charts.run_figures(m, episodes_frame(), None, algo="dqn", config_values={}, revision="r")
    assert "line_search" not in figs


def test_presentation_mode_enlarges_fonts():
    small = charts.return_figure(metrics_frame(), episodes_frame())
    large = charts.return_figure(metrics_frame(), episodes_frame(), large=True)
    assert large.layout.font.size > small.layout.font.size
    assert large.layout.height > small.layout.height


# --- several runs ---------------------------------------------------------------------------


def test_seed_band_is_mean_and_std_across_seeds_on_a_common_grid():
    a = metrics_frame(10, "a", episode_return_mean=np.linspace(0, 90, 10))
    b = metrics_frame(10, "b", episode_return_mean=np.linspace(10, 100, 10))
    band = charts.seed_band(pd.concat([a, b]), {"a": "ppo", "b": "ppo"}, grid_points=10)
    # both runs are linear in env steps on [1000, 10000]: interpolate by hand
    grid = np.linspace(0, 10_000, 10)
    inside = grid >= 1000
    ya = np.interp(grid, a["env_steps"], a["episode_return_mean"])
    yb = np.interp(grid, b["env_steps"], b["episode_return_mean"])
    np.testing.assert_allclose(band["x"], grid[inside])
    np.testing.assert_allclose(band["mean"], ((ya + yb) / 2)[inside])
    np.testing.assert_allclose(band["std"], (np.abs(ya - yb) / 2)[inside])
    assert (band["n"] == 2).all()


def test_seed_band_never_extrapolates_a_shorter_run():
    a = metrics_frame(10, "a")
    b = metrics_frame(5, "b")
    band = charts.seed_band(pd.concat([a, b]), {"a": "g", "b": "g"}, grid_points=11)
    assert band.loc[band["x"] > 5_000, "n"].eq(1).all()
    assert band.loc[(band["x"] >= 1_000) & (band["x"] <= 5_000), "n"].eq(2).all()


def test_compare_figure_has_a_band_and_a_mean_line_per_group():
    a = metrics_frame(10, "a")
    b = metrics_frame(10, "b", episode_return_mean=np.linspace(0, 50, 10))
    band = charts.seed_band(pd.concat([a, b]), {"a": "trpo", "b": "ppo"})
    fig = charts.compare_figure(band, threshold=150.0)
    lines = [t for t in fig.data if t.fill != "toself"]
    fills = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["trpo", "ppo"]
    assert len(fills) == 2
    assert any(s.y0 == 150.0 for s in fig.layout.shapes)


def test_run_summary_finds_final_return_threshold_step_and_speed():
    a = metrics_frame(10, "a", episode_return_mean=np.linspace(0, 90, 10))
    summary = charts.run_summary(a, {"a": "ppo"}, threshold=45.0)
    row = summary.iloc[0]
    assert row["final_return"] == 90.0
    assert row["steps_to_threshold"] == 6_000  # first value ≥ 45 is 50 at update 6
    assert row["env_steps_per_s"] == pytest.approx(10_000 / 5.0)
    never = charts.run_summary(a, {"a": "ppo"}, threshold=1e9).iloc[0]
    assert np.isnan(never["steps_to_threshold"])
    groups = charts.group_summary(pd.concat([summary, never.to_frame().T]))
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
    labels = charts.point_labels(sweep_points(runs), dict.fromkeys(runs["run_id"], "x"))
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
    labels = charts.point_labels(sweep_points(runs), dict.fromkeys(runs["run_id"], "x"))
    assert labels == {"r0": "trpo", "r1": "trpo", "r2": "ppo", "r3": "ppo"}


def test_point_labels_fall_back_when_runs_differ_only_in_seed():
    runs = _runs([RunConfig(algo="ppo", seed=s) for s in (0, 1)])
    fallback = {"r0": "mine", "r1": "mine"}
    assert charts.point_labels(sweep_points(runs), fallback) == fallback


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
    assert charts.seed_group(name, "ppo") == expected

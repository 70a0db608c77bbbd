"""Honest comparisons (issue 17, item 5): the seed count behind every point of a band, where a
band has fewer than all its seeds, readable steps to threshold, sweep names on runs, and plain
ASCII export names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import RunConfig
from core.runtime.export import ascii_file_stem, export_csv
from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from core.sweep.build import build_sweeps, sweep_ids
from core.sweep.local import launch_local
from core.sweep.progress import wait_sweep
from core.sweep.spec import SweepSpec, jobs_of, sweep_name
from tests.fake_trainer import FakeTrainer
from ui.charts import comparison
from ui.charts.style import COLORS
from ui.exports import comparison_file_name, run_file_stem


def run_frame(run_id: str, xs: np.ndarray, ys: np.ndarray, x: str = "env_steps") -> pd.DataFrame:
    """A metrics frame of one run with ``x`` and ``episode_return_mean`` (the other axis too)."""
    other = "wall_time" if x == "env_steps" else "env_steps"
    return pd.DataFrame(
        {"run_id": run_id, x: xs, other: np.arange(1, len(xs) + 1), "episode_return_mean": ys}
    )


def direct_band(metrics: pd.DataFrame, labels: dict[str, str], x: str, xs: np.ndarray, label: str):
    """n, mean and std at the points ``xs`` of ``label``, straight from the runs: the runs whose
    own x range holds the point, each interpolated linearly there."""
    out = []
    for point in xs:
        values = []
        for run_id, run in metrics.groupby("run_id"):
            if labels.get(run_id) != label:
                continue
            run = run.dropna(subset=["episode_return_mean"]).sort_values(x)
            rx, ry = run[x].to_numpy(float), run["episode_return_mean"].to_numpy(float)
            if rx[0] <= point <= rx[-1]:
                values.append(np.interp(point, rx, ry))
        out.append((len(values), np.mean(values), np.std(values)))
    return np.array(out)


@pytest.fixture
def uneven() -> tuple[pd.DataFrame, dict[str, str]]:
    """Group ``a``: three seeds that end after 10, 7 and 4 updates and learn at different rates;
    group ``b``: two seeds starting at different x (as wall times do); group ``c``: one run with
    points and one queued run without any."""
    rng = np.random.default_rng(3)
    frames = [
        run_frame(f"a{i}", np.arange(1, k + 1) * 1000.0, np.cumsum(rng.uniform(0, 30, k)))
        for i, k in enumerate((10, 7, 4))
    ]
    frames += [
        run_frame("b0", np.linspace(300, 6000, 12), np.linspace(0, 100, 12)),
        run_frame("b1", np.linspace(900, 8000, 9), np.linspace(20, 150, 9)),
        run_frame("c0", np.arange(1, 6) * 2000.0, np.linspace(5, 50, 5)),
    ]
    labels = {"a0": "a", "a1": "a", "a2": "a", "b0": "b", "b1": "b", "c0": "c", "c1": "c"}
    return pd.concat(frames, ignore_index=True), labels


def test_band_aggregation_reports_n_and_stops_where_seeds_end(uneven):
    metrics, labels = uneven
    band = comparison.seed_band(metrics, labels, grid_points=41)
    assert set(band["label"]) == {"a", "b", "c"}
    for label, g in band.groupby("label"):
        expected = direct_band(metrics, labels, "env_steps", g["x"].to_numpy(), label)
        np.testing.assert_array_equal(g["n"], expected[:, 0])
        np.testing.assert_allclose(g["mean"], expected[:, 1], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(g["std"], expected[:, 2], rtol=1e-12, atol=1e-9)
        assert (g["runs"] == sum(v == label for v in labels.values())).all()
        # every point where at least one run has data is there, and each run's ends are points
        runs = [metrics[metrics["run_id"] == r] for r, v in labels.items() if v == label]
        runs = [r for r in runs if not r.empty]
        ends = [(r["env_steps"].min(), r["env_steps"].max()) for r in runs]
        grid = np.linspace(0, metrics["env_steps"].max(), 41)
        covered = [p for p in grid if any(lo <= p <= hi for lo, hi in ends)]
        assert set(covered) <= set(g["x"]) and {e for pair in ends for e in pair} <= set(g["x"])
        assert g["x"].is_monotonic_increasing and (g["n"] > 0).all()
    a = band[band["label"] == "a"]
    # all three seeds up to the shortest run's last point exactly, then 2 (to 7000), then 1
    assert a.loc[a["n"] == 3, "x"].max() == 4000.0
    assert a.loc[a["n"] == 2, "x"].min() > 4000.0 and a.loc[a["n"] == 2, "x"].max() == 7000.0
    assert a.loc[a["n"] == 1, "x"].min() > 7000.0 and a["x"].max() == 10_000.0
    # a queued run without points still counts: group c never has all its seeds
    assert (band.loc[band["label"] == "c", "n"] == 1).all()
    assert (band.loc[band["label"] == "c", "runs"] == 2).all()


def test_wall_time_band_counts_seeds_the_same_way(uneven):
    metrics, labels = uneven
    metrics = metrics.assign(
        wall_time=metrics["env_steps"] / np.where(metrics["run_id"] == "a0", 1000, 500)
    )
    band = comparison.seed_band(metrics, labels, x="wall_time", grid_points=31)
    for label, g in band.groupby("label"):
        expected = direct_band(metrics, labels, "wall_time", g["x"].to_numpy(), label)
        np.testing.assert_array_equal(g["n"], expected[:, 0])
        np.testing.assert_allclose(g["mean"], expected[:, 1], rtol=1e-12, atol=1e-9)
    a = band[band["label"] == "a"]  # a1 and a2 start at 2 s, a0 at 1 s; a2 ends at 8 s
    assert a.loc[a["n"] == 3, "x"].min() == 2.0 and a.loc[a["n"] == 3, "x"].max() == 8.0


def test_compare_figure_draws_all_seeds_solid_fewer_seeds_faint_and_counts_them(uneven):
    metrics, labels = uneven
    band = comparison.seed_band(metrics, labels, grid_points=41)
    fig = comparison.compare_figure(band, threshold=100.0)
    a = band[band["label"] == "a"]
    full = (a["n"] == 3).to_numpy()
    solid = next(t for t in fig.data if t.name == "a")
    faint = next(t for t in fig.data if t.name == "a (fewer seeds)")
    count = next(t for t in fig.data if t.name == "a seeds")
    # the solid mean has every seed behind it and ends where the first seed ends
    assert np.array_equal(~np.isnan(np.asarray(solid.y, float)), full)
    assert np.nanmax(np.where(full, a["x"], np.nan)) == 4000.0
    # the faint dotted mean covers the rest, touching the solid line where they meet
    shown = ~np.isnan(np.asarray(faint.y, float))
    assert shown[~full].all() and shown.sum() == (~full).sum() + 1
    assert faint.line.dash == "dot" and faint.opacity < 1 and faint.showlegend is False
    np.testing.assert_allclose(np.asarray(faint.y, float)[shown], a["mean"].to_numpy()[shown])
    # n in the hover of both parts and in the count strip under the chart
    for trace in (solid, faint):
        assert "customdata[1]" in trace.hovertemplate and "seeds" in trace.hovertemplate
        np.testing.assert_array_equal(np.asarray(trace.customdata)[:, 1], a["n"])
        assert set(np.asarray(trace.customdata)[:, 2]) == {3}
    assert count.yaxis == "y2" and count.line.shape == "hv"
    np.testing.assert_array_equal(count.customdata, a["n"])
    assert np.abs(np.asarray(count.y) - a["n"].to_numpy()).max() < 0.25
    assert fig.layout.yaxis2.title.text == "seeds" and fig.layout.yaxis2.range[1] >= 3
    # two band pieces for a: the full one strong, the fewer-seeds one fainter
    fills = [t for t in fig.data if t.fill == "toself" and t.legendgroup == "a"]
    alphas = sorted(float(t.fillcolor.rsplit(",", 1)[1].rstrip(")")) for t in fills)
    assert len(fills) == 2 and alphas[0] < alphas[1]
    assert any("threshold 100" in (a.text or "") for a in fig.layout.annotations)


def test_compare_figure_in_presentation_mode_keeps_the_count_line_thin(uneven):
    metrics, labels = uneven
    band = comparison.seed_band(metrics, labels)
    fig = comparison.compare_figure(band, large=True)
    mean = next(t for t in fig.data if t.name == "a")
    count = next(t for t in fig.data if t.name == "a seeds")
    assert count.line.width < mean.line.width


def test_compare_figure_without_returns_says_so():
    empty = comparison.seed_band(run_frame("r", np.array([]), np.array([])), {"r": "g"})
    fig = comparison.compare_figure(empty)
    assert any("no returns yet" in a.text for a in fig.layout.annotations)


# --- steps to threshold -------------------------------------------------------------------------


def test_steps_to_threshold_reads_not_reached_with_the_threshold():
    assert comparison.steps_text(np.nan, 475.0) == "not reached (threshold 475)"
    assert comparison.steps_text(None, 0.5) == "not reached (threshold 0.5)"
    assert comparison.steps_text(12_000.0, 475.0) == "12,000"


def test_summary_tables_are_readable_and_the_numeric_ones_stay_numeric():
    frames = [
        run_frame(f"r{i}", np.arange(1, 11) * 1000.0, np.linspace(0, top, 10))
        for i, top in enumerate((500, 480, 100, 90))
    ]
    metrics = pd.concat(frames, ignore_index=True)
    labels = {"r0": "two reach", "r1": "two reach", "r2": "none", "r3": "none"}
    labels |= {"r4": "two reach"}  # a third seed that has not started: not reached
    summary = comparison.run_summary(metrics, labels, threshold=475.0)
    groups = comparison.group_summary(summary)
    # numeric: NaN where not reached; the median counts a run that never reached it as later
    two = groups.set_index("group").loc["two reach"]
    assert two["reached threshold"] == 2 and two["runs"] == 3
    assert two["steps to threshold (median)"] == 10_000.0  # median of 10,000, 10,000 and never
    assert np.isnan(groups.set_index("group").loc["none", "steps to threshold (median)"])
    shown = comparison.readable_summary(groups, 475.0).set_index("group")
    assert shown.loc["none", "steps to threshold (median)"] == "not reached (threshold 475)"
    assert shown.loc["two reach", "steps to threshold (median)"] == "10,000"
    per_run = comparison.readable_summary(summary, 475.0).set_index("run_id")
    assert per_run.loc["r2", "steps_to_threshold"] == "not reached (threshold 475)"
    assert "None" not in per_run.astype(str).to_numpy().ravel().tolist()
    # the CSV export keeps numbers: an empty cell for a run that never reached the threshold
    csv = summary.to_csv(index=False).splitlines()
    assert csv[0].split(",")[4] == "steps_to_threshold" and csv[3].split(",")[4] == ""


def test_group_median_is_not_reached_when_only_a_minority_reached():
    summary = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "label": "g",
            "final_return": [500.0, 10.0, 10.0],
            "steps_to_threshold": [5_000.0, np.nan, np.nan],
            "env_steps_per_s": [1.0, 1.0, 1.0],
        }
    )
    groups = comparison.group_summary(summary)
    assert np.isnan(groups.iloc[0]["steps to threshold (median)"])
    assert groups.iloc[0]["reached threshold"] == 1


def test_groups_keep_their_order_and_colour_whatever_their_runs_ids():
    """The legend, the colours and the summary list groups by their labels, numbers read as
    numbers, not by the random ids of the runs behind them."""
    wanted = ["delta=0.001", "delta=0.01", "delta=0.1"]
    frames, labels = [], {}
    for run_id, label in zip(("z9", "a1", "m5"), wanted):  # ids in another order than labels
        frames.append(run_frame(run_id, np.arange(1, 6) * 1000.0, np.linspace(0, 50, 5)))
        labels[run_id] = label
    metrics = pd.concat(frames, ignore_index=True)
    band = comparison.seed_band(metrics, labels)
    assert list(dict.fromkeys(band["label"])) == wanted
    fig = comparison.compare_figure(band)
    legend = [t.name for t in fig.data if t.showlegend is not False and t.name in wanted]
    assert legend == wanted
    colours = {t.name: t.line.color for t in fig.data if t.name in wanted}
    assert [colours[w] for w in wanted] == list(COLORS[:3])
    summary = comparison.run_summary(metrics, dict(reversed(labels.items())), threshold=40)
    assert comparison.group_summary(summary)["group"].tolist() == wanted


# --- sweep names ---------------------------------------------------------------------------------


def test_runs_of_an_unnamed_sweep_carry_its_algorithms_and_id():
    spec = SweepSpec(RunConfig(algo="ppo"), seeds=2)
    assert sweep_name(spec, "sw-0123456789") == "ppo sweep sw-0123456789"
    names = [job.name for job in jobs_of(spec, "sw-0123456789")]
    assert names == ["ppo sweep sw-0123456789 · seed=0", "ppo sweep sw-0123456789 · seed=1"]
    both = SweepSpec(RunConfig(algo="trpo"), seeds=1, algos=["trpo", "ppo"])
    assert [j.name for j in jobs_of(both, "sw-x")] == [
        "trpo vs ppo sweep sw-x · trpo seed=0",
        "trpo vs ppo sweep sw-x · ppo seed=0",
    ]


def test_runs_of_a_named_sweep_carry_its_name():
    spec = SweepSpec(RunConfig(algo="trpo"), {"delta": [0.01, 0.05]}, 1, name="delta study")
    assert [j.name for j in jobs_of(spec, "sw-1")] == [
        "delta study · delta=0.01 seed=0",
        "delta study · delta=0.05 seed=0",
    ]


@pytest.mark.parametrize("tuned", [True, False])
def test_compare_page_sweeps_without_a_name_name_their_runs_after_the_sweep(tuned):
    specs = build_sweeps("CartPole-v1", 1_000, ["trpo", "ppo"], 2, {}, tuned, "")
    ids = sweep_ids(specs, "0123456789abcdef")
    for spec, sweep_id in zip(specs, ids):
        for job in jobs_of(spec, sweep_id):
            assert sweep_id in job.name and job.name.startswith(spec.base.algo)
            assert comparison.seed_group(job.name, job.config.algo).split(" · ")[0] == (
                sweep_name(spec, sweep_id)
            )
    named = build_sweeps("CartPole-v1", 1_000, ["trpo", "ppo"], 1, {}, tuned, "study")
    assert all(jobs_of(s, "sw-1")[0].name.startswith("study") for s in named)


def test_launch_local_stores_runs_named_after_the_sweep(tmp_path):
    manager = RunManager(RunStore(tmp_path), max_concurrent=2, workers="thread")
    try:
        base = RunConfig(algo="a2c").with_changes(n_envs=2, n_steps=4, total_steps=16, eval_every=0)
        sweep_id = launch_local(manager, SweepSpec(base, seeds=2), trainer_factory=FakeTrainer)
        assert wait_sweep(manager.store, sweep_id, timeout=60, poll=0.05).status == "finished"
        names = sorted(manager.store.runs()["name"])
        assert names == [f"a2c sweep {sweep_id} · seed=0", f"a2c sweep {sweep_id} · seed=1"]
    finally:
        manager.shutdown()


# --- export file names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("ppo · seed=1", "ppo_seed_1"),
        (
            "GAE lab ppo λ sweep · gae_lambda=0.9 seed=0",
            "GAE_lab_ppo_lambda_sweep_gae_lambda_0.9_seed_0",
        ),
        ("δ study: 64×64 ± é", "delta_study_64x64_pm_e"),
        ("../../etc/passwd", "etc_passwd"),
        ("···", "export"),
    ],
)
def test_ascii_file_stem_is_plain_ascii(text, stem):
    assert ascii_file_stem(text) == stem
    assert ascii_file_stem(text).isascii()


def test_run_and_comparison_download_names_are_plain_ascii():
    row = {
        "run_id": "0a1b2c3d4e5f",
        "name": "trpo vs ppo sweep sw-1 · δ=0.01 seed=3",
        "algo": "trpo",
    }
    stem = run_file_stem(row)
    assert stem.isascii() and stem.endswith("-0a1b2c3d") and " " not in stem
    assert run_file_stem({"run_id": "ab", "name": None, "algo": "ppo"}) == "ppo-ab"
    assert run_file_stem({"run_id": "ab", "name": "λ", "algo": "ppo"}) == "lambda-ab"
    name = comparison_file_name(["sw-0123456789", "sw-abcdef0123-ppo"])
    assert name == "comparison-sw-0123456789_sw-abcdef0123-ppo.csv"
    assert comparison_file_name(["·"], "summary") == "summary-runs.csv"


def test_csv_export_file_names_are_plain_ascii(tmp_path):
    manager = RunManager(RunStore(tmp_path / "store"), max_concurrent=1, workers="thread")
    try:
        base = RunConfig(algo="a2c").with_changes(n_envs=2, n_steps=4, total_steps=8, eval_every=0)
        run_id = manager.start(base, name="λ · seed=0", trainer_factory=FakeTrainer)
        assert manager.wait(run_id, timeout=60) == "finished"
        manager.store.flush()
        paths = export_csv(manager.store, run_id, tmp_path / "out")
    finally:
        manager.shutdown()
    assert paths and all(p.name.isascii() and p.name.startswith(run_id) for p in paths)

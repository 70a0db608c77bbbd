"""The metric catalogue (``core/metrics.py``) against what the trainers report and what the charts
draw: every name a trainer reports is catalogued for its algorithm, every name catalogued for an
algorithm is reported by it, and the charts draw only catalogued metrics under their labels."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from core import metrics as catalogue
from core.config import ALGORITHMS, RunConfig
from core.engine.algos import make_trainer
from tests.seeded_reference import CASES, PATH, TIMING
from ui.charts.run import DIAGNOSTICS, run_figure_dicts
from ui.charts.trust_region import KL_NAMES

# Small runs: one update each; the second entry switches every condition of ``Metric.when`` on.
SMALL = {"n_envs": 2, "n_steps": 64, "seed": 0}
EVERY_CONDITION: dict[str, dict[str, Any]] = {
    "trpo": {},
    "npg": {},
    "ppo": {"penalty": "kl"},
    "ppo-kl": {},
    "a2c": {},
    "dqn": {"learning_starts": 16, "prioritized": True},
}


def one_update(algo: str, **changes: Any) -> set[str]:
    """The metric names of the first update of a small seeded ``algo`` run on CartPole."""
    torch.set_num_threads(1)
    config = RunConfig(algo=algo).with_changes(**SMALL, **changes).validate()
    return set(make_trainer(config).update().metrics)


def test_the_catalogue_is_keyed_by_name_with_unique_labels():
    assert all(name == m.name for name, m in catalogue.CATALOGUE.items())
    labels = [m.label for m in catalogue.CATALOGUE.values()]
    assert len(set(labels)) == len(labels)
    assert all(m.label and m.description for m in catalogue.CATALOGUE.values())


def test_every_metric_names_known_algorithms_and_some_reporter():
    for m in catalogue.CATALOGUE.values():
        assert m.algos | set(m.when) <= set(ALGORITHMS), m.name
        assert m.algos or m.when, m.name
        assert not m.algos & set(m.when), m.name  # either always or under a condition


def test_kl_bounds_are_hyperparameters_of_their_algorithm():
    assert set(catalogue.KL_BOUNDS) <= set(ALGORITHMS)
    for algo, bound in catalogue.KL_BOUNDS.items():
        fields = RunConfig(algo=algo).keys()
        assert bound.key in fields, algo
    assert catalogue.kl_bound("trpo").label == "δ" and catalogue.kl_bound("dqn") is None


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_one_update_reports_exactly_the_catalogued_metrics(algo):
    names = one_update(algo, eval_every=0)
    assert names == catalogue.reported_by(algo, conditional=False)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_with_every_condition_met_an_update_reports_the_conditional_metrics_too(algo):
    # eval_every = one update's env steps: the first update ends with an evaluation
    steps = SMALL["n_envs"] * SMALL["n_steps"]
    names = one_update(algo, eval_every=steps, eval_episodes=1, **EVERY_CONDITION[algo])
    assert catalogue.unknown(algo, names) == []
    assert names == catalogue.reported_by(algo)


def test_the_recorded_seeded_runs_report_only_catalogued_names():
    """``tests/data/seeded_reference.json`` (recorded without timing metrics or evaluations)."""
    recorded = json.loads(PATH.read_text())
    seen: dict[str, set[str]] = {}
    for case, record in recorded.items():
        algo = CASES[case]["algo"]
        names = set().union(*(u["metrics"] for u in record["updates"]))
        assert catalogue.unknown(algo, names) == [], case
        assert catalogue.reported_by(algo, conditional=False) - TIMING <= names, case
        seen.setdefault(algo, set()).update(names)
    for algo, names in seen.items():
        always = catalogue.reported_by(algo, conditional=False) - TIMING
        assert names - always <= catalogue.reported_by(algo) - always, algo


def test_charts_draw_catalogued_metrics():
    assert set(DIAGNOSTICS) <= set(catalogue.CATALOGUE)
    assert set(KL_NAMES) <= set(catalogue.CATALOGUE)


def _frame(algo: str, n: int = 12) -> pd.DataFrame:
    """A run of ``algo`` that reported every metric the catalogue lists for it."""
    rng = np.random.default_rng(0)
    data = {name: rng.uniform(0.1, 1.0, n) for name in sorted(catalogue.reported_by(algo))}
    data.update(run_id="r", update=np.arange(1, n + 1), env_steps=np.arange(1, n + 1) * 64.0)
    return pd.DataFrame(data)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_each_algorithm_gets_the_charts_of_what_it_reports(algo):
    reported = catalogue.reported_by(algo)
    episodes = pd.DataFrame(columns=["run_id", "env_step", "ret", "length"])
    values = {"delta": 0.01, "kl_target": 0.01, "target_kl": 0.02}
    figs = run_figure_dicts(_frame(algo), episodes, None, algo=algo, config_values=values)
    bound = catalogue.kl_bound(algo)
    assert ("line_search" in figs) == (catalogue.LS_ACCEPTED.name in reported)
    assert ("kl" in figs) == (catalogue.KL_MEAN.name in reported or bound is not None)
    titles = [a["text"] for a in figs["diagnostics"]["layout"]["annotations"]]
    assert titles == [catalogue.label(k) for k in DIAGNOSTICS if k in reported]
    if "kl" in figs:
        drawn = [t["name"] for t in figs["kl"]["data"]]
        assert drawn == [KL_NAMES[k] for k in KL_NAMES if k in reported] + (
            [bound.label] if bound else []
        )


def test_axis_titles_read_as_the_charts_show_them():
    assert catalogue.ENV_STEPS.axis_title == "env steps"
    assert catalogue.WALL_TIME.axis_title == "wall time (s)"
    assert catalogue.label("not_a_metric") == "not_a_metric"

"""Sweeps: grid expansion and validation, the CLI parsing, and the local executor end to end."""

from __future__ import annotations

import itertools

import pytest

from core.config import ConfigError, RunConfig
from core.sweep import (
    SweepSpec,
    parse_grid,
    parse_seeds,
)

# ---------------------------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------------------------


def test_expansion_is_the_product_of_grid_values_and_seeds():
    spec = SweepSpec(
        RunConfig(algo="trpo"),
        grid={"delta": [0.001, 0.01, 0.05], "gae_lambda": [0.9, 0.97]},
        seeds=3,
    )
    configs = spec.expand()
    assert len(configs) == 3 * 2 * 3
    points = {(c.params.delta, c.gae_lambda, c.seed) for c in configs}
    assert points == set(itertools.product([0.001, 0.01, 0.05], [0.9, 0.97], [0, 1, 2]))


def test_seeds_are_distinct_within_each_grid_point_and_start_at_the_base_seed():
    spec = SweepSpec(RunConfig(algo="ppo", seed=7), grid={"clip_eps": [0.1, 0.2]}, seeds=4)
    for clip in (0.1, 0.2):
        seeds = [c.seed for c in spec.expand() if c.params.clip_eps == clip]
        assert seeds == [7, 8, 9, 10]


def test_explicit_seed_list_is_used_and_repeats_are_rejected():
    spec = SweepSpec(RunConfig(), seeds=[3, 42])
    assert [c.seed for c in spec.expand()] == [3, 42]
    with pytest.raises(ConfigError) as err:
        SweepSpec(RunConfig(), seeds=[1, 2, 1]).expand()
    assert err.value.field == "seeds"


def test_string_values_from_a_cli_are_coerced_to_the_field_type():
    spec = SweepSpec(RunConfig(algo="ppo"), grid={"epochs": ["3", "5"], "gamma": ["0.9"]})
    configs = spec.expand()
    assert [c.params.epochs for c in configs] == [3, 5]
    assert all(c.gamma == 0.9 for c in configs)


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"delta": [0.01, 5.0]}, "delta"),  # out of range (0, 1]
        ({"gae_lambda": [0.9, "lots"]}, "gae_lambda"),  # not a number
        ({"cg_iters": [2.5]}, "cg_iters"),  # not an integer
        ({"not_a_field": [1]}, "not_a_field"),
        ({"delta": []}, "delta"),  # no values
        ({"delta": [0.01, "0.01"]}, "delta"),  # listed twice
        ({"seed": [1, 2]}, "seed"),  # seeds go in `seeds`
    ],
)
def test_invalid_grid_value_is_rejected_naming_the_field(grid, field):
    with pytest.raises(ConfigError) as err:
        SweepSpec(RunConfig(algo="trpo"), grid=grid).expand()
    assert err.value.field == field


def test_invalid_value_is_rejected_before_anything_starts():
    class Recorder:
        started: list = []

        def start(self, *args, **kwargs):  # pragma: no cover - must never be called
            self.started.append(args)

    from core.sweep import launch_local

    manager = Recorder()
    spec = SweepSpec(RunConfig(algo="trpo"), grid={"delta": [0.01, 0.02, 2.0]}, seeds=2)
    with pytest.raises(ConfigError, match="delta"):
        launch_local(manager, spec)
    assert manager.started == []


def test_grid_point_checked_together_with_the_base_config():
    # minibatch 512 is valid alone but larger than the batch n_envs·n_steps = 2·64
    spec = SweepSpec(
        RunConfig(algo="ppo", n_envs=2, n_steps=64), grid={"minibatch_size": [64, 512]}
    )
    with pytest.raises(ConfigError) as err:
        spec.expand()
    assert err.value.field == "minibatch_size"


def test_algorithms_multiply_the_grid_and_keys_apply_where_they_exist():
    spec = SweepSpec(
        RunConfig(algo="ppo"),
        grid={"delta": [0.01, 0.02], "gamma": [0.95, 0.99]},
        seeds=2,
        algos=["trpo", "ppo"],
    )
    trials = spec.trials()
    trpo = [t for t in trials if t.config.algo == "trpo"]
    ppo = [t for t in trials if t.config.algo == "ppo"]
    assert len(trpo) == 2 * 2 * 2
    assert len(ppo) == 2 * 2  # delta is not a PPO hyperparameter: no duplicate PPO runs
    assert "delta" not in ppo[0].label and ppo[0].label.startswith("ppo ")
    assert {t.config.to_json() for t in trials}.__len__() == len(trials)


def test_key_unknown_to_every_algorithm_is_rejected():
    spec = SweepSpec(RunConfig(), grid={"delta": [0.01]}, algos=["ppo", "a2c"])
    with pytest.raises(ConfigError) as err:
        spec.expand()
    assert err.value.field == "delta"


def test_trial_labels_name_the_grid_point_and_seed():
    spec = SweepSpec(RunConfig(algo="trpo"), grid={"delta": [0.01]}, seeds=[5])
    assert spec.trials()[0].label == "delta=0.01 seed=5"


# ---------------------------------------------------------------------------------------------
# CLI parsing
# ---------------------------------------------------------------------------------------------


def test_parse_grid_splits_values_on_commas_or_semicolons():
    grid = parse_grid(["delta=0.001,0.01", "hidden_sizes=64,64;32,32"])
    assert grid == {"delta": ["0.001", "0.01"], "hidden_sizes": ["64,64", "32,32"]}
    configs = SweepSpec(RunConfig(algo="trpo"), grid=grid).expand()
    assert {c.hidden_sizes for c in configs} == {(64, 64), (32, 32)}


def test_parse_grid_rejects_an_item_without_equals():
    with pytest.raises(ConfigError) as err:
        parse_grid(["delta"])
    assert err.value.field == "grid"


def test_parse_seeds_reads_a_count_or_a_list():
    assert parse_seeds("3") == 3
    assert parse_seeds("0,7,42") == [0, 7, 42]
    with pytest.raises(ConfigError):
        parse_seeds("three")

"""Config validation: one path for CLI, app and sweeps; errors name the field and the range."""

import math

import pytest

from core.config import ConfigError, RunConfig
from core.envs import check_env_id

BAD_VALUES = [
    ("delta", 0.0, "trpo"),
    ("delta", -0.1, "trpo"),
    ("delta", math.nan, "trpo"),
    ("gae_lambda", 1.5, "ppo"),
    ("gae_lambda", -0.01, "ppo"),
    ("gamma", 0.0, "ppo"),
    ("gamma", 1.01, "ppo"),
    ("n_envs", 0, "ppo"),
    ("n_steps", 2.5, "ppo"),
    ("lr", math.inf, "a2c"),
    ("clip_eps", 0.0, "ppo"),
    ("kl_target", -1.0, "ppo-kl"),
    ("cg_iters", 0, "trpo"),
    ("backtrack_coef", 1.0, "trpo"),
    ("hidden_sizes", (0, 64), "ppo"),
    ("hidden_sizes", (), "ppo"),
    ("activation", "sigmoid", "ppo"),
    ("penalty", "l2", "ppo"),
    ("total_steps", 0, "dqn"),
    ("exploration_final_eps", 2.0, "dqn"),
    ("minibatch_size", 10**6, "ppo"),
]


@pytest.mark.parametrize(("key", "value", "algo"), BAD_VALUES)
def test_bad_value_raises_config_error_naming_field(key, value, algo):
    with pytest.raises(ConfigError) as err:
        RunConfig(algo=algo).with_changes(**{key: value})
    assert err.value.field == key
    assert key in str(err.value)
    assert "allowed" in str(err.value) or "layers" in str(err.value)


def test_range_text_in_message():
    with pytest.raises(ConfigError, match=r"allowed \(0, 1\]"):
        RunConfig(algo="ppo").with_changes(gamma=0)


def test_strings_are_coerced_like_cli_values():
    cfg = RunConfig(algo="trpo").with_changes(
        delta="0.02", cg_iters="15", hidden_sizes="32,32", normalize_advantage="false"
    )
    assert cfg.params.delta == 0.02 and cfg.params.cg_iters == 15
    assert cfg.hidden_sizes == (32, 32) and cfg.normalize_advantage is False


def test_non_numeric_string_is_refused_with_field():
    with pytest.raises(ConfigError) as err:
        RunConfig(algo="trpo").with_changes(delta="abc")
    assert err.value.field == "delta"


def test_unknown_key_is_refused():
    with pytest.raises(ConfigError) as err:
        RunConfig(algo="ppo").with_changes(delta=0.1)
    assert err.value.field == "delta"


def test_json_round_trip_keeps_every_field():
    cfg = RunConfig(algo="ppo-kl", env_id="Pendulum-v1").with_changes(kl_target=0.02, seed=3)
    again = RunConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.params.penalty == "kl"


def test_changing_algo_resets_params():
    cfg = RunConfig(algo="ppo").with_changes(algo="trpo", delta=0.05)
    assert type(cfg.params).__name__ == "TRPOConfig" and cfg.params.delta == 0.05


@pytest.mark.parametrize("env_id", ["gym.envs:Foo", "LunarLander-v3", "os:system", ""])
def test_unlisted_env_is_refused(env_id):
    with pytest.raises(ConfigError) as err:
        check_env_id(env_id)
    assert err.value.field == "env_id"


def test_dqn_refuses_continuous_env():
    with pytest.raises(ConfigError, match="discrete"):
        RunConfig(algo="dqn").with_changes(env_id="Pendulum-v1")


def test_live_keys_are_the_safe_ones():
    live = RunConfig(algo="trpo").live_keys()
    assert {"delta", "gamma", "gae_lambda", "critic_lr"} <= set(live)
    assert "n_envs" not in live and "hidden_sizes" not in live
    assert {"lr", "clip_eps", "gamma"} <= set(RunConfig(algo="ppo").live_keys())


@pytest.mark.parametrize(
    ("algo", "unused", "used"),
    [
        ("trpo", {"lr"}, {"delta", "backtrack_coef"}),
        ("npg", {"lr", "backtrack_coef", "max_backtracks"}, {"delta"}),
        ("ppo", {"kl_target", "kl_beta0"}, {"clip_eps", "lr"}),
        ("ppo-kl", {"clip_eps", "anneal_clip"}, {"kl_target", "lr"}),
        ("a2c", set(), {"lr", "gae_lambda"}),
        ("dqn", {"gae_lambda", "normalize_advantage"}, {"lr", "gamma"}),
    ],
)
def test_each_algorithm_hides_exactly_the_fields_it_never_reads(algo, unused, used):
    config = RunConfig(algo=algo)
    assert config.unused_keys() == unused
    assert not used & config.unused_keys() and set(config.keys()) >= unused | used
    assert not unused & set(config.live_keys())


def test_ppo_switched_to_the_kl_objective_hides_the_clip_knobs():
    assert "clip_eps" in RunConfig(algo="ppo").with_changes(penalty="kl").unused_keys()


@pytest.mark.parametrize(
    ("text", "value"), [("1e6", 10**6), ("250k", 250_000), ("2.5M", 2_500_000), ("100_000", 10**5)]
)
def test_counts_read_scientific_and_suffixed_text(text, value):
    assert RunConfig().with_changes(total_steps=text).total_steps == value


@pytest.mark.parametrize("text", ["2.5", "1.2345k", "k", "", "ten"])
def test_counts_that_are_not_whole_numbers_name_the_field(text):
    with pytest.raises(ConfigError) as e:
        RunConfig().with_changes(total_steps=text)
    assert e.value.field == "total_steps" and "not a valid integer" in e.value.message

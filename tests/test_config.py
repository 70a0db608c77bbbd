"""Config validation: one path for CLI, app and sweeps; errors name the field and the range."""

import math

import pytest

from core.config import ALGORITHMS, ConfigError, RunConfig, allowed_text, check_value, field_type
from core.config.environments import check_env_id

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
    assert "allowed" in str(err.value)


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


@pytest.mark.parametrize("env_id", ["gym.envs:Foo", "LunarLander-v2", "Ant-v5", "os:system", ""])
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


# -- cross-field rules ---------------------------------------------------------------------------

SMALL_BATCH = {"n_envs": 2, "n_steps": 32}  # a batch of 64 transitions
PAIR_RULES = [  # algo, changes, field named, allowed range in the message
    ("ppo", {**SMALL_BATCH, "minibatch_size": 65}, "minibatch_size", "[1, 64]"),
    ("trpo", {**SMALL_BATCH, "critic_minibatch": 65}, "critic_minibatch", "[1, 64]"),
    ("npg", {**SMALL_BATCH, "critic_minibatch": 4096}, "critic_minibatch", "[1, 64]"),
    ("dqn", {"buffer_size": 100, "batch_size": 101}, "batch_size", "[1, 100]"),
]


@pytest.mark.parametrize(("algo", "changes", "key", "allowed"), PAIR_RULES)
def test_inconsistent_pair_names_the_field_and_its_allowed_range(algo, changes, key, allowed):
    with pytest.raises(ConfigError) as err:
        RunConfig(algo=algo).with_changes(**changes)
    assert err.value.field == key
    assert err.value.message.endswith(f"allowed {allowed}")


@pytest.mark.parametrize(
    ("algo", "changes"),
    [
        ("trpo", {**SMALL_BATCH, "critic_minibatch": 64}),
        ("npg", {**SMALL_BATCH, "critic_minibatch": 1}),
        ("dqn", {"buffer_size": 100, "batch_size": 100}),
    ],
)
def test_pairs_at_the_limit_are_accepted(algo, changes):
    cfg = RunConfig(algo=algo).with_changes(**changes)
    assert all(cfg.get(k) == v for k, v in changes.items())


def test_shrinking_the_batch_below_the_critic_minibatch_names_critic_minibatch():
    with pytest.raises(ConfigError) as err:  # default critic_minibatch 128
        RunConfig(algo="trpo").with_changes(n_envs=1, n_steps=100)
    assert err.value.field == "critic_minibatch"
    assert "larger than the batch n_envs·n_steps = 100; allowed [1, 100]" in err.value.message


# -- the allowed values each field type states ---------------------------------------------------

BOOLEAN_TEXT = "allowed true or false (also 1/0, yes/no, on/off)"


@pytest.mark.parametrize("value", ["maybe", 2, 1.5, None, ""])
def test_bad_boolean_names_the_field_and_the_accepted_spellings(value):
    with pytest.raises(ConfigError) as err:
        RunConfig(algo="ppo").with_changes(normalize_advantage=value)
    assert err.value.field == "normalize_advantage"
    assert err.value.message.endswith(BOOLEAN_TEXT) and "∞" not in err.value.message


def test_validate_states_the_boolean_spellings_too():
    cfg = RunConfig(algo="dqn")
    cfg.params.double = 2  # set behind with_changes' back: validate() alone must catch it
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.field == "double" and err.value.message.endswith(BOOLEAN_TEXT)


@pytest.mark.parametrize(
    ("algo", "key", "text"),
    [
        ("ppo", "normalize_advantage", "true or false (also 1/0, yes/no, on/off)"),
        ("dqn", "prioritized", "true or false (also 1/0, yes/no, on/off)"),
        ("ppo", "activation", "one of tanh, relu"),
        ("a2c", "optimizer", "one of rmsprop, adam"),
        ("ppo", "name", "text of at most 200 characters"),
        ("ppo", "env_id", "text of at most 200 characters"),
        ("ppo", "hidden_sizes", "1 to 4 layer sizes, each in [1, 1024], e.g. 64, 64"),
        ("ppo", "target_kl", "(0, 1] or none (off)"),
        ("ppo", "gamma", "(0, 1]"),
        ("trpo", "critic_minibatch", "[1, 1e+06]"),
    ],
)
def test_allowed_text_fits_the_field_type(algo, key, text):
    cfg = RunConfig(algo=algo)
    assert allowed_text(cfg.owner_of(key), key) == text


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_field_refuses_a_wrong_type_with_values_of_its_own_kind(algo):
    cfg = RunConfig(algo=algo)
    keys = cfg.keys()
    for key in keys:
        with pytest.raises(ConfigError) as err:
            cfg.with_changes(**{key: object()})
        owner = cfg.owner_of(key)
        assert err.value.field == key
        assert err.value.message.endswith(f"allowed {allowed_text(owner, key)}")
        if field_type(owner, key) in (bool, str):  # booleans, text, choices: no interval
            assert "∞" not in err.value.message, key


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("hidden_sizes", 5, "5 is not a list of layer sizes; allowed 1 to 4 layer sizes"),
        ("hidden_sizes", (64,) * 5, "has 5 layers; allowed 1 to 4 layer sizes"),
        ("hidden_sizes", (64, 0), "layer size 0 is out of range; allowed 1 to 4 layer sizes"),
        ("name", 5, "5 is not text; allowed text of at most 200 characters"),
        ("name", "x" * 201, "201 characters is too long; allowed text of at most 200"),
        ("activation", None, "a value is required; allowed one of tanh, relu"),
    ],
)
def test_check_value_says_what_is_wrong_and_what_is_allowed(key, value, message):
    with pytest.raises(ConfigError) as err:
        check_value(RunConfig(), key, value)
    assert err.value.field == key and message in err.value.message


def test_a_stored_trpo_config_from_before_the_critic_minibatch_check_still_reads():
    stored = RunConfig(algo="trpo").to_dict()
    stored.update(n_envs=2, n_steps=4)
    stored["params"]["critic_minibatch"] = 128  # accepted before; it meant the full batch
    assert RunConfig.from_dict(stored).params.critic_minibatch == 8
    with pytest.raises(ConfigError, match="critic_minibatch"):  # new configs are checked
        RunConfig(algo="trpo").with_changes(n_envs=2, n_steps=4)

"""The RL-Zoo presets for the MuJoCo and Box2D tasks: each validates, carries the zoo's key
settings (rl-baselines3-zoo hyperparams/ppo.yml, trpo.yml, dqn.yml), and the CLI and the Train page
offer it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import build_parser, main, train_config
from core.engine.algos import preset_config, presets
from tests.helpers import ROOT
from ui.state import get_manager

MUJOCO = (
    "Hopper-v5",
    "Walker2d-v5",
    "HalfCheetah-v5",
    "Swimmer-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
)
NORM = ("normalize_obs", "normalize_reward")

# (algo, env) → the zoo's values under this project's names. minibatch_size is the zoo's
# batch_size, capped at the batch n_envs·n_steps (SB3 then takes one full-batch step).
EXPECTED: dict[tuple[str, str], dict] = {
    ("ppo", "Hopper-v5"): dict(
        n_envs=1, n_steps=512, minibatch_size=32, gamma=0.999, gae_lambda=0.99, lr=9.80828e-05,
        epochs=5, clip_eps=0.2, ent_coef=0.00229519, vf_coef=0.835671, max_grad_norm=0.7,
        log_std_init=-2.0, hidden_sizes=(256, 256), activation="relu", normalize_obs=True,
        normalize_reward=True, total_steps=1_000_000,
    ),
    ("ppo", "Walker2d-v5"): dict(
        n_envs=1, n_steps=512, minibatch_size=32, gamma=0.99, gae_lambda=0.95, lr=5.05041e-05,
        epochs=20, clip_eps=0.1, ent_coef=0.000585045, vf_coef=0.871923, max_grad_norm=1.0,
        hidden_sizes=(64, 64), activation="tanh", normalize_obs=True, normalize_reward=True,
    ),
    ("ppo", "HalfCheetah-v5"): dict(
        n_envs=1, n_steps=512, minibatch_size=64, gamma=0.98, gae_lambda=0.92, lr=2.0633e-05,
        epochs=20, clip_eps=0.1, ent_coef=0.000401762, vf_coef=0.58096, max_grad_norm=0.8,
        log_std_init=-2.0, hidden_sizes=(256, 256), activation="relu", normalize_obs=True,
        normalize_reward=True,
    ),
    ("ppo", "Swimmer-v5"): dict(
        n_envs=4, n_steps=1024, minibatch_size=256, gamma=0.9999, gae_lambda=0.98, lr=6e-4,
        epochs=10, clip_eps=0.2, normalize_obs=True, normalize_reward=True,
    ),
    ("ppo", "InvertedPendulum-v5"): dict(
        n_envs=1, n_steps=32, minibatch_size=32, gamma=0.999, gae_lambda=0.9, lr=0.000222425,
        epochs=5, clip_eps=0.4, max_grad_norm=0.3, vf_coef=0.19816, normalize_obs=True,
        normalize_reward=True,
    ),
    ("ppo", "InvertedDoublePendulum-v5"): dict(
        n_envs=1, n_steps=128, minibatch_size=128, gamma=0.98, gae_lambda=0.8, lr=0.000155454,
        epochs=10, clip_eps=0.4, max_grad_norm=0.5, vf_coef=0.695929, normalize_obs=True,
        normalize_reward=True,
    ),
    ("ppo", "LunarLander-v3"): dict(
        n_envs=16, n_steps=1024, minibatch_size=64, gamma=0.999, gae_lambda=0.98, lr=3e-4,
        epochs=4, ent_coef=0.01, normalize_obs=False, normalize_reward=False,
        total_steps=1_000_000,
    ),
    **{
        ("trpo", env): dict(
            n_envs=2, n_steps=1024, critic_minibatch=128, gamma=0.99, gae_lambda=0.95,
            critic_lr=1e-3, critic_iters=20, cg_iters=25, damping=0.1, delta=0.01,
            fvp_subsample=1.0, normalize_obs=True, normalize_reward=True, total_steps=1_000_000,
        )
        for env in ("Hopper-v5", "Walker2d-v5")
    },
    ("trpo", "HalfCheetah-v5"): dict(
        n_envs=2, n_steps=1024, critic_minibatch=128, gamma=0.99, gae_lambda=0.95, delta=0.04,
        cg_iters=25, critic_iters=20, normalize_obs=True, normalize_reward=True,
    ),
    ("trpo", "Swimmer-v5"): dict(
        n_envs=2, n_steps=1024, critic_minibatch=128, gamma=0.9999, gae_lambda=0.95,
        delta=0.01, cg_iters=25, critic_iters=20, normalize_obs=True, normalize_reward=True,
    ),
    # no tuned entry in trpo.yml: its "default", sb3-contrib's TRPO defaults
    **{
        ("trpo", env): dict(
            n_envs=1, n_steps=2048, critic_minibatch=128, gamma=0.99, gae_lambda=0.95,
            critic_lr=1e-3, critic_iters=10, cg_iters=15, damping=0.1, delta=0.01,
            normalize_obs=False, normalize_reward=False, total_steps=1_000_000,
        )
        for env in ("InvertedPendulum-v5", "InvertedDoublePendulum-v5")
    },
    ("dqn", "LunarLander-v3"): dict(
        total_steps=100_000, lr=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
        gamma=0.99, target_update_interval=250, train_freq=4, gradient_steps=4,
        exploration_fraction=0.12, exploration_final_eps=0.1, hidden_sizes=(256, 256),
        activation="relu", n_envs=1, normalize_obs=False, normalize_reward=False,
    ),
}  # fmt: skip


def test_the_issue_asks_for_these_presets():
    wanted = {(a, e) for a in ("ppo", "trpo") for e in MUJOCO}
    wanted |= {("ppo", "LunarLander-v3"), ("dqn", "LunarLander-v3")}
    assert set(EXPECTED) == wanted


@pytest.mark.parametrize(("algo", "env_id"), list(EXPECTED), ids=[f"{a}-{e}" for a, e in EXPECTED])
def test_each_zoo_preset_validates_with_the_zoo_settings(algo, env_id):
    config = preset_config(algo, env_id, "zoo")
    assert {key: config.get(key) for key in EXPECTED[algo, env_id]} == EXPECTED[algo, env_id]
    assert "zoo" in presets(algo, env_id)


@pytest.mark.parametrize(("algo", "twin"), [("ppo", "ppo-kl"), ("trpo", "npg")])
def test_the_module_twins_share_the_presets(algo, twin):
    for env_id in MUJOCO:
        assert presets(twin, env_id) == presets(algo, env_id)


@pytest.mark.parametrize("algo", ["ppo", "trpo"])
def test_zoo_acrobot_normalize_true_turns_on_both_normalizations(algo):
    config = preset_config(algo, "Acrobot-v1", "zoo")
    assert (config.normalize_obs, config.normalize_reward) == (True, True)


def test_cli_train_offers_the_presets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--preset" in text and all(env in text for env in (*MUJOCO, "LunarLander-v3"))
    for algo, env_id in EXPECTED:
        args = build_parser().parse_args(
            ["train", "--algo", algo, "--env", env_id, "--preset", "zoo", "--seed", "4"]
        )
        assert train_config(args) == preset_config(algo, env_id, "zoo", seed=4)


@pytest.fixture
def manager():
    """A fresh process-wide run manager on this test's data directory, shut down afterwards."""
    get_manager.clear()
    yield get_manager()
    get_manager().shutdown()
    get_manager.clear()


def test_train_page_lists_and_applies_the_hopper_preset(manager):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train.env").set_value("Hopper-v5").run()
    at.selectbox(key="train.algo").set_value("ppo").run()
    assert "zoo" in at.selectbox(key="train.preset").options
    at.selectbox(key="train.preset").set_value("zoo").run()
    next(b for b in at.button if b.label == "Apply preset").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["train.ppo.n_steps"] == 512
    assert at.session_state["train.ppo.normalize_obs"] is True

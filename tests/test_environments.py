"""The MuJoCo and Box2D environments: catalogue, building, a short training update, rendering,
and the one-line reason shown where a Gymnasium extra cannot be imported."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete
from streamlit.testing.v1 import AppTest

from core import cli
from core.config import ConfigError, RunConfig
from core.config import environments as catalogue
from core.config.environments import SUPPORTED_ENVS, check_env_id, unavailable_reason
from core.engine.algos import make_trainer
from core.engine.envs import make_env, make_vec_env
from core.runtime import playback
from ui.state import get_manager

APP = str(Path(__file__).resolve().parents[1] / "app.py")

NEW_ENVS = {  # env id → (extra, discrete)
    "Hopper-v5": ("mujoco", False),
    "Walker2d-v5": ("mujoco", False),
    "HalfCheetah-v5": ("mujoco", False),
    "Swimmer-v5": ("mujoco", False),
    "InvertedPendulum-v5": ("mujoco", False),
    "InvertedDoublePendulum-v5": ("mujoco", False),
    "LunarLander-v3": ("box2d", True),
    "LunarLanderContinuous-v3": ("box2d", False),
    "BipedalWalker-v3": ("box2d", False),
}


@pytest.fixture
def without_mujoco(monkeypatch):
    """``import mujoco`` fails, as on a machine where the extra cannot be installed."""
    real = importlib.import_module

    def fake(name: str, *args):
        if name == "mujoco":
            raise ImportError("No module named 'mujoco'")
        return real(name, *args)

    catalogue.extra_problem.cache_clear()
    monkeypatch.setattr(catalogue.importlib, "import_module", fake)
    yield
    catalogue.extra_problem.cache_clear()


@pytest.mark.parametrize("env_id", NEW_ENVS)
def test_new_env_is_catalogued_and_steps_as_a_vector_env(env_id):
    extra, discrete = NEW_ENVS[env_id]
    info = SUPPORTED_ENVS[env_id]
    assert (info.extra, info.discrete) == (extra, discrete)
    assert info.blurb and info.solved_return > 0
    assert unavailable_reason(env_id) is None
    env = make_vec_env(env_id, n_envs=2, seed=0)
    try:
        space = env.single_action_space
        assert isinstance(space, Discrete if discrete else Box)
        obs, _, _, _, _ = env.step(env.action_space.sample())
        assert obs.shape == (2, *env.single_observation_space.shape)
        assert np.isfinite(obs).all()
    finally:
        env.close()


def test_vector_env_keeps_the_final_observation_and_drops_the_sub_envs_step_infos():
    single = make_env("Hopper-v5")
    reset_keys = set(single.reset(seed=0)[1])
    step_keys = set(single.step(single.action_space.sample())[4]) - reset_keys
    single.close()
    assert {"x_velocity", "reward_forward", "reward_ctrl"} <= step_keys  # the env's own
    env = make_vec_env("Hopper-v5", n_envs=2, seed=0)
    try:
        assert env.step(env.action_space.sample())[4] == {}
        for _ in range(1000):  # random actions: the hopper falls within a few dozen steps
            obs, _, terminated, truncated, infos = env.step(env.action_space.sample())
            done = terminated | truncated
            if done.any():
                break
        assert done.any() and infos["_final_obs"].tolist() == done.tolist()
        assert not step_keys & set(infos)  # the reset's info remains, no step's
        final = np.stack(infos["final_obs"][done])
        assert final.shape == (int(done.sum()), 11) and not np.allclose(final, obs[done])
    finally:
        env.close()


def test_continuous_lunar_lander_is_gymnasiums_lunar_lander_with_continuous_throttles():
    env = make_vec_env("LunarLanderContinuous-v3", n_envs=1, seed=0)
    try:
        assert env.single_action_space.shape == (2,)
        assert env.envs[0].spec.id == "LunarLander-v3"
    finally:
        env.close()


def test_dqn_refuses_continuous_new_envs_and_takes_lunar_lander():
    with pytest.raises(ConfigError, match="discrete action space.*LunarLander-v3"):
        check_env_id("Hopper-v5", "dqn")
    assert check_env_id("LunarLander-v3", "dqn").discrete


def test_missing_extra_gives_a_reason_and_leaves_the_others_working(without_mujoco, capsys):
    reason = unavailable_reason("Hopper-v5")
    assert reason and "Hopper-v5 is unavailable" in reason and "gymnasium[mujoco]" in reason
    assert "\n" not in reason
    assert unavailable_reason("LunarLander-v3") is None
    assert unavailable_reason("CartPole-v1") is None
    with pytest.raises(ConfigError, match="gymnasium\\[mujoco\\]"):
        RunConfig(algo="ppo").with_changes(env_id="Walker2d-v5")
    env = make_vec_env("BipedalWalker-v3", n_envs=1, seed=0)
    env.close()
    assert cli.main(["train", "--algo", "ppo", "--env", "Hopper-v5", "--steps", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "gymnasium[mujoco]" in err


def test_train_page_marks_an_unavailable_env_and_explains_it_in_one_line(without_mujoco):
    get_manager.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    try:
        at.switch_page("pages/train.py").run()
        box = at.selectbox(key="train.env")
        assert "Hopper-v5 (unavailable)" in box.options and "LunarLander-v3" in box.options
        box.set_value("Hopper-v5").run()
        assert not at.exception, [e.message for e in at.exception]
        assert any("gymnasium" in e.value and "mujoco" in e.value for e in at.error)
        assert at.button(key="train.start").disabled
    finally:
        get_manager().shutdown()
        get_manager.clear()


@pytest.mark.parametrize(
    ("algo", "env_id", "changes"),
    [
        ("ppo", "Hopper-v5", {"n_envs": 2, "n_steps": 128, "minibatch_size": 64, "epochs": 1}),
        ("dqn", "LunarLander-v3", {"n_envs": 1, "learning_starts": 100}),
    ],
)
def test_short_training_update_runs(algo, env_id, changes):
    config = RunConfig(algo=algo).with_changes(
        env_id=env_id, total_steps=300, eval_every=0, **changes
    )
    trainer = make_trainer(config)
    report = trainer.update()
    assert trainer.book.env_steps > 0
    assert all(np.isfinite(v) for v in report.metrics.values())


@pytest.mark.parametrize(("algo", "env_id"), [("ppo", "Hopper-v5"), ("dqn", "LunarLander-v3")])
def test_playback_renders_frames(algo, env_id):
    """Fails with a RenderError naming libegl1 / libegl-mesa0 where EGL is missing (``make test``
    installs them)."""
    trainer = make_trainer(RunConfig(algo=algo).with_changes(env_id=env_id, eval_every=0))
    episode = playback.play_episode(trainer, seed=0, max_steps=6)
    assert 2 <= len(episode.frames) <= 5
    frame = episode.frames[0]
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[1] <= playback.GIF_WIDTH
    assert frame.std() > 0  # something was drawn
    assert playback.to_gif(episode.frames)[:6] == b"GIF89a"


def test_render_failure_names_what_to_install(monkeypatch):
    trainer = make_trainer(RunConfig(algo="ppo").with_changes(env_id="Hopper-v5", eval_every=0))

    def no_gl(self):
        raise ImportError("Failed to import OpenGL backend (MUJOCO_GL='egl')")

    monkeypatch.setattr("gymnasium.envs.mujoco.mujoco_env.MujocoEnv.render", no_gl)
    with pytest.raises(playback.RenderError) as err:
        playback.play_episode(trainer, seed=0, max_steps=4)
    message = str(err.value)
    assert "libegl1 libegl-mesa0" in message and "\n" not in message

"""Observation and reward normalization (``core/engine/normalize.py``) against direct numpy
computations over the same stream, and wired into the trainers: raw episode returns, frozen
statistics at evaluation, checkpoints old and new."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer
from core.engine.envs import final_observations
from core.engine.normalize import EPSILON, INITIAL_COUNT, Normalizer, RunningMeanStd

N_ENVS, OBS_DIM = 3, 4


def normalizer(**kw) -> Normalizer:
    settings = dict(
        normalize_obs=True, normalize_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.9
    )
    return Normalizer((OBS_DIM,), N_ENVS, **{**settings, **kw})


def with_prior(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``rows`` pooled with the prior (count 10⁻⁴, mean 0, variance 1)."""
    n, c = len(rows), INITIAL_COUNT
    m, v = rows.mean(axis=0), rows.var(axis=0)
    return n * m / (n + c), (c + n * v + m**2 * c * n / (n + c)) / (n + c)


def stream(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations [steps, envs, dim] on distinct scales; rewards, episode ends [steps, envs]."""
    obs = rng.normal([3.0, -1.0, 0.0, 50.0], [1.0, 0.1, 5.0, 20.0], (steps, N_ENVS, OBS_DIM))
    rewards = rng.normal(1.0, 2.0, (steps, N_ENVS))
    dones = rng.random((steps, N_ENVS)) < 0.1
    return obs, rewards, dones


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = γ R_{t−1} + r_t per env, R reset to 0 after a step that ended an episode."""
    out = np.zeros_like(rewards)
    for e in range(rewards.shape[1]):
        ret = 0.0
        for t in range(rewards.shape[0]):
            ret = gamma * ret + rewards[t, e]
            out[t, e] = ret
            if dones[t, e]:
                ret = 0.0
    return out


def test_running_moments_equal_numpy_over_every_row_seen():
    rng = np.random.default_rng(0)
    rms = RunningMeanStd((OBS_DIM,))
    seen = []
    for size in (1, 3, 7, 3, 40, 2):
        batch = rng.normal(5.0, 3.0, (size, OBS_DIM)).astype(np.float32)
        rms.update(batch)
        seen.append(batch)
        rows = np.concatenate(seen).astype(np.float64)
        mean, var = with_prior(rows)
        np.testing.assert_allclose(rms.mean, mean, rtol=1e-12)
        np.testing.assert_allclose(rms.var, var, rtol=1e-12)
        assert rms.count == pytest.approx(len(rows) + INITIAL_COUNT, rel=1e-15)
    np.testing.assert_allclose(rms.mean, rows.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(rms.var, rows.var(axis=0), rtol=1e-5)


def test_one_row_at_a_time_gives_the_moments_of_every_row_seen():
    rng = np.random.default_rng(3)
    rows = rng.normal([2.0, -40.0, 0.0, 1e3], [1.0, 5.0, 1e-3, 10.0], (300, OBS_DIM))
    rms, scalar = RunningMeanStd((OBS_DIM,)), RunningMeanStd(())
    for row in rows:  # a one-env vector step: a batch of one row
        rms.update(row[None])
        scalar.update(row[:1])
    for got, data in ((rms, rows), (scalar, rows[:, 0])):
        mean, var = with_prior(data)
        np.testing.assert_allclose(got.mean, mean, rtol=1e-12)
        np.testing.assert_allclose(got.var, var, rtol=1e-10)
        np.testing.assert_allclose(got.inv_std, 1 / np.sqrt(var + EPSILON), rtol=1e-10)


def test_observations_and_rewards_follow_a_direct_computation_step_by_step():
    rng = np.random.default_rng(1)
    obs, rewards, dones = stream(rng, 60)
    norm = normalizer(clip_obs=1e6, clip_reward=1e6)
    norm.update_obs(obs[0])  # the reset's observations
    returns = discounted_returns(rewards[1:], dones[1:], norm.gamma)
    for t in range(1, len(obs)):
        norm.update(obs[t], rewards[t], dones[t])
        mean, var = with_prior(obs[: t + 1].reshape(-1, OBS_DIM))
        expected_obs = (obs[t] - mean) / np.sqrt(var + EPSILON)
        np.testing.assert_allclose(norm.obs(obs[t]), expected_obs, rtol=1e-5, atol=1e-6)
        _, ret_var = with_prior(returns[:t].reshape(-1))
        assert norm.ret_rms.var == pytest.approx(ret_var, rel=1e-10)
        expected_reward = rewards[t] / np.sqrt(ret_var + EPSILON)
        np.testing.assert_allclose(norm.reward(rewards[t]), expected_reward, rtol=1e-5)


def test_clipping_and_float32_outputs():
    norm = normalizer(clip_obs=2.0, clip_reward=0.5)
    rng = np.random.default_rng(2)
    for _ in range(20):
        norm.update(
            rng.normal(0, 1, (N_ENVS, OBS_DIM)), rng.normal(0, 1, N_ENVS), np.zeros(3, bool)
        )
    far = np.array([[100.0, -100.0, 0.0, 1.0]] * N_ENVS)
    out = norm.obs(far)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :2], [[2.0, -2.0]] * N_ENVS)
    assert np.abs(out[:, 2:]).max() < 2.0
    np.testing.assert_array_equal(norm.reward(np.array([1e3, -1e3, 0.0])), [0.5, -0.5, 0.0])


def test_switched_off_parts_return_their_input_and_learn_nothing():
    norm = normalizer(normalize_obs=False, normalize_reward=False)
    obs, rewards = np.ones((N_ENVS, OBS_DIM)), np.ones(N_ENVS)
    norm.update(obs, rewards, np.zeros(N_ENVS, bool))
    assert norm.obs(obs) is obs and norm.reward(rewards) is rewards
    assert norm.obs_rms.count == INITIAL_COUNT and norm.ret_rms.count == INITIAL_COUNT


def test_frozen_statistics_do_not_change():
    rng = np.random.default_rng(3)
    obs, rewards, dones = stream(rng, 10)
    norm = normalizer()
    for t in range(5):
        norm.update(obs[t], rewards[t], dones[t])
    before = norm.to_json()
    with norm.frozen_stats():
        for t in range(5, 10):
            norm.update(obs[t], rewards[t], dones[t])
            norm.update_obs(obs[t])
    assert norm.to_json() == before and not norm.frozen
    norm.frozen = True
    norm.update(obs[0], rewards[0], dones[0])
    assert norm.to_json() == before


def test_state_round_trip_through_a_checkpoint_continues_the_same_stream():
    rng = np.random.default_rng(4)
    obs, rewards, dones = stream(rng, 40)
    norm = normalizer()
    for t in range(20):
        norm.update(obs[t], rewards[t], dones[t])
    buf = io.BytesIO()
    torch.save(norm.state_dict(), buf)
    buf.seek(0)
    restored = normalizer()
    restored.load_state_dict(torch.load(buf, weights_only=True))
    restored.returns = norm.returns.copy()  # the running returns of episodes still going
    for t in range(20, 40):
        norm.update(obs[t], rewards[t], dones[t])
        restored.update(obs[t], rewards[t], dones[t])
    assert restored.to_json() == norm.to_json()
    mean, var = with_prior(obs.reshape(-1, OBS_DIM))
    np.testing.assert_allclose(restored.obs_rms.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(restored.obs_rms.var, var, rtol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        Normalizer((2,), 1, **_settings(norm)).load_state_dict(norm.state_dict())


def _settings(norm: Normalizer) -> dict:
    keys = ("normalize_obs", "normalize_reward", "clip_obs", "clip_reward", "gamma")
    return {k: getattr(norm, k) for k in keys}


@pytest.mark.parametrize("key", ["clip_obs", "clip_reward"])
@pytest.mark.parametrize(("value", "shown"), [("0", "0"), (-1.5, "-1.5"), (1e7, "1e+07")])
def test_clip_ranges_are_validated_with_a_clear_message(key, value, shown):
    with pytest.raises(ConfigError) as err:
        RunConfig().with_changes(**{key: value})
    assert err.value.field == key
    assert str(err.value) == f"{key}: {shown} is out of range; allowed (0, 1e+06]"


def test_normalization_settings_are_off_by_default_and_not_live():
    cfg = RunConfig()
    assert (cfg.normalize_obs, cfg.normalize_reward, cfg.clip_obs, cfg.clip_reward) == (
        False,
        False,
        10.0,
        10.0,
    )
    live = set(cfg.live_keys())
    assert not live & {"normalize_obs", "normalize_reward", "clip_obs", "clip_reward"}


TRAINER_CASES = {
    "ppo": dict(algo="ppo", env_id="Pendulum-v1", n_envs=2, n_steps=150, minibatch_size=100),
    "trpo": dict(algo="trpo", env_id="Pendulum-v1", n_envs=2, n_steps=150),
    "dqn": dict(
        algo="dqn",
        env_id="CartPole-v1",
        n_envs=2,
        n_steps=100,
        learning_starts=50,
        train_freq=16,
        batch_size=32,
    ),
}


def recording(trainer) -> list[tuple[np.ndarray, np.ndarray]]:
    """Wrap the trainer's env so every step's raw rewards and episode ends are recorded."""
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    step = trainer.env.step

    def recorded(actions):
        out = step(actions)
        steps.append((np.array(out[1], dtype=np.float64), out[2] | out[3]))
        return out

    trainer.env.step = recorded
    return steps


@pytest.mark.parametrize("case", sorted(TRAINER_CASES))
def test_trainer_reports_raw_returns_learns_normalized_and_evaluates_frozen(case):
    cfg = RunConfig(algo=TRAINER_CASES[case]["algo"]).with_changes(
        **{k: v for k, v in TRAINER_CASES[case].items() if k != "algo"},
        normalize_obs=True,
        normalize_reward=True,
        clip_reward=5.0,
        eval_every=0,
        seed=3,
    )
    trainer = make_trainer(cfg)
    steps = recording(trainer)
    episodes = [ep for _ in range(2) for ep in trainer.update().episodes]
    rewards = np.stack([r for r, _ in steps])
    dones = np.stack([d for _, d in steps])
    expected = []  # (env step at its end, raw return) of every finished episode
    ret = np.zeros(cfg.n_envs)
    for t in range(len(steps)):
        ret += rewards[t]
        expected += [((t + 1) * cfg.n_envs, float(ret[i])) for i in np.flatnonzero(dones[t])]
        ret[dones[t]] = 0.0
    assert episodes, "the runs are long enough to finish episodes"
    assert [e.env_step for e in episodes] == [step for step, _ in expected]
    assert [e.ret for e in episodes] == pytest.approx([ret for _, ret in expected], rel=1e-9)

    norm = trainer.normalizer
    assert norm.obs_rms.count == pytest.approx(INITIAL_COUNT + (len(steps) + 1) * cfg.n_envs)
    assert norm.ret_rms.count == pytest.approx(INITIAL_COUNT + len(steps) * cfg.n_envs)
    if case != "dqn":  # the last rollout holds r_t / √(Var[R_0..R_t] + ε), clipped
        returns = discounted_returns(rewards, dones, cfg.gamma)
        start = len(steps) - cfg.n_steps
        scale = [
            np.sqrt(with_prior(returns[: t + 1].ravel())[1] + EPSILON) for t in range(len(steps))
        ]
        expected_rewards = np.clip(rewards / np.array(scale)[:, None], -5.0, 5.0)[start:]
        np.testing.assert_allclose(trainer.buffer.rewards, expected_rewards, rtol=1e-5)
        assert np.abs(trainer.buffer.obs.numpy()).max() <= cfg.clip_obs

    before = norm.to_json()
    trainer.evaluate(2)
    obs = torch.zeros((1, *trainer.env.single_observation_space.shape))
    trainer.policy(obs)
    assert norm.to_json() == before and not norm.frozen

    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    restored = make_trainer(cfg)
    restored.load_state_dict(state)
    assert restored.normalizer.to_json() == before
    torch.testing.assert_close(restored.policy(obs), trainer.policy(obs))

    del state["normalizer"]  # a checkpoint written before normalization existed still loads
    make_trainer(RunConfig.from_json(state["config"])).load_state_dict(state)


def test_truncation_bootstraps_from_the_normalized_final_observation():
    cfg = RunConfig(algo="trpo").with_changes(
        env_id="Pendulum-v1", n_envs=2, n_steps=200, normalize_obs=True, seed=1
    )
    trainer = make_trainer(cfg)
    finals = []
    step = trainer.env.step

    def recorded(actions):
        out = step(actions)
        finals.append(final_observations(out[0], out[4]))
        return out

    trainer.env.step = recorded
    trainer.start_update()  # Pendulum's 200-step limit truncates both envs at the last step
    assert trainer.buffer.truncated[-1].all()
    with torch.no_grad():
        v_final = trainer.critic(torch.from_numpy(trainer.normalizer.obs(finals[-1])))
    torch.testing.assert_close(trainer.buffer.next_values[-1], v_final)


def test_export_writes_the_statistics_of_the_newest_checkpoint(tmp_path):
    from core.runtime.checkpoint import save_checkpoint
    from core.runtime.export import export_csv, export_tensorboard
    from core.runtime.store import RunStore

    cfg = RunConfig(algo="ppo").with_changes(
        n_envs=2, n_steps=32, minibatch_size=32, normalize_obs=True, eval_every=0
    )
    trainer = make_trainer(cfg)
    store = RunStore(tmp_path / "data")
    try:
        run_id = store.create_run(cfg)
        assert len(export_csv(store, run_id, tmp_path / "before")) == 3  # no checkpoint yet
        for update in (1, 2):
            trainer.update()
            path = save_checkpoint(
                store.checkpoint_dir(run_id) / f"update_{update}.pt",
                run_id=run_id,
                update=update,
                env_steps=trainer.book.env_steps,
                config_json=cfg.to_json(),
                state=trainer.state_dict(),
            )
            store.add_checkpoint(run_id, update, trainer.book.env_steps, str(path))
        store.flush()
        written = export_csv(store, run_id, tmp_path / "csv")
        tb_dir = export_tensorboard(store, run_id, tmp_path / "tb")
    finally:
        store.close()
    assert written[-1].name == f"{run_id}_normalization.json"
    exported = json.loads(written[-1].read_text())
    assert exported == json.loads(json.dumps(trainer.normalizer.to_json()))
    assert exported["obs_count"] == pytest.approx(
        INITIAL_COUNT + 2 + 2 * 32 * 2
    )  # reset + 2 rollouts
    assert (tb_dir / written[-1].name).read_text() == written[-1].read_text()


@pytest.mark.parametrize("on", [True, False])
def test_writing_into_a_buffer_row_gives_the_same_numbers(on):
    rng = np.random.default_rng(4)
    norm = normalizer(normalize_obs=on, normalize_reward=on, clip_obs=2.0, clip_reward=1.0)
    obs, rewards, dones = stream(rng, 30)
    rows_obs, rows_rew = (
        np.zeros((30, N_ENVS, OBS_DIM), np.float32),
        np.zeros((30, N_ENVS), np.float32),
    )
    for t in range(30):
        norm.update(obs[t], rewards[t], dones[t])
        assert np.shares_memory(norm.obs(obs[t], out=rows_obs[t]), rows_obs)
        norm.reward(rewards[t], out=rows_rew[t])
        np.testing.assert_array_equal(rows_obs[t], np.asarray(norm.obs(obs[t]), np.float32))
        np.testing.assert_array_equal(rows_rew[t], np.asarray(norm.reward(rewards[t]), np.float32))

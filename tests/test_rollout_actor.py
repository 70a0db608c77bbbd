"""The numpy rollout actor samples from the torch actor's policy; the rollout's log-probabilities
are the torch actor's own."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.engine.envs import make_vec_env
from core.engine.nets import CategoricalActor, Critic, GaussianActor
from core.engine.rollout import RolloutBuffer
from core.engine.rollout_actor import RolloutActor
from core.engine.trainer import Bookkeeper


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_matches_the_torch_network(activation):
    torch.manual_seed(0)
    actor = GaussianActor(5, 3, (16, 8), activation)
    torch.nn.init.normal_(actor.net[-1].weight)
    obs = torch.randn(64, 5)
    with torch.no_grad():
        expected = actor.net(obs).numpy()
    np.testing.assert_allclose(RolloutActor(actor).forward(obs.numpy()), expected, atol=1e-5)


def test_categorical_draws_follow_softmax_of_the_logits():
    torch.manual_seed(0)
    actor = CategoricalActor(4, 3, (8,), "tanh")
    torch.nn.init.normal_(actor.net[-1].weight, std=2.0)
    policy = RolloutActor(actor)
    obs = np.repeat(torch.randn(2, 4).numpy(), 40_000, axis=0)  # two states, 40k draws each
    noise = policy.draw_noise((len(obs),), np.random.default_rng(1))
    actions = policy.act(obs, noise)
    row = np.empty(len(obs), np.float32)  # a float buffer row; the returned actions stay integers
    again = policy.act(obs, noise, out=row)
    assert again.dtype.kind == "i" and np.array_equal(again, actions)
    np.testing.assert_array_equal(row, actions.astype(np.float32))
    with torch.no_grad():
        probs = torch.softmax(actor.net(torch.as_tensor(obs[[0, -1]])), -1).numpy()
    for state, rows in enumerate((slice(0, 40_000), slice(40_000, None))):
        freq = np.bincount(actions[rows], minlength=3) / 40_000
        # 5 standard errors of a frequency estimated from 40k draws
        tol = 5 * np.sqrt(probs[state] * (1 - probs[state]) / 40_000)
        assert np.all(np.abs(freq - probs[state]) <= tol), (freq, probs[state])


def test_gaussian_draws_are_mean_plus_sigma_times_the_noise():
    torch.manual_seed(0)
    actor = GaussianActor(3, 2, (8,), "relu", log_std_init=-0.5)
    policy = RolloutActor(actor)
    obs = torch.randn(20_000, 3).numpy()
    noise = policy.draw_noise((len(obs),), np.random.default_rng(2))
    actions = policy.act(obs, noise)
    with torch.no_grad():
        mean = actor.net(torch.as_tensor(obs)).numpy()
    z = (actions - mean) / np.exp(-0.5)
    np.testing.assert_allclose(z, noise, atol=1e-4)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    row = np.empty_like(actions)  # written into a buffer row: the same numbers
    assert policy.act(obs, noise, out=row) is row
    np.testing.assert_array_equal(row, actions)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_rollout_log_probs_and_values_are_the_torch_networks_on_the_stored_batch(env_id):
    torch.manual_seed(0)
    env = make_vec_env(env_id, 3, seed=0)
    obs, _ = env.reset(seed=0)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if isinstance(act_space, gym.spaces.Discrete):
        actor = CategoricalActor(obs_space.shape[0], int(act_space.n), (16,), "tanh")
    else:
        actor = GaussianActor(obs_space.shape[0], act_space.shape[0], (16,), "tanh")
    critic = Critic(obs_space.shape[0], (16,), "tanh")
    buffer = RolloutBuffer(40, 3, obs_space, act_space)
    buffer.collect(env, obs, actor, critic, Bookkeeper(RunConfig(n_envs=3, n_steps=40)))
    flat_obs = buffer.obs.reshape(120, -1)
    flat_actions = buffer.actions.reshape(120, *buffer.actions.shape[2:])
    with torch.no_grad():
        logp, _ = actor.log_prob_entropy(flat_obs, flat_actions)
        values = critic(flat_obs)
    torch.testing.assert_close(buffer.logp.reshape(120), logp)
    torch.testing.assert_close(buffer.values.reshape(120), values)
    assert torch.isfinite(buffer.logp).all() and buffer.obs.abs().sum() > 0

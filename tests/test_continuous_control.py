"""Continuous control as the papers and the RL-Zoo do it: a state-independent log σ, actions
clipped to the bounds for the env while the unclipped sample and its log-probability are stored,
and orthogonal initialisation with SB3's gains (√2 hidden, 0.01 policy head, 1 value head).
Time-limit truncation bootstrapping is checked in ``tests/test_gae.py``."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.engine.algos.trpo import dist_params
from core.engine.envs import make_vec_env
from core.engine.nets import Critic, GaussianActor, make_actor
from core.engine.rollout import RolloutBuffer
from core.engine.rollout_actor import RolloutActor
from core.engine.trainer import Bookkeeper


def test_gaussian_log_std_is_one_parameter_shared_by_every_state():
    torch.manual_seed(0)
    actor = GaussianActor(5, 3, (16, 16), "tanh", log_std_init=-0.7)
    assert tuple(actor.log_std.shape) == (3,) and actor.log_std.requires_grad
    assert all(p is not actor.log_std for p in actor.net.parameters())
    obs = torch.randn(50, 5) * 10
    mean, log_std = dist_params(actor, obs)  # TRPO's distribution parameters
    assert torch.equal(log_std, actor.log_std.expand_as(mean))
    with torch.no_grad():
        _, entropy = actor.log_prob_entropy(obs, torch.randn(50, 3))
    expected = 3 * (0.5 * math.log(2 * math.pi * math.e) - 0.7)
    torch.testing.assert_close(entropy, torch.full_like(entropy, expected))
    np.testing.assert_allclose(RolloutActor(actor).std, np.exp(np.full(3, -0.7)), rtol=1e-6)


class ActionRecorder(gym.vector.VectorWrapper):
    """Keeps every action the env receives."""

    def __init__(self, env):
        super().__init__(env)
        self.sent: list[np.ndarray] = []

    def step(self, actions):
        self.sent.append(np.array(actions))
        return self.env.step(actions)


def test_rollout_sends_clipped_actions_and_stores_the_unclipped_sample_and_its_log_prob():
    torch.manual_seed(0)
    env = ActionRecorder(make_vec_env("Pendulum-v1", 2, seed=0))
    obs, _ = env.reset(seed=0)
    actor = make_actor(env.single_observation_space, env.single_action_space, (16,), "tanh")
    with torch.no_grad():
        actor.net[-1].bias.fill_(1.5)  # μ ≈ 1.5, σ = 1: about a third of the draws exceed 2
    critic = Critic(3, (16,), "tanh")
    buffer = RolloutBuffer(100, 2, env.single_observation_space, env.single_action_space)
    buffer.collect(env, obs, actor, critic, Bookkeeper(RunConfig(n_envs=2, n_steps=100)))

    stored = buffer.actions.numpy()
    sent = np.stack(env.sent)
    assert (np.abs(stored) > 2).mean() > 0.2  # the samples themselves are not clipped
    np.testing.assert_array_equal(sent, np.clip(stored, -2.0, 2.0))
    with torch.no_grad():
        logp, _ = actor.log_prob_entropy(buffer.obs.reshape(200, 3), buffer.actions.reshape(200, 1))
        clipped, _ = actor.log_prob_entropy(
            buffer.obs.reshape(200, 3), torch.from_numpy(sent.reshape(200, 1))
        )
    torch.testing.assert_close(buffer.logp.reshape(200), logp)
    assert not torch.allclose(buffer.logp.reshape(200), clipped)


def _gains(layers: torch.nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(singular values, bias) of each linear layer: orthogonal init with gain g makes every
    singular value g."""
    linear = [m for m in layers if isinstance(m, torch.nn.Linear)]
    return [(torch.linalg.svdvals(m.weight.detach()), m.bias.detach()) for m in linear]


def _assert_ortho(layers: torch.nn.Sequential, head_gain: float) -> None:
    gains = _gains(layers)
    for i, (singular, bias) in enumerate(gains):
        gain = head_gain if i == len(gains) - 1 else math.sqrt(2)
        torch.testing.assert_close(singular, torch.full_like(singular, gain))
        assert torch.equal(bias, torch.zeros_like(bias))


@pytest.mark.parametrize("algo", ["trpo", "ppo", "a2c"])
@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_networks_start_orthogonal_with_the_zoo_gains(algo, env_id):
    config = RunConfig(algo=algo, env_id=env_id).with_changes(
        n_envs=1, n_steps=256, hidden_sizes=(64, 32), eval_every=0
    )
    trainer = make_trainer(config)
    _assert_ortho(trainer.actor.net, 0.01)
    _assert_ortho(trainer.critic.net, 1.0)

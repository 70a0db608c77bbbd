"""GAE (core.engine.rollout.compute_gae) against direct sums, and the rollout's bootstrap at
truncation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from core.config import RunConfig
from core.engine.nets import Critic, make_actor
from core.engine.rollout import RolloutBuffer, compute_gae
from core.engine.trainer import Bookkeeper


def random_rollout(T: int = 40, N: int = 5, seed: int = 0, consistent: bool = False):
    """Random rewards/values and flags; some steps are both terminated and truncated.

    ``consistent``: within an episode V(s_{t+1}) is the next step's V(s_t), as in a real rollout
    (otherwise every next value is independent noise).
    """
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, N, generator=g)
    values = torch.randn(T, N, generator=g)
    next_values = torch.randn(T, N, generator=g)
    terminated = torch.rand(T, N, generator=g) < 0.1
    truncated = torch.rand(T, N, generator=g) < 0.1
    if consistent:
        same_episode = ~(terminated | truncated)[:-1]
        next_values[:-1] = torch.where(same_episode, values[1:], next_values[:-1])
    return rewards, values, next_values, terminated, truncated


def direct_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Â_t = Σ_k (γλ)^k δ_{t+k}, summed until the episode ends (inclusive) or the rollout ends."""
    T, N = rewards.shape
    r, v, nv = (x.double().numpy() for x in (rewards, values, next_values))
    term, done = terminated.numpy(), (terminated | truncated).numpy()
    delta = r + gamma * nv * (1 - term) - v
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total = 0.0
            for k in range(T - t):
                total += (gamma * lam) ** k * delta[t + k, n]
                if done[t + k, n]:
                    break
            adv[t, n] = total
    return adv


def monte_carlo_return(rewards, next_values, terminated, truncated, gamma):
    """G_t = Σ γ^k r_{t+k} to the episode's end, + γ^(k+1) V(s′) at a truncation or rollout end."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, disc = 0.0, 1.0
            for k in range(t, T):
                total += disc * float(rewards[k, n])
                disc *= gamma
                if terminated[k, n]:
                    break
                if truncated[k, n] or k == T - 1:
                    total += disc * float(next_values[k, n])
                    break
            out[t, n] = total
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 0.5), (1.0, 0.8)])
def test_gae_matches_direct_quadratic_sum(seed, gamma, lam):
    rollout = random_rollout(seed=seed)
    adv, ret = compute_gae(*rollout, gamma, lam)
    expected = direct_gae(*rollout, gamma, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret.numpy(), expected + rollout[1].numpy(), rtol=1e-4, atol=1e-4)


def test_gae_lambda_zero_is_one_step_td_error():
    rewards, values, next_values, terminated, truncated = random_rollout(seed=3)
    adv, _ = compute_gae(rewards, values, next_values, terminated, truncated, 0.97, 0.0)
    td = rewards + 0.97 * next_values * (~terminated) - values
    torch.testing.assert_close(adv, td)


@pytest.mark.parametrize("seed", [4, 5])
def test_gae_lambda_one_is_monte_carlo_return_minus_v(seed):
    rollout = random_rollout(seed=seed, consistent=True)
    rewards, values, next_values, terminated, truncated = rollout
    adv, ret = compute_gae(*rollout, 0.95, 1.0)
    mc = monte_carlo_return(rewards, next_values, terminated, truncated, 0.95)
    np.testing.assert_allclose(adv.numpy(), mc - values.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret.numpy(), mc, rtol=1e-4, atol=1e-4)


def test_terminal_step_does_not_bootstrap_but_truncated_step_does():
    rewards = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[0.5, 0.5]])
    next_values = torch.tensor([[10.0, 10.0]])
    terminated = torch.tensor([[True, False]])
    truncated = torch.tensor([[False, True]])
    adv, _ = compute_gae(rewards, values, next_values, terminated, truncated, 0.9, 0.95)
    torch.testing.assert_close(adv, torch.tensor([[0.5, 1.0 + 9.0 - 0.5]]))


class FinalObsRecorder(gym.vector.VectorWrapper):
    """Keeps, per step, the real last observation of every sub-env whose episode ended."""

    def __init__(self, env):
        super().__init__(env)
        self.final: list[dict[int, np.ndarray]] = []

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        ended = np.flatnonzero(infos.get("_final_obs", np.zeros(len(obs), dtype=bool)))
        self.final.append({int(i): np.array(infos["final_obs"][i]) for i in ended})
        return obs, rewards, terminated, truncated, infos


def test_rollout_bootstraps_truncation_from_final_obs_not_reset_obs():
    torch.manual_seed(0)
    n_envs, n_steps = 4, 60
    env = FinalObsRecorder(
        SyncVectorEnv(
            [lambda: gym.make("CartPole-v1", max_episode_steps=12) for _ in range(n_envs)],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
    )
    obs, _ = env.reset(seed=0)
    actor = make_actor(env.single_observation_space, env.single_action_space, (16,), "tanh")
    critic = Critic(4, (16,), "tanh")
    buffer = RolloutBuffer(n_steps, n_envs, env.single_observation_space, env.single_action_space)
    book = Bookkeeper(RunConfig(n_envs=n_envs, n_steps=n_steps))
    last_obs = buffer.collect(env, obs, actor, critic, book)

    assert buffer.truncated.any() and buffer.terminated.any()
    assert book.env_steps == n_envs * n_steps
    with torch.no_grad():
        for t in range(n_steps):
            for i in range(n_envs):
                if buffer.truncated[t, i]:
                    final = torch.as_tensor(env.final[t][i], dtype=torch.float32)
                    torch.testing.assert_close(buffer.next_values[t, i], critic(final))
                    if t + 1 < n_steps:
                        reset_value = buffer.values[t + 1, i]
                        assert not torch.allclose(buffer.next_values[t, i], reset_value)
                elif not buffer.terminated[t, i]:
                    nxt = buffer.values[t + 1, i] if t + 1 < n_steps else None
                    if nxt is None:
                        nxt = critic(torch.as_tensor(last_obs[i], dtype=torch.float32))
                    torch.testing.assert_close(buffer.next_values[t, i], nxt)
                if t + 1 < n_steps and (buffer.terminated[t, i] or buffer.truncated[t, i]):
                    # the next stored observation is the reset one, not the final one
                    assert not np.allclose(buffer.obs[t + 1, i].numpy(), env.final[t][i])

    gamma, lam = 0.99, 0.9
    batch = buffer.batch(gamma, lam)
    adv = batch.advantages.reshape(n_steps, n_envs)
    t, i = map(int, np.argwhere(buffer.truncated)[0])
    expected = buffer.rewards[t, i] + gamma * buffer.next_values[t, i] - buffer.values[t, i]
    torch.testing.assert_close(adv[t, i], expected)

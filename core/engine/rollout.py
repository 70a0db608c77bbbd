"""On-policy rollouts over ``[n_steps, n_envs]`` and generalized advantage estimation.

GAE (Schulman et al. 2016), with done_t = terminated_t or truncated_t:

    δ_t = r_t + γ · V(s_{t+1}) · (1 − terminated_t) − V(s_t)
    Â_t = δ_t + γλ · (1 − done_t) · Â_{t+1}
    R_t = Â_t + V(s_t)            (the critic's regression target)

On truncation (a time limit) s_{t+1} is the real final observation, so the bootstrap uses
V(final observation), never the reset observation. λ = 0 gives the one-step TD error δ_t (low
variance, biased when V is wrong); λ = 1 gives the Monte-Carlo return minus V(s_t) (no bias from V,
high variance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from core.engine.envs import final_observations
from core.engine.nets import Actor
from core.engine.normalize import Normalizer
from core.engine.rollout_actor import RolloutActor
from core.engine.trainer import Bookkeeper


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns for tensors of shape ``[T, N]`` (time first).

    ``next_values[t]`` is V of the true next state of step t (V(final observation) on
    truncation). The sum is cut at the end of the rollout (Â_T = 0 beyond the buffer).
    """
    not_term = 1.0 - terminated.float()
    not_done = 1.0 - torch.maximum(terminated.float(), truncated.float())
    deltas = (rewards + gamma * next_values * not_term - values).numpy()
    decay = (gamma * lam * not_done).numpy()
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):  # numpy: a fraction of torch's per-call cost
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    adv = torch.from_numpy(advantages)
    return adv, adv + values


@dataclass
class Batch:
    """A finished rollout, flattened to ``[T·N, ...]`` for the update."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return self.obs.shape[0]

    def subset(self, idx: torch.Tensor | slice) -> Batch:
        """The samples at ``idx``: an index tensor (a copy) or a slice (views)."""
        return Batch(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


class RolloutBuffer:
    """Preallocated ``[n_steps, n_envs]`` storage for one on-policy rollout."""

    def __init__(self, n_steps: int, n_envs: int, obs_space: gym.Space, act_space: gym.Space):
        t, n = n_steps, n_envs
        self.n_steps, self.n_envs = t, n
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        act_shape = () if self.discrete else act_space.shape
        self.act_low = None if self.discrete else act_space.low
        self.act_high = None if self.discrete else act_space.high
        self.obs = torch.zeros((t, n, *obs_space.shape))
        self.actions = torch.zeros((t, n, *act_shape))
        self.logp = torch.zeros((t, n))
        self.values = torch.zeros((t, n))
        self.next_values = torch.zeros((t, n))
        self.rewards = np.zeros((t, n), dtype=np.float32)
        self.terminated = np.zeros((t, n), dtype=bool)
        self.truncated = np.zeros((t, n), dtype=bool)

    def collect(
        self,
        env: gym.vector.VectorEnv,
        obs: np.ndarray,
        actor: Actor,
        critic: Callable[[torch.Tensor], torch.Tensor],
        book: Bookkeeper,
        normalizer: Normalizer | None = None,
    ) -> np.ndarray:
        """Fill the buffer by acting with ``actor`` from ``obs``; return the next observation.

        ``obs`` and the returned observation are raw; with a ``normalizer`` the buffer holds
        normalized observations (acting, the final observations at truncations and the last one
        for V(s_T) alike) and normalized rewards, its statistics updated at every step
        (``core/engine/normalize.py``), while ``book`` counts the raw rewards.

        Actions come from a numpy snapshot of the actor (:class:`RolloutActor`, its noise seeded
        from torch's generator). Afterwards, in one batched pass each: log π(a_t|s_t) by the torch
        actor, and V(s_t), V(s_T) and V(final observation) at truncations by ``critic``.
        Continuous actions are stored unclipped (their log-probabilities are exact) and clipped to
        the action bounds only when sent to the env.
        """
        policy = RolloutActor(actor)
        rng = np.random.default_rng(int(torch.randint(2**62, ())))
        noise = policy.draw_noise((self.n_steps, self.n_envs), rng)
        obs_np, actions_np = self.obs.numpy(), self.actions.numpy()
        final_obs: list[np.ndarray] = []
        final_at: list[tuple[int, np.ndarray]] = []
        for t in range(self.n_steps):  # rows of the buffers are written in place
            if normalizer is None:
                obs_np[t] = obs
            else:
                normalizer.obs(obs, out=obs_np[t])
            actions = policy.act(obs_np[t], noise[t], out=actions_np[t])
            if not self.discrete:  # clipped by two ufuncs: np.clip's wrapper costs more
                actions = np.minimum(np.maximum(actions, self.act_low), self.act_high)
            obs, rewards, terminated, truncated, infos = env.step(actions)
            dones = terminated | truncated
            book.on_step(rewards, dones)
            if normalizer is None:
                self.rewards[t] = rewards
            else:
                normalizer.update(obs, rewards, dones)
                normalizer.reward(rewards, out=self.rewards[t])
            self.terminated[t] = terminated
            self.truncated[t] = truncated
            if truncated.any():
                idx = np.flatnonzero(truncated)
                final = final_observations(obs, infos)[idx]
                final_obs.append(final if normalizer is None else normalizer.obs(final))
                final_at.append((t, idx))
        size = self.n_steps * self.n_envs
        with torch.no_grad():
            logp, _ = actor.log_prob_entropy(
                self.obs.reshape(size, -1), self.actions.reshape(size, *self.actions.shape[2:])
            )
        self.logp.copy_(logp.reshape(self.n_steps, self.n_envs))
        last_obs = obs if normalizer is None else normalizer.obs(obs)
        self._bootstrap_values(critic, last_obs, final_obs, final_at)
        return obs

    @torch.no_grad()
    def _bootstrap_values(
        self,
        critic: Callable[[torch.Tensor], torch.Tensor],
        last_obs: np.ndarray,
        final_obs: list[np.ndarray],
        final_at: list[tuple[int, np.ndarray]],
    ) -> None:
        """values[t] = V(s_t); next_values[t] = V(s_{t+1}), V(final obs) where truncated."""
        t, n = self.n_steps, self.n_envs
        extra = np.concatenate([last_obs, *final_obs]).astype(np.float32, copy=False)
        v = critic(torch.cat([self.obs.reshape(t * n, -1), torch.from_numpy(extra)]))
        self.values.copy_(v[: t * n].reshape(t, n))
        self.next_values[:-1] = self.values[1:]
        self.next_values[-1] = v[t * n : t * n + n]
        start = t * n + n
        for step, idx in final_at:
            self.next_values[step, idx] = v[start : start + len(idx)]
            start += len(idx)

    def batch(self, gamma: float, lam: float) -> Batch:
        """GAE over the rollout, then everything flattened to ``[T·N, ...]``."""
        advantages, returns = compute_gae(
            torch.from_numpy(self.rewards),
            self.values,
            self.next_values,
            torch.from_numpy(self.terminated),
            torch.from_numpy(self.truncated),
            gamma,
            lam,
        )
        size = self.n_steps * self.n_envs
        return Batch(
            obs=self.obs.reshape(size, *self.obs.shape[2:]),
            actions=self.actions.reshape(size, *self.actions.shape[2:]),
            logp=self.logp.reshape(size),
            values=self.values.reshape(size),
            advantages=advantages.reshape(size),
            returns=returns.reshape(size),
        )

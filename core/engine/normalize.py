"""Observation and reward normalization, the rule of Stable-Baselines3's ``VecNormalize``.

Running moments (:class:`RunningMeanStd`), merged per vector step by the parallel algorithm
(Chan et al.), with a batch of B rows of mean m_b and (biased) variance v_b:

    n' = n + B
    μ' = μ + (m_b − μ) · B / n'
    σ²' = (σ² · n + v_b · B + (m_b − μ)² · n · B / n') / n'

starting from μ = 0, σ² = 1, n = 10⁻⁴ (so after the first batch μ and σ² are, up to 10⁻⁴
relative, the batch's own; afterwards they equal the mean and variance of every row seen).

:class:`Normalizer`, per vector step with the new observations s (one row per sub-env), the raw
rewards r and the episode ends d (terminated or truncated):

    observation statistics ← update with s          (also with the first reset's observations)
    R ← γ·R + r,  return statistics ← update with R (R: each sub-env's discounted return so far)
    R ← 0 where d
    ŝ = clip((s − μ_s) / √(σ_s² + ε), −clip_obs, clip_obs)
    r̂ = clip(r / √(σ_R² + ε), −clip_reward, clip_reward)         ε = 10⁻⁸

Rewards are scaled but not centred (the return's mean is not subtracted). The statistics change
only in :meth:`Normalizer.update`, which does nothing while ``frozen`` (evaluation, playback);
:meth:`Normalizer.obs` and :meth:`Normalizer.reward` only read them, with whatever statistics
are current, so the same function normalizes acting, learning and bootstrapping observations.
With a flag off, the matching method returns its input unchanged (the same array).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from core.config import RunConfig

EPSILON = 1e-8  # ε in √(σ² + ε)
INITIAL_COUNT = 1e-4  # n before the first batch


class RunningMeanStd:
    """Mean μ, variance σ² and count n of a stream of rows (float64; module docstring), and
    ``inv_std`` = 1 / √(σ² + ε), kept in step with σ².

    Written for rows of a few numbers, where each numpy call's fixed cost (about a µs) is the
    time: plain reductions (``np.add.reduce``), no ``mean``/``var``/``clip`` wrappers.
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = INITIAL_COUNT
        self.inv_std = 1.0 / np.sqrt(self.var + EPSILON)

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch of rows ``[B, *shape]`` into the moments."""
        batch = np.asarray(batch, dtype=np.float64)
        n_b = batch.shape[0]
        total = self.count + n_b
        if n_b == 1:  # m_b = the row, v_b = 0: the same numbers in fewer operations
            delta = batch[0] - self.mean
            m2 = self.var * self.count
        else:
            m_b = np.add.reduce(batch, axis=0) / n_b
            dev = batch - m_b
            v_b = np.add.reduce(dev * dev, axis=0) / n_b
            delta = m_b - self.mean
            m2 = self.var * self.count + v_b * n_b
        self.mean = self.mean + delta * (n_b / total)
        m2 += delta * delta * (self.count * n_b / total)
        self.var = m2 / total
        self.count = total
        self.inv_std = 1.0 / np.sqrt(self.var + EPSILON)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(np.array(self.mean, dtype=np.float64)),
            "var": torch.from_numpy(np.array(self.var, dtype=np.float64)),
            "count": float(self.count),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = state["mean"].numpy().astype(np.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"saved statistics of shape {mean.shape}, not {self.mean.shape}")
        self.mean = mean
        self.var = state["var"].numpy().astype(np.float64)
        self.count = float(state["count"])
        self.inv_std = 1.0 / np.sqrt(self.var + EPSILON)


def _clipped32(x: np.ndarray, bound: float, out: np.ndarray | None) -> np.ndarray:
    """x clipped to [−bound, bound] as float32: written into ``out`` when given (no new array),
    else a new array; ``x`` is overwritten. Two ufuncs: ``np.clip``'s wrapper costs more."""
    np.maximum(x, -bound, out=x)
    if out is None:
        return np.minimum(x, bound, out=x).astype(np.float32)
    return np.minimum(x, bound, out=out, casting="same_kind")


def _copied(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    out[...] = x
    return out


class Normalizer:
    """Observation and reward normalization for one vector env of ``n_envs`` sub-envs.

    ``normalize_obs`` / ``normalize_reward`` switch each part on; ``gamma`` is the discount of
    the tracked return R (the trainer keeps it equal to its config's γ); ``frozen`` stops the
    statistics from changing (:meth:`frozen_stats` sets it for a block of code).
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_envs: int,
        *,
        normalize_obs: bool,
        normalize_reward: bool,
        clip_obs: float,
        clip_reward: float,
        gamma: float,
    ) -> None:
        self.normalize_obs = normalize_obs
        self.normalize_reward = normalize_reward
        self.clip_obs = clip_obs
        self.clip_reward = clip_reward
        self.gamma = gamma
        self.frozen = False
        self.obs_rms = RunningMeanStd(obs_shape)
        self.ret_rms = RunningMeanStd(())
        self.returns = np.zeros(n_envs)

    @classmethod
    def for_run(cls, config: RunConfig, obs_shape: tuple[int, ...]) -> Normalizer:
        """The normalizer a run's config asks for (``normalize_obs``, ``clip_obs``, …, γ)."""
        return cls(
            obs_shape,
            config.n_envs,
            normalize_obs=config.normalize_obs,
            normalize_reward=config.normalize_reward,
            clip_obs=config.clip_obs,
            clip_reward=config.clip_reward,
            gamma=config.gamma,
        )

    @property
    def active(self) -> bool:
        """Whether anything is normalized."""
        return self.normalize_obs or self.normalize_reward

    def update(self, obs: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        """One vector step: fold the new observations and the discounted returns R ← γR + r into
        the statistics, then R ← 0 where an episode ended (nothing while frozen)."""
        if self.frozen:
            return
        if self.normalize_obs:
            self.obs_rms.update(obs)
        if self.normalize_reward:
            self.returns *= self.gamma
            self.returns += rewards
            self.ret_rms.update(self.returns)
            self.returns[dones] = 0.0

    def update_obs(self, obs: np.ndarray) -> None:
        """Fold observations alone into the statistics (the first reset's; nothing while
        frozen)."""
        if self.normalize_obs and not self.frozen:
            self.obs_rms.update(obs)

    def obs(self, obs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """ŝ = clip((s − μ) / √(σ² + ε), ±clip_obs) as float32, written into ``out`` when
        given (a rollout buffer's row); when off, ``obs`` itself (copied into ``out``)."""
        if not self.normalize_obs:
            return obs if out is None else _copied(obs, out)
        scaled = obs - self.obs_rms.mean
        scaled *= self.obs_rms.inv_std
        return _clipped32(scaled, self.clip_obs, out)

    def reward(self, rewards: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """r̂ = clip(r / √(σ_R² + ε), ±clip_reward) as float32, written into ``out`` when
        given; when off, ``rewards`` itself (copied into ``out``)."""
        if not self.normalize_reward:
            return rewards if out is None else _copied(rewards, out)
        return _clipped32(rewards * self.ret_rms.inv_std, self.clip_reward, out)

    def obs_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """:meth:`obs` for a float32 tensor (``obs`` itself when off)."""
        if not self.normalize_obs:
            return obs
        return torch.from_numpy(self.obs(obs.numpy()))

    @contextmanager
    def frozen_stats(self) -> Iterator[None]:
        """Hold the statistics fixed inside the block (evaluation), then restore ``frozen``."""
        before, self.frozen = self.frozen, True
        try:
            yield
        finally:
            self.frozen = before

    def state_dict(self) -> dict[str, Any]:
        """Both statistics (the per-env returns R are not saved: a restored trainer starts
        fresh episodes, where R = 0)."""
        return {"obs": self.obs_rms.state_dict(), "ret": self.ret_rms.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_rms.load_state_dict(state["obs"])
        self.ret_rms.load_state_dict(state["ret"])

    def to_json(self) -> dict[str, Any]:
        """The settings and statistics as plain numbers (the run's export)."""
        return {
            "normalize_obs": self.normalize_obs,
            "normalize_reward": self.normalize_reward,
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "epsilon": EPSILON,
            "gamma": self.gamma,
            "obs_mean": self.obs_rms.mean.tolist(),
            "obs_var": self.obs_rms.var.tolist(),
            "obs_count": self.obs_rms.count,
            "return_var": float(self.ret_rms.var),
            "return_count": self.ret_rms.count,
        }

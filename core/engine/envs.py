"""The supported environments and how vector envs are built.

Only the ids listed in :data:`SUPPORTED_ENVS` can be made: no arbitrary ``module:Class`` entry
points. Vector envs use Gymnasium's ``SyncVectorEnv`` with ``AutoresetMode.SAME_STEP``: when a
sub-env's episode ends, ``step`` already returns the reset observation and puts the last real
observation in ``infos["final_obs"]``. So every transition in a rollout is a real one, and a
time-limit truncation can bootstrap from V(final observation), never from the reset observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from core.config import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What the app tells users about an environment."""

    env_id: str
    discrete: bool
    solved_return: float
    blurb: str


SUPPORTED_ENVS: dict[str, EnvInfo] = {
    e.env_id: e
    for e in (
        EnvInfo("CartPole-v1", True, 475.0, "Balance a pole on a cart; +1 per step, 500 max."),
        EnvInfo("Acrobot-v1", True, -100.0, "Swing a two-link arm above a line; −1 per step."),
        EnvInfo("MountainCar-v0", True, -110.0, "Rock a car up a hill; sparse −1 per step."),
        EnvInfo("Pendulum-v1", False, -200.0, "Swing up and hold a pendulum; continuous torque."),
        EnvInfo("MountainCarContinuous-v0", False, 90.0, "Mountain car with continuous force."),
    )
}

DISCRETE_ONLY_ALGOS = ("dqn",)


def check_env_id(env_id: str, algo: str | None = None) -> EnvInfo:
    """Return the env's info, or raise :class:`ConfigError` naming ``env_id``."""
    info = SUPPORTED_ENVS.get(env_id)
    if info is None:
        raise ConfigError(
            "env_id", f"{env_id!r} is not supported; allowed: {', '.join(SUPPORTED_ENVS)}"
        )
    if algo in DISCRETE_ONLY_ALGOS and not info.discrete:
        discrete = ", ".join(e for e, i in SUPPORTED_ENVS.items() if i.discrete)
        raise ConfigError(
            "env_id", f"{algo} needs a discrete action space; allowed with {algo}: {discrete}"
        )
    return info


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One (non-vector) env, e.g. for evaluation or rendering."""
    check_env_id(env_id)
    return gym.make(env_id, render_mode=render_mode)


def make_vec_env(env_id: str, n_envs: int, seed: int) -> SyncVectorEnv:
    """``n_envs`` copies of ``env_id`` stepping in lock-step, same-step autoreset, seeded."""
    check_env_id(env_id)
    env = SyncVectorEnv(
        [lambda: gym.make(env_id) for _ in range(n_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def final_observations(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """The true next observation of each sub-env for bootstrapping.

    Where an episode just ended, ``next_obs`` already holds the reset observation; the real last
    observation is ``infos["final_obs"]`` (masked by ``infos["_final_obs"]``).
    """
    if "_final_obs" not in infos:
        return next_obs
    out = next_obs.copy()
    mask = infos["_final_obs"]
    out[mask] = np.stack(infos["final_obs"][mask])
    return out

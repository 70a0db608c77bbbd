"""How environments are built: one env, or a vector of them with same-step autoreset.

Only the ids in the catalogue ``core.config.environments.SUPPORTED_ENVS`` can be made (each
builder calls ``check_env_id``): no arbitrary ``module:Class`` entry points. Vector envs use
Gymnasium's ``SyncVectorEnv`` with ``AutoresetMode.SAME_STEP``: when a sub-env's episode ends,
``step`` already returns the reset observation and puts the last real observation in
``infos["final_obs"]``. So every transition in a rollout is a real one, and a time-limit
truncation can bootstrap from V(final observation), never from the reset observation. The
sub-envs' own per-step info dicts (MuJoCo's reward terms and positions, ...) are dropped before the
vector env sees them (:class:`StepInfoDropped`): nothing reads them, and gathering them into
arrays key by key (``SyncVectorEnv._add_info``) cost more per step than the rest of the vector env.

An id that Gymnasium spells differently is built by :data:`ALIASES` (the catalogue needs one id
per entry: Gymnasium 1.4 makes the continuous lunar lander as ``LunarLander-v3`` with
``continuous=True``). MuJoCo envs render at :data:`MUJOCO_RENDER_SIZE` without multisampling and
with small shadow maps: GIFs stay small, and software EGL (Mesa's llvmpipe) draws a frame in tens
of milliseconds instead of hundreds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from core.config.environments import check_env_id

ALIASES: dict[str, tuple[str, dict]] = {
    "LunarLanderContinuous-v3": ("LunarLander-v3", {"continuous": True}),
}
MUJOCO_RENDER_SIZE = {"width": 240, "height": 240}  # Gymnasium's default is 480 × 480


def _gym_make(env_id: str, render_mode: str | None = None) -> gym.Env:
    """``gym.make`` of a catalogue id (aliases resolved; MuJoCo frames at a modest size)."""
    info = check_env_id(env_id)
    gym_id, kwargs = ALIASES.get(env_id, (env_id, {}))
    if render_mode is None or info.extra != "mujoco":
        return gym.make(gym_id, render_mode=render_mode, **kwargs)
    env = gym.make(gym_id, render_mode=render_mode, **kwargs, **MUJOCO_RENDER_SIZE)
    quality = env.unwrapped.model.vis.quality  # read when the first frame opens the GL context
    quality.offsamples, quality.shadowsize = 0, 1024
    return env


class StepInfoDropped(gym.Wrapper):
    """An env whose ``step`` returns an empty info dict (``reset`` keeps its own)."""

    def step(self, action):
        obs, reward, terminated, truncated, _ = self.env.step(action)
        return obs, reward, terminated, truncated, {}


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One (non-vector) env, e.g. for evaluation or rendering."""
    return _gym_make(env_id, render_mode)


def make_vec_env(env_id: str, n_envs: int, seed: int) -> SyncVectorEnv:
    """``n_envs`` copies of ``env_id`` stepping in lock-step, same-step autoreset, seeded."""
    check_env_id(env_id)
    env = SyncVectorEnv(
        [lambda: StepInfoDropped(_gym_make(env_id)) for _ in range(n_envs)],
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

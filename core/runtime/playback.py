"""Watch a trained agent: one deterministic episode from a checkpoint, rendered to a GIF.

The policy is the trainer's deterministic one (``Trainer.policy`` in ``core/engine/trainer.py``):
argmax_a π(a|s) (or argmax_a Q(s, a) for DQN), or the Gaussian mean clipped to the action bounds
for continuous actions. It takes the env's raw observations; a run that normalizes them acts on
them normalized with the checkpoint's statistics, which playback never updates
(``core/engine/normalize.py``).

MuJoCo renders offscreen through the OpenGL backend named by ``MUJOCO_GL``, which
``core/config/environments.py`` sets to ``egl`` when unset, before MuJoCo is first imported in
the process. Where that backend cannot start (no libEGL), :func:`play_episode` raises
:class:`RenderError` with one line naming what to install.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import torch

from core.config.environments import SUPPORTED_ENVS
from core.engine.algos import make_trainer
from core.engine.envs import make_env
from core.engine.trainer import Trainer
from core.runtime.checkpoint import newest_restorable

GIF_FPS = 25.0
GIF_WIDTH = 300
EGL_PACKAGES = "libegl1 libegl-mesa0"  # Debian's EGL loader and Mesa's driver (Makefile)


class RenderError(RuntimeError):
    """An env could not draw a frame; ``str()`` is one line saying what to install."""


@dataclass
class Playback:
    """One rendered episode: RGB frames (every ``frame_skip``-th step), return and length."""

    frames: list[np.ndarray] = field(default_factory=list)
    ret: float = 0.0
    length: int = 0
    env_steps: int = 0  # the training env step of the checkpoint


def load_trainer(paths: list[str], *, run_id: str, algo: str) -> tuple[Trainer, int]:
    """A trainer restored from the newest usable checkpoint of run ``run_id`` among ``paths``
    (oldest first; read with ``weights_only=True``) and its env step; CheckpointError (one
    line) when none is usable (``core/runtime/checkpoint.py``)."""
    _, trainer, payload = newest_restorable(paths, run_id=run_id, algo=algo, factory=make_trainer)
    return trainer, int(payload["env_steps"])


def play_episode(
    trainer: Trainer,
    seed: int = 0,
    *,
    max_steps: int = 1000,
    frame_skip: int | None = None,
    scale: int | None = None,
) -> Playback:
    """Run one deterministic episode in ``make_env(env_id, render_mode="rgb_array")``.

    Keeps every ``frame_skip``-th frame (default: about :data:`GIF_FPS` frames per simulated
    second, at least every 2nd), subsampled by ``scale`` in both directions (default: to at most
    :data:`GIF_WIDTH` pixels wide). GIFs stay small: CartPole's 600×400 frames become 300×200,
    MuJoCo's 240×240 (``core/engine/envs.py``) stay as they are, and Hopper keeps every 5th step.
    """
    env = make_env(trainer.config.env_id, render_mode="rgb_array")
    if frame_skip is None:
        frame_skip = max(2, round(env.metadata.get("render_fps", GIF_FPS) / GIF_FPS))
    try:
        if scale is None:
            env.reset(seed=seed)
            scale = -(-_frame(env, trainer.config.env_id, 1).shape[1] // GIF_WIDTH)
        obs, _ = env.reset(seed=seed)
        out = Playback()
        for t in range(max_steps):
            if t % frame_skip == 0:
                out.frames.append(_frame(env, trainer.config.env_id, scale))
            with torch.inference_mode():
                action = trainer.policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action.numpy())
            out.ret += float(reward)
            out.length += 1
            if terminated or truncated:
                break
        out.frames.append(_frame(env, trainer.config.env_id, scale))
        return out
    finally:
        env.close()


def _frame(env: gym.Env, env_id: str, scale: int) -> np.ndarray:
    """The env's current RGB frame, subsampled by ``scale``; RenderError when it cannot draw."""
    try:
        frame = env.render()
    except Exception as err:  # a GL backend that cannot start raises ImportError, OSError, …
        raise RenderError(render_problem(env_id, err)) from err
    return np.asarray(frame)[::scale, ::scale]


def render_problem(env_id: str, err: BaseException) -> str:
    """One line on why ``env_id`` could not render, naming what to install for MuJoCo."""
    why = " ".join(f"{type(err).__name__}: {err}".split())
    info = SUPPORTED_ENVS.get(env_id)
    if info is not None and info.extra == "mujoco":
        backend = os.environ.get("MUJOCO_GL", "")
        return (
            f"MuJoCo cannot render without a display: its OpenGL backend (MUJOCO_GL={backend}) "
            f"did not start. Install EGL (apt-get install {EGL_PACKAGES}; make run does) "
            f"and restart the app. ({why})"
        )
    return f"{env_id} could not render a frame ({why})"


def to_gif(frames: list[np.ndarray], fps: float = GIF_FPS) -> bytes:
    """Encode frames as a looping animated GIF."""
    buf = io.BytesIO()
    iio.imwrite(buf, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return buf.getvalue()

"""Watch a trained agent: one deterministic episode from a checkpoint, rendered to a GIF.

The policy is the trainer's deterministic one (``Trainer.policy`` in ``core/engine/trainer.py``):
argmax_a π(a|s) (or argmax_a Q(s, a) for DQN), or the Gaussian mean clipped to the action bounds
for continuous actions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import imageio.v3 as iio
import numpy as np
import torch

from core.engine.algos import make_trainer
from core.engine.envs import make_env
from core.engine.trainer import Trainer
from core.runtime.checkpoint import newest_restorable


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
    trainer: Trainer, seed: int = 0, *, max_steps: int = 1000, frame_skip: int = 2, scale: int = 2
) -> Playback:
    """Run one deterministic episode in ``make_env(env_id, render_mode="rgb_array")``.

    Keeps every ``frame_skip``-th frame, subsampled by ``scale`` in both directions (keeps GIFs
    small: CartPole's 600×400 frames become 300×200).
    """
    env = make_env(trainer.config.env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        out = Playback()
        for t in range(max_steps):
            if t % frame_skip == 0:
                out.frames.append(np.asarray(env.render())[::scale, ::scale])
            with torch.inference_mode():
                action = trainer.policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action.numpy())
            out.ret += float(reward)
            out.length += 1
            if terminated or truncated:
                break
        out.frames.append(np.asarray(env.render())[::scale, ::scale])
        return out
    finally:
        env.close()


def to_gif(frames: list[np.ndarray], fps: float = 25.0) -> bytes:
    """Encode frames as a looping animated GIF."""
    buf = io.BytesIO()
    iio.imwrite(buf, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return buf.getvalue()

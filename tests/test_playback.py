"""Watching a trained agent: checkpoint → trainer → one greedy episode → animated GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.runtime import playback
from core.runtime.checkpoint import CheckpointError, save_checkpoint


def trained_checkpoint(tmp_path, algo: str = "trpo") -> str:
    small = {"critic_minibatch": 64} if algo == "trpo" else {"learning_starts": 0}
    config = RunConfig(algo=algo, env_id="CartPole-v1").with_changes(
        n_envs=2, n_steps=32, total_steps=64, eval_every=0, **small
    )
    trainer = make_trainer(config)
    trainer.update()
    return str(
        save_checkpoint(
            tmp_path / "ckpt.pt",
            run_id="r",
            update=trainer.book.update,
            env_steps=trainer.book.env_steps,
            config_json=trainer.config.to_json(),
            state=trainer.state_dict(),
        )
    )


def test_loaded_trainer_has_the_checkpointed_policy(tmp_path):
    path = trained_checkpoint(tmp_path)
    trainer, steps = playback.load_trainer([path], run_id="r", algo="trpo")
    assert steps == 64
    saved = torch.load(path, weights_only=True)["state"]
    again = make_trainer(trainer.config)
    again.load_state_dict(saved)
    obs = torch.randn(16, 4)
    with torch.no_grad():  # independent: the argmax of the actor's logits
        np.testing.assert_array_equal(trainer.policy(obs), again.actor.net(obs).argmax(-1))


def test_episode_is_deterministic_and_its_frames_make_a_gif(tmp_path):
    trainer, _ = playback.load_trainer([trained_checkpoint(tmp_path)], run_id="r", algo="trpo")
    first = playback.play_episode(trainer, seed=3, max_steps=40, frame_skip=2, scale=2)
    second = playback.play_episode(trainer, seed=3, max_steps=40, frame_skip=2, scale=2)
    assert first.ret == second.ret and first.length == second.length
    assert 1 <= first.length <= 40
    assert first.ret == first.length  # CartPole: +1 per step
    assert len(first.frames) == (first.length + 1) // 2 + 1
    assert first.frames[0].shape == (200, 300, 3)
    np.testing.assert_array_equal(first.frames[-1], second.frames[-1])
    gif = playback.to_gif(first.frames, fps=25)
    assert gif[:6] == b"GIF89a"
    decoded = iio.imread(gif, index=None)
    # Pillow merges identical consecutive frames (a balanced pole does not move)
    assert 2 <= decoded.shape[0] <= len(first.frames)
    assert decoded.shape[1:3] == (200, 300)


def test_dqn_agents_play_greedily_from_their_q_network(tmp_path):
    path = trained_checkpoint(tmp_path, algo="dqn")
    trainer, _ = playback.load_trainer([path], run_id="r", algo="dqn")
    obs = torch.randn(8, 4)
    with torch.no_grad():
        expected = trainer.q(obs).argmax(-1).numpy()
    with torch.no_grad():
        np.testing.assert_array_equal(trainer.policy(obs).numpy(), expected)


def test_a_damaged_newest_checkpoint_falls_back_and_a_foreign_one_is_refused(tmp_path):
    older = trained_checkpoint(tmp_path / "a")
    newer = trained_checkpoint(tmp_path / "b")
    Path(newer).write_bytes(b"damaged")
    trainer, steps = playback.load_trainer([older, newer], run_id="r", algo="trpo")
    assert steps == 64
    with pytest.raises(CheckpointError, match="belongs to run 'r', not to run other") as e:
        playback.load_trainer([older], run_id="other", algo="trpo")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="is a trpo checkpoint; run r is dqn"):
        playback.load_trainer([older], run_id="r", algo="dqn")

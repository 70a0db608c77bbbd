"""Every registered algorithm's trainer keeps the contract of ``core.engine.trainer.Trainer``, and
so does the test trainer of the runtime tests (``tests/fake_trainer.py``)."""

from __future__ import annotations

import io
import json
import typing

import pytest
import torch

from core.config import ALGORITHMS, ConfigError, RunConfig
from core.engine.algos import make_trainer
from core.engine.trainer import (
    EVAL_SEED_OFFSET,
    Bookkeeper,
    Trainer,
    UpdateReport,
    eval_seed,
    evaluate_policy,
    set_hyperparams,
)
from tests.fake_trainer import FakeTrainer, fake_config

MEMBERS = {"config", "book", "done", "update", "reconfigure", "policy", "evaluate"} | {
    "state_dict",
    "load_state_dict",
}


def _config(algo: str, env_id: str = "CartPole-v1", **changes) -> RunConfig:
    small = {"learning_starts": 0} if algo == "dqn" else {}
    return RunConfig(algo=algo, env_id=env_id).with_changes(
        n_envs=2, n_steps=64, total_steps=256, eval_every=0, **small, **changes
    )


def test_the_protocol_lists_the_contract():
    declared = set(typing.get_type_hints(Trainer)) | {
        name for name in vars(Trainer) if not name.startswith("_")
    }
    assert declared == MEMBERS


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_algorithm_keeps_the_contract(algo):
    trainer = make_trainer(_config(algo))
    assert isinstance(trainer, Trainer)
    assert isinstance(trainer.book, Bookkeeper) and trainer.config == _config(algo)
    assert trainer.done is False
    report = trainer.update()
    assert isinstance(report, UpdateReport) and report.metrics["env_steps"] == 128
    obs = torch.randn(2, 4)
    with torch.no_grad():
        actions = trainer.policy(obs)
    assert actions.shape == (2,) and bool(((actions == 0) | (actions == 1)).all())
    with torch.no_grad():
        assert torch.equal(trainer.policy(obs), actions)  # deterministic
    assert trainer.evaluate(2) == evaluate_policy(
        "CartPole-v1", trainer.policy, 2, eval_seed(trainer.config)
    )
    state = trainer.state_dict()
    assert RunConfig.from_json(state["config"]) == trainer.config
    trainer.update()
    assert trainer.done


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_reconfigure_adopts_the_validated_config_and_survives_a_checkpoint(algo):
    trainer = make_trainer(_config(algo))
    trainer.update()
    assert set_hyperparams(trainer, gamma=0.9) == {"gamma": (0.99, 0.9)}
    assert trainer.config == _config(algo, gamma=0.9)
    with pytest.raises(ConfigError, match="n_envs"):
        set_hyperparams(trainer, n_envs=4)
    assert trainer.config == _config(algo, gamma=0.9)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    buffer.seek(0)
    fresh = make_trainer(_config(algo))
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.config == trainer.config and fresh.book.env_steps == 128
    assert fresh.update().metrics["env_steps"] == 256 and fresh.done


@pytest.mark.parametrize("algo", ["trpo", "ppo", "a2c"])
def test_continuous_policies_are_clipped_to_the_action_bounds(algo):
    trainer = make_trainer(_config(algo, "Pendulum-v1"))
    obs = torch.zeros(3, 3)
    with torch.no_grad():
        trainer.actor.net[-1].bias.fill_(10.0)  # a mean far above the bound 2
        assert torch.equal(trainer.policy(obs), torch.full((3, 1), 2.0))


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_evaluation_seeds_follow_one_convention(algo):
    config = _config(algo, seed=7)
    assert eval_seed(config) == 7 + EVAL_SEED_OFFSET
    trainer = make_trainer(config)
    first = trainer.evaluate(3)
    trainer.book.update += 5  # the seeds do not depend on training progress
    assert trainer.evaluate(3) == first


def test_the_fake_trainer_keeps_the_contract():
    trainer = FakeTrainer(fake_config())
    assert isinstance(trainer, Trainer)
    trainer.update()
    state = json.loads(json.dumps(trainer.state_dict()["config"]))
    assert RunConfig.from_json(state) == trainer.config
    set_hyperparams(trainer, lr=0.01)
    assert trainer.update().metrics["lr"] == 0.01

"""A2C: one update is one clipped RMSprop step on the A2C loss; report; contract; learning."""

from __future__ import annotations

import io
import math

import pytest
import torch

from core.config import RunConfig
from core.engine.algos import make_trainer, preset_config
from core.engine.nets import CategoricalActor, Critic
from core.engine.trainer import set_hyperparams
from tests.oracles import distribution

A2C_METRICS = (
    "entropy",
    "value_loss",
    "policy_loss",
    "explained_variance",
    "approx_kl",
    "kl_mean",
    "kl_max",
    "lr",
    "env_steps",
    "fps",
)


def small_config(**changes) -> RunConfig:
    base = dict(n_envs=4, n_steps=8, hidden_sizes=(16,), eval_every=0, seed=0, lr=1e-3)
    base.update(changes)
    return RunConfig(algo="a2c").with_changes(**base)


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_update_is_one_clipped_step_on_the_a2c_loss(optimizer):
    cfg = small_config(optimizer=optimizer, ent_coef=0.01, vf_coef=0.4, max_grad_norm=0.3)
    trainer = make_trainer(cfg)
    actor, critic = CategoricalActor(4, 2, (16,), "tanh"), Critic(4, (16,), "tanh")
    actor.load_state_dict(trainer.actor.state_dict())
    critic.load_state_dict(trainer.critic.state_dict())
    trainer.update()

    batch = trainer.buffer.batch(cfg.gamma, cfg.gae_lambda)
    adv = (batch.advantages - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)
    dist = distribution(actor, batch.obs)
    loss = (
        -(adv * dist.log_prob(batch.actions)).mean()
        + 0.4 * (critic(batch.obs) - batch.returns).pow(2).mean()
        - 0.01 * dist.entropy().mean()
    )
    params = [*actor.parameters(), *critic.parameters()]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 0.3)
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=1e-3, eps=1e-5)
    else:
        opt = torch.optim.RMSprop(params, lr=1e-3, eps=1e-5, alpha=0.99)
    opt.step()
    for mine, ref in zip([*trainer.actor.parameters(), *trainer.critic.parameters()], params):
        torch.testing.assert_close(mine.detach(), ref.detach(), rtol=1e-4, atol=1e-6)


def test_report_contains_the_a2c_metric_names():
    metrics = make_trainer(small_config()).update().metrics
    assert set(A2C_METRICS) <= set(metrics)
    assert all(math.isfinite(metrics[k]) for k in A2C_METRICS)
    assert metrics["kl_mean"] > 0 and metrics["approx_kl"] > 0


def test_live_change_and_state_dict_round_trip():
    trainer = make_trainer(small_config())
    trainer.update()
    assert set_hyperparams(trainer, lr=5e-4) == {"lr": (1e-3, 5e-4)}
    assert trainer.update().metrics["lr"] == 5e-4
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    buf.seek(0)
    fresh = make_trainer(small_config(seed=3))
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh.ac.flat, trainer.ac.flat)
    torch.testing.assert_close(fresh.optimizer.v, trainer.optimizer.v)
    assert fresh.book.env_steps == 64 and fresh.config.lr == 5e-4


@pytest.mark.slow
def test_a2c_improves_clearly_on_cartpole_within_50k_steps():
    trainer = make_trainer(
        preset_config("a2c", "CartPole-v1", "zoo", seed=0, eval_every=0, total_steps=50_000)
    )
    best = -math.inf
    while not trainer.done and best < 200:
        best = max(best, trainer.update().metrics["episode_return_mean"])
    assert best >= 200, f"best 20-episode mean {best:.1f} (random policy: ~22)"

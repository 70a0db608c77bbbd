"""PPO: hand-derived gradients vs autograd, the clip and β rules, the report, the trainer."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.distributions import kl_divergence

from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer, preset_config
from core.engine.algos.actor_critic import ActorCritic, OldPolicy, summarize
from core.engine.algos.actor_critic_reference import loss as reference_loss
from core.engine.algos.ppo import adapt_beta, minibatches
from core.engine.nets import CategoricalActor, Critic, GaussianActor
from core.engine.rollout import Batch
from core.engine.trainer import set_hyperparams
from tests.helpers import BOOKKEEPER_METRICS
from tests.oracles import distribution

PPO_METRICS = (
    "approx_kl",
    "kl_mean",
    "kl_max",
    "clip_frac",
    "epochs_run",
    "entropy",
    "value_loss",
    "policy_loss",
    "explained_variance",
    "lr",
    "clip_eps",
    *BOOKKEEPER_METRICS,
)


def small_config(algo: str = "ppo", env_id: str = "CartPole-v1", **changes) -> RunConfig:
    base = dict(n_envs=2, n_steps=32, hidden_sizes=(16,), eval_every=0, seed=0)
    base.update(changes)
    return RunConfig(algo=algo, env_id=env_id).with_changes(**base)


def make_nets(discrete: bool, activation: str = "tanh", seed: int = 0, hidden=(8, 8)):
    torch.manual_seed(seed)
    if discrete:
        actor = CategoricalActor(4, 3, hidden, activation)
    else:
        actor = GaussianActor(4, 2, hidden, activation)
    critic = Critic(4, hidden, activation)
    return actor, critic, ActorCritic(actor, critic)


def flat_grad_of(ac: ActorCritic, params, grads) -> torch.Tensor:
    """Autograd gradients laid out like ``ac.grad`` (each parameter is a view into ``ac.flat``)."""
    out = torch.zeros_like(ac.flat)
    base = ac.flat.storage_offset()
    for p, g in zip(params, grads):
        start = p.data.storage_offset() - base
        out[start : start + p.numel()] = g.reshape(-1)
    return out


@pytest.mark.parametrize("discrete", [True, False], ids=["categorical", "gaussian"])
@pytest.mark.parametrize("objective", ["clip", "kl", "pg"])
@pytest.mark.parametrize(
    "activation, hidden, B",
    [("tanh", (8, 8), 64), ("relu", (8, 8), 64), ("tanh", (64, 64), 256)],
    ids=["tanh", "relu", "tanh-zoo-size"],  # the zoo size takes the large-batch tanh path
)
def test_hand_derived_gradient_matches_autograd(discrete, objective, activation, hidden, B):
    actor, critic, ac = make_nets(discrete, activation, hidden=hidden)
    obs = torch.randn(B, 4)
    with torch.no_grad():
        actions, logp_old = actor.act(obs)
        old = ac.old_policy(obs)
        ac.flat.add_(0.1 * torch.randn_like(ac.flat))  # move θ away from θ_old: r ≠ 1
    adv, ret = torch.randn(B), torch.randn(B)
    kwargs = dict(objective=objective, clip_eps=0.1, beta=0.7, vf_coef=0.4, ent_coef=0.05)
    stats = ac.loss_grad(obs, actions, logp_old, adv, ret, old, **kwargs)
    params = [*actor.parameters(), *critic.parameters()]
    loss = reference_loss(actor, critic, obs, actions, logp_old, adv, ret, old, **kwargs)
    expected = flat_grad_of(ac, params, torch.autograd.grad(loss, params))
    torch.testing.assert_close(ac.grad, expected, rtol=1e-4, atol=1e-6)
    if objective == "clip":
        assert 0 < summarize([stats], 0.1)["clip_frac"] < 1


def actor_grad_for_ratio(ratio: float, advantage: float, eps: float = 0.2) -> torch.Tensor:
    """∂loss/∂θ_actor of the clip objective for one sample whose ratio r is set exactly."""
    actor, critic, ac = make_nets(True)
    obs = torch.randn(1, 4)
    action = torch.tensor([1])
    with torch.no_grad():
        old = ac.old_policy(obs)
        logp = torch.log_softmax(old.logits, -1)[0, 1]
    logp_old = (logp - math.log(ratio)).reshape(1)
    ac.loss_grad(obs, action, logp_old, torch.tensor([advantage]), torch.zeros(1), old,
                 objective="clip", clip_eps=eps, vf_coef=0.0)  # fmt: skip
    n_actor = sum(p.numel() for p in actor.parameters())
    return ac.grad[:n_actor]


@pytest.mark.parametrize(
    "ratio, advantage, zero",
    [
        (1.5, 1.0, True),  # Â > 0 above 1+ε: clipped, no gradient
        (0.5, -1.0, True),  # Â < 0 below 1−ε: clipped, no gradient
        (1.5, -1.0, False),  # Â < 0 above 1+ε: the unclipped term is the minimum
        (0.5, 1.0, False),  # Â > 0 below 1−ε: the unclipped term is the minimum
        (1.1, 1.0, False),  # inside the range, both signs
        (0.9, -1.0, False),
    ],
)
def test_clip_objective_has_zero_gradient_exactly_where_clipped(ratio, advantage, zero):
    grad = actor_grad_for_ratio(ratio, advantage)
    assert (grad.abs().max() == 0) == zero


def test_beta_rule_halves_below_keeps_inside_doubles_above_the_band():
    d_targ = 0.01
    assert adapt_beta(1.0, d_targ / 1.5 * 0.99, d_targ) == 0.5
    assert adapt_beta(1.0, 0.001, d_targ) == 0.5
    for d in (d_targ / 1.5 * 1.01, d_targ, 1.4 * d_targ, 1.5 * d_targ * 0.99):
        assert adapt_beta(1.0, d, d_targ) == 1.0
    assert adapt_beta(1.0, 1.5 * d_targ * 1.01, d_targ) == 2.0
    assert adapt_beta(3.0, 0.5, d_targ) == 6.0


# -- the trainer ----------------------------------------------------------------------------------


def test_report_contains_the_ppo_metric_names():
    clip = make_trainer(small_config("ppo")).update().metrics
    assert set(PPO_METRICS) <= set(clip)
    assert "kl_beta" not in clip  # the clip objective has no β
    kl = make_trainer(small_config("ppo-kl")).update().metrics
    assert set(PPO_METRICS) | {"kl_beta"} <= set(kl)
    for m in (clip, kl):
        assert all(math.isfinite(m[k]) for k in PPO_METRICS if k != "episode_return_mean")
        assert m["epochs_run"] == 10


def test_approx_kl_and_kl_mean_match_independent_computation():
    trainer = make_trainer(small_config("ppo", epochs=5, lr=3e-3))
    trainer.update()
    before = CategoricalActor(4, 2, (16,), "tanh")
    before.load_state_dict(trainer.actor.state_dict())
    metrics = trainer.update().metrics
    batch = trainer.buffer.batch(0.99, 0.95)
    with torch.no_grad():
        old, new = distribution(before, batch.obs), distribution(trainer.actor, batch.obs)
        log_r = new.log_prob(batch.actions) - old.log_prob(batch.actions)
        k3 = ((log_r.exp() - 1) - log_r).mean()
        kl = kl_divergence(old, new)
    torch.testing.assert_close(batch.logp, old.log_prob(batch.actions), rtol=1e-5, atol=1e-5)
    assert metrics["approx_kl"] == pytest.approx(float(k3), rel=1e-3, abs=1e-7)
    assert metrics["kl_mean"] == pytest.approx(float(kl.mean()), rel=1e-3, abs=1e-7)
    assert metrics["kl_max"] == pytest.approx(float(kl.max()), rel=1e-3, abs=1e-7)
    assert metrics["kl_mean"] > 0


def test_kl_penalty_trainer_adapts_beta_by_the_paper_rule():
    trainer = make_trainer(small_config("ppo-kl", kl_target=0.001, lr=3e-3))
    for _ in range(3):
        m = trainer.update().metrics
        assert trainer.beta == adapt_beta(m["kl_beta"], m["kl_mean"], 0.001)


def test_target_kl_stops_the_epochs_early():
    stopped = make_trainer(small_config("ppo", target_kl=1e-6, epochs=10, lr=1e-2))
    metrics = stopped.update().metrics
    assert metrics["epochs_run"] < 10
    assert make_trainer(small_config("ppo", epochs=10, lr=1e-2)).update().metrics[
        "epochs_run"
    ] == pytest.approx(10)


def test_minibatches_cover_the_batch_once_per_epoch():
    obs = torch.arange(10.0).unsqueeze(-1)
    batch = Batch(obs, torch.zeros(10), torch.zeros(10), torch.zeros(10), obs[:, 0], obs[:, 0])
    old = OldPolicy(logits=obs.repeat(1, 2))
    chunks = minibatches(batch, old, 4, torch.Generator().manual_seed(0))
    assert [len(mb) for mb, _ in chunks] == [4, 4, 2]
    seen = torch.cat([mb.obs[:, 0] for mb, _ in chunks])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for mb, mb_old in chunks:  # the old policy's rows travel with their samples
        torch.testing.assert_close(mb_old.logits[:, 0], mb.obs[:, 0])
    # the chunks of one permutation drawn from the trainer's generator, in its order
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert [mb.obs[:, 0].tolist() for mb, _ in chunks] == [
        idx.float().tolist() for idx in perm.split(4)
    ]
    assert minibatches(batch, old, 10, torch.Generator()) == [(batch, old)]


def test_live_changes_reach_the_next_update():
    trainer = make_trainer(small_config("ppo", lr=1e-3))
    diff = set_hyperparams(trainer, lr=5e-4, clip_eps=0.1)
    assert diff == {"lr": (1e-3, 5e-4), "clip_eps": (0.2, 0.1)}
    metrics = trainer.update().metrics
    assert metrics["lr"] == 5e-4 and metrics["clip_eps"] == 0.1
    with pytest.raises(ConfigError, match="n_envs"):
        set_hyperparams(trainer, n_envs=4)
    with pytest.raises(ConfigError, match="clip_eps"):
        set_hyperparams(trainer, clip_eps=-1)
    assert trainer.config.params.clip_eps == 0.1  # a refused change changes nothing


def test_anneal_decays_lr_and_clip_linearly_with_env_steps():
    trainer = make_trainer(
        small_config("ppo", total_steps=640, anneal_lr=True, anneal_clip=True, lr=1e-3)
    )
    m = trainer.update().metrics  # 64 of 640 env steps done
    assert m["lr"] == pytest.approx(1e-3 * 0.9) and m["clip_eps"] == pytest.approx(0.2 * 0.9)


def test_state_dict_round_trip_restores_policy_optimizer_beta_and_book():
    trainer = make_trainer(small_config("ppo-kl"))
    for _ in range(2):
        trainer.update()
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = make_trainer(small_config("ppo-kl", seed=7))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.ac.flat, trainer.ac.flat)
    torch.testing.assert_close(fresh.optimizer.m, trainer.optimizer.m)
    assert fresh.optimizer.t == trainer.optimizer.t
    assert fresh.beta == trainer.beta
    assert fresh.book.env_steps == trainer.book.env_steps == 128
    assert fresh.config.seed == 0
    obs = torch.randn(5, 4)
    torch.testing.assert_close(fresh.policy(obs), trainer.policy(obs))
    # the restored trainer keeps training with the restored parameters (views into one tensor)
    before = fresh.ac.flat.clone()
    fresh.update()
    assert not torch.equal(before, fresh.ac.flat)
    torch.testing.assert_close(fresh.actor.net[0].weight.reshape(-1), fresh.ac.flat[:64])


@pytest.mark.parametrize("algo", ["ppo", "ppo-kl"])
def test_gaussian_policy_update_on_pendulum_with_minibatches(algo):
    cfg = small_config(algo, env_id="Pendulum-v1", log_std_init=-0.5, minibatch_size=16)
    trainer = make_trainer(cfg)
    assert float(trainer.actor.log_std.detach()[0]) == -0.5
    metrics = trainer.update().metrics
    assert math.isfinite(metrics["kl_mean"]) and metrics["kl_mean"] > 0
    assert metrics["epochs_run"] == 10
    returns = trainer.evaluate(2)
    assert len(returns) == 2 and all(-2000 < r <= 0 for r in returns)


@pytest.mark.slow
def test_ppo_solves_cartpole_with_the_zoo_preset_within_100k_steps():
    trainer = make_trainer(preset_config("ppo", "CartPole-v1", "zoo", seed=0, eval_every=0))
    best = -math.inf
    while not trainer.done:
        best = max(best, trainer.update().metrics["episode_return_mean"])
        if best >= 475:
            break
    assert best >= 475, f"20-episode mean {best:.1f} after {trainer.book.env_steps} steps"

"""The TRPO / NPG trainer: its report, its step, live changes, checkpoints, and learning."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch.distributions import kl_divergence

import core.engine.algos.trpo as trpo_module
from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer, preset_config
from core.engine.fast.mlp import FlatMLP
from core.engine.nets import Critic
from core.engine.trainer import set_hyperparams
from tests.helpers import BOOKKEEPER_METRICS
from tests.oracles import distribution

TRPO_METRICS = [
    "kl_mean",
    "kl_max",
    "kl_quadratic",
    "ls_backtracks",
    "ls_accepted",
    "ls_step_frac",
    "surrogate_predicted",
    "surrogate_actual",
    "cg_iters",
    "cg_residual",
    "step_norm",
    "entropy",
    "value_loss",
    "explained_variance",
    *BOOKKEEPER_METRICS,
]


def _config(algo: str = "trpo", env_id: str = "CartPole-v1", **changes) -> RunConfig:
    base = {"n_envs": 2, "n_steps": 64, "hidden_sizes": (16, 16), "eval_every": 0, "seed": 1}
    return RunConfig(algo=algo, env_id=env_id).with_changes(**{**base, **changes})


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def _batch_kl(old_actor, new_actor, obs: torch.Tensor) -> torch.Tensor:
    """Mean KL(π_old ‖ π_new) over ``obs`` with torch.distributions (independent of trpo.py)."""
    with torch.no_grad():
        kl = kl_divergence(distribution(old_actor, obs), distribution(new_actor, obs))
    return kl.mean()


@pytest.mark.parametrize("algo", ["trpo", "npg"])
def test_report_contains_every_trpo_metric(algo):
    trainer = make_trainer(_config(algo, eval_every=128))
    report = trainer.update()
    for name in TRPO_METRICS:
        assert name in report.metrics, name
    assert report.metrics["env_steps"] == 128 and report.metrics["update"] == 1
    assert "eval_return_mean" in report.metrics
    assert all(isinstance(v, float) for v in report.metrics.values())
    assert trainer.last_trace.trials and trainer.last_cg_trace.iterations >= 1


def test_accepted_step_has_exact_kl_within_delta_and_improves_surrogate():
    trainer = make_trainer(_config(delta=0.02))
    accepted = 0
    for _ in range(4):
        before = copy.deepcopy(trainer.actor)
        m = trainer.update().metrics
        if not m["ls_accepted"]:
            continue
        accepted += 1
        obs = trainer.buffer.obs.reshape(-1, 4)
        assert m["kl_mean"] == pytest.approx(float(_batch_kl(before, trainer.actor, obs)), rel=1e-4)
        assert m["kl_mean"] <= 0.02 and m["surrogate_actual"] > 0
        assert m["kl_max"] >= m["kl_mean"]
        moved = float((_flat(trainer.actor) - _flat(before)).norm())
        assert moved == pytest.approx(m["step_norm"], rel=1e-4)
        assert m["ls_step_frac"] == pytest.approx(0.8 ** m["ls_backtracks"])
    assert accepted >= 3


def _huge_steps(monkeypatch, factor: float = 100.0) -> None:
    """Make the full step ``factor`` times longer than √(2δ/xᵀFx)·x: every trial leaves the ball."""
    real = trpo_module.max_step

    def scaled(x, Fx, delta):
        s, beta = real(x, Fx, delta)
        return factor * s, factor * beta

    monkeypatch.setattr(trpo_module, "max_step", scaled)


def test_failed_line_search_keeps_parameters_bit_for_bit_and_reports_rejected_kl(monkeypatch):
    trainer = make_trainer(_config(max_backtracks=3, backtrack_coef=0.5))
    trainer.update()
    _huge_steps(monkeypatch)
    before = {k: v.clone() for k, v in trainer.actor.state_dict().items()}
    m = trainer.update().metrics
    after = trainer.actor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert m["ls_accepted"] == 0 and m["ls_step_frac"] == 0 and m["step_norm"] == 0
    assert m["ls_backtracks"] == 3
    assert m["kl_mean"] > 0 and math.isfinite(m["kl_mean"])
    assert [t.frac for t in trainer.last_trace.trials] == [1.0, 0.5, 0.25]
    assert not any(t.accepted for t in trainer.last_trace.trials)
    assert m["kl_mean"] == trainer.last_trace.trials[-1].kl


def test_zero_policy_gradient_takes_no_step_and_reports_no_trial():
    trainer = make_trainer(_config())
    trainer.update()  # fills the buffer
    batch = trainer.buffer.batch(0.99, 0.95)
    before = _flat(trainer.actor)
    m = trainer._policy_step(batch.obs, batch.actions, torch.zeros(len(batch)))
    assert torch.equal(_flat(trainer.actor), before)
    assert m["ls_accepted"] == 0 and m["step_norm"] == 0 and math.isnan(m["kl_mean"])
    assert trainer.last_trace.trials == []


def test_npg_takes_the_full_step_without_line_search(monkeypatch):
    trainer = make_trainer(_config("npg", damping=0.05))
    _huge_steps(monkeypatch, factor=3.0)  # a step TRPO would shrink; NPG must not
    before = copy.deepcopy(trainer.actor)
    m = trainer.update().metrics
    assert m["ls_accepted"] == 1 and m["ls_step_frac"] == 1 and m["ls_backtracks"] == 0
    assert len(trainer.last_trace.trials) == 1
    moved = float((_flat(trainer.actor) - _flat(before)).norm())
    assert moved == pytest.approx(m["step_norm"], rel=1e-4) and moved > 0
    obs = trainer.buffer.obs.reshape(-1, 4)
    assert m["kl_mean"] == pytest.approx(float(_batch_kl(before, trainer.actor, obs)), rel=1e-4)
    # ½ sᵀ(F + cI)s = 9δ for the 3× step: the undamped model plus ½c‖s‖²
    assert m["kl_quadratic"] + 0.5 * 0.05 * m["step_norm"] ** 2 == pytest.approx(9 * 0.01)


def test_a_live_delta_change_bounds_the_next_updates():
    trainer = make_trainer(_config(damping=0.01))
    trainer.update()
    diff = set_hyperparams(trainer, delta=0.03)
    assert diff == {"delta": (0.01, 0.03)}
    reports = [trainer.update().metrics for _ in range(3)]
    assert trainer.config.params.delta == 0.03
    accepted = [m for m in reports if m["ls_accepted"]]
    assert accepted
    for m in accepted:
        # kl_quadratic = αʲ²·½ sᵀFs and ½ sᵀ(F + cI)s = δ, so this recovers the δ in force
        recovered = (m["kl_quadratic"] + 0.5 * 0.01 * m["step_norm"] ** 2) / m["ls_step_frac"] ** 2
        assert recovered == pytest.approx(0.03, rel=1e-5)


def test_live_changes_refuse_non_live_and_out_of_range_values():
    trainer = make_trainer(_config())
    with pytest.raises(ConfigError, match="fvp_subsample"):
        set_hyperparams(trainer, fvp_subsample=0.5)
    with pytest.raises(ConfigError, match="delta"):
        set_hyperparams(trainer, delta=-1)
    assert trainer.config.params.delta == 0.01


def test_critic_learning_rate_change_reaches_the_optimizer():
    trainer = make_trainer(_config())
    set_hyperparams(trainer, critic_lr=5e-4)
    trainer.update()
    assert trainer.critic_regression.optimizer.lr == 5e-4


def test_state_dict_round_trips_through_weights_only_load():
    trainer = make_trainer(_config(damping=0.2))
    trainer.update()
    trainer.update()
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    fresh = make_trainer(_config(seed=5))
    fresh.load_state_dict(state)
    assert fresh.config == trainer.config
    assert fresh.book.env_steps == 256 and fresh.book.update == 2
    assert torch.equal(_flat(fresh.actor), _flat(trainer.actor))
    assert torch.equal(_flat(fresh.critic), _flat(trainer.critic))
    adam_a = fresh.critic_regression.optimizer.state_dict()
    adam_b = trainer.critic_regression.optimizer.state_dict()
    # two updates × critic_iters epochs × one minibatch (batch 128 = critic_minibatch)
    assert adam_a["t"] == adam_b["t"] == 2 * trainer.config.params.critic_iters
    assert torch.equal(adam_a["m"], adam_b["m"]) and torch.equal(adam_a["v"], adam_b["v"])
    assert fresh.update().metrics["update"] == 3


def test_fvp_subsample_uses_part_of_the_batch_and_still_steps():
    trainer = make_trainer(_config(fvp_subsample=0.25))
    m = trainer.update().metrics
    assert m["cg_iters"] >= 1 and math.isfinite(m["kl_mean"])


@pytest.mark.parametrize("algo", ["trpo", "npg"])
def test_gaussian_policy_update_on_pendulum(algo):
    trainer = make_trainer(_config(algo, "Pendulum-v1", eval_every=128))
    before = copy.deepcopy(trainer.actor)
    m = trainer.update().metrics
    assert m["ls_accepted"] in (0.0, 1.0)
    assert math.isfinite(m["eval_return_mean"]) and m["eval_return_mean"] < 0
    if m["ls_accepted"]:
        obs = trainer.buffer.obs.reshape(-1, 3)
        kl = float(_batch_kl(before, trainer.actor, obs))
        assert m["kl_mean"] == pytest.approx(kl, rel=1e-4)


def test_zoo_presets_load_for_cartpole_acrobot_pendulum():
    cartpole = preset_config("trpo", "CartPole-v1", "zoo")
    assert (cartpole.n_envs, cartpole.n_steps, cartpole.gae_lambda) == (2, 512, 0.98)
    assert (cartpole.params.damping, cartpole.params.critic_iters) == (1e-3, 20)
    assert preset_config("npg", "Acrobot-v1", "zoo").n_steps == 1024
    assert preset_config("trpo", "Pendulum-v1", "zoo").gamma == 0.9


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_critic_regression_matches_autograd_and_torch_adam(activation):
    torch.manual_seed(0)
    ours, reference = Critic(4, (8, 6), activation), Critic(4, (8, 6), activation)
    reference.load_state_dict(ours.state_dict())
    critic = FlatMLP(ours.sizes, activation).bind(ours.net.parameters())
    regression = trpo_module.CriticRegression(critic, lr=0.01)
    adam = torch.optim.Adam(reference.parameters(), lr=0.01, eps=1e-5)
    for _ in range(5):
        obs, returns = torch.randn(32, 4), torch.randn(32)
        loss = regression.step(obs, returns)
        expected = (reference(obs) - returns).square().mean()
        adam.zero_grad()
        expected.backward()
        adam.step()
        torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(_flat(ours), _flat(reference), rtol=1e-5, atol=1e-6)
    assert torch.equal(_flat(ours), critic.flat)  # the module sees the flat parameters


@pytest.mark.slow
def test_trpo_reaches_475_on_cartpole_within_100k_steps():
    """Mean training return over the last 20 episodes ≥ 475 within 100k env steps (zoo preset)."""
    trainer = make_trainer(preset_config("trpo", "CartPole-v1", "zoo", seed=0, eval_every=0))
    best = -math.inf
    while trainer.book.env_steps < 100_000 and best < 475:
        best = max(best, trainer.update().metrics["episode_return_mean"])
    assert best >= 475, f"best 20-episode mean {best} after {trainer.book.env_steps} steps"

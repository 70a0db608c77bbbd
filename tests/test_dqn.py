"""DQN family: targets, dueling head, schedules, target refresh, live changes, checkpoints."""

import copy
import io

import numpy as np
import pytest
import torch
from torch.nn import functional

from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer, preset_config
from core.engine.algos.dqn import DQN, linear_schedule
from core.engine.algos.td_learning import FlatQ, td_loss, td_target
from core.engine.nets import QNetwork
from core.engine.trainer import set_hyperparams


def _config(**changes) -> RunConfig:
    base = dict(
        algo="dqn",
        env_id="CartPole-v1",
        n_envs=2,
        n_steps=32,
        total_steps=2000,
        hidden_sizes=(32, 32),
        learning_starts=0,
        train_freq=8,
        gradient_steps=2,
        batch_size=16,
        buffer_size=500,
        eval_every=0,
    )
    return RunConfig(algo="dqn").with_changes(**{**base, **changes})


def test_double_target_differs_from_plain_on_handcrafted_batch():
    rewards = torch.tensor([1.0, 0.5])
    terminated = torch.zeros(2)
    q_next_target = torch.tensor([[1.0, 5.0], [3.0, 2.0]])
    q_next_online = torch.tensor([[2.0, 1.0], [0.0, 4.0]])  # prefers the other action each time
    gamma = 0.9
    plain = td_target(rewards, terminated, q_next_target, gamma)
    double = td_target(rewards, terminated, q_next_target, gamma, q_next_online=q_next_online)
    assert plain.tolist() == pytest.approx([1.0 + 0.9 * 5.0, 0.5 + 0.9 * 3.0])
    assert double.tolist() == pytest.approx([1.0 + 0.9 * 1.0, 0.5 + 0.9 * 2.0])


@pytest.mark.parametrize("prioritized", [False, True])
def test_terminated_zeroes_the_bootstrap_and_truncated_does_not(prioritized):
    trainer = DQN(_config(double=True, prioritized=prioritized))
    s, s_next = np.zeros((2, 4), dtype=np.float32), np.array([[0.1, 0.2, 0.03, -0.1]] * 2)
    trainer.replay.add(
        s, np.array([0, 0]), np.array([1.0, 1.0]), s_next, np.array([1, 0]), np.array([0, 1])
    )
    with torch.no_grad():
        s_next_t = torch.as_tensor(s_next[:1], dtype=torch.float32)
        bootstrap = trainer.q_target(s_next_t)[0, trainer.q(s_next_t).argmax()].item()
        q_sa = trainer.q(torch.as_tensor(s[:1]))[0, 0].item()
    rng = copy.deepcopy(trainer.rng)
    td = trainer._train(1)["td"][0]
    if prioritized:
        idx = trainer.replay.tree.sample((16,), rng)
    else:
        idx = trainer.replay.sample_indices((1, 16), rng)[0]
    y = q_sa - td.numpy()  # the targets the trainer used, row by row
    assert np.allclose(y[idx == 0], 1.0)  # terminated: y = r
    assert np.allclose(y[idx == 1], 1.0 + 0.99 * bootstrap, atol=1e-5)  # truncated: bootstraps
    assert (idx == 0).any() and (idx == 1).any()


def test_episode_end_stores_the_final_observation_not_the_reset_one():
    trainer = DQN(_config(n_envs=1, n_steps=200, learning_starts=10_000))  # random play
    trainer.update()
    rows = np.flatnonzero(trainer.replay.terminated[:199])
    assert len(rows) > 0
    for i in rows:
        x, theta = trainer.replay.next_obs[i, 0], trainer.replay.next_obs[i, 2]
        assert abs(x) > 2.4 or abs(theta) > 0.2094  # CartPole's termination condition holds
        assert np.all(np.abs(trainer.replay.obs[i + 1]) <= 0.05)  # next row starts from a reset


def test_dueling_advantages_have_zero_mean_and_q_is_v_plus_centred_a():
    torch.manual_seed(0)
    net = QNetwork(4, 3, (16, 16), "relu", dueling=True)
    obs = torch.randn(10, 4)
    v, a_centred = net.streams(obs)
    assert torch.allclose(a_centred.mean(-1), torch.zeros(10), atol=1e-6)
    h = net.trunk(obs)
    a_raw = h @ net.advantage.weight.T + net.advantage.bias
    expected = (h @ net.value.weight.T + net.value.bias) + a_raw - a_raw.mean(-1, keepdim=True)
    assert torch.allclose(net(obs), expected, atol=1e-6)
    assert not torch.allclose(a_raw.mean(-1), torch.zeros(10), atol=1e-3)  # centring matters


@pytest.mark.parametrize(
    ("dueling", "loss", "activation", "weighted"),
    [
        (False, "huber", "relu", False),
        (True, "huber", "relu", True),
        (False, "mse", "tanh", True),
        (True, "mse", "tanh", False),
    ],
)
def test_hand_derived_td_gradient_matches_autograd(dueling, loss, activation, weighted):
    torch.manual_seed(1)
    net = QNetwork(4, 3, (16, 8), activation, dueling=dueling)
    reference = copy.deepcopy(net)
    flat = FlatQ(net)
    obs = torch.randn(32, 4)
    actions = torch.randint(0, 3, (32,))
    y = 2.0 * torch.randn(32)  # large enough that Huber's linear branch is used too
    weights = torch.rand(32) if weighted else None
    onehot_over_b = functional.one_hot(actions, 3) / 32
    td, q_sa = flat.td_grad(obs, actions[:, None], onehot_over_b, y, weights, loss == "huber")
    value = td_loss(td, weights, huber=loss == "huber")
    q_ref = reference(obs).gather(-1, actions[:, None]).squeeze(-1)
    td = q_ref - y
    per_sample = (
        torch.where(td.abs() < 1, 0.5 * td**2, td.abs() - 0.5) if loss == "huber" else td**2
    )
    expected = (per_sample * (weights if weighted else 1.0)).mean()
    expected.backward()
    ref_grad = torch.cat([p.grad.reshape(-1) for p in reference.parameters()])
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(q_sa, q_ref.detach(), atol=1e-6)
    assert torch.allclose(flat.grad, ref_grad, atol=1e-6, rtol=1e-4)
    assert torch.allclose(torch.cat([p.reshape(-1) for p in net.parameters()]), flat.flat)


@pytest.mark.parametrize(("dueling", "activation"), [(False, "relu"), (True, "tanh")])
def test_numpy_greedy_actions_follow_the_live_flat_parameters(dueling, activation):
    torch.manual_seed(3)
    net = QNetwork(4, 3, (16, 8), activation, dueling=dueling)
    flat = FlatQ(net)
    obs = torch.randn(500, 4)
    for _ in range(2):  # the numpy views see in-place updates of ``flat``
        expected = net(obs).argmax(-1).numpy()
        np.testing.assert_array_equal(flat.greedy_actions(obs.numpy()), expected)
        flat.flat.add_(torch.randn_like(flat.flat))


@pytest.mark.parametrize("double", [False, True])
def test_gradient_step_regresses_online_prediction_on_target_bootstrap(double):
    trainer = DQN(_config(learning_starts=10_000, double=double))
    trainer.update()  # fill the buffer with random play
    with torch.no_grad():  # make θ⁻ differ from θ, so using the wrong network would show
        for t in trainer.q_target.parameters():
            t.add_(0.3 * torch.randn_like(t))
    online_before = copy.deepcopy(trainer.q)
    target_before = copy.deepcopy(trainer.q_target)
    rng = copy.deepcopy(trainer.rng)
    stats = trainer._train(1)
    b = trainer.replay.gather(trainer.replay.sample_indices((16,), rng))
    with torch.no_grad():
        chooser = online_before if double else target_before
        a_star = chooser(b.next_obs).argmax(-1, keepdim=True)
        boot = target_before(b.next_obs).gather(-1, a_star).squeeze(-1)
        y = b.rewards + 0.99 * (1 - b.terminated) * boot
        q_sa = online_before(b.obs).gather(-1, b.actions[:, None]).squeeze(-1)
        expected = functional.smooth_l1_loss(q_sa, y)
    assert td_loss(stats["td"], None, True).item() == pytest.approx(expected.item(), rel=1e-5)
    for t, t0 in zip(trainer.q_target.parameters(), target_before.parameters()):
        assert torch.equal(t, t0)  # gradient steps never touch θ⁻
    # the parameters moved as one clipped torch.optim.Adam step on the autograd gradient would
    reference = copy.deepcopy(online_before).requires_grad_(True)
    adam = torch.optim.Adam(reference.parameters(), lr=trainer.config.lr, eps=1e-8)
    q_ref = reference(b.obs).gather(-1, b.actions[:, None]).squeeze(-1)
    functional.smooth_l1_loss(q_ref, y).backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), trainer.config.params.max_grad_norm)
    adam.step()
    for p, p_ref in zip(trainer.q.parameters(), reference.parameters()):
        assert torch.allclose(p, p_ref.detach(), atol=1e-6)


def test_target_refresh_counts_env_steps_and_soft_update_interpolates():
    trainer = DQN(_config(n_envs=1, n_steps=256, target_update_interval=10))
    trainer.update()
    assert trainer.target_updates == 25  # 256 env steps / 10, not per gradient step
    soft = DQN(_config(tau=0.25))
    with torch.no_grad():
        for t in soft.q_target.parameters():
            t.add_(1.0)
    before = [t.clone() for t in soft.q_target.parameters()]
    soft._update_target()
    for t, t0, p in zip(soft.q_target.parameters(), before, soft.q.parameters()):
        assert torch.allclose(t, 0.25 * p + 0.75 * t0)


def test_zoo_preset_refreshes_target_once_before_each_block_of_gradient_steps():
    trainer = make_trainer(preset_config("dqn", "CartPole-v1", "zoo", eval_every=0))
    for _ in range(4):  # 1024 env steps; the first block of 128 steps runs at step 1024 > 1000
        trainer.update()
    assert trainer.gradient_steps_done == 128
    online_after_block = [p.clone() for p in trainer.q.parameters()]
    target_during_block = [t.clone() for t in trainer.q_target.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(online_after_block, target_during_block))
    for _ in range(10):  # the next refresh (env step 1030) copies the trained θ
        trainer._env_step()
    assert all(
        torch.equal(a, b) for a, b in zip(trainer.q_target.parameters(), trainer.q.parameters())
    )


def test_epsilon_follows_the_linear_schedule():
    assert linear_schedule(1.0, 0.04, 0.16, 0.0) == 1.0
    assert linear_schedule(1.0, 0.04, 0.16, 0.08) == pytest.approx(0.52)
    assert linear_schedule(1.0, 0.04, 0.16, 0.5) == pytest.approx(0.04)
    assert linear_schedule(1.0, 0.1, 0.0, 0.0) == 0.1
    trainer = DQN(_config(exploration_fraction=0.5, exploration_final_eps=0.2))
    trainer.update()  # 64 of 2000 env steps
    assert trainer.epsilon == pytest.approx(1.0 - 0.8 * 64 / 1000)


def test_live_changes_reach_the_optimizer_and_the_next_update():
    trainer = DQN(_config())
    diff = set_hyperparams(
        trainer, lr=1e-2, gamma=0.9, exploration_final_eps=0.3, target_update_interval=7
    )
    assert diff["lr"] == (3e-4, 1e-2) and diff["target_update_interval"] == (1000, 7)
    assert trainer.optimizer.lr == 1e-2
    trainer.update()
    assert trainer.config.gamma == 0.9 and trainer.config.params.target_update_interval == 7
    assert trainer.target_updates == 64 // 7
    with pytest.raises(ConfigError, match="batch_size"):
        set_hyperparams(trainer, batch_size=8)


def test_prioritized_double_dueling_run_reports_all_metrics():
    trainer = DQN(_config(prioritized=True, double=True, dueling=True, per_beta0=0.4))
    report = trainer.update()
    m = report.metrics
    for key in ("td_loss", "q_mean", "q_max", "epsilon", "target_updates", "buffer_size"):
        assert np.isfinite(m[key]), key
    assert m["buffer_size"] == 64 and m["env_steps"] == 64
    assert m["per_beta"] == pytest.approx(0.4 + 0.6 * 64 / 2000)
    assert 0 < m["per_weight_mean"] <= 1
    assert m["q_max"] >= m["q_mean"]


def test_state_dict_round_trip_restores_learning_state():
    trainer = DQN(_config(prioritized=True, eval_every=64))
    trainer.update()
    set_hyperparams(trainer, lr=5e-3)
    trainer.update()
    blob = io.BytesIO()
    torch.save(trainer.state_dict(), blob)
    blob.seek(0)
    state = torch.load(blob, weights_only=True)
    clone = DQN(_config(prioritized=True, eval_every=64))
    clone.load_state_dict(state)
    assert clone.config.lr == 5e-3 and clone.optimizer.lr == 5e-3
    assert clone.book.env_steps == trainer.book.env_steps == 128
    assert np.array_equal(clone.replay.tree.tree, trainer.replay.tree.tree)
    a, b = trainer._train(3), clone._train(3)  # same rng, buffer, weights and Adam moments
    assert torch.equal(a["td"], b["td"])
    for p, q in zip(trainer.q.parameters(), clone.q.parameters()):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_dqn_zoo_cartpole_greedy_return_reaches_475_within_50k_steps():
    trainer = make_trainer(preset_config("dqn", "CartPole-v1", "zoo", seed=0))
    best = -np.inf
    while not trainer.done and best < 475:
        best = max(best, trainer.update().metrics.get("eval_return_mean", -np.inf))
    assert best >= 475, f"best greedy return {best} after {trainer.book.env_steps} env steps"

"""The Update Inspector against independent computations, and its snapshots on disk.

The inspector (``core/labs/inspector.py``) recomputes one update from its snapshot
(``core/engine/snapshot.py``) with batched flat-parameter forwards and the engine's Fisher
product. Here each of its numbers is checked against something computed another way: the
trainer's own report, ``nn.Module`` forwards with ``torch.distributions``-free closed forms in
float64, the autograd Hessian of the mean KL, PPO's loss kernel.
"""

from __future__ import annotations

import math
import queue

import numpy as np
import pytest
import torch
from torch.nn.utils import vector_to_parameters

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.engine.fast import heads
from core.engine.nets import CategoricalActor, GaussianActor
from core.engine.snapshot import UpdateSnapshot, gradient, plane_basis, surrogate_gradient
from core.labs.inspector import clip_objective, evaluate, inspect, unavailable_reason
from core.runtime.run_loop import LoopSpec, RunLoop
from core.runtime.snapshots import (
    SnapshotError,
    SnapshotLog,
    SnapshotPolicy,
    list_snapshots,
    load_snapshot,
    log_path,
    prune,
    save_snapshot,
    snapshot_dir,
)
from core.runtime.store import RunStore

SMALL = {"eval_every": 0, "n_envs": 2, "n_steps": 128}


def _trained(algo: str, env_id: str = "CartPole-v1", updates: int = 2, **changes):
    config = RunConfig(algo=algo, env_id=env_id).with_changes(**(SMALL | changes))
    trainer = make_trainer(config)
    trainer.capture_snapshots = True
    for _ in range(updates):
        report = trainer.update()
    return trainer, trainer.last_snapshot, report.metrics


@pytest.fixture(scope="module")
def trpo_cartpole():
    return _trained("trpo")


@pytest.fixture(scope="module")
def trpo_pendulum():
    return _trained("trpo", "Pendulum-v1")


@pytest.fixture(scope="module")
def ppo_cartpole():
    return _trained("ppo", minibatch_size=64, epochs=4)


def _actor(snap: UpdateSnapshot, theta: torch.Tensor):
    """An ``nn.Module`` actor (float64) holding θ: the independent forward."""
    obs_dim, out, hidden = snap.sizes[0], snap.sizes[-1], tuple(snap.sizes[1:-1])
    cls = CategoricalActor if snap.discrete else GaussianActor
    actor = cls(obs_dim, out, hidden, snap.activation).double()
    vector_to_parameters(theta.double(), actor.parameters())
    return actor


def _z(actor, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = actor.net(obs.double())
    return (out,) if actor.discrete else (out, actor.log_std.expand_as(out))


@torch.no_grad()
def _direct(snap: UpdateSnapshot, theta: torch.Tensor) -> tuple[float, float]:
    """Exact mean KL and ΔL at θ through the module (float64)."""
    z_old = _z(_actor(snap, snap.theta_old), snap.obs)
    z = _z(_actor(snap, theta), snap.obs)
    actions = snap.actions if snap.discrete else snap.actions.double()
    ratio = torch.exp(heads.log_prob(z, actions) - snap.logp_old.double())
    surrogate = ((ratio - 1) * snap.advantages.double()).mean()
    return float(heads.kl(z_old, z).mean()), float(surrogate)


# -- capture -------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["trpo", "npg", "ppo"])
def test_capturing_snapshots_changes_no_training_number(algo):
    def two_updates(capture: bool) -> list[dict[str, float]]:
        trainer = make_trainer(RunConfig(algo=algo).with_changes(**SMALL))  # seeds torch
        trainer.capture_snapshots = capture
        reports = [trainer.update().metrics for _ in range(2)]
        assert (trainer.last_snapshot is not None) == capture
        return [{k: v for k, v in r.items() if k not in ("wall_time", "fps")} for r in reports]

    plain, capturing = two_updates(False), two_updates(True)
    assert str(plain) == str(capturing)  # bit for bit (NaN included)


def test_a_snapshot_survives_its_file(tmp_path, trpo_pendulum):
    _, snap, _ = trpo_pendulum
    update, back = load_snapshot(save_snapshot(tmp_path, 7, snap))
    assert update == 7
    for name, value in snap.arrays().items():
        got = getattr(back, name)
        if isinstance(value, torch.Tensor):
            assert torch.equal(got.to(value.dtype), value), name
        elif isinstance(value, float) and math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value, name


@pytest.mark.parametrize("case", ["trpo_cartpole", "trpo_pendulum"])
def test_the_gradient_ppo_leaves_to_the_reader_is_the_one_trpo_computes(case, request):
    _, snap, _ = request.getfixturevalue(case)
    batch = (snap.obs, snap.actions, snap.logp_old, snap.advantages)
    g = surrogate_gradient(snap.sizes, snap.activation, snap.discrete, snap.theta_old, *batch)
    torch.testing.assert_close(g, snap.grad, rtol=1e-4, atol=1e-6)


def test_a_damaged_snapshot_is_refused_with_one_line(tmp_path, trpo_cartpole):
    path = save_snapshot(tmp_path, 1, trpo_cartpole[1])
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(SnapshotError, match="damaged"):
        load_snapshot(path)
    path.write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(SnapshotError, match="not a playground update snapshot"):
        load_snapshot(path)


# -- the inspector's numbers against independent computations -----------------------------------


@pytest.mark.parametrize("case", ["trpo_cartpole", "trpo_pendulum", "ppo_cartpole"])
def test_exact_kl_at_the_step_equals_the_runs_reported_kl_mean(case, request):
    _, snap, metrics = request.getfixturevalue(case)
    view = inspect(snap, 2, n=9)
    assert view.numbers["kl_exact"] == pytest.approx(metrics["kl_mean"], rel=1e-5)
    if "surrogate_actual" in metrics:
        assert view.numbers["surrogate_new"] == pytest.approx(metrics["surrogate_actual"], rel=1e-4)


@pytest.mark.parametrize("case", ["trpo_cartpole", "trpo_pendulum"])
def test_plane_fisher_equals_the_autograd_hessian_of_the_kl_in_the_plane(case, request):
    _, snap, _ = request.getfixturevalue(case)
    U, _ = plane_basis(gradient(snap), snap.step)
    theta_old = snap.theta_old.double()
    z_old = tuple(t.detach() for t in _z(_actor(snap, theta_old), snap.obs))
    actor = _actor(snap, theta_old)
    shapes = [(name, p.shape, p.numel()) for name, p in actor.named_parameters()]

    def mean_kl(ab: torch.Tensor) -> torch.Tensor:
        """D̄(θ_old + U·(a, b)) through the module's layers (torch.func.functional_call)."""
        theta, views, offset = theta_old + U @ ab, {}, 0
        for name, shape, size in shapes:
            views[name] = theta[offset : offset + size].view(shape)
            offset += size
        net = {name[4:]: v for name, v in views.items() if name.startswith("net.")}
        out = torch.func.functional_call(actor.net, net, (snap.obs.double(),))
        z = (out,) if snap.discrete else (out, views["log_std"].expand_as(out))
        return heads.kl(z_old, z).mean()

    H = torch.autograd.functional.hessian(mean_kl, torch.zeros(2, dtype=torch.float64))
    view = inspect(snap, 2, n=5)
    np.testing.assert_allclose(view.H, H.numpy(), rtol=1e-6, atol=1e-9 * float(H.abs().max()))


def test_the_ellipse_and_the_exact_kl_agree_to_second_order(trpo_cartpole):
    _, snap, _ = trpo_cartpole
    view = inspect(snap, 2, n=5)
    U, _ = plane_basis(gradient(snap), snap.step)
    ring = view.ellipse[::25]  # points with ½dᵀHd = δ
    errors = []
    for r in (1.0, 0.1, 0.01):
        thetas = snap.theta_old.double() + torch.from_numpy(r * ring) @ U.T
        exact = evaluate(snap, thetas, torch.float64).kl.numpy()
        errors.append(float(np.abs(exact / (r**2 * view.level) - 1).max()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01 * max(errors[0], 0.05)


@pytest.mark.parametrize("case", ["trpo_cartpole", "trpo_pendulum"])
def test_grid_values_equal_a_direct_evaluation_at_random_grid_points(case, request):
    _, snap, _ = request.getfixturevalue(case)
    view = inspect(snap, 2, n=21)
    U, _ = plane_basis(gradient(snap), snap.step)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 21, size=(5, 2)):
        ab = torch.tensor([view.a[j], view.b[i]], dtype=torch.float64)
        kl, surrogate = _direct(snap, snap.theta_old.double() + U @ ab)
        assert view.kl[i, j] == pytest.approx(kl, rel=1e-4, abs=1e-7)
        assert view.surrogate[i, j] == pytest.approx(surrogate, rel=1e-4, abs=1e-6)


def test_the_trials_and_theta_new_lie_on_the_step(trpo_cartpole):
    _, snap, metrics = trpo_cartpole
    view = inspect(snap, 2, n=5)
    assert len(view.trials) == metrics["ls_backtracks"] + metrics["ls_accepted"]
    np.testing.assert_allclose(view.theta_new, metrics["ls_step_frac"] * view.step)
    assert view.numbers["natural_in_plane"] == pytest.approx(1.0, abs=1e-6)
    assert view.cg[-1, 2] < 1e-3 * np.linalg.norm(view.step)  # the last iterate is s
    np.testing.assert_allclose(view.cg[-1, :2], view.step, rtol=1e-3)


def test_ppo_clipped_objective_on_the_grid_equals_the_trainers_loss(ppo_cartpole):
    trainer, snap, _ = ppo_cartpole
    view = inspect(snap, 2, n=11)
    U, _ = plane_basis(gradient(snap), snap.step)
    ac, k = trainer.ac, snap.n_log_std
    at_old = clip_objective(snap, snap.theta_old)
    for i, j in ((0, 0), (3, 7), (10, 4), (5, 5)):
        theta = (snap.theta_old.double() + U @ torch.tensor([view.a[j], view.b[i]])).float()
        with torch.no_grad():
            ac.actor_mlp.flat.copy_(theta[k:])
        old = ac.old_policy(snap.obs)  # read by the KL objective only
        step = ac.loss_grad(
            snap.obs,
            snap.actions,
            snap.logp_old,
            snap.advantages,
            torch.zeros(len(snap.obs)),
            old,
            objective="clip",
            clip_eps=snap.clip_eps,
            vf_coef=0.0,
        )
        loss = float(step.objective.mean())
        assert clip_objective(snap, theta) == pytest.approx(loss, rel=1e-5, abs=1e-7)
        assert view.clipped[i, j] + at_old == pytest.approx(loss, rel=1e-4, abs=1e-6)


def test_runs_without_snapshots_get_a_clear_message():
    assert "DQN" in unavailable_reason("dqn", 0)
    assert "A2C" in unavailable_reason("a2c", 0)
    assert "no update snapshots" in unavailable_reason("trpo", 0)
    assert unavailable_reason("ppo", 3) is None


# -- on disk: retention, the run loop, deletion ----------------------------------------------------


def test_retention_keeps_the_latest_200_and_every_10th_before():
    policy = SnapshotPolicy()
    assert [u for u in range(1, 31) if policy.keeps(u, 230)] == [10, 20, 30]
    assert all(policy.keeps(u, 230) for u in range(31, 231))
    # on disk: a log leaves whole, so up to keep_every − 1 older updates stay readable with it
    assert [u for u in range(1, 41) if policy.on_disk(u, 235)] == [10, 20, 30, *range(31, 41)]
    assert [u for u in range(1, 41) if policy.on_disk(u, 240)] == [10, 20, 30, 40]


def test_the_log_keeps_what_the_policy_says_and_every_record_reads_back(tmp_path, trpo_cartpole):
    small = SnapshotPolicy(keep_latest=5, keep_every=4)
    log = SnapshotLog(tmp_path, small)
    for n in range(1, 21):
        log.write(n, trpo_cartpole[1])
        on_disk = list_snapshots(tmp_path)
        assert list(on_disk) == [u for u in range(1, n + 1) if small.on_disk(u, n)], n
    log.close()
    assert list(on_disk) == [4, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "update_0000004.snapshot",
        "update_0000008.snapshot",
        "update_0000012.snapshot",
        "updates_0000013.snapshots",
        "updates_0000017.snapshots",
    ]
    for update, ref in on_disk.items():
        got, snap = load_snapshot(ref)
        assert got == update
        assert torch.equal(snap.step, trpo_cartpole[1].step)


def test_a_log_cut_short_is_read_up_to_its_last_whole_record_and_mended(tmp_path, trpo_cartpole):
    snap = trpo_cartpole[1]
    log = SnapshotLog(tmp_path, SnapshotPolicy(keep_every=10))
    for update in (1, 2, 3):
        log.write(update, snap)
    log.close()
    path = log_path(tmp_path, 1)
    whole = path.stat().st_size
    with open(path, "r+b") as f:  # a crash in the middle of record 3
        f.truncate(whole - 100)
    assert list(list_snapshots(tmp_path)) == [1, 2]
    log = SnapshotLog(tmp_path, SnapshotPolicy(keep_every=10))
    log.write(3, snap)  # the resumed run writes update 3 again
    log.close()
    assert path.stat().st_size == whole
    assert [load_snapshot(ref)[0] for ref in list_snapshots(tmp_path).values()] == [1, 2, 3]


def test_runs_with_one_file_per_update_still_read_and_prune(tmp_path, trpo_cartpole):
    small = SnapshotPolicy(keep_latest=5, keep_every=4)
    for u in range(1, 21):
        save_snapshot(tmp_path, u, trpo_cartpole[1])
        prune(tmp_path, u, small)
    files = list_snapshots(tmp_path)
    assert list(files) == [4, 8, 12, 16, 17, 18, 19, 20]
    assert load_snapshot(files[17])[0] == 17


class _NoCommands:
    def get(self, block: bool = True):
        raise queue.Empty


def test_the_run_loop_writes_a_snapshot_per_update_and_prunes(tmp_path):
    config = RunConfig(algo="trpo").with_changes(**SMALL, total_steps=6 * 256)
    policy = SnapshotPolicy(keep_latest=2, keep_every=3)
    spec = LoopSpec("r", config.to_json(), str(tmp_path), 100, snapshots=policy)
    messages: list[tuple] = []
    RunLoop(spec, make_trainer, _NoCommands(), messages.append).run()
    assert messages[-1][0] == "ended"
    files = list_snapshots(snapshot_dir(tmp_path))
    assert list(files) == [3, 4, 5, 6]  # 4 leaves with its log (4-6), once 6 is out of the window
    assert load_snapshot(files[6])[1].algo == "trpo"


def test_no_snapshots_when_the_loop_is_told_not_to(tmp_path):
    config = RunConfig(algo="ppo").with_changes(**SMALL, total_steps=256)
    spec = LoopSpec("r", config.to_json(), str(tmp_path), 100, snapshots=SnapshotPolicy(False))
    RunLoop(spec, make_trainer, _NoCommands(), lambda m: None).run()
    assert not list_snapshots(snapshot_dir(tmp_path))


def test_deleting_a_run_removes_its_snapshots_and_reconciling_keeps_them(tmp_path, trpo_cartpole):
    store = RunStore(tmp_path / "data")
    try:
        run_id = store.create_run(RunConfig(algo="trpo"), status="finished")
        folder = snapshot_dir(store.checkpoint_dir(run_id))
        save_snapshot(folder, 1, trpo_cartpole[1])
        store.reconcile_checkpoints()
        assert list(list_snapshots(folder)) == [1]
        store.delete(run_id)
        assert not folder.exists()
    finally:
        store.close()

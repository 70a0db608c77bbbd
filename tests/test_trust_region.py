"""The trust-region solver: Fisher-vector products, conjugate gradient, backtracking line search.

Each formula is checked against an independent computation: the autograd Hessian of the analytic
mean KL (torch.distributions), numpy.linalg.solve, and a closed-form softmax bandit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import kl_divergence
from torch.func import functional_call

from core.engine.algos.trpo import MLPFisher, dist_params
from core.engine.fast import heads, reference
from core.engine.nets import CategoricalActor, GaussianActor
from core.engine.trust_region import backtracking_line_search, conjugate_gradient, max_step
from tests.oracles import distribution, flat_grad

# ---------------------------------------------------------------------------------------------
# Fisher-vector products
# ---------------------------------------------------------------------------------------------


def _small_actor(kind: str, activation: str = "tanh", hidden=(5,)) -> torch.nn.Module:
    torch.manual_seed(3)
    if kind == "categorical":
        actor = CategoricalActor(3, 4, hidden, activation)
        # bigger output weights than the 0.01 init, so that π is far from uniform
        torch.nn.init.normal_(actor.net[-1].weight, std=1.0)
    else:
        actor = GaussianActor(3, 2, hidden, activation, log_std_init=-0.3)
        torch.nn.init.normal_(actor.net[-1].weight, std=1.0)
    return actor.double()


def _mean_kl_hessian(actor: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """∇²_θ mean_s KL(π_old ‖ π_θ) at θ_old, by autograd over the flat parameter vector."""
    names = [n for n, _ in actor.named_parameters()]
    shapes = [p.shape for p in actor.parameters()]
    theta_old = torch.cat([p.detach().reshape(-1) for p in actor.parameters()])
    with torch.no_grad():
        old = distribution(actor, obs)

    def mean_kl(theta: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, [math.prod(s) for s in shapes])
        state = {n: t.view(s) for n, t, s in zip(names, parts, shapes)}
        net_state = {n.removeprefix("net."): t for n, t in state.items() if n.startswith("net.")}
        out = functional_call(actor.net, net_state, (obs,))
        z = (out,) if isinstance(actor, CategoricalActor) else (out, state["log_std"])
        return kl_divergence(old, reference.distribution(z)).mean()

    return torch.autograd.functional.hessian(mean_kl, theta_old)


def _analytic_kl_fn(actor: torch.nn.Module, obs: torch.Tensor):
    with torch.no_grad():
        old = distribution(actor, obs)
    return lambda: kl_divergence(old, distribution(actor, obs)).mean()


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_double_backprop_fvp_equals_autograd_hessian_of_mean_kl(kind, damping):
    actor = _small_actor(kind)
    obs = torch.randn(7, 3, dtype=torch.float64)
    hessian = _mean_kl_hessian(actor, obs)
    params = list(actor.parameters())
    v = torch.randn(hessian.shape[0], dtype=torch.float64)
    fv = reference.fisher_vector_product(_analytic_kl_fn(actor, obs), params, v, damping)
    torch.testing.assert_close(fv, hessian @ v + damping * v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
@pytest.mark.parametrize("damping", [0.0, 0.1])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hand_written_mlp_fisher_equals_autograd_hessian_of_mean_kl(kind, damping, activation):
    actor = _small_actor(kind, activation, hidden=(5, 4))
    obs = torch.randn(7, 3, dtype=torch.float64)
    hessian = _mean_kl_hessian(actor, obs)
    fvp = MLPFisher(actor, obs, damping)
    for _ in range(3):
        v = torch.randn(hessian.shape[0], dtype=torch.float64)
        torch.testing.assert_close(fvp(v), hessian @ v + damping * v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_closed_form_kl_matches_torch_distributions(kind):
    actor = _small_actor(kind)
    obs = torch.randn(9, 3, dtype=torch.float64)
    with torch.no_grad():
        old_z = tuple(t.clone() for t in dist_params(actor, obs))
        old = distribution(actor, obs)
        for p in actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
        new_z, new = dist_params(actor, obs), distribution(actor, obs)
    torch.testing.assert_close(heads.kl(old_z, new_z), kl_divergence(old, new))


def test_flat_grad_with_create_graph_allows_a_second_derivative():
    x = torch.tensor([0.5, -1.0], requires_grad=True)
    grad = flat_grad((x**3).sum(), [x], create_graph=True)
    second = flat_grad(grad.sum(), [x])
    torch.testing.assert_close(second, 6 * x.detach())


# ---------------------------------------------------------------------------------------------
# Conjugate gradient
# ---------------------------------------------------------------------------------------------


def _random_spd(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, n))
    return q @ q.T + 0.5 * np.eye(n), rng.normal(size=n)


@pytest.mark.parametrize("n,seed", [(2, 0), (5, 1), (12, 2), (30, 3)])
def test_cg_matches_numpy_solve_on_random_spd_systems(n, seed):
    a, b = _random_spd(n, seed)
    A = torch.from_numpy(a)
    x, trace = conjugate_gradient(lambda v: A @ v, torch.from_numpy(b), iters=3 * n, tol=1e-22)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-7, atol=1e-9)
    assert trace.residuals[-1] < 1e-20


@pytest.mark.parametrize("seed", range(4))
def test_cg_error_in_the_a_norm_never_increases(seed):
    """CG minimises ‖x − x*‖_A over a growing Krylov space, so that error is non-increasing.

    (The residual ‖r_k‖ is not monotone in general; the A-norm error is.)
    """
    a, b = _random_spd(15, 10 + seed)
    x_star = np.linalg.solve(a, b)
    _, trace = conjugate_gradient(lambda v: torch.from_numpy(a) @ v, torch.from_numpy(b), 15, 0)
    errors = [math.sqrt((x_star) @ a @ x_star)]  # x₀ = 0
    errors += [math.sqrt((x.numpy() - x_star) @ a @ (x.numpy() - x_star)) for x in trace.iterates]
    assert all(e1 <= e0 * (1 + 1e-9) for e0, e1 in zip(errors, errors[1:]))
    assert errors[-1] < 1e-4 * errors[0]


def test_cg_trace_residuals_are_the_true_residuals():
    a, b = _random_spd(6, 7)
    _, trace = conjugate_gradient(lambda v: torch.from_numpy(a) @ v, torch.from_numpy(b), 4, 0)
    assert len(trace.residuals) == len(trace.iterates) + 1
    for x, rr in zip(trace.iterates, trace.residuals[1:]):
        r = b - a @ x.numpy()
        assert rr == pytest.approx(r @ r, rel=1e-8)


def test_cg_in_two_dimensions_converges_in_two_iterations_first_iterate_parallel_to_b():
    a = np.array([[3.0, 1.0], [1.0, 0.5]])
    b = np.array([1.0, -2.0])
    x, trace = conjugate_gradient(
        lambda v: torch.from_numpy(a) @ v, torch.from_numpy(b), iters=10, tol=1e-20
    )
    assert trace.iterations == 2
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-12)
    # x₁ = (bᵀb / bᵀAb) b: the steepest-descent step, parallel to b
    np.testing.assert_allclose(trace.iterates[0].numpy(), (b @ b) / (b @ a @ b) * b, rtol=1e-12)


def test_max_step_puts_the_quadratic_model_on_the_boundary():
    a, b = _random_spd(4, 5)
    x = torch.from_numpy(b)
    Fx = torch.from_numpy(a) @ x
    s, beta = max_step(x, Fx, delta=0.03)
    assert 0.5 * float(s @ (torch.from_numpy(a) @ s)) == pytest.approx(0.03)
    assert beta == pytest.approx(math.sqrt(2 * 0.03 / float(x @ Fx)))


# ---------------------------------------------------------------------------------------------
# Line search on a closed-form problem: the softmax bandit
# ---------------------------------------------------------------------------------------------

REWARDS = torch.tensor([1.0, 0.2, 0.0], dtype=torch.float64)
THETA_OLD = torch.tensor([-2.0, 2.0], dtype=torch.float64)


def _probs(theta: torch.Tensor) -> torch.Tensor:
    return torch.softmax(torch.cat([theta, theta.new_zeros(1)]), 0)


def _bandit_kl(theta: torch.Tensor) -> torch.Tensor:
    """KL(π_old ‖ π_θ) = Σ_j p_j (log p_j − log p′_j) over the three arms."""
    p_old, p = _probs(THETA_OLD), _probs(theta)
    return (p_old * (p_old.log() - p.log())).sum()


def _bandit_step(delta: float) -> torch.Tensor:
    theta = THETA_OLD.clone().requires_grad_(True)
    g = flat_grad(_probs(theta) @ REWARDS, [theta])

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return reference.fisher_vector_product(lambda: _bandit_kl(theta), [theta], v)

    x, _ = conjugate_gradient(fvp, g, iters=10, tol=1e-20)
    s, _ = max_step(x, fvp(x), delta)
    return s


def _bandit_trial(s: torch.Tensor):
    j_old = float(_probs(THETA_OLD) @ REWARDS)

    def trial(frac: float) -> tuple[float, float]:
        theta = THETA_OLD + frac * s
        return float(_bandit_kl(theta)), float(_probs(theta) @ REWARDS) - j_old

    return trial


def test_bandit_natural_gradient_equals_reward_differences():
    """F⁻¹g = (r₁ − r₃, r₂ − r₃) for logits (θ₁, θ₂, 0): a closed form the CG must reproduce."""
    s = _bandit_step(0.01)
    direction = (REWARDS[:2] - REWARDS[2]).numpy()
    np.testing.assert_allclose(
        s.numpy() / np.linalg.norm(s.numpy()), direction / np.linalg.norm(direction), rtol=1e-8
    )


def test_line_search_rejects_full_step_outside_kl_ball_and_accepts_half():
    delta = 0.01
    s = _bandit_step(delta)
    accepted, trace = backtracking_line_search(_bandit_trial(s), delta, backtrack_coef=0.5)
    assert accepted
    first, second = trace.trials
    assert not first.accepted and first.kl == pytest.approx(0.0126, abs=5e-5) and first.kl > delta
    assert second.accepted and second.frac == 0.5
    assert second.kl <= delta and second.surrogate_change > 0
    assert trace.accepted_frac == 0.5 and trace.backtracks == 1


def test_line_search_rejects_steps_that_lower_the_surrogate():
    delta = 0.01
    s = _bandit_step(delta)
    accepted, trace = backtracking_line_search(_bandit_trial(-s), delta, 0.5, max_backtracks=6)
    assert not accepted and trace.accepted_frac is None
    assert len(trace.trials) == 6 and trace.backtracks == 6
    assert all(t.surrogate_change <= 0 or t.kl > delta for t in trace.trials)
    assert trace.trials[-1].kl > 0

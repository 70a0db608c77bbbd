"""The Trust Region Lab's toy problems: every closed form against an independent computation."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from core.labs.toy_problems import (
    GaussianBandit,
    Rescaled,
    SoftmaxBandit,
    TwoStateMDP,
    as_theta,
    make_problem,
)
from core.labs.toy_step import (
    StepSettings,
    escape_iteration,
    lab_step,
    run_updates,
    solvable,
    update,
)
from ui.toy_geometry import (
    grid_values,
    kl_ball_radii,
    quadratic_ellipse,
    slice_along,
    step_bounds,
)
from ui.toy_scenario import PRESETS, START_LIMIT, Scenario

PROBLEMS = {
    "softmax": SoftmaxBandit(rewards=(1.0, 0.2, 0.0)),
    "softmax-other-rewards": SoftmaxBandit(rewards=(-0.3, 0.7, 0.4)),
    "gaussian": GaussianBandit(target=2.0, entropy_coef=0.5),
    "gaussian-no-entropy": GaussianBandit(target=-1.0, entropy_coef=0.0),
    "kakade": TwoStateMDP(rewards=(1.0, 2.0), gamma=0.9),
    "kakade-other": TwoStateMDP(rewards=(2.0, 0.5), gamma=0.7),
    "softmax-rescaled": Rescaled(SoftmaxBandit(), 3.0),
    "kakade-rescaled": Rescaled(TwoStateMDP(), 0.25),
}
THETAS = [(-2.0, 2.0), (0.3, -0.7), (1.5, 0.4)]

problem_param = pytest.mark.parametrize("problem", PROBLEMS.values(), ids=PROBLEMS.keys())
theta_param = pytest.mark.parametrize("theta", THETAS)


@problem_param
@theta_param
def test_gradient_matches_autograd_of_objective(problem, theta):
    th = as_theta(theta).requires_grad_(True)
    (auto,) = torch.autograd.grad(problem.objective(th), th)
    torch.testing.assert_close(problem.grad(as_theta(theta)), auto, rtol=1e-9, atol=1e-12)


@problem_param
@theta_param
def test_surrogate_has_the_objective_gradient_at_theta_old(problem, theta):
    old = as_theta(theta)
    th = old.clone().requires_grad_(True)
    surrogate = problem.surrogate(th, old)
    (auto,) = torch.autograd.grad(surrogate, th)
    assert float(surrogate.detach()) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(auto, problem.grad(old), rtol=1e-9, atol=1e-12)


@problem_param
@theta_param
def test_fisher_is_hessian_of_exact_mean_kl_at_theta_old(problem, theta):
    old = as_theta(theta)
    hessian = torch.autograd.functional.hessian(lambda th: problem.kl(old, th), old.clone())
    torch.testing.assert_close(problem.fisher(old), hessian, rtol=1e-8, atol=1e-12)


@problem_param
def test_kl_is_zero_at_theta_old_and_positive_elsewhere(problem):
    old = as_theta((0.3, -0.7))
    assert float(problem.kl(old, old)) == pytest.approx(0.0, abs=1e-14)
    others = old + torch.randn(
        50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    assert torch.all(problem.kl(old, others) > 0)


@pytest.mark.parametrize("rewards", [(1.0, 0.2, 0.0), (-0.3, 0.7, 0.4)])
@theta_param
def test_softmax_kl_matches_direct_sum_over_actions(rewards, theta):
    bandit = SoftmaxBandit(rewards=rewards)
    old, new = as_theta(theta), as_theta(theta) + as_theta((0.8, -1.1))
    p = torch.softmax(torch.tensor([*theta, 0.0], dtype=torch.float64), 0)
    q = torch.softmax(torch.tensor([*new.tolist(), 0.0], dtype=torch.float64), 0)
    direct = float((p * (p / q).log()).sum())
    assert float(bandit.kl(old, new)) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize(
    "rewards", [(1.0, 0.2, 0.0), (-0.3, 0.7, 0.4), (2.0, -1.0, 5.0)], ids=["doc", "a", "b"]
)
@theta_param
def test_softmax_natural_gradient_is_reward_differences_and_gFg_is_variance(rewards, theta):
    bandit = SoftmaxBandit(rewards=rewards)
    th = as_theta(theta)
    g, F = bandit.grad(th), bandit.fisher(th)
    natural = torch.linalg.solve(F, g)
    r = np.array(rewards)
    torch.testing.assert_close(natural, as_theta((r[0] - r[2], r[1] - r[2])), rtol=1e-8, atol=0)
    p = torch.softmax(torch.tensor([*theta, 0.0], dtype=torch.float64), 0).numpy()
    variance = float(p @ r**2 - (p @ r) ** 2)
    assert float(g @ natural) == pytest.approx(variance, rel=1e-9)


@pytest.mark.parametrize("problem", [PROBLEMS["gaussian"], PROBLEMS["gaussian-no-entropy"]])
def test_gaussian_kl_and_objective_match_numerical_integrals(problem):
    (mu0, om0), (mu1, om1) = (0.4, -0.3), (1.1, 0.2)
    p, q = stats.norm(mu0, math.exp(om0)), stats.norm(mu1, math.exp(om1))
    kl, _ = integrate.quad(lambda a: p.pdf(a) * (p.logpdf(a) - q.logpdf(a)), -np.inf, np.inf)
    assert float(problem.kl(as_theta((mu0, om0)), as_theta((mu1, om1)))) == pytest.approx(kl)
    reward, _ = integrate.quad(lambda a: -p.pdf(a) * (a - problem.target) ** 2, -np.inf, np.inf)
    entropy, _ = integrate.quad(lambda a: -p.pdf(a) * p.logpdf(a), -np.inf, np.inf)
    J = reward + problem.entropy_coef * entropy
    assert float(problem.objective(as_theta((mu0, om0)))) == pytest.approx(J)


def test_gaussian_optimum_has_sigma_squared_alpha_over_two():
    problem = GaussianBandit(target=1.5, entropy_coef=0.5)
    optimum = as_theta((1.5, 0.5 * math.log(0.25)))
    torch.testing.assert_close(problem.grad(optimum), torch.zeros(2, dtype=torch.float64))


def _kakade_by_simulation(mdp: TwoStateMDP, theta, horizon: int = 600):
    """J and d^π by propagating the state distribution: d = (1 − γ) Σ_t γᵗ ρ_t."""
    stay = 1 / (1 + np.exp(-np.asarray(theta)))
    P = np.array([[stay[0], 1 - stay[0]], [1 - stay[1], stay[1]]])
    rho, d = np.array([1.0, 0.0]), np.zeros(2)
    for t in range(horizon):
        d += (1 - mdp.gamma) * mdp.gamma**t * rho
        rho = rho @ P
    return float(d @ (stay * np.array(mdp.rewards))), d


@pytest.mark.parametrize("mdp", [PROBLEMS["kakade"], PROBLEMS["kakade-other"]])
@theta_param
def test_kakade_objective_and_visitation_match_propagating_the_chain(mdp, theta):
    J, d = _kakade_by_simulation(mdp, theta)
    assert float(mdp.objective(as_theta(theta))) == pytest.approx(J, rel=1e-10)
    np.testing.assert_allclose(mdp.visitation(as_theta(theta)).numpy(), d, rtol=1e-10)


@pytest.mark.parametrize("mdp", [PROBLEMS["kakade"], PROBLEMS["kakade-other"]])
def test_kakade_kl_is_visitation_weighted_bernoulli_kl(mdp):
    old, new = as_theta((1.0, -2.0)), as_theta((-0.5, 0.5))
    _, d = _kakade_by_simulation(mdp, old.tolist())
    per_state = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(logits=old), torch.distributions.Bernoulli(logits=new)
    )
    assert float(mdp.kl(old, new)) == pytest.approx(float(per_state @ as_theta(d)), rel=1e-10)


def test_kakade_true_change_is_surrogate_with_new_visitation_and_differs_from_surrogate():
    mdp = PROBLEMS["kakade"]
    old, new = as_theta((3.0, -3.0)), as_theta((2.0, 1.0))
    advantage = mdp.stay_advantage(old)
    step = mdp.stay(new) - mdp.stay(old)
    true_change = float(mdp.objective(new) - mdp.objective(old))
    assert true_change == pytest.approx(float((mdp.visitation(new) * step * advantage).sum()))
    surrogate = float(mdp.surrogate(new, old))
    assert surrogate == pytest.approx(float((mdp.visitation(old) * step * advantage).sum()))
    assert abs(true_change - surrogate) > 0.1


def test_documented_case_full_step_rejected_half_step_accepted():
    bandit = make_problem("softmax", rewards=(1.0, 0.2, 0.0))
    step = lab_step(bandit, (-2.0, 2.0), StepSettings(delta=0.01, backtrack_coef=0.5))
    full, half = step.trials
    assert (full.frac, full.accepted) == (1.0, False)
    assert full.kl == pytest.approx(0.0126, abs=5e-5)
    assert step.quadratic_kl == pytest.approx(0.01, rel=1e-9)
    assert (half.frac, half.accepted) == (0.5, True)
    assert half.kl < 0.01 and half.surrogate_change > 0
    torch.testing.assert_close(step.theta_new, as_theta((-2.0, 2.0)) + 0.5 * step.step)
    assert half.objective_change == pytest.approx(
        float(bandit.objective(step.theta_new) - bandit.objective(as_theta((-2.0, 2.0))))
    )


@problem_param
def test_cg_first_iterate_parallel_to_g_second_is_natural_gradient(problem):
    theta = as_theta((0.3, -0.7))
    step = lab_step(problem, theta, StepSettings(delta=0.02, cg_iters=10))
    x1, x2 = step.cg_iterates[:2]
    g = problem.grad(theta)
    assert float(x1[0] * g[1] - x1[1] * g[0]) == pytest.approx(0.0, abs=1e-12 * float(x1 @ x1))
    assert float(x1 @ g) > 0
    torch.testing.assert_close(x2, torch.linalg.solve(problem.fisher(theta), g), rtol=1e-7, atol=0)


@problem_param
def test_full_step_and_arrows_lie_on_quadratic_ellipse(problem):
    theta = as_theta((1.5, 0.4))
    step = lab_step(problem, theta, StepSettings(delta=0.03))
    F = problem.fisher(theta)
    for d in (step.step, step.vanilla_step, step.natural_step, step.cg_points[0]):
        assert float(0.5 * d @ F @ d) == pytest.approx(0.03, rel=1e-8)
    torch.testing.assert_close(step.cg_points[0], step.vanilla_step)
    torch.testing.assert_close(step.cg_points[-1], step.step)
    torch.testing.assert_close(step.natural_step, step.step)


def test_damping_shrinks_the_step_inside_the_ellipse():
    bandit = SoftmaxBandit()
    step = lab_step(bandit, bandit.start, StepSettings(delta=0.01, damping=0.1))
    assert step.quadratic_kl < 0.01
    F = step.fisher
    damped = float(0.5 * step.step @ (F + 0.1 * torch.eye(2, dtype=torch.float64)) @ step.step)
    assert damped == pytest.approx(0.01, rel=1e-9)


@pytest.mark.parametrize("problem", [PROBLEMS["softmax"], PROBLEMS["gaussian"]])
def test_quadratic_ellipse_points_satisfy_half_dFd_equals_delta(problem):
    F = problem.fisher(as_theta((0.3, -0.7)))
    points = quadratic_ellipse(F, 0.05, n=37)
    torch.testing.assert_close(
        0.5 * torch.einsum("ni,ij,nj->n", points, F, points),
        torch.full((37,), 0.05, dtype=torch.float64),
    )


def test_slice_along_step_matches_trials_and_models():
    bandit = SoftmaxBandit()
    step = lab_step(bandit, bandit.start, StepSettings(delta=0.01, backtrack_coef=0.5))
    cut = slice_along(bandit, bandit.start, step.step, torch.tensor([1e-3, 0.5, 1.0]).double())
    assert float(cut["kl"][2]) == pytest.approx(step.trials[0].kl)
    assert float(cut["surrogate"][1]) == pytest.approx(step.trials[1].surrogate_change)
    assert float(cut["kl_quadratic"][2]) == pytest.approx(0.01)
    assert float(cut["kl"][0] / cut["kl_quadratic"][0]) == pytest.approx(1.0, rel=1e-2)
    assert float(cut["linear"][2]) == pytest.approx(step.predicted_improvement)


def test_grid_values_agree_with_pointwise_evaluation():
    mdp = PROBLEMS["kakade"]
    grid = grid_values(mdp, as_theta(mdp.start), mdp.bounds, n=11)
    theta = as_theta((float(grid.x[3]), float(grid.y[7])))
    assert float(grid.kl[7, 3]) == pytest.approx(float(mdp.kl(as_theta(mdp.start), theta)))
    assert float(grid.objective[7, 3]) == pytest.approx(float(mdp.objective(theta)))
    assert float(grid.surrogate[7, 3]) == pytest.approx(
        float(mdp.surrogate(theta, as_theta(mdp.start)))
    )


@pytest.mark.parametrize("problem", [PROBLEMS["softmax"], PROBLEMS["gaussian"], PROBLEMS["kakade"]])
def test_natural_path_invariant_to_coordinate_scaling_vanilla_path_not(problem):
    start = as_theta(problem.start)
    paths = {
        k: {
            m: run_updates(problem, start, m, StepSettings(delta=0.01, scale=k), 5).thetas
            for m in ("vanilla", "npg", "trpo")
        }
        for k in (1.0, 0.25)
    }
    torch.testing.assert_close(paths[1.0]["npg"], paths[0.25]["npg"], rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(paths[1.0]["trpo"], paths[0.25]["trpo"], rtol=1e-7, atol=1e-9)
    first = {k: paths[k]["vanilla"][1] - start for k in paths}
    cosine = float(first[1.0] @ first[0.25] / (first[1.0].norm() * first[0.25].norm()))
    assert cosine < 0.95


def test_kakade_natural_gradient_escapes_plateau_vanilla_does_not():
    mdp = TwoStateMDP()
    settings = StepSettings(delta=0.01)
    escapes = {
        m: escape_iteration(run_updates(mdp, (3.0, -3.0), m, settings, 40), level=1.5)
        for m in ("vanilla", "npg", "trpo")
    }
    assert escapes["npg"] is not None and escapes["npg"] <= 10
    assert escapes["trpo"] is not None and escapes["trpo"] <= 15
    assert escapes["vanilla"] is None
    fixed_rate = run_updates(mdp, (3.0, -3.0), "vanilla", settings, 40, lr=5.0)
    assert escape_iteration(fixed_rate, level=1.5) is None
    assert float(fixed_rate.objectives[-1]) < 1.01


def test_trpo_updates_never_exceed_delta_and_never_decrease_surrogate():
    mdp = TwoStateMDP()
    path = run_updates(mdp, (3.0, -3.0), "trpo", StepSettings(delta=0.01), 15)
    for before, after in zip(path.thetas[:-1], path.thetas[1:]):
        assert float(mdp.kl(before, after)) <= 0.01 + 1e-12
        assert float(mdp.surrogate(after, before)) >= 0


def test_update_stops_when_policy_is_numerically_deterministic():
    mdp = TwoStateMDP()
    theta = as_theta((-50.0, 50.0))
    for method in ("vanilla", "npg", "trpo"):
        new, moved = update(mdp, theta, method, StepSettings())
        assert not moved
        torch.testing.assert_close(new, theta)


def test_lab_is_undefined_for_equal_rewards_and_unvisited_states():
    assert not solvable(SoftmaxBandit(rewards=(0.5, 0.5, 0.5)), as_theta((0.0, 1.0)))
    assert not solvable(TwoStateMDP(gamma=0.0), as_theta((0.0, 0.0)))
    assert solvable(TwoStateMDP(gamma=0.5), as_theta((0.0, 0.0)))


def test_make_problem_rejects_unknown_key():
    with pytest.raises(ValueError, match="unknown problem"):
        make_problem("cartpole")


@pytest.mark.parametrize("name", list(PRESETS))
def test_scenario_survives_the_url_round_trip(name):
    scenario = PRESETS[name]
    again = Scenario.from_query(scenario.to_query())
    assert again.to_query() == scenario.to_query()
    assert again.settings() == scenario.settings()
    torch.testing.assert_close(again.theta0(), scenario.theta0())


def test_scenario_from_malformed_query_is_valid_and_clipped():
    scenario = Scenario.from_query(
        {"problem": "kakade", "gamma": "7", "delta": "nan", "start": "1e9,-2", "mode": "?"}
    )
    assert scenario.values()["gamma"] == 0.99
    assert scenario.delta == 0.01
    assert scenario.start == (START_LIMIT, -2.0)
    assert scenario.mode == "step"
    assert Scenario.from_query({"problem": "cartpole"}).problem == "softmax"


def test_documented_preset_is_the_documented_case():
    scenario = PRESETS["Rejected full step"]
    step = lab_step(scenario.build(), scenario.theta0(), scenario.settings())
    assert [t.accepted for t in step.trials] == [False, True]


@pytest.mark.parametrize("problem", [PROBLEMS["softmax"], PROBLEMS["gaussian"], PROBLEMS["kakade"]])
def test_best_value_bounds_the_objective_and_is_approached(problem):
    thetas = 4 * torch.randn(
        500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    assert float(problem.objective(thetas).max()) <= problem.best_value() + 1e-12
    path = run_updates(problem, problem.start, "trpo", StepSettings(delta=0.05), 30)
    assert float(path.objectives[-1]) > problem.best_value() - 0.05


def test_kl_ball_radii_hit_the_delta_level_set():
    bandit = SoftmaxBandit()
    old = as_theta(bandit.start)
    radii = kl_ball_radii(bandit, old, 0.01, r_max=5.0, n_rays=8)
    for r, angle in zip(radii, torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1]):
        u = torch.stack([torch.cos(angle), torch.sin(angle)])
        assert float(bandit.kl(old, old + r * u)) > 0.01
        assert float(bandit.kl(old, old + (r - 5.0 / 240) * u)) <= 0.01


def test_step_window_holds_the_trials_and_the_kl_ball():
    bandit = SoftmaxBandit()
    step = lab_step(bandit, bandit.start, StepSettings(delta=0.01))
    (x0, x1), (y0, y1) = step_bounds(bandit, step, 0.01)
    assert x1 - x0 == pytest.approx(y1 - y0)
    for t in step.trials:
        assert x0 < float(t.theta[0]) < x1 and y0 < float(t.theta[1]) < y1
    grid = grid_values(bandit, bandit.start, ((x0, x1), (y0, y1)), n=41)
    edge = torch.cat([grid.kl[0], grid.kl[-1], grid.kl[:, 0], grid.kl[:, -1]])
    assert float(edge.min()) > 0.01


def test_plateau_trpo_steps_are_the_exact_natural_step_wherever_float64_resolves_it():
    """Deep on Kakade's plateau F is nearly singular (π(switch|s₂) ≈ 1e-14 by update 20): g's part
    along F's small eigenvector is tiny while F⁻¹g's is large, so a CG stopped by a residual
    relative to gᵀg returned almost the vanilla direction there. In 2-D CG is exact after two
    iterations: each TRPO step of the preset's path is the natural step of a direct solve, at
    every update where float64 can resolve it (cond(F + cI) < 1e12; past that, two CG iterations
    lose the small eigen-direction to round-off in the large one)."""
    scenario = PRESETS["Kakade's plateau"]
    problem, settings = scenario.build(), scenario.settings()
    path = run_updates(problem, scenario.theta0(), "trpo", settings, scenario.n_updates)
    checked = []
    for k, theta in enumerate(path.thetas[:-1]):
        F = problem.fisher(theta).double() + settings.damping * torch.eye(2, dtype=torch.float64)
        if float(torch.linalg.cond(F)) >= 1e12:
            continue
        g = problem.grad(theta).double()
        x = torch.linalg.solve(F, g)
        exact = math.sqrt(2 * settings.delta / float(x @ F @ x)) * x
        step = lab_step(problem, theta, settings).step.double()
        torch.testing.assert_close(step, exact, rtol=1e-6, atol=1e-12, msg=f"update {k}")
        checked.append(k)
    assert 20 in checked and len(checked) >= 20, checked

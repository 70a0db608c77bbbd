"""The GAE lab's exact solver: Bellman equations, moments against sampling, λ = 0 and λ = 1."""

import numpy as np
import pytest

from core.labs.gae_lab import (
    ERROR_KINDS,
    MDPS,
    Scenario,
    build_problem,
    centre_over_actions,
    critic_error,
    gae_moments,
    gamma_lambda_grid,
    lambda_curve,
    make_mdp,
    pair_table,
    sample_gae,
    scores,
    solve_values,
    td_errors,
    visitation,
)

MDP_NAMES = list(MDPS)


def iterative_q(mdp, gamma: float, iters: int = 5000) -> np.ndarray:
    """Q by repeated Bellman backups Q ← Σ P (r + γ Σ π Q(s′, ·)): independent of the solve."""
    Q = np.zeros((mdp.n_states, mdp.n_actions))
    for _ in range(iters):
        V = (mdp.policy * Q).sum(axis=1)
        Q = np.einsum("sat,sat->sa", mdp.P, mdp.R + gamma * V[None, None, :])
    return Q


@pytest.mark.parametrize("name", MDP_NAMES)
def test_values_satisfy_bellman_equations(name):
    mdp = make_mdp(name)
    gamma = 0.95
    vals = solve_values(mdp, gamma)
    live = ~mdp.terminal
    # V(s) = Σ_a π(a|s) Σ_s′ P(s′|s,a) [r + γ V(s′)] on non-terminal states, 0 on terminals
    backup = np.einsum("sa,sat,sat->s", mdp.policy, mdp.P, mdp.R + gamma * vals.V[None, None, :])
    np.testing.assert_allclose(vals.V[live], backup[live], atol=1e-12)
    np.testing.assert_allclose(vals.V[mdp.terminal], 0.0)
    # Q(s,a) = Σ_s′ P [r + γ Σ_a′ π Q(s′,a′)] and V = Σ_a π Q
    V_from_Q = (mdp.policy * vals.Q).sum(axis=1)
    q_backup = np.einsum("sat,sat->sa", mdp.P, mdp.R + gamma * V_from_Q[None, None, :])
    np.testing.assert_allclose(vals.Q[live], q_backup[live], atol=1e-12)
    np.testing.assert_allclose(V_from_Q[live], vals.V[live], atol=1e-12)
    np.testing.assert_allclose(vals.Q, iterative_q(mdp, gamma), atol=1e-9)


@pytest.mark.parametrize("name", MDP_NAMES)
def test_advantage_has_zero_policy_weighted_mean_per_state(name):
    mdp = make_mdp(name)
    A = solve_values(mdp, 0.99).A
    np.testing.assert_allclose((mdp.policy * A).sum(axis=1), 0.0, atol=1e-12)
    assert np.abs(A[~mdp.terminal]).max() > 0.01  # not trivially zero


@pytest.mark.parametrize("name", MDP_NAMES)
def test_mdp_rows_are_distributions_and_terminals_absorb(name):
    mdp = make_mdp(name)
    np.testing.assert_allclose(mdp.P[~mdp.terminal].sum(axis=2), 1.0)
    np.testing.assert_allclose(mdp.P[mdp.terminal], 0.0)
    np.testing.assert_allclose(mdp.policy.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", MDP_NAMES)
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.8, 1.0])
def test_exact_critic_gives_zero_bias_for_every_lambda(name, lam):
    problem = build_problem(Scenario(mdp=name, error="noise", error_size=0.0, gamma=0.97))
    result = scores(problem, lam)
    assert result["bias2"] < 1e-20
    assert result["bias2_centred"] < 1e-20
    assert result["variance"] > 1e-3


@pytest.mark.parametrize("name", MDP_NAMES)
@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_lambda_one_centred_bias_is_zero_and_raw_bias_is_minus_critic_error(name, kind):
    problem = build_problem(Scenario(mdp=name, error=kind, error_size=0.4, seed=3, gamma=0.95))
    table = pair_table(problem, 1.0)
    np.testing.assert_allclose(table["bias_centred"], 0.0, atol=1e-10)
    np.testing.assert_allclose(table["bias"], -table["critic_error"], atol=1e-10)
    assert np.abs(table["critic_error"]).max() > 0.01
    assert scores(problem, 1.0)["bias2_centred"] < 1e-18
    assert scores(problem, 0.0)["bias2_centred"] > 1e-5  # λ = 0 is biased by the same error


@pytest.mark.parametrize("name", MDP_NAMES)
def test_lambda_zero_is_the_one_step_td_error(name):
    mdp = make_mdp(name)
    gamma = 0.9
    V = solve_values(mdp, gamma).V
    V_hat = V + critic_error(mdp, V, "noise", 0.5, seed=1)
    mean, var = gae_moments(mdp, V_hat, gamma, 0.0)
    for s in np.flatnonzero(~mdp.terminal):
        for a in range(mdp.n_actions):
            deltas, probs = [], []
            for s2 in range(mdp.n_states):
                if mdp.P[s, a, s2] > 0:
                    v_next = 0.0 if mdp.terminal[s2] else V_hat[s2]
                    deltas.append(mdp.R[s, a, s2] + gamma * v_next - V_hat[s])
                    probs.append(mdp.P[s, a, s2])
            deltas, probs = np.array(deltas), np.array(probs)
            td_mean = probs @ deltas
            assert mean[s, a] == pytest.approx(td_mean, abs=1e-12)
            assert var[s, a] == pytest.approx(probs @ (deltas - td_mean) ** 2, abs=1e-12)


@pytest.mark.parametrize("name", MDP_NAMES)
def test_lambda_one_mean_is_monte_carlo_return_minus_critic(name):
    mdp = make_mdp(name)
    gamma = 0.95
    V = solve_values(mdp, gamma).V
    V_hat = V + critic_error(mdp, V, "offset", 0.25)
    mean, _ = gae_moments(mdp, V_hat, gamma, 1.0)
    live = ~mdp.terminal
    # E[G | s, a] = Q(s, a), computed here by value iteration rather than the linear solve
    expected = iterative_q(mdp, gamma) - V_hat[:, None]
    np.testing.assert_allclose(mean[live], expected[live], atol=1e-9)


def test_sampled_lambda_one_estimate_telescopes_to_return_minus_critic():
    mdp = make_mdp("chain")
    gamma = 0.9
    V = solve_values(mdp, gamma).V
    V_hat = V + critic_error(mdp, V, "noise", 0.3, seed=2)
    samples = sample_gae(mdp, V_hat, gamma, 1.0, state=2, action=1, n=500, seed=4)
    np.testing.assert_allclose(samples.advantages, samples.returns - V_hat[2], atol=1e-12)
    assert samples.returns.std() > 0.1


def _check_against_samples(mdp, V_hat, gamma, lam, n=40_000):
    """Exact mean/variance against n samples, within 5 standard errors (for both moments)."""
    mean, var = gae_moments(mdp, V_hat, gamma, lam)
    for s in np.flatnonzero(~mdp.terminal):
        for a in range(mdp.n_actions):
            x = sample_gae(mdp, V_hat, gamma, lam, s, a, n, seed=100 * s + a).advantages
            c = x - x.mean()
            se_mean = x.std(ddof=1) / np.sqrt(n)
            # SE of the sample variance: sqrt((μ₄ − σ⁴) / n)
            se_var = np.sqrt(max(np.mean(c**4) - np.mean(c**2) ** 2, 1e-12) / n)
            assert abs(x.mean() - mean[s, a]) < 5 * se_mean + 1e-9, (s, a, "mean")
            assert abs(x.var(ddof=1) - var[s, a]) < 5 * se_var + 1e-9, (s, a, "variance")


@pytest.mark.parametrize("kind", ERROR_KINDS)
@pytest.mark.parametrize("lam", [0.5, 0.9])
def test_exact_moments_match_monte_carlo_on_chain(kind, lam):
    mdp = make_mdp("chain")
    gamma = 0.95
    V = solve_values(mdp, gamma).V
    V_hat = V + critic_error(mdp, V, kind, 0.4, seed=5)
    _check_against_samples(mdp, V_hat, gamma, lam)


def test_exact_moments_match_monte_carlo_on_grid():
    mdp = make_mdp("grid")
    gamma = 0.97
    V = solve_values(mdp, gamma).V
    V_hat = V + critic_error(mdp, V, "noise", 0.3, seed=7)
    _check_against_samples(mdp, V_hat, gamma, 0.7, n=10_000)


def test_variance_grows_toward_lambda_one_and_bias_shrinks_for_noisy_critic():
    curve = lambda_curve(Scenario(mdp="chain", error="noise", error_size=0.4), [0.0, 0.5, 1.0])
    assert curve["variance"].is_monotonic_increasing
    assert curve["bias2_centred"].is_monotonic_decreasing


def test_batch_size_divides_variance_in_mse():
    one = lambda_curve(Scenario(batch=1), [0.7]).iloc[0]
    many = lambda_curve(Scenario(batch=10), [0.7]).iloc[0]
    assert one["mse"] == pytest.approx(one["bias2"] + one["variance"])
    assert many["mse_centred"] == pytest.approx(many["bias2_centred"] + many["variance"] / 10)


def test_smaller_estimator_gamma_is_biased_against_larger_true_gamma():
    exact = build_problem(Scenario(error_size=0.0, gamma=0.9, gamma_true=0.9))
    short = build_problem(Scenario(error_size=0.0, gamma=0.9, gamma_true=0.99))
    assert scores(exact, 1.0)["bias2"] < 1e-20
    assert scores(short, 1.0)["bias2_centred"] > 1e-4


def test_gamma_lambda_grid_row_at_true_gamma_equals_lambda_curve():
    scenario = Scenario(mdp="grid", error="shrink", error_size=0.3, gamma=0.95)
    lams = [0.0, 0.5, 1.0]
    grid = gamma_lambda_grid(scenario, [0.9, 0.95], lams)
    curve = lambda_curve(scenario, lams)
    np.testing.assert_allclose(grid.loc[0.95].to_numpy(), curve["mse_centred"].to_numpy())
    assert grid.shape == (2, 3)


def test_visitation_is_a_distribution_on_live_pairs():
    mdp = make_mdp("grid")
    d = visitation(mdp, 0.99)
    assert d.sum() == pytest.approx(1.0)
    assert (d[mdp.terminal] == 0).all()
    assert (d[~mdp.terminal] > 0).all()


def test_centring_removes_per_state_shift():
    mdp = make_mdp("chain")
    shift = np.arange(mdp.n_states, dtype=float)[:, None] * np.ones((1, mdp.n_actions))
    np.testing.assert_allclose(centre_over_actions(shift, mdp.policy), 0.0, atol=1e-12)


def test_td_errors_use_zero_value_at_terminals():
    mdp = make_mdp("chain")
    V_hat = np.full(mdp.n_states, 5.0)
    delta = td_errors(mdp, V_hat, 1.0)
    assert delta[1, 0, 0] == pytest.approx(mdp.R[1, 0, 0] - 5.0)
    assert delta[2, 1, 3] == pytest.approx(mdp.R[2, 1, 3])


def _luminance(hex_color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_best_lambda_path_has_a_visible_legend_swatch_on_the_white_legend():
    from ui.gae_figures import gamma_lambda_heatmap

    gammas = np.round(np.linspace(0.8, 1.0, 5), 3)
    grid = gamma_lambda_grid(Scenario(), gammas, np.round(np.linspace(0, 1, 11), 3), "mse_centred")
    fig = gamma_lambda_heatmap(grid, gamma=0.99, lam=0.95, gamma_true=0.99)
    (path,) = [t for t in fig.data if t.name == "best λ for each γ"]
    assert path.showlegend is not False
    white = _luminance("#ffffff")
    for color in (path.line.color, path.marker.line.color):  # the swatch: line and dot rim
        assert (white + 0.05) / (_luminance(color) + 0.05) >= 7  # WCAG AAA against white

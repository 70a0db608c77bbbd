"""Exact bias and variance of GAE on small MDPs that can be solved by linear algebra.

Setting (Schulman et al. 2016). A finite MDP with transition probabilities P(s′|s, a), rewards
r(s, a, s′), terminal states and a fixed policy π(a|s). The exact values under π are

    V = (I − γ P^π)⁻¹ r^π,   Q(s, a) = Σ_{s′} P(s′|s, a) [r(s, a, s′) + γ V(s′)],   A = Q − V,

with P^π(s, s′) = Σ_a π(a|s) P(s′|s, a), r^π(s) = Σ_a π(a|s) Σ_{s′} P(s′|s, a) r(s, a, s′), and
V = 0 on terminal states (they have no outgoing transitions here).

An imperfect critic V̂ = V + e (e = 0 on terminals) feeds the estimator, started at (s₀, a₀) and
run until termination (no truncation):

    δ_t = r_t + γ V̂(s_{t+1}) − V̂(s_t),   Â(s₀, a₀) = Σ_{k≥0} κ^k δ_k,   κ = γλ,

so Â_t = δ_t + κ Â_{t+1}. Write T((s, a), (s′, a′)) = P(s′|s, a) π(a′|s′) for the state-action
transition matrix and δ(s, a, s′) = r(s, a, s′) + γ V̂(s′) − V̂(s). Conditioning on the first
transition (δ_t is fixed once s_{t+1} is known; Â_{t+1} depends on the past only through s_{t+1}):

    first moment   m₁ = b₁ + κ T m₁,    b₁(s, a) = Σ_{s′} P(s′|s, a) δ(s, a, s′)
    second moment  m₂ = b₂ + κ² T m₂,   b₂(s, a) = Σ_{s′} P(s′|s, a) [δ(s, a, s′)²
                                                         + 2κ δ(s, a, s′) μ(s′)],
    μ(s′) = Σ_{a′} π(a′|s′) m₁(s′, a′)  (the mean of Â_{t+1} given s_{t+1} = s′),

from E[(δ_t + κÂ_{t+1})²] = E[δ_t²] + 2κ E[δ_t Â_{t+1}] + κ² E[Â_{t+1}²]. Hence
m₁ = (I − κT)⁻¹ b₁, m₂ = (I − κ²T)⁻¹ b₂ and Var[Â] = m₂ − m₁².

λ = 0 gives the one-step TD error δ₀: low variance, but biased by the critic's error e. λ = 1
telescopes to the Monte-Carlo return minus V̂(s₀): E[Â] = Q − V − e(s) = A − e(s), a per-state
shift that does not bias the policy gradient (E_a[∇log π(a|s)] = 0), but with high variance.
The scores are weighted by the policy's normalised discounted state-action visitation
d(s, a) ∝ Σ_t γ^t Pr(s_t = s) π(a|s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ERROR_KINDS = ("noise", "shrink", "offset")
ERROR_HELP = {
    "noise": "e(s) ~ N(0, size²), i.i.d. per state (seeded)",
    "shrink": "V̂ = (1 − size)·V: the critic shrinks values toward zero",
    "offset": "V̂ = V + size: the same constant error in every state",
}


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with a fixed policy.

    ``P[s, a, s′]`` are transition probabilities (all-zero rows for terminal states),
    ``R[s, a, s′]`` rewards, ``policy[s, a]`` = π(a|s), ``start[s]`` the start distribution.
    """

    name: str
    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    policy: np.ndarray
    start: np.ndarray
    state_labels: tuple[str, ...]
    action_labels: tuple[str, ...]

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def policy_transitions(self) -> np.ndarray:
        """P^π(s, s′) = Σ_a π(a|s) P(s′|s, a)."""
        return np.einsum("sa,sat->st", self.policy, self.P)

    @property
    def pair_transitions(self) -> np.ndarray:
        """T((s, a), (s′, a′)) = P(s′|s, a) π(a′|s′), shape (S·A, S·A)."""
        T = np.einsum("sat,tb->satb", self.P, self.policy)
        n = self.n_states * self.n_actions
        return T.reshape(n, n)


# ---------------------------------------------------------------------------------------------
# The MDPs
# ---------------------------------------------------------------------------------------------


def slippery_chain(
    n_states: int = 7, slip: float = 0.2, p_right: float = 0.6, step_reward: float = -0.05
) -> TabularMDP:
    """States 0 … n−1 in a row; 0 and n−1 are terminal. Start in the middle.

    Actions ← and →: the intended move happens with probability 1 − slip, the opposite move
    otherwise. Entering the right end pays +1, the left end −1, every other step ``step_reward``.
    The policy goes right with probability ``p_right``.
    """
    S, A = n_states, 2
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    for s in range(1, S - 1):
        for a, move in enumerate((-1, +1)):
            P[s, a, s + move] += 1 - slip
            P[s, a, s - move] += slip
            R[s, a, :] = step_reward
            R[s, a, 0] = -1.0
            R[s, a, S - 1] = 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[[0, S - 1]] = True
    policy = np.tile([1 - p_right, p_right], (S, 1))
    start = np.zeros(S)
    start[S // 2] = 1.0
    labels = tuple(f"s{s}" for s in range(S))
    return TabularMDP("chain", P, R, terminal, policy, start, labels, ("←", "→"))


GRID_MOVES = {"↑": (-1, 0), "→": (0, 1), "↓": (1, 0), "←": (0, -1)}


def slippery_grid(
    size: int = 4,
    slip: float = 0.2,
    goal: tuple[int, int] = (3, 3),
    pit: tuple[int, int] = (1, 2),
    step_reward: float = -0.04,
) -> TabularMDP:
    """A ``size × size`` gridworld from the top-left corner to a goal (+1) past a pit (−1).

    The intended move happens with probability 1 − slip, each perpendicular move with slip/2;
    moving into a wall stays put. Every step costs ``step_reward``. The fixed policy leans toward
    the goal: π(→) = π(↓) = 0.35, π(↑) = π(←) = 0.15.
    """
    S = size * size
    names = tuple(GRID_MOVES)
    P = np.zeros((S, 4, S))
    R = np.zeros((S, 4, S))
    terminal = np.zeros(S, dtype=bool)
    terminal[[goal[0] * size + goal[1], pit[0] * size + pit[1]]] = True

    def move(cell: int, name: str) -> int:
        r, c = divmod(cell, size)
        dr, dc = GRID_MOVES[name]
        nr, nc = r + dr, c + dc
        return nr * size + nc if 0 <= nr < size and 0 <= nc < size else cell

    for s in np.flatnonzero(~terminal):
        for a, name in enumerate(names):
            perpendicular = (
                [n for n in names if GRID_MOVES[n][0] == 0] if name in "↑↓" else ["↑", "↓"]
            )
            P[s, a, move(s, name)] += 1 - slip
            for other in perpendicular:
                P[s, a, move(s, other)] += slip / 2
            R[s, a, :] = step_reward
            R[s, a, goal[0] * size + goal[1]] = 1.0
            R[s, a, pit[0] * size + pit[1]] = -1.0
    policy = np.tile([0.15, 0.35, 0.35, 0.15], (S, 1))
    start = np.zeros(S)
    start[0] = 1.0
    labels = tuple(f"({r},{c})" for r in range(size) for c in range(size))
    return TabularMDP("grid", P, R, terminal, policy, start, labels, names)


MDPS = {"chain": slippery_chain, "grid": slippery_grid}
MDP_HELP = {
    "chain": "7-state slippery chain: terminals at both ends (−1 left, +1 right), start in the "
    "middle, π(→) = 0.6, 20% of moves go the other way",
    "grid": "4×4 slippery gridworld: goal +1 (bottom right), pit −1, −0.04 per step, "
    "20% of moves slip sideways, π leans toward the goal",
}


def make_mdp(name: str) -> TabularMDP:
    """One of the lab's MDPs by name (``chain`` or ``grid``)."""
    if name not in MDPS:
        raise ValueError(f"unknown MDP {name!r}; allowed: {', '.join(MDPS)}")
    return MDPS[name]()


# ---------------------------------------------------------------------------------------------
# Exact values, critic, visitation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Values:
    """Exact V (S,), Q (S, A) and A = Q − V under π for one discount γ."""

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray


def solve_values(mdp: TabularMDP, gamma: float) -> Values:
    """V = (I − γP^π)⁻¹ r^π, Q = Σ_{s′} P (r + γV(s′)), A = Q − V (zero on terminals)."""
    r_pi = np.einsum("sa,sat,sat->s", mdp.policy, mdp.P, mdp.R)
    V = np.linalg.solve(np.eye(mdp.n_states) - gamma * mdp.policy_transitions, r_pi)
    Q = np.einsum("sat,sat->sa", mdp.P, mdp.R + gamma * V[None, None, :])
    return Values(V, Q, Q - V[:, None])


def critic_error(
    mdp: TabularMDP, V: np.ndarray, kind: str, size: float, seed: int = 0
) -> np.ndarray:
    """The critic's error e(s) = V̂(s) − V(s); zero on terminal states.

    ``noise``: e ~ N(0, size²) i.i.d. per state; ``shrink``: e = −size·V; ``offset``: e = size.
    """
    if kind == "noise":
        e = size * np.random.default_rng(seed).standard_normal(mdp.n_states)
    elif kind == "shrink":
        e = -size * V
    elif kind == "offset":
        e = np.full(mdp.n_states, float(size))
    else:
        raise ValueError(f"unknown critic error {kind!r}; allowed: {', '.join(ERROR_KINDS)}")
    return np.where(mdp.terminal, 0.0, e)


def visitation(mdp: TabularMDP, gamma: float) -> np.ndarray:
    """Normalised discounted state-action visitation d(s, a) ∝ Σ_t γ^t Pr(s_t = s) π(a|s).

    d_S = (I − γP^π)⁻ᵀ ρ₀; zero on terminal states; sums to 1.
    """
    eye = np.eye(mdp.n_states)
    d_s = np.linalg.solve((eye - gamma * mdp.policy_transitions).T, mdp.start)
    d = np.where(mdp.terminal[:, None], 0.0, d_s[:, None] * mdp.policy)
    return d / d.sum()


# ---------------------------------------------------------------------------------------------
# The exact moments of the GAE estimator
# ---------------------------------------------------------------------------------------------


def td_errors(mdp: TabularMDP, V_hat: np.ndarray, gamma: float) -> np.ndarray:
    """δ(s, a, s′) = r(s, a, s′) + γV̂(s′) − V̂(s), with V̂(terminal) = 0."""
    V_hat = np.where(mdp.terminal, 0.0, V_hat)
    return mdp.R + gamma * V_hat[None, None, :] - V_hat[:, None, None]


def gae_moments(
    mdp: TabularMDP, V_hat: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[Â] and Var[Â] per (s, a), each of shape (S, A) (see the module docstring).

    m₁ = (I − κT)⁻¹ b₁ and m₂ = (I − κ²T)⁻¹ b₂ with κ = γλ,
    b₁ = Σ_{s′} P δ, b₂ = Σ_{s′} P (δ² + 2κ δ μ(s′)), μ(s′) = Σ_{a′} π(a′|s′) m₁(s′, a′).
    """
    S, A = mdp.n_states, mdp.n_actions
    kappa = gamma * lam
    delta = td_errors(mdp, V_hat, gamma)
    T = mdp.pair_transitions
    eye = np.eye(S * A)
    b1 = np.einsum("sat,sat->sa", mdp.P, delta).ravel()
    m1 = np.linalg.solve(eye - kappa * T, b1).reshape(S, A)
    mu = (mdp.policy * m1).sum(axis=1)
    b2 = np.einsum("sat,sat->sa", mdp.P, delta**2 + 2 * kappa * delta * mu[None, None, :])
    m2 = np.linalg.solve(eye - kappa**2 * T, b2.ravel()).reshape(S, A)
    return m1, np.maximum(m2 - m1**2, 0.0)


# ---------------------------------------------------------------------------------------------
# Scenarios and scores
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One lab setting.

    The estimator uses discount ``gamma`` and the critic V̂ = V_γ + e; it is scored against the
    true advantage A under ``gamma_true`` (None: the same γ), weighted by the visitation under
    ``gamma_true``. ``batch`` is the number N of independent samples averaged per (s, a).
    """

    mdp: str = "chain"
    error: str = "noise"
    error_size: float = 0.3
    seed: int = 0
    gamma: float = 0.99
    gamma_true: float | None = None
    batch: int = 16

    @property
    def target_gamma(self) -> float:
        return self.gamma if self.gamma_true is None else self.gamma_true


@dataclass(frozen=True)
class Problem:
    """Everything fixed across λ: the MDP, the critic V̂, the target A and the weights d."""

    mdp: TabularMDP
    gamma: float
    V_hat: np.ndarray
    error: np.ndarray
    target: Values
    weights: np.ndarray
    batch: int

    @property
    def pairs(self) -> np.ndarray:
        """Boolean (S, A) mask of the scored pairs (non-terminal states)."""
        return np.broadcast_to(~self.mdp.terminal[:, None], self.weights.shape)


def build_problem(scenario: Scenario, gamma: float | None = None) -> Problem:
    """The critic for the estimator's γ (``gamma`` overrides the scenario's) and the target."""
    mdp = make_mdp(scenario.mdp)
    gamma = scenario.gamma if gamma is None else gamma
    V = solve_values(mdp, gamma).V
    e = critic_error(mdp, V, scenario.error, scenario.error_size, scenario.seed)
    target_gamma = scenario.target_gamma
    return Problem(
        mdp=mdp,
        gamma=gamma,
        V_hat=V + e,
        error=e,
        target=solve_values(mdp, target_gamma),
        weights=visitation(mdp, target_gamma),
        batch=scenario.batch,
    )


def centre_over_actions(x: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """x(s, a) − Σ_{a′} π(a′|s) x(s, a′): removes any per-state shift (a baseline)."""
    return x - (policy * x).sum(axis=1, keepdims=True)


def pair_table(problem: Problem, lam: float) -> pd.DataFrame:
    """Per scored (s, a): true A, E[Â], sd[Â], raw bias, centred bias, visitation weight."""
    mdp = problem.mdp
    m1, var = gae_moments(mdp, problem.V_hat, problem.gamma, lam)
    bias = m1 - problem.target.A
    centred = centre_over_actions(bias, mdp.policy)
    s_idx, a_idx = np.nonzero(problem.pairs)
    return pd.DataFrame(
        {
            "state": [mdp.state_labels[s] for s in s_idx],
            "action": [mdp.action_labels[a] for a in a_idx],
            "pair": [f"{mdp.state_labels[s]} {mdp.action_labels[a]}" for s, a in zip(s_idx, a_idx)],
            "A_true": problem.target.A[s_idx, a_idx],
            "mean": m1[s_idx, a_idx],
            "sd": np.sqrt(var[s_idx, a_idx]),
            "bias": bias[s_idx, a_idx],
            "bias_centred": centred[s_idx, a_idx],
            "critic_error": problem.error[s_idx],
            "weight": problem.weights[s_idx, a_idx],
        }
    )


def scores(problem: Problem, lam: float) -> dict[str, float]:
    """Visitation-weighted bias², centred bias², variance and MSE for a batch of N at one λ.

    bias² = Σ d (E[Â] − A)²; centred bias² uses the bias centred over actions under π;
    MSE = bias² + Var/N (raw) and ``mse_centred`` = centred bias² + Var/N.
    """
    mdp, d = problem.mdp, problem.weights
    m1, var = gae_moments(mdp, problem.V_hat, problem.gamma, lam)
    bias = m1 - problem.target.A
    centred = centre_over_actions(bias, mdp.policy)
    bias2 = float((d * bias**2).sum())
    bias2_c = float((d * centred**2).sum())
    variance = float((d * var).sum())
    n = problem.batch
    return {
        "lam": float(lam),
        "bias2": bias2,
        "bias2_centred": bias2_c,
        "variance": variance,
        "variance_n": variance / n,
        "mse": bias2 + variance / n,
        "mse_centred": bias2_c + variance / n,
    }


def lambda_curve(scenario: Scenario, lams: np.ndarray | list[float]) -> pd.DataFrame:
    """``scores`` for every λ in ``lams`` (one row each)."""
    problem = build_problem(scenario)
    return pd.DataFrame([scores(problem, lam) for lam in lams])


def best_lambda(curve: pd.DataFrame, column: str = "mse_centred") -> float:
    """The λ with the smallest ``column`` (the first one on ties)."""
    return float(curve["lam"].iloc[int(np.argmin(curve[column].to_numpy()))])


def gamma_lambda_grid(
    scenario: Scenario,
    gammas: np.ndarray | list[float],
    lams: np.ndarray | list[float],
    column: str = "mse_centred",
) -> pd.DataFrame:
    """``column`` for every (γ_est, λ): the estimator's γ varies, the target keeps γ_true.

    Returns a frame indexed by γ with one column per λ. The target γ is the scenario's
    ``target_gamma`` (so rows with γ ≠ γ_true carry γ's own bias).
    """
    if scenario.gamma_true is None:
        scenario = Scenario(**{**scenario.__dict__, "gamma_true": scenario.gamma})
    rows = {}
    for gamma in gammas:
        problem = build_problem(scenario, gamma=float(gamma))
        rows[float(gamma)] = [scores(problem, lam)[column] for lam in lams]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[float(x) for x in lams])


# ---------------------------------------------------------------------------------------------
# Monte-Carlo sampler of the same estimator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GAESamples:
    """n independent draws from (s₀, a₀): the GAE estimate Â and the discounted return G."""

    advantages: np.ndarray
    returns: np.ndarray


def sample_gae(
    mdp: TabularMDP,
    V_hat: np.ndarray,
    gamma: float,
    lam: float,
    state: int,
    action: int,
    n: int,
    seed: int = 0,
    max_steps: int = 100_000,
) -> GAESamples:
    """Simulate n episodes from (s₀, a₀) under π and accumulate Â = Σ_k (γλ)^k δ_k until each
    terminates; also G = Σ_k γ^k r_k. Vectorised over the n episodes."""
    rng = np.random.default_rng(seed)
    V_hat = np.where(mdp.terminal, 0.0, V_hat)
    cum_P = np.cumsum(mdp.P, axis=2)
    cum_pi = np.cumsum(mdp.policy, axis=1)
    idx = np.arange(n)  # the episodes still running
    s, a = np.full(n, state), np.full(n, action)
    adv, ret = np.zeros(n), np.zeros(n)
    kappa_k, gamma_k = 1.0, 1.0
    for _ in range(max_steps):
        u = rng.random(idx.size)[:, None]
        s_next = np.minimum((cum_P[s, a] < u).sum(axis=1), mdp.n_states - 1)
        r = mdp.R[s, a, s_next]
        adv[idx] += kappa_k * (r + gamma * V_hat[s_next] - V_hat[s])
        ret[idx] += gamma_k * r
        alive = ~mdp.terminal[s_next]
        if not alive.any():
            break
        idx, s = idx[alive], s_next[alive]
        kappa_k *= gamma * lam
        gamma_k *= gamma
        u = rng.random(idx.size)[:, None]
        a = np.minimum((cum_pi[s] < u).sum(axis=1), mdp.n_actions - 1)
    else:
        raise RuntimeError(f"some episodes did not terminate within {max_steps} steps")
    return GAESamples(adv, ret)

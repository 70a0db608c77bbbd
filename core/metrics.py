"""The metric catalogue: every number a trainer reports per update, described once.

A trainer's ``update()`` returns a flat ``{name: float}`` (``core/engine/trainer.py``); the store
keeps one column per name, and the charts and the exports read them back by name. Each
:class:`Metric` here gives a name its human label, its unit, a short description and the algorithms
that report it: on every update (``algos``), or only under a condition (``when``: algorithm → the
condition, e.g. DQN's ``per_beta`` with prioritized replay). :data:`KL_BOUNDS` names, per
algorithm, the hyperparameter its KL per update is held to (the reference line of the KL chart).

The app (``ui/``, ``pages/``) and the exports refer to a metric through its constant
(``KL_MEAN.name``), not a bare string, so a name they read is a name in the catalogue. The trainers
write their names as dict keys; ``tests/test_metrics.py`` runs one update of every algorithm and
checks that what it reports is exactly what the catalogue lists for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.config import ALGORITHMS

ALL = frozenset(ALGORITHMS)
ON_POLICY = frozenset({"trpo", "npg", "ppo", "ppo-kl", "a2c"})
TRUST_REGION = frozenset({"trpo", "npg"})
PPO = frozenset({"ppo", "ppo-kl"})
POLICY_GRADIENT = PPO | {"a2c"}  # a policy loss minimised by gradient steps
DQN = frozenset({"dqn"})
EVALUATION_DUE = "an evaluation is due (every eval_every env steps)"


@dataclass(frozen=True)
class Metric:
    """One reported number: its name (the dict key and store column) and what it means."""

    name: str
    label: str  # as a chart's title or a table's header shows it; unique in the catalogue
    unit: str  # "" for counts, ratios and values in the environment's reward scale
    description: str
    algos: frozenset[str] = frozenset()  # algorithms that report it on every update
    when: Mapping[str, str] = field(default_factory=dict, hash=False)  # algorithm → condition

    @property
    def axis_title(self) -> str:
        """The label as an axis title: lower case (acronyms kept), the unit in brackets."""
        text = self.label if self.label[:2].isupper() else self.label[0].lower() + self.label[1:]
        return f"{text} ({self.unit})" if self.unit else text


@dataclass(frozen=True)
class KLBound:
    """The hyperparameter an algorithm holds its KL per update to: drawn as a step line on the KL
    chart (it may change while the run trains), under the legend name ``label``."""

    key: str  # a RunConfig field of the algorithm
    label: str


# -- counters and returns: every trainer, added by the Bookkeeper (core/engine/trainer.py) -------

UPDATE = Metric("update", "Update", "", "Updates finished so far, counted from 1.", ALL)
ENV_STEPS = Metric(
    "env_steps", "Env steps", "", "Environment steps collected so far, over all sub-envs.", ALL
)
WALL_TIME = Metric(
    "wall_time", "Wall time", "s", "Seconds spent training so far, pauses left out.", ALL
)
FPS = Metric("fps", "Env steps / s", "steps/s", "Env steps per second during this update.", ALL)
EPISODE_RETURN_MEAN = Metric(
    "episode_return_mean",
    "Episode return (mean of last 20)",
    "",
    "Mean return of the last 20 finished training episodes; NaN until one ends.",
    ALL,
)
EPISODE_LENGTH_MEAN = Metric(
    "episode_length_mean",
    "Episode length (mean of last 20)",
    "steps",
    "Mean length of the last 20 finished training episodes; NaN until one ends.",
    ALL,
)
EVAL_RETURN_MEAN = Metric(
    "eval_return_mean",
    "Evaluation return",
    "",
    "Mean return of eval_episodes greedy (or mean-action) episodes on a separate env.",
    when=dict.fromkeys(ALGORITHMS, EVALUATION_DUE),
)

# -- the policy's change in one update: on-policy trainers --------------------------------------

KL_MEAN = Metric(
    "kl_mean",
    "Exact mean KL(π_old‖π_new)",
    "nats",
    "Mean over the batch's states of the closed-form KL between the old and the new policy.",
    ON_POLICY,
)
KL_MAX = Metric("kl_max", "Max KL", "nats", "Largest KL(π_old‖π_new) over the batch.", ON_POLICY)
KL_QUADRATIC = Metric(
    "kl_quadratic",
    "Quadratic estimate ½ sᵀFs",
    "nats",
    "The Fisher model of the KL of the step taken; equals δ for the full step without damping.",
    TRUST_REGION,
)
APPROX_KL = Metric(
    "approx_kl",
    "Approx. KL (k3)",
    "nats",
    "Sample estimate mean((r − 1) − log r) of the KL, r = π_new/π_old.",
    POLICY_GRADIENT,
)
ENTROPY = Metric(
    "entropy", "Entropy", "nats", "Mean entropy of the new policy on the batch.", ON_POLICY
)
POLICY_LOSS = Metric(
    "policy_loss",
    "Policy loss",
    "",
    "Minus the objective the policy's gradient steps maximised, mean over all of them.",
    POLICY_GRADIENT,
)
VALUE_LOSS = Metric(
    "value_loss",
    "Value loss",
    "",
    "Mean squared error of the critic against the GAE returns during its training.",
    ON_POLICY,
)
EXPLAINED_VARIANCE = Metric(
    "explained_variance",
    "Explained variance",
    "",
    "1 − Var(R − V)/Var(R) of the critic's values before the update; NaN when R is constant.",
    ON_POLICY,
)

# -- TRPO and NPG: the natural-gradient step and the line search -------------------------------

CG_ITERS = Metric(
    "cg_iters", "CG iterations", "", "Conjugate-gradient iterations run.", TRUST_REGION
)
CG_RESIDUAL = Metric(
    "cg_residual",
    "CG residual rᵀr",
    "",
    "Squared norm of the last conjugate-gradient residual.",
    TRUST_REGION,
)
STEP_NORM = Metric(
    "step_norm",
    "Step norm ‖s‖",
    "",
    "Norm of the parameter step taken (0 if rejected).",
    TRUST_REGION,
)
LS_ACCEPTED = Metric(
    "ls_accepted",
    "Line search accepted",
    "",
    "1 if a trial step was accepted, 0 if the update kept θ_old (NPG: always 1).",
    TRUST_REGION,
)
LS_BACKTRACKS = Metric(
    "ls_backtracks",
    "Backtracks",
    "",
    "Backtracking steps before the accepted (or the last) trial.",
    TRUST_REGION,
)
LS_STEP_FRAC = Metric(
    "ls_step_frac",
    "Accepted step fraction αⁱ",
    "",
    "Fraction of the full step taken (0 if every trial was rejected).",
    TRUST_REGION,
)
SURROGATE_PREDICTED = Metric(
    "surrogate_predicted",
    "Predicted surrogate improvement gᵀs",
    "",
    "Linear model of the surrogate's improvement for the trial step.",
    TRUST_REGION,
)
SURROGATE_ACTUAL = Metric(
    "surrogate_actual",
    "Actual surrogate improvement ΔL",
    "",
    "L(θ_new) − L(θ_old) of the trial step on the batch.",
    TRUST_REGION,
)

# -- PPO and A2C: gradient steps on a learning rate --------------------------------------------

LR = Metric(
    "lr",
    "Learning rate",
    "",
    "Learning rate of this update (after any decay).",
    POLICY_GRADIENT | DQN,
)
CLIP_EPS = Metric("clip_eps", "Clip range ε", "", "Clip ε of this update (after any decay).", PPO)
CLIP_FRAC = Metric(
    "clip_frac",
    "Clip fraction",
    "",
    "Share of samples with |r − 1| > ε over all gradient steps.",
    PPO,
)
EPOCHS_RUN = Metric(
    "epochs_run",
    "Epochs run",
    "",
    "Gradient steps / minibatches per epoch; fewer than epochs after an early stop.",
    PPO,
)
KL_BETA = Metric(
    "kl_beta",
    "KL penalty β",
    "",
    "The β of this update's KL penalty, adapted towards d_targ after it.",
    frozenset({"ppo-kl"}),
    {"ppo": "penalty is 'kl'"},
)

# -- DQN ----------------------------------------------------------------------------------------

TD_LOSS = Metric("td_loss", "TD loss", "", "Mean TD loss (Huber or squared) of the update.", DQN)
Q_MEAN = Metric("q_mean", "Mean Q", "", "Mean Q(s, a) over the sampled minibatches.", DQN)
Q_MAX = Metric("q_max", "Max Q", "", "Largest Q(s, a) over the sampled minibatches.", DQN)
EPSILON = Metric("epsilon", "Exploration ε", "", "Probability of a random action now.", DQN)
BUFFER_SIZE = Metric(
    "buffer_size", "Replay buffer size", "", "Transitions in the replay buffer.", DQN
)
GRADIENT_STEPS = Metric(
    "gradient_steps", "Gradient steps", "", "Gradient steps taken so far (all updates).", DQN
)
TARGET_UPDATES = Metric(
    "target_updates", "Target updates", "", "Target-network syncs so far (all updates).", DQN
)
PER_BETA = Metric(
    "per_beta",
    "PER β",
    "",
    "Importance-sampling exponent β of prioritized replay, annealed from per_beta0 to 1.",
    when={"dqn": "prioritized replay is on"},
)
PER_WEIGHT_MEAN = Metric(
    "per_weight_mean",
    "Mean importance weight",
    "",
    "Mean importance-sampling weight of the sampled transitions.",
    when={"dqn": "prioritized replay is on"},
)

CATALOGUE: Mapping[str, Metric] = MappingProxyType(
    {
        m.name: m
        for m in (
            UPDATE,
            ENV_STEPS,
            WALL_TIME,
            FPS,
            EPISODE_RETURN_MEAN,
            EPISODE_LENGTH_MEAN,
            EVAL_RETURN_MEAN,
            KL_MEAN,
            KL_MAX,
            KL_QUADRATIC,
            APPROX_KL,
            ENTROPY,
            POLICY_LOSS,
            VALUE_LOSS,
            EXPLAINED_VARIANCE,
            CG_ITERS,
            CG_RESIDUAL,
            STEP_NORM,
            LS_ACCEPTED,
            LS_BACKTRACKS,
            LS_STEP_FRAC,
            SURROGATE_PREDICTED,
            SURROGATE_ACTUAL,
            LR,
            CLIP_EPS,
            CLIP_FRAC,
            EPOCHS_RUN,
            KL_BETA,
            TD_LOSS,
            Q_MEAN,
            Q_MAX,
            EPSILON,
            BUFFER_SIZE,
            GRADIENT_STEPS,
            TARGET_UPDATES,
            PER_BETA,
            PER_WEIGHT_MEAN,
        )
    }
)
"""Every metric, by name, in the order above (counters, returns, KL, losses, per family)."""

KL_BOUNDS: Mapping[str, KLBound] = MappingProxyType(
    {
        "trpo": KLBound("delta", "δ"),
        "npg": KLBound("delta", "δ"),
        "ppo-kl": KLBound("kl_target", "d_targ"),
        "ppo": KLBound("target_kl", "early-stop KL"),
    }
)
"""The KL bound of each algorithm that has one: TRPO/NPG's δ, the adaptive-KL target d_targ, and
clipped PPO's optional early-stop KL (A2C and DQN have none)."""


def label(name: str) -> str:
    """The metric's label; a name the catalogue lacks (a run from an older version) as it is."""
    metric = CATALOGUE.get(name)
    return metric.label if metric else name


def reported_by(algo: str, *, conditional: bool = True) -> frozenset[str]:
    """The names ``algo`` reports: on every update, and with ``conditional`` the ones it reports
    only under a condition (:attr:`Metric.when`) too."""
    return frozenset(
        m.name for m in CATALOGUE.values() if algo in m.algos or (conditional and algo in m.when)
    )


def unknown(algo: str, names: Iterable[str]) -> list[str]:
    """The ``names`` the catalogue does not list for ``algo`` (sorted; empty when all are)."""
    known = reported_by(algo)
    return sorted(set(names) - known)


def kl_bound(algo: str) -> KLBound | None:
    """The hyperparameter ``algo`` holds its KL per update to, or None (A2C, DQN)."""
    return KL_BOUNDS.get(algo)

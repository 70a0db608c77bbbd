"""The algorithms and their own hyperparameters: one dataclass per algorithm.

Each field is a :func:`~core.config.specs.param` with its label and allowed range. A run holds
one of these in ``RunConfig.params``; :data:`ALGO_PARAMS` says which class belongs to which
algorithm and :data:`UNUSED_FIELDS` which shared fields an algorithm ignores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.config.specs import ConfigError, param

ALGORITHMS = ("trpo", "npg", "ppo", "ppo-kl", "a2c", "dqn")


@dataclass
class TRPOConfig:
    """TRPO / NPG (Schulman et al. 2015, App. C). NPG is the same step without the line search."""

    delta: float = param(
        0.01,
        "KL bound δ",
        low=0,
        low_open=True,
        high=1.0,
        live=True,
        log=True,
        help="Trust-region radius: mean KL(π_old‖π_new) allowed per update.",
    )
    damping: float = param(
        0.1,
        "CG damping c",
        low=0,
        high=10.0,
        live=True,
        log=True,
        help="Added to the Fisher matrix: (F + cI)x = g.",
    )
    cg_iters: int = param(10, "CG iterations", low=1, high=100, live=True)
    cg_tol: float = param(1e-10, "CG tolerance on rᵀr", low=0, low_open=True, high=1.0, log=True)
    backtrack_coef: float = param(
        0.8,
        "Backtrack coefficient α",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        live=True,
        help="Trial steps are αʲ·s.",
    )
    max_backtracks: int = param(10, "Max backtracks", low=1, high=50, live=True)
    fvp_subsample: float = param(
        1.0,
        "FVP subsample fraction",
        low=0,
        low_open=True,
        high=1.0,
        help="Fraction of the batch used for Fisher-vector products.",
    )
    critic_lr: float = param(
        1e-3, "Critic learning rate", low=0, low_open=True, high=1.0, live=True, log=True
    )
    critic_iters: int = param(20, "Critic epochs per update", low=1, high=200, live=True)
    critic_minibatch: int = param(128, "Critic minibatch size", low=1, high=1_000_000)


@dataclass
class PPOConfig:
    """PPO (Schulman et al. 2017): clipped objective, or adaptive-KL penalty (``penalty='kl'``)."""

    penalty: str = param(
        "clip",
        "Objective",
        choices=("clip", "kl"),
        help="clip: min(r·Â, clip(r)·Â); kl: r·Â − β·KL with adaptive β.",
    )
    clip_eps: float = param(0.2, "Clip ε", low=0, low_open=True, high=1.0, live=True)
    kl_target: float = param(
        0.01, "KL target d_targ", low=0, low_open=True, high=1.0, live=True, log=True
    )
    kl_beta0: float = param(1.0, "Initial β", low=0, low_open=True, high=1e3, log=True)
    epochs: int = param(10, "Epochs per update", low=1, high=100, live=True)
    minibatch_size: int = param(64, "Minibatch size", low=1, high=1_000_000)
    target_kl: float | None = param(
        None,
        "Early-stop KL",
        low=0,
        low_open=True,
        high=1.0,
        optional=True,
        live=True,
        help="Stop the epochs when approx_kl exceeds this (off: None).",
    )
    vf_coef: float = param(0.5, "Value loss coefficient", low=0, high=10.0, live=True)
    ent_coef: float = param(0.0, "Entropy coefficient", low=0, high=1.0, live=True)
    max_grad_norm: float = param(
        0.5, "Gradient clip norm", low=0, low_open=True, high=100.0, live=True
    )
    anneal_lr: bool = param(False, "Decay lr linearly to 0")
    anneal_clip: bool = param(False, "Decay clip ε linearly to 0")
    log_std_init: float = param(
        0.0, "Initial log σ", low=-5.0, high=2.0, help="Gaussian policies (continuous actions)."
    )


@dataclass
class A2CConfig:
    """Synchronous advantage actor-critic with GAE (Mnih et al. 2016)."""

    vf_coef: float = param(0.5, "Value loss coefficient", low=0, high=10.0, live=True)
    ent_coef: float = param(0.0, "Entropy coefficient", low=0, high=1.0, live=True)
    max_grad_norm: float = param(
        0.5, "Gradient clip norm", low=0, low_open=True, high=100.0, live=True
    )
    optimizer: str = param(
        "rmsprop",
        "Optimizer",
        choices=("rmsprop", "adam"),
        help="rmsprop: α 0.99, ε 1e-5 (as SB3's A2C); adam: ε 1e-5.",
    )
    anneal_lr: bool = param(False, "Decay lr linearly to 0")
    log_std_init: float = param(
        0.0, "Initial log σ", low=-5.0, high=2.0, help="Gaussian policies (continuous actions)."
    )


@dataclass
class DQNConfig:
    """DQN (Mnih et al. 2015) with optional Double, Dueling and prioritized replay.

    ``target_update_interval`` counts **env steps** (SB3 semantics), not gradient steps.
    """

    double: bool = param(False, "Double DQN")
    dueling: bool = param(False, "Dueling head")
    prioritized: bool = param(False, "Prioritized replay")
    buffer_size: int = param(100_000, "Replay buffer size", low=1, high=10_000_000)
    batch_size: int = param(64, "Batch size", low=1, high=65_536)
    learning_starts: int = param(1000, "Learning starts (env steps)", low=0, high=10_000_000)
    train_freq: int = param(
        4,
        "Train every (env steps)",
        low=1,
        high=100_000,
        help="Env steps between training rounds (summed over the parallel envs).",
    )
    gradient_steps: int = param(1, "Gradient steps per train", low=1, high=100_000)
    target_update_interval: int = param(
        1000,
        "Target update every (env steps)",
        low=1,
        high=10_000_000,
        live=True,
        help="Counts env steps, not gradient steps (SB3 semantics): with train_freq 256 and "
        "interval 10, θ⁻ is refreshed once before each block of gradient steps.",
    )
    tau: float = param(
        1.0,
        "Target update τ (1 = hard copy)",
        low=0,
        low_open=True,
        high=1.0,
        help="At each refresh θ⁻ ← τθ + (1 − τ)θ⁻.",
    )
    exploration_fraction: float = param(0.1, "ε decay fraction of budget", low=0, high=1.0)
    exploration_initial_eps: float = param(1.0, "Initial ε", low=0, high=1.0)
    exploration_final_eps: float = param(0.05, "Final ε", low=0, high=1.0, live=True)
    loss: str = param("huber", "TD loss", choices=("huber", "mse"))
    max_grad_norm: float = param(10.0, "Gradient clip norm", low=0, low_open=True, high=1000.0)
    per_alpha: float = param(0.6, "PER α", low=0, high=1.0)
    per_beta0: float = param(0.4, "PER initial β", low=0, high=1.0)
    per_eps: float = param(1e-6, "PER ε", low=0, low_open=True, high=1.0, log=True)


ALGO_PARAMS: dict[str, type] = {
    "trpo": TRPOConfig,
    "npg": TRPOConfig,
    "ppo": PPOConfig,
    "ppo-kl": PPOConfig,
    "a2c": A2CConfig,
    "dqn": DQNConfig,
}


# Fields an algorithm ignores: TRPO/NPG step by δ, not a policy learning rate; NPG has no line
# search; DQN learns from TD targets (no GAE, no advantages). PPO's two objectives: unused_keys.
UNUSED_FIELDS: dict[str, tuple[str, ...]] = {
    "trpo": ("lr",),
    "npg": ("lr", "backtrack_coef", "max_backtracks"),
    "dqn": ("gae_lambda", "normalize_advantage"),
}


def default_params(algo: str) -> Any:
    """The algorithm-specific defaults (``ppo-kl`` is PPO with the adaptive-KL objective)."""
    if algo not in ALGO_PARAMS:
        raise ConfigError("algo", f"{algo!r} is not supported; allowed: {', '.join(ALGORITHMS)}")
    params = ALGO_PARAMS[algo]()
    if algo == "ppo-kl":
        params.penalty = "kl"
    return params

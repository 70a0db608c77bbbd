"""TRPO and NPG (Schulman et al. 2015, Appendix C); NPG is the same step without the line search.

One update, as in the paper:

1. Collect n_steps × n_envs transitions with π_old; advantages Â by GAE(γ, λ) (optionally
   normalized to mean 0, std 1).
2. Surrogate L(θ) = mean_t[ π_θ(a_t|s_t) / π_old(a_t|s_t) · Â_t ];  g = ∇L(θ_old), which equals
   the policy gradient.
3. Fisher matrix F = ∇²D̄_KL(θ_old, θ) at θ_old, D̄_KL = mean_s KL(π_old(·|s) ‖ π_θ(·|s)) in
   closed form (categorical or diagonal Gaussian); x ≈ (F + c·I)⁻¹ g by conjugate gradient using
   only products F·v (optionally on a ``fvp_subsample`` fraction of the batch), computed in the
   exact Gauss-Newton form F = JᵀMJ by :class:`MLPFisher`.
4. Full step s = √(2δ / xᵀFx) · x, so that the quadratic model ½ sᵀFs of the KL equals δ.
5. TRPO: backtracking line search θ = θ_old + αʲ s, accepting the first trial whose *exact* mean
   KL is ≤ δ and whose surrogate improves; if none does, θ stays θ_old bit for bit.
   NPG: θ = θ_old + s, no check.
6. Critic: Adam regression of V(s_t) on the GAE returns R_t = Â_t + V_old(s_t).

What each update reports (see ``core/engine/trainer.py``). The trial metrics ``kl_mean``,
``kl_max``, ``kl_quadratic``, ``surrogate_predicted``, ``surrogate_actual`` describe the accepted
trial or, when the line search rejects every trial, the *last rejected* one (never a fake 0), with
``ls_accepted = 0``. ``ls_step_frac`` (αʲ) and ``step_norm`` (‖αʲ s‖) describe the step actually
taken, so both are 0 after a rejection. ``kl_quadratic`` is the undamped model ½ (αʲs)ᵀF(αʲs)
= αʲ² · ½ sᵀFs; with damping c it equals αʲ² · (δ − ½ c ‖s‖²).

The shared ``lr`` field is not used: the critic's learning rate is ``critic_lr``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from core.config import RunConfig
from core.engine.algos.on_policy import OnPolicyTrainer, explained_variance, normalized
from core.engine.fast import heads
from core.engine.fast.mlp import FlatMLP
from core.engine.fast.optim import Adam
from core.engine.nets import Actor
from core.engine.rollout import Batch
from core.engine.snapshot import UpdateSnapshot, cg_coordinates, plane_basis, trials_tensor
from core.engine.trainer import UpdateReport
from core.engine.trust_region import (
    CGTrace,
    LineSearchTrace,
    Trial,
    backtracking_line_search,
    conjugate_gradient,
    max_step,
)

# RL-Zoo (rl-baselines3-zoo hyperparams/trpo.yml) with sb3-contrib's TRPO defaults for what the
# zoo leaves out: cg_max_steps 15, cg_damping 0.1, line search 0.8 × 10, target_kl 0.01,
# gae_lambda 0.95, learning_rate 1e-3, batch_size 128, n_critic_updates 10, 64-64 tanh MLPs.
# The zoo's ``normalize: true`` is normalize_obs + normalize_reward; sb3-contrib's target_kl is δ,
# cg_max_steps cg_iters, n_critic_updates critic_iters, learning_rate critic_lr, batch_size
# critic_minibatch, sub_sampling_factor 1 fvp_subsample 1.0. The zoo's Pendulum entry uses gSDE
# (use_sde), which this engine does not have: a plain state-independent Gaussian instead.
_SB3_TRPO_DEFAULTS: dict[str, Any] = {
    "n_steps": 2048,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "hidden_sizes": (64, 64),
    "activation": "tanh",
    "normalize_advantage": True,
    "delta": 0.01,
    "damping": 0.1,
    "cg_iters": 15,
    "backtrack_coef": 0.8,
    "max_backtracks": 10,
    "critic_lr": 1e-3,
    "critic_iters": 10,
    "critic_minibatch": 128,
}
_NORMALIZE = {"normalize_obs": True, "normalize_reward": True}
# hyperparams/trpo.yml "HalfCheetahBulletEnv-v0" (the pybullet-defaults anchor) as its MuJoCo
# entries use it (the mujoco-defaults anchor, n_timesteps 1e6)
_ZOO_MUJOCO: dict[str, Any] = {
    **_SB3_TRPO_DEFAULTS,
    **_NORMALIZE,
    "total_steps": 1_000_000,
    "n_envs": 2,
    "n_steps": 1024,
    "critic_minibatch": 128,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "fvp_subsample": 1.0,
    "cg_iters": 25,
    "damping": 0.1,
    "critic_iters": 20,
    "critic_lr": 1e-3,
}
# hyperparams/trpo.yml "default" (no tuned entry for the env): n_timesteps 1e6 with
# sb3-contrib's defaults, one env, no normalization
_ZOO_DEFAULT: dict[str, Any] = {
    **_SB3_TRPO_DEFAULTS,
    "total_steps": 1_000_000,
    "n_envs": 1,
    "normalize_obs": False,
    "normalize_reward": False,
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "CartPole-v1": {
        "zoo": {
            **_SB3_TRPO_DEFAULTS,
            "n_envs": 2,
            "n_steps": 512,
            "critic_minibatch": 512,
            "damping": 1e-3,
            "gae_lambda": 0.98,
            "gamma": 0.99,
            "critic_lr": 1e-3,
            "critic_iters": 20,
        },
    },
    "Acrobot-v1": {
        "zoo": {**_SB3_TRPO_DEFAULTS, **_NORMALIZE, "n_envs": 2, "n_steps": 1024},
    },
    "Pendulum-v1": {
        "zoo": {
            **_SB3_TRPO_DEFAULTS,
            "n_envs": 2,
            "n_steps": 1024,
            "gamma": 0.9,
            "critic_iters": 15,
        },
    },
    # hyperparams/trpo.yml "Hopper-v4" (-v3 in older versions of the file): mujoco-defaults
    "Hopper-v5": {"zoo": dict(_ZOO_MUJOCO)},
    # hyperparams/trpo.yml "Walker2d-v4": mujoco-defaults
    "Walker2d-v5": {"zoo": dict(_ZOO_MUJOCO)},
    # hyperparams/trpo.yml "HalfCheetah-v4": mujoco-defaults, target_kl 0.04
    "HalfCheetah-v5": {"zoo": {**_ZOO_MUJOCO, "delta": 0.04}},
    # hyperparams/trpo.yml "Swimmer-v4": mujoco-defaults, gamma 0.9999
    "Swimmer-v5": {"zoo": {**_ZOO_MUJOCO, "gamma": 0.9999}},
    # hyperparams/trpo.yml has no entry: its "default"
    "InvertedPendulum-v5": {"zoo": dict(_ZOO_DEFAULT)},
    # hyperparams/trpo.yml has no entry: its "default"
    "InvertedDoublePendulum-v5": {"zoo": dict(_ZOO_DEFAULT)},
}


# ---------------------------------------------------------------------------------------------
# The policy's distribution, its Fisher product and the critic, on core/engine/fast's kernels
# ---------------------------------------------------------------------------------------------


def dist_params(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """z(θ): the distribution parameters per state, (logits,) or (μ, log σ broadcast to μ), by the
    actor module (with autograd, for g). ``core.engine.fast.heads`` evaluates log π, the KL and
    the entropy on z in closed form."""
    out = actor.net(obs)
    if actor.discrete:
        return (out,)
    return out, actor.log_std.expand_as(out)


class MLPFisher:
    """v ↦ (F + c·I)v for an MLP actor at θ_old, with F = JᵀMJ, J = ∂z/∂θ and M = ∂²D̄_KL/∂z² at
    z_old (``core.engine.fast.heads.fisher``, which says why F = JᵀMJ exactly at θ_old).

    Jv and Jᵀu are the jvp and vjp of the actor's :class:`~core.engine.fast.mlp.FlatMLP` at the
    rows ``obs``; for a Gaussian the tangent of log σ is broadcast to every state, and its part of
    Jᵀu is the sum over the states. v and the result are laid out as ``actor.parameters()``: log σ
    (a Gaussian's own parameter comes first), then the MLP. The forward pass at θ_old (layer
    inputs and act′) is computed once and reused by every CG iteration. The reference, by double
    back-propagation of the closed-form KL, is ``fisher_vector_product`` in
    ``core/engine/fast/reference.py``.
    """

    def __init__(self, actor: Actor, obs: torch.Tensor, damping: float) -> None:
        self.damping = damping
        self.discrete = actor.discrete
        self.d = 0 if self.discrete else actor.log_std.numel()  # v[:d] is log σ's part
        params = parameters_to_vector(actor.net.parameters()).detach()
        self.mlp = FlatMLP(actor.sizes, actor.activation, params)
        self.cache: list[torch.Tensor] = []
        with torch.no_grad():
            out = self.mlp.forward(obs, self.cache)
            z_old = (out,) if self.discrete else (out, actor.log_std.detach().expand_as(out))
        self.slopes = self.mlp.slopes(self.cache)
        self.metric = heads.fisher(z_old)

    @torch.no_grad()
    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        d, out = self.d, torch.empty_like(v)
        jv = self.mlp.jvp(self.cache, self.slopes, v[d:])
        u = self.metric((jv,) if self.discrete else (jv, v[:d].expand_as(jv)))
        self.mlp.vjp(self.cache, u[0], slopes=self.slopes, grad=out[d:])
        if not self.discrete:
            torch.sum(u[1], 0, out=out[:d])
        return out.add_(v, alpha=self.damping)


class CriticRegression:
    """Adam on the critic's loss mean_i (V(s_i) − R_i)², its gradient by the MLP's vjp.

    ∂loss/∂V = 2(V − R)/B, then Jᵀ of :class:`~core.engine.fast.mlp.FlatMLP`. Autograd and a
    per-tensor optimizer cost more than the arithmetic on batches this small; with the critic's
    parameters in one flat tensor (its module's parameters rebound as views, ``FlatMLP.bind``)
    Adam is one update.
    """

    def __init__(self, critic: FlatMLP, lr: float) -> None:
        self.critic = critic
        self.optimizer = Adam(critic.flat, lr, eps=1e-5)

    @torch.no_grad()
    def step(self, obs: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """One Adam step on a minibatch; returns the loss before the step."""
        cache: list[torch.Tensor] = []
        error = self.critic.forward(obs, cache).squeeze(-1) - returns
        self.critic.vjp(cache, (2.0 / len(returns)) * error.unsqueeze(-1))
        self.optimizer.step(self.critic.grad)
        return error.square().mean()


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class TRPO(OnPolicyTrainer):
    """TRPO (``algo="trpo"``) and NPG (``algo="npg"``), per the module docstring; env, nets,
    rollout, evaluation and checkpoint come from :class:`OnPolicyTrainer`."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        critic = FlatMLP(self.critic.sizes, config.activation).bind(self.critic.net.parameters())
        self.critic_regression = CriticRegression(critic, config.params.critic_lr)
        self.last_trace = LineSearchTrace()
        self.last_cg_trace = CGTrace()

    @property
    def line_search(self) -> bool:
        """TRPO checks the exact KL and the surrogate; NPG takes the full step."""
        return self.config.algo == "trpo"

    # -- one update ------------------------------------------------------------------------------

    def update(self) -> UpdateReport:
        """Collect one rollout, take one trust-region policy step, regress the critic."""
        batch = self.start_update()
        advantages = batch.advantages
        if self.config.normalize_advantage:
            advantages = normalized(advantages)
        metrics = self._policy_step(batch.obs, batch.actions, advantages)
        metrics.update(self._critic_step(batch))
        return self.finish(metrics)

    def _policy_step(
        self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor
    ) -> dict[str, float]:
        """Steps 2–5 of the module docstring on one batch; the actor is left at the new θ."""
        p = self.config.params
        params = list(self.actor.parameters())
        theta_old = parameters_to_vector(params).detach()

        z = dist_params(self.actor, obs)
        z_old = tuple(t.detach() for t in z)
        logp = heads.log_prob(z, actions)
        logp_old = logp.detach()
        surrogate = (torch.exp(logp - logp_old) * advantages).mean()
        g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(surrogate, params)])

        fvp_obs = obs
        if p.fvp_subsample < 1.0:
            n = max(1, round(p.fvp_subsample * len(obs)))
            fvp_obs = obs[torch.randperm(len(obs))[:n]]
        fvp = MLPFisher(self.actor, fvp_obs, p.damping)

        x, cg_trace = conjugate_gradient(fvp, g, p.cg_iters, p.cg_tol)
        Fx = fvp(x)
        self.last_cg_trace = cg_trace
        if not float(x @ Fx) > 0:  # g = 0 (e.g. all advantages equal): there is no step to take
            self.last_trace = LineSearchTrace()
            return self._no_step_metrics(cg_trace, z_old)
        s, beta = max_step(x, Fx, p.delta)
        half_sFs = 0.5 * beta**2 * (float(x @ Fx) - p.damping * float(x @ x))
        g_s = float(g @ s)

        last_kl_max = [math.nan]

        @torch.no_grad()
        def trial(frac: float) -> tuple[float, float]:
            vector_to_parameters(theta_old + frac * s, params)
            z_new = dist_params(self.actor, obs)
            kl = heads.kl(z_old, z_new)
            ratio = torch.exp(heads.log_prob(z_new, actions) - logp_old)
            last_kl_max[0] = float(kl.max())
            return float(kl.mean()), float(((ratio - 1.0) * advantages).mean())

        if self.line_search:
            accepted, trace = backtracking_line_search(
                trial, p.delta, p.backtrack_coef, p.max_backtracks
            )
            if not accepted:
                vector_to_parameters(theta_old, params)
        else:
            kl, change = trial(1.0)
            accepted = True
            trace = LineSearchTrace([Trial(0, 1.0, kl, change, True, "NPG: full step")], 1.0)
        self.last_trace = trace

        last = trace.trials[-1]
        taken = last.frac if accepted else 0.0
        if self.capture_snapshots:
            batch = (obs, actions, logp_old, advantages)
            self.last_snapshot = self._snapshot(theta_old, batch, g, s, beta, cg_trace, taken)
        return {
            "kl_mean": last.kl,
            "kl_max": last_kl_max[0],
            "kl_quadratic": last.frac**2 * half_sFs,
            "ls_backtracks": float(trace.backtracks),
            "ls_accepted": float(accepted),
            "ls_step_frac": taken,
            "surrogate_predicted": last.frac * g_s,
            "surrogate_actual": last.surrogate_change,
            "cg_iters": float(cg_trace.iterations),
            "cg_residual": cg_trace.residuals[-1],
            "step_norm": taken * float(s.norm()),
            "entropy": float(heads.entropy(z_old).mean()),
        }

    def _snapshot(
        self,
        theta_old: torch.Tensor,
        batch: tuple[torch.Tensor, ...],
        g: torch.Tensor,
        s: torch.Tensor,
        beta: float,
        cg_trace: CGTrace,
        taken: float,
    ) -> UpdateSnapshot:
        """This policy step as an :class:`~core.engine.snapshot.UpdateSnapshot` (copies)."""
        p = self.config.params
        U, _ = plane_basis(g, s)
        obs, actions, logp_old, advantages = (t.detach().clone() for t in batch)
        return UpdateSnapshot(
            algo=self.config.algo,
            discrete=self.actor.discrete,
            sizes=tuple(self.actor.sizes),
            activation=self.actor.activation,
            theta_old=theta_old.clone(),
            obs=obs,
            actions=actions,
            logp_old=logp_old,
            advantages=advantages,
            grad=g.detach().clone(),
            step=s.detach().clone(),
            accepted_frac=taken,
            delta=p.delta,
            damping=p.damping,
            beta=beta,
            trials=trials_tensor(self.last_trace.trials),
            cg_coords=cg_coordinates(U, g, cg_trace.iterates, p.delta),
            cg_residuals=torch.tensor(cg_trace.residuals, dtype=torch.float32),
        )

    @staticmethod
    def _no_step_metrics(cg_trace: CGTrace, z_old: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """The report of an update without a policy step: no trial, so no trial metrics."""
        nan = math.nan
        return {
            **dict.fromkeys(("kl_mean", "kl_max", "kl_quadratic"), nan),
            **dict.fromkeys(("surrogate_predicted", "surrogate_actual"), nan),
            "ls_backtracks": 0.0,
            "ls_accepted": 0.0,
            "ls_step_frac": 0.0,
            "cg_iters": float(cg_trace.iterations),
            "cg_residual": cg_trace.residuals[-1],
            "step_norm": 0.0,
            "entropy": float(heads.entropy(z_old).mean()),
        }

    def _critic_step(self, batch: Batch) -> dict[str, float]:
        """``critic_iters`` epochs of Adam on mean (V(s_t) − R_t)² over shuffled minibatches."""
        p = self.config.params
        n = len(batch)
        total, count = torch.zeros(()), 0
        for _ in range(p.critic_iters):
            self.book.poll()  # a pause or a live change lands between two critic epochs
            perm = torch.randperm(n)
            obs, returns = batch.obs[perm], batch.returns[perm]  # then contiguous minibatches
            for start in range(0, n, p.critic_minibatch):
                chunk = slice(start, start + p.critic_minibatch)
                total += self.critic_regression.step(obs[chunk], returns[chunk])
                count += 1
        return {
            "value_loss": float(total) / count,
            "explained_variance": explained_variance(batch.values, batch.returns),
        }

    # -- what the on-policy base asks of a subclass ---------------------------------------------

    def optimizers(self) -> dict[str, Any]:
        return {"critic_opt": self.critic_regression.optimizer}

    def reconfigure(self, config: RunConfig) -> None:
        """Adopt the config; the critic's Adam takes the new ``critic_lr``."""
        super().reconfigure(config)
        self.critic_regression.optimizer.lr = config.params.critic_lr

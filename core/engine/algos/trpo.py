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
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from core.config import RunConfig
from core.engine.algos.actor_critic import FlatAdam
from core.engine.algos.on_policy import explained_variance, normalized
from core.engine.envs import make_vec_env
from core.engine.nets import Actor, Critic, make_actor
from core.engine.rollout import Batch, RolloutBuffer
from core.engine.trainer import Bookkeeper, UpdateReport, apply_changes, evaluate_policy
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
# The zoo's Acrobot (normalize: true) and Pendulum (use_sde) entries use VecNormalize / gSDE,
# which this engine does not have; the rest of their settings is kept.
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
        "zoo": {**_SB3_TRPO_DEFAULTS, "n_envs": 2, "n_steps": 1024},
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
}


# ---------------------------------------------------------------------------------------------
# The policy's distribution in closed form (no torch.distributions objects in the hot path)
# ---------------------------------------------------------------------------------------------


def dist_params(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """z(θ): the distribution parameters per state, (logits,) or (μ, log σ broadcast to μ)."""
    out = actor.net(obs)
    if actor.discrete:
        return (out,)
    return out, actor.log_std.expand_as(out)


def log_prob(z: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
    """log π(a|s): log_softmax(logits)_a, or Σ_d log N(a_d; μ_d, σ_d²)."""
    if len(z) == 1:
        return torch.log_softmax(z[0], -1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    mean, log_std = z
    u = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * u.square() - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mean.shape[-1]


def kl_per_state(old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """KL(π_old(·|s) ‖ π_new(·|s)) per state, in closed form.

    Categorical: Σ_a p_old,a (log p_old,a − log p_new,a).
    Gaussian: Σ_d [log σ_new − log σ_old + (σ_old² + (μ_old − μ_new)²) / (2σ_new²) − ½].
    """
    if len(old) == 1:
        logp_old = torch.log_softmax(old[0], -1)
        logp_new = torch.log_softmax(new[0], -1)
        return (logp_old.exp() * (logp_old - logp_new)).sum(-1)
    (mu0, ls0), (mu1, ls1) = old, new
    var_ratio = torch.exp(2 * (ls0 - ls1))
    return (ls1 - ls0 + 0.5 * (var_ratio + (mu0 - mu1).square() * torch.exp(-2 * ls1)) - 0.5).sum(
        -1
    )


def entropy(z: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """H(π(·|s)) per state: −Σ p log p, or Σ_d (½ log(2πe) + log σ_d)."""
    if len(z) == 1:
        logp = torch.log_softmax(z[0], -1)
        return -(logp.exp() * logp).sum(-1)
    return (0.5 + 0.5 * math.log(2 * math.pi) + z[1]).sum(-1)


def kl_metric(
    old: tuple[torch.Tensor, ...],
) -> Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]:
    """u ↦ M u with M = ∂²D̄_KL/∂z² at z_old, for the mean over the N states.

    Categorical logits: M_s = (diag(p) − p pᵀ) / N. Gaussian: 1/(N σ²) for μ and 2/N for log σ
    (the cross terms vanish at z_old).
    """
    n = old[0].shape[0]
    if len(old) == 1:
        p = torch.softmax(old[0], -1) / n

        def categorical(u: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            pu = p * u[0]
            return (pu - p * pu.sum(-1, keepdim=True) * n,)

        return categorical
    inv_var = torch.exp(-2 * old[1]) / n

    def gaussian(u: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return inv_var * u[0], (2.0 / n) * u[1]

    return gaussian


class MLPFisher:
    """v ↦ (F + c·I)v for an MLP actor at θ_old, with F = JᵀMJ and J, Jᵀ written out by hand.

    The same product as :func:`core.engine.trust_region.fisher_vector_product`, without autograd.
    With z(θ) the distribution parameters (logits, or mean and log σ), J = ∂z/∂θ and M =
    ∂²D̄_KL/∂z² at z_old: ∇²_θ D̄_KL = JᵀMJ + Σ (∂D̄_KL/∂z) ∇²_θ z, and the second term vanishes at
    θ_old, where KL(π_old‖π_θ) is minimal (∂D̄_KL/∂z = 0), so F = JᵀMJ exactly.
    With a_l = h_{l−1}W_lᵀ + b_l, h_l = act(a_l), h_0 = s, z = a_L:

    - J v (forward mode, v = (dW_l, db_l)): da_l = h_{l−1} dW_lᵀ + db_l + dh_{l−1} W_lᵀ,
      dh_l = act′(a_l) ⊙ da_l;  for a Gaussian, d(log σ) is broadcast to every state.
    - u = M·Jv (:func:`kl_metric`).
    - Jᵀu (backward mode): δ_L = u, ∂W_l = δ_lᵀ h_{l−1}, ∂b_l = Σ_i δ_l,i,
      δ_{l−1} = (δ_l W_l) ⊙ act′(a_{l−1});  for a Gaussian, ∂log σ = Σ_i u_log σ,i.

    The forward pass at θ_old (h_l and act′) is computed once and reused by every CG iteration.
    """

    def __init__(self, actor: Actor, obs: torch.Tensor, damping: float) -> None:
        self.damping = damping
        self.params = list(actor.parameters())
        self.sizes = [p.numel() for p in self.params]
        index = {p: k for k, p in enumerate(self.params)}
        linears = [m for m in actor.net if isinstance(m, nn.Linear)]
        self.layers = [(m.weight.detach(), m.bias.detach()) for m in linears]
        # positions of (W_l, b_l) and log σ in the flat vector's parameter order
        self.slots = [(index[m.weight], index[m.bias]) for m in linears]
        self.log_std_slot = None if actor.discrete else index[actor.log_std]
        tanh = isinstance(actor.net[1], nn.Tanh)
        self.inputs, self.slopes = [obs], []
        with torch.no_grad():
            for weight, bias in self.layers[:-1]:
                a = nn.functional.linear(self.inputs[-1], weight, bias)
                h = torch.tanh(a) if tanh else torch.relu(a)
                self.inputs.append(h)
                self.slopes.append(1.0 - h.square() if tanh else (a > 0).to(a.dtype))
            z_old = dist_params(actor, obs)
        self.discrete = actor.discrete
        self.metric = kl_metric(tuple(t.detach() for t in z_old))

    @torch.no_grad()
    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        parts = [part.view_as(p) for part, p in zip(torch.split(v, self.sizes), self.params)]
        out = torch.empty_like(v)
        grads = [part.view_as(p) for part, p in zip(torch.split(out, self.sizes), self.params)]
        n_layers = len(self.layers)
        dh = None
        for i, (weight, _) in enumerate(self.layers):
            w_slot, b_slot = self.slots[i]
            da = torch.addmm(parts[b_slot], self.inputs[i], parts[w_slot].t())
            if dh is not None:
                da.addmm_(dh, weight.t())
            if i < n_layers - 1:
                dh = da.mul_(self.slopes[i])
        jv = (da,) if self.discrete else (da, parts[self.log_std_slot].expand_as(da))
        u = self.metric(jv)
        delta = u[0]
        for i in range(n_layers - 1, -1, -1):
            w_slot, b_slot = self.slots[i]
            torch.mm(delta.t(), self.inputs[i], out=grads[w_slot])
            torch.sum(delta, 0, out=grads[b_slot])
            if i:
                delta = delta.mm(self.layers[i][0]).mul_(self.slopes[i - 1])
        if not self.discrete:
            torch.sum(u[1], 0, out=grads[self.log_std_slot])
        return out.add_(v, alpha=self.damping)


class CriticRegression:
    """Adam on the critic's loss mean_i (V(s_i) − R_i)², with the MLP's gradient derived by hand.

    Backward pass of V = W_L h_{L−1} + b_L, h_l = act(W_l h_{l−1} + b_l), h_0 = s:
        δ_L = 2(V − R)/B,  ∂W_l = δ_lᵀ h_{l−1},  ∂b_l = Σ_i δ_l,i,  δ_{l−1} = (δ_l W_l) ⊙ act′.
    Autograd and a per-tensor optimizer cost more than the arithmetic on batches this small; the
    critic's parameters are rebound as views of one flat tensor so that Adam is one update.
    """

    def __init__(self, critic: Critic, lr: float) -> None:
        params = list(critic.parameters())
        self.flat = torch.cat([p.detach().reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.flat)
        grads, offset = {}, 0
        for p in params:
            n = p.numel()
            p.data = self.flat[offset : offset + n].view_as(p)
            grads[p] = self.grad[offset : offset + n].view_as(p)
            offset += n
        linears = [m for m in critic.net if isinstance(m, nn.Linear)]
        self.layers = [(m.weight, m.bias, grads[m.weight], grads[m.bias]) for m in linears]
        self.tanh = isinstance(critic.net[1], nn.Tanh)
        self.optimizer = FlatAdam(self.flat, lr, eps=1e-5)

    @torch.no_grad()
    def step(self, obs: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """One Adam step on a minibatch; returns the loss before the step."""
        inputs = [obs]
        for weight, bias, _, _ in self.layers[:-1]:
            a = torch.addmm(bias, inputs[-1], weight.t())
            inputs.append(torch.tanh(a) if self.tanh else torch.relu(a))
        weight, bias, _, _ = self.layers[-1]
        error = torch.addmm(bias, inputs[-1], weight.t()).squeeze(-1) - returns
        delta = (2.0 / len(returns)) * error.unsqueeze(-1)
        for i in range(len(self.layers) - 1, -1, -1):
            weight, _, grad_w, grad_b = self.layers[i]
            torch.mm(delta.t(), inputs[i], out=grad_w)
            torch.sum(delta, 0, out=grad_b)
            if i:
                dh = delta.mm(weight)
                if self.tanh:
                    delta = torch.ops.aten.tanh_backward(dh, inputs[i])
                else:
                    delta = torch.ops.aten.threshold_backward(dh, inputs[i], 0.0)
        self.optimizer.step(self.grad)
        return error.square().mean()


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class TRPO:
    """TRPO (``algo="trpo"``) and NPG (``algo="npg"``), per the module docstring."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config.validate()
        self._pending: RunConfig | None = None
        torch.manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        self.obs, _ = self.env.reset(seed=config.seed)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        self.actor = make_actor(obs_space, act_space, config.hidden_sizes, config.activation)
        self.critic = Critic(int(obs_space.shape[0]), config.hidden_sizes, config.activation)
        self.critic_regression = CriticRegression(self.critic, config.params.critic_lr)
        self.buffer = RolloutBuffer(config.n_steps, config.n_envs, obs_space, act_space)
        self.book = Bookkeeper(config)
        self.act_low = None if self.actor.discrete else torch.as_tensor(act_space.low)
        self.act_high = None if self.actor.discrete else torch.as_tensor(act_space.high)
        self.last_trace = LineSearchTrace()
        self.last_cg_trace = CGTrace()

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    @property
    def line_search(self) -> bool:
        """TRPO checks the exact KL and the surrogate; NPG takes the full step."""
        return self.config.algo == "trpo"

    # -- one update ------------------------------------------------------------------------------

    def update(self) -> UpdateReport:
        """Collect one rollout, take one trust-region policy step, regress the critic."""
        self.book.start()
        self._apply_pending()
        cfg = self.config
        self.obs = self.buffer.collect(self.env, self.obs, self.actor, self.critic, self.book)
        batch = self.buffer.batch(cfg.gamma, cfg.gae_lambda)
        advantages = batch.advantages
        if cfg.normalize_advantage:
            advantages = normalized(advantages)
        metrics = self._policy_step(batch.obs, batch.actions, advantages)
        metrics.update(self._critic_step(batch))
        return self.book.finish(metrics, self._evaluate_for_book)

    def _policy_step(
        self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor
    ) -> dict[str, float]:
        """Steps 2–5 of the module docstring on one batch; the actor is left at the new θ."""
        p = self.config.params
        params = list(self.actor.parameters())
        theta_old = parameters_to_vector(params).detach()

        z = dist_params(self.actor, obs)
        z_old = tuple(t.detach() for t in z)
        logp = log_prob(z, actions)
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
            kl = kl_per_state(z_old, z_new)
            ratio = torch.exp(log_prob(z_new, actions) - logp_old)
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
            "entropy": float(entropy(z_old).mean()),
        }

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
            "entropy": float(entropy(z_old).mean()),
        }

    def _critic_step(self, batch: Batch) -> dict[str, float]:
        """``critic_iters`` epochs of Adam on mean (V(s_t) − R_t)² over shuffled minibatches."""
        p = self.config.params
        n = len(batch)
        total, count = torch.zeros(()), 0
        for _ in range(p.critic_iters):
            perm = torch.randperm(n)
            for start in range(0, n, p.critic_minibatch):
                idx = perm[start : start + p.critic_minibatch]
                total += self.critic_regression.step(batch.obs[idx], batch.returns[idx])
                count += 1
        return {
            "value_loss": float(total) / count,
            "explained_variance": explained_variance(batch.values, batch.returns),
        }

    # -- evaluation --------------------------------------------------------------------------------

    def _policy_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic policy: greedy action, or the mean clipped to the action bounds."""
        actions, _ = self.actor.act(obs, deterministic=True)
        if self.act_low is not None:
            actions = torch.clamp(actions, self.act_low, self.act_high)
        return actions

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of ``n_episodes`` episodes of the deterministic policy on a separate env."""
        seed = self.config.seed + 1_000_003 * (1 + self.book.update)
        return evaluate_policy(self.config.env_id, self._policy_action, n_episodes, seed)

    def _evaluate_for_book(self) -> list[float]:
        return self.evaluate(self.config.eval_episodes)

    # -- live changes and checkpoints ------------------------------------------------------------

    def set_hyperparams(self, **changes: Any) -> dict[str, tuple[Any, Any]]:
        """Validate live changes now; they take effect at the start of the next update."""
        new, diff = apply_changes(self._pending or self.config, changes)
        self._pending = new
        return diff

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self.config = pending
        self.critic_regression.optimizer.lr = pending.params.critic_lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_opt": self.critic_regression.optimizer.state_dict(),
            "book": self.book.state_dict(),
            "config": self.config.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.config = RunConfig.from_json(state["config"])
        self._pending = None
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_regression.optimizer.load_state_dict(state["critic_opt"])
        self.book.load_state_dict(state["book"])

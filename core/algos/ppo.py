"""PPO (Schulman et al. 2017): clipped surrogate ("ppo") or adaptive KL penalty ("ppo-kl").

One update:

1. Collect n_steps × n_envs transitions with π_old; advantages Â by GAE(γ, λ), returns R = Â + V.
2. Schedules: with ``anneal_lr`` / ``anneal_clip`` the learning rate and ε decay linearly to 0 over
   the budget, lr_k = lr · (1 − env_steps / total_steps) (as SB3's ``lin_0.001``).
3. For each epoch, for each minibatch (Â normalized per minibatch when ``normalize_advantage``),
   with r = π_θ(a|s) / π_old(a|s), one Adam step on

       loss = −mean(obj) + c_v · mean((V(s) − R)²) − c_H · mean(H(π_θ(·|s)))
       clip:  obj = min(r·Â, clip(r, 1−ε, 1+ε)·Â)
       kl:    obj = r·Â − β · KL(π_old(·|s) ‖ π_θ(·|s))

   after clipping the gradient to norm ``max_grad_norm``. With ``target_kl`` set, the epochs stop
   before the first step whose minibatch has approx_kl > target_kl.
4. KL penalty only: d = exact mean KL(π_old‖π_θ) on the batch after the epochs, then
   β ← β/2 if d < d_targ/1.5, β ← 2β if d > 1.5·d_targ, else β unchanged (the paper's rule).

Reported per update (besides ``Bookkeeper.finish``'s): ``kl_mean`` (exact mean KL(π_old‖π_new) on
the batch after the epochs), ``kl_max``, ``approx_kl`` (k3 = mean((r−1) − log r) on the same batch),
``clip_frac`` (share of samples with |r − 1| > ε over all gradient steps), ``epochs_run`` (gradient
steps / minibatches per epoch, < ``epochs`` after an early stop), ``policy_loss`` (−obj) and
``value_loss`` (means over all samples of all gradient steps), ``entropy`` (after the epochs),
``explained_variance`` (1 − Var(R − V_old)/Var(R)), ``lr``, ``clip_eps``; ``kl_beta`` (the β
used in this update's loss) only in KL-penalty mode: the clip objective has no β, so the name is
absent there rather than a made-up number.

The losses' gradients are derived by hand (``core.algos.actor_critic``; checked against autograd in
the tests): the same math as autograd, ~2× faster per gradient step on small MLPs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from core.algos.actor_critic import ActorCritic, FlatAdam, OldPolicy, StepStats, summarize
from core.config import RunConfig
from core.envs import make_vec_env
from core.nets import Critic, make_actor
from core.rollout import Batch, RolloutBuffer
from core.trainer import Bookkeeper, UpdateReport, apply_changes, evaluate_policy

ADAM_EPS = 1e-5  # as SB3's PPO
EVAL_SEED_OFFSET = 100_000

# RL-Zoo (rl-baselines3-zoo hyperparams/ppo.yml) plus SB3's PPO defaults for what the zoo leaves
# out: batch_size 64, lr 3e-4, clip 0.2, vf_coef 0.5, max_grad_norm 0.5, 64-64 tanh MLPs.
# Differences, because this engine has no VecNormalize and no gSDE: Acrobot runs without
# observation/reward normalization; Pendulum uses a plain state-independent Gaussian with
# log σ₀ = −0.5 instead of gSDE (use_sde, sde_sample_freq 4).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "CartPole-v1": {
        "zoo": {
            "total_steps": 100_000,
            "n_envs": 8,
            "n_steps": 32,
            "minibatch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "epochs": 20,
            "ent_coef": 0.0,
            "lr": 1e-3,
            "clip_eps": 0.2,
            "anneal_lr": True,
            "anneal_clip": True,
        },
    },
    "Acrobot-v1": {
        "zoo": {
            "total_steps": 1_000_000,
            "n_envs": 16,
            "n_steps": 256,
            "minibatch_size": 64,
            "gae_lambda": 0.94,
            "gamma": 0.99,
            "epochs": 4,
            "ent_coef": 0.0,
            "lr": 3e-4,
            "clip_eps": 0.2,
        },
    },
    "Pendulum-v1": {
        "zoo": {
            "total_steps": 100_000,
            "n_envs": 4,
            "n_steps": 1024,
            "minibatch_size": 64,
            "gae_lambda": 0.95,
            "gamma": 0.9,
            "epochs": 10,
            "ent_coef": 0.0,
            "lr": 1e-3,
            "clip_eps": 0.2,
            "log_std_init": -0.5,
        },
    },
}


def adapt_beta(beta: float, d: float, d_targ: float) -> float:
    """The paper's adaptive-KL rule: β/2 if d < d_targ/1.5, 2β if d > 1.5·d_targ, else β."""
    if d < d_targ / 1.5:
        return beta / 2
    if d > 1.5 * d_targ:
        return beta * 2
    return beta


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) (NaN when the returns do not vary)."""
    var = returns.var()
    return float("nan") if var == 0 else float(1 - (returns - values).var() / var)


def minibatches(
    batch: Batch, old: OldPolicy, size: int, generator: torch.Generator
) -> list[tuple[Batch, OldPolicy]]:
    """One epoch's minibatches: shuffled chunks of ``size`` (the batch itself if it fits in one)."""
    if size >= len(batch):
        return [(batch, old)]
    return [
        (batch.subset(idx), old.subset(idx))
        for idx in torch.randperm(len(batch), generator=generator).split(size)
    ]


def normalized(adv: torch.Tensor) -> torch.Tensor:
    """(Â − mean) / (std + 1e-8), as SB3 does per minibatch."""
    return (adv - adv.mean()) / (adv.std() + 1e-8) if len(adv) > 1 else adv


class PPO:
    """PPO trainer serving "ppo" (clip) and "ppo-kl" (``params.penalty == "kl"``)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config.validate()
        self._next_config = config
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        self.obs, _ = self.env.reset(seed=config.seed)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        self.actor = make_actor(obs_space, act_space, config.hidden_sizes, config.activation)
        if not self.actor.discrete:
            with torch.no_grad():
                self.actor.log_std.fill_(config.params.log_std_init)
        self.critic = Critic(obs_space.shape[0], config.hidden_sizes, config.activation)
        self.ac = ActorCritic(self.actor, self.critic, config.activation)
        self.optimizer = FlatAdam(self.ac.flat, config.lr, eps=ADAM_EPS)
        self.buffer = RolloutBuffer(config.n_steps, config.n_envs, obs_space, act_space)
        self.beta = config.params.kl_beta0
        self.book = Bookkeeper(config)

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    # -- one update -----------------------------------------------------------------------------

    def update(self) -> UpdateReport:
        self.config = self._next_config
        cfg, p = self.config, self.config.params
        self.book.start()

        # 1. rollout with π_old, advantages by GAE
        self.obs = self.buffer.collect(self.env, self.obs, self.ac, self.ac.values, self.book)
        batch = self.buffer.batch(cfg.gamma, cfg.gae_lambda)

        # 2. schedules
        remaining = max(0.0, 1.0 - self.book.env_steps / cfg.total_steps)
        lr = cfg.lr * remaining if p.anneal_lr else cfg.lr
        clip_eps = p.clip_eps * remaining if p.anneal_clip else p.clip_eps
        self.optimizer.lr = lr

        # 3. epochs of minibatch steps on the clipped or KL-penalized surrogate
        with torch.no_grad():
            old = self.ac.old_policy(batch.obs)
        stats, steps_per_epoch = self._epochs(batch, old, clip_eps)

        # 4. exact KL after the epochs; adaptive β (KL-penalty mode)
        with torch.no_grad():
            final = self.ac.evaluate(batch.obs, batch.actions, old)
        log_ratio = final.logp - batch.logp
        kl_mean = float(final.kl.mean())
        metrics = {
            "kl_mean": kl_mean,
            "kl_max": float(final.kl.max()),
            "approx_kl": float((log_ratio.exp() - 1 - log_ratio).mean()),
            **summarize(stats, clip_eps),
            "epochs_run": len(stats) / steps_per_epoch,
            "entropy": float(final.entropy.mean()),
            "explained_variance": explained_variance(batch.values, batch.returns),
            "lr": lr,
            "clip_eps": clip_eps,
        }
        if p.penalty == "kl":
            metrics["kl_beta"] = self.beta
            self.beta = adapt_beta(self.beta, kl_mean, p.kl_target)
        return self.book.finish(metrics, lambda: self.evaluate(cfg.eval_episodes))

    def _epochs(self, batch: Batch, old: OldPolicy, clip_eps: float) -> tuple[list, int]:
        """Run the epochs; return the stats of every gradient step taken and steps per epoch."""
        cfg, p = self.config, self.config.params
        if self.actor.discrete:
            batch = dataclasses.replace(batch, actions=batch.actions.long())
        steps_per_epoch = math.ceil(len(batch) / p.minibatch_size)
        normalize_each = cfg.normalize_advantage and steps_per_epoch > 1
        if cfg.normalize_advantage and not normalize_each:  # one minibatch: normalize once
            batch = dataclasses.replace(batch, advantages=normalized(batch.advantages))
        stats: list[StepStats] = []
        for _ in range(p.epochs):
            for mb, mb_old in minibatches(batch, old, p.minibatch_size, self.generator):
                adv = normalized(mb.advantages) if normalize_each else mb.advantages
                step = self.ac.loss_grad(
                    mb.obs,
                    mb.actions,
                    mb.logp,
                    adv,
                    mb.returns,
                    mb_old,
                    objective="kl" if p.penalty == "kl" else "clip",
                    clip_eps=clip_eps,
                    beta=self.beta,
                    vf_coef=p.vf_coef,
                    ent_coef=p.ent_coef,
                )
                if p.target_kl is not None and step.approx_kl() > p.target_kl:
                    return stats, steps_per_epoch
                self.ac.clip_grad_norm(p.max_grad_norm)
                self.optimizer.step(self.ac.grad)
                stats.append(step)
        return stats, steps_per_epoch

    # -- the rest of the trainer contract -------------------------------------------------------

    def set_hyperparams(self, **changes: Any) -> dict[str, tuple[Any, Any]]:
        """Validate live changes now; they take effect at the next ``update()``."""
        self._next_config, diff = apply_changes(self._next_config, changes)
        return diff

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of the deterministic policy (greedy / mean action) on a separate env."""
        return evaluate_policy(
            self.config.env_id,
            self.policy,
            n_episodes,
            self.config.seed + EVAL_SEED_OFFSET,
        )

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic env actions (continuous ones clipped to the action bounds)."""
        actions, _ = self.actor.act(obs, deterministic=True)
        if self.actor.discrete:
            return actions
        space = self.env.single_action_space
        return actions.clamp(torch.as_tensor(space.low), torch.as_tensor(space.high))

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": {k: v.clone() for k, v in self.actor.state_dict().items()},
            "critic": {k: v.clone() for k, v in self.critic.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "kl_beta": self.beta,
            "generator": self.generator.get_state(),
            "book": self.book.state_dict(),
            "config": self._next_config.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.config = self._next_config = RunConfig.from_json(state["config"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.beta = float(state["kl_beta"])
        self.generator.set_state(state["generator"])
        self.book.load_state_dict(state["book"])

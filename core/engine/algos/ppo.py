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

The losses' gradients are derived by hand (``core.engine.algos.actor_critic``; checked against
autograd in the tests): the same math as autograd, ~2× faster per gradient step on small MLPs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from core.config import RunConfig
from core.engine.algos.actor_critic import OldPolicy, StepStats, summarize
from core.engine.algos.on_policy import (
    ActorCriticTrainer,
    explained_variance,
    kl_metrics,
    normalized,
)
from core.engine.fast.optim import Adam
from core.engine.rollout import Batch
from core.engine.snapshot import UpdateSnapshot, policy_vector
from core.engine.trainer import UpdateReport

ADAM_EPS = 1e-5  # as SB3's PPO

# RL-Zoo (rl-baselines3-zoo hyperparams/ppo.yml) plus SB3's PPO defaults for what the zoo leaves
# out: n_envs 1, n_steps 2048, batch_size 64, epochs 10, γ 0.99, λ 0.95, lr 3e-4, clip 0.2,
# ent_coef 0, vf_coef 0.5, max_grad_norm 0.5, 64-64 tanh MLPs. The zoo's ``normalize: true`` is
# normalize_obs + normalize_reward; its "lin_" schedules are anneal_lr / anneal_clip. Differences:
# this engine has no gSDE, so Pendulum uses a plain state-independent Gaussian with
# log σ₀ = −0.5 instead (use_sde, sde_sample_freq 4); and it always initialises orthogonally
# (√2 hidden, 0.01 policy head, 1 value head), so the zoo's ``ortho_init=False`` (Hopper,
# HalfCheetah) is not reproduced.
_NORMALIZE = {"normalize_obs": True, "normalize_reward": True}
# policy_kwargs of the zoo's Hopper and HalfCheetah entries: log_std_init=-2, activation_fn=ReLU,
# net_arch pi=[256, 256], vf=[256, 256] (ortho_init=False: see above)
_MUJOCO_NET = {"hidden_sizes": (256, 256), "activation": "relu", "log_std_init": -2.0}

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
            **_NORMALIZE,
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
    # hyperparams/ppo.yml "Hopper-v4" (Hopper-v3 in older versions of the file)
    "Hopper-v5": {
        "zoo": {
            **_NORMALIZE,
            **_MUJOCO_NET,
            "total_steps": 1_000_000,
            "n_envs": 1,
            "n_steps": 512,
            "minibatch_size": 32,
            "gamma": 0.999,
            "gae_lambda": 0.99,
            "lr": 9.80828e-05,
            "ent_coef": 0.00229519,
            "clip_eps": 0.2,
            "epochs": 5,
            "max_grad_norm": 0.7,
            "vf_coef": 0.835671,
        },
    },
    # hyperparams/ppo.yml "Walker2d-v4" (no policy_kwargs: SB3's 64-64 tanh networks)
    "Walker2d-v5": {
        "zoo": {
            **_NORMALIZE,
            "total_steps": 1_000_000,
            "n_envs": 1,
            "n_steps": 512,
            "minibatch_size": 32,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "lr": 5.05041e-05,
            "ent_coef": 0.000585045,
            "clip_eps": 0.1,
            "epochs": 20,
            "max_grad_norm": 1.0,
            "vf_coef": 0.871923,
        },
    },
    # hyperparams/ppo.yml "HalfCheetah-v4"
    "HalfCheetah-v5": {
        "zoo": {
            **_NORMALIZE,
            **_MUJOCO_NET,
            "total_steps": 1_000_000,
            "n_envs": 1,
            "n_steps": 512,
            "minibatch_size": 64,
            "gamma": 0.98,
            "gae_lambda": 0.92,
            "lr": 2.0633e-05,
            "ent_coef": 0.000401762,
            "clip_eps": 0.1,
            "epochs": 20,
            "max_grad_norm": 0.8,
            "vf_coef": 0.58096,
        },
    },
    # hyperparams/ppo.yml "Swimmer-v4" (tuned; the mujoco-defaults anchor: normalize, 1e6 steps)
    "Swimmer-v5": {
        "zoo": {
            **_NORMALIZE,
            "total_steps": 1_000_000,
            "n_envs": 4,
            "n_steps": 1024,
            "minibatch_size": 256,
            "gamma": 0.9999,
            "gae_lambda": 0.98,
            "lr": 6e-4,
            "ent_coef": 0.0,
            "clip_eps": 0.2,
            "epochs": 10,
        },
    },
    # hyperparams/ppo.yml "InvertedPendulum-v2" (-v3 in older versions of the file)
    "InvertedPendulum-v5": {
        "zoo": {
            **_NORMALIZE,
            "total_steps": 1_000_000,
            "n_envs": 1,
            "n_steps": 32,
            "minibatch_size": 32,  # the zoo's batch_size 64 > the batch 32: one full-batch step
            "gamma": 0.999,
            "gae_lambda": 0.9,
            "lr": 0.000222425,
            "ent_coef": 1.37976e-07,
            "clip_eps": 0.4,
            "epochs": 5,
            "max_grad_norm": 0.3,
            "vf_coef": 0.19816,
        },
    },
    # hyperparams/ppo.yml "InvertedDoublePendulum-v2" (-v3 in older versions of the file)
    "InvertedDoublePendulum-v5": {
        "zoo": {
            **_NORMALIZE,
            "total_steps": 1_000_000,
            "n_envs": 1,
            "n_steps": 128,
            "minibatch_size": 128,  # the zoo's batch_size 512 > the batch 128: one full-batch step
            "gamma": 0.98,
            "gae_lambda": 0.8,
            "lr": 0.000155454,
            "ent_coef": 1.05057e-06,
            "clip_eps": 0.4,
            "epochs": 10,
            "max_grad_norm": 0.5,
            "vf_coef": 0.695929,
        },
    },
    # hyperparams/ppo.yml "LunarLander-v2" (no normalize)
    "LunarLander-v3": {
        "zoo": {
            "normalize_obs": False,
            "normalize_reward": False,
            "total_steps": 1_000_000,
            "n_envs": 16,
            "n_steps": 1024,
            "minibatch_size": 64,
            "gamma": 0.999,
            "gae_lambda": 0.98,
            "lr": 3e-4,
            "ent_coef": 0.01,
            "clip_eps": 0.2,
            "epochs": 4,
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


def minibatches(
    batch: Batch, old: OldPolicy, size: int, generator: torch.Generator
) -> list[tuple[Batch, OldPolicy]]:
    """One epoch's minibatches: shuffled chunks of ``size`` (the batch itself if it fits in one).

    The batch is shuffled once and cut into contiguous views (one gather per field per epoch,
    not one per minibatch)."""
    n = len(batch)
    if size >= n:
        return [(batch, old)]
    perm = torch.randperm(n, generator=generator)
    batch, old = batch.subset(perm), old.subset(perm)
    return [
        (batch.subset(chunk), old.subset(chunk))
        for chunk in (slice(start, start + size) for start in range(0, n, size))
    ]


class PPO(ActorCriticTrainer):
    """PPO trainer serving "ppo" (clip) and "ppo-kl" (``params.penalty == "kl"``)."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = Adam(self.ac.flat, config.lr, eps=ADAM_EPS)
        self.beta = config.params.kl_beta0

    # -- one update -----------------------------------------------------------------------------

    def update(self) -> UpdateReport:
        # 1. rollout with π_old, advantages by GAE
        batch = self.start_update()
        cfg, p = self.config, self.config.params

        # 2. schedules
        remaining = self.remaining()
        lr = cfg.lr * remaining if p.anneal_lr else cfg.lr
        clip_eps = p.clip_eps * remaining if p.anneal_clip else p.clip_eps
        self.optimizer.lr = lr

        # 3. epochs of minibatch steps on the clipped or KL-penalized surrogate
        with torch.no_grad():
            old = self.ac.old_policy(batch.obs)
        theta_old = self._policy_vector() if self.capture_snapshots else None
        stats, steps_per_epoch = self._epochs(batch, old, clip_eps)
        if theta_old is not None:
            self.last_snapshot = self._snapshot(batch, theta_old, clip_eps)

        # 4. exact KL after the epochs; adaptive β (KL-penalty mode)
        with torch.no_grad():
            final = self.ac.evaluate(batch.obs, batch.actions, old)
        metrics = {
            **kl_metrics(final, batch),
            **summarize(stats, clip_eps),
            "epochs_run": len(stats) / steps_per_epoch,
            "entropy": float(final.entropy.mean()),
            "explained_variance": explained_variance(batch.values, batch.returns),
            "lr": lr,
            "clip_eps": clip_eps,
        }
        if p.penalty == "kl":
            metrics["kl_beta"] = self.beta
            self.beta = adapt_beta(self.beta, metrics["kl_mean"], p.kl_target)
        return self.finish(metrics)

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
            self.book.poll()  # a pause or a live change lands between two epochs
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

    # -- the update snapshot (core/engine/snapshot.py) ---------------------------------------

    def _policy_vector(self) -> torch.Tensor:
        """The actor's θ in the snapshot layout (log σ, then the MLP), a copy."""
        log_std = None if self.actor.discrete else self.ac.log_std
        return policy_vector(log_std, self.ac.actor_mlp.flat).clone()

    def _snapshot(self, batch: Batch, theta_old: torch.Tensor, clip_eps: float) -> UpdateSnapshot:
        """This update's policy step: d = θ_new − θ_old on the whole batch (Â normalized over
        the batch when ``normalize_advantage``); g is left to the reader
        (``core.engine.snapshot.gradient``)."""
        cfg, p = self.config, self.config.params
        actions = batch.actions.long() if self.actor.discrete else batch.actions.clone()
        adv = normalized(batch.advantages) if cfg.normalize_advantage else batch.advantages
        bound = p.kl_target if p.penalty == "kl" else p.target_kl
        return UpdateSnapshot(
            algo=cfg.algo,
            discrete=self.actor.discrete,
            sizes=tuple(self.actor.sizes),
            activation=self.actor.activation,
            theta_old=theta_old,
            obs=batch.obs.clone(),
            actions=actions,
            logp_old=batch.logp.clone(),
            advantages=adv.clone(),
            grad=None,
            step=self._policy_vector() - theta_old,
            accepted_frac=1.0,
            delta=math.nan if bound is None else float(bound),
            clip_eps=clip_eps if p.penalty != "kl" else math.nan,
        )

    # -- checkpoint entries beyond OnPolicyTrainer's ------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        return {"kl_beta": self.beta, "generator": self.generator.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.beta = float(state["kl_beta"])
        self.generator.set_state(state["generator"])

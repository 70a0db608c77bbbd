"""DQN (Mnih et al. 2015) with Double DQN, a dueling head and prioritized replay, as a Trainer.

Per env step: act ε-greedily with the online network θ, store (s, a, r, s′, terminated, truncated)
(s′ is the real final observation when an episode ends), refresh the target network θ⁻ every
``target_update_interval`` **env steps** (θ⁻ ← τθ + (1 − τ)θ⁻; τ = 1 is a hard copy), and every
``train_freq`` env steps (once ``learning_starts`` have passed) take ``gradient_steps`` steps on

    L(θ) = mean_i w_i · ℓ(q(s_i, a_i; θ) − y_i)         ℓ = Huber (δ = 1) or squared error
    y_i  = r_i + γ (1 − terminated_i) · q(s′_i, a*_i; θ⁻)
    a*_i = argmax_a q(s′_i, a; θ)    (Double DQN)   or   argmax_a q(s′_i, a; θ⁻)   (DQN)

The prediction uses the online θ; only the bootstrap uses θ⁻. A time-limit truncation is not
terminal, so it still bootstraps. w_i = 1 for uniform replay, the importance weights for
prioritized replay (β annealed linearly from ``per_beta0`` to 1 over the budget).

Units follow Stable-Baselines3, so the RL-Zoo presets mean what they say there:
``train_freq`` and ``target_update_interval`` count env steps. Because the target network is only
refreshed between env steps, θ⁻ is fixed during a block of gradient steps; with uniform replay the
whole block's minibatches are drawn at once and θ⁻'s values for all their s′ come from one batched
forward pass (same distribution and targets as drawing them one by one, far fewer kernel calls).

One ``update()`` advances ``n_steps × n_envs`` env steps with the gradient steps due in it (zoo
CartPole: 256 env steps then 128 gradient steps).

Normalization (``normalize_obs`` / ``normalize_reward``, ``core/engine/normalize.py``), as SB3's
off-policy algorithms do it: the statistics update at every env step, acting sees normalized
observations, the replay keeps the raw s, r, s′ and each sampled minibatch is normalized with the
statistics of the moment it is drawn.

Speed: a gradient step of a [256, 256] Q-network on 64 samples is a few matrix products; with
autograd, ``nn.Module`` calls and ``torch.optim`` most of its time is per-operation overhead. So
``FlatQ`` (``core/engine/algos/td_learning.py``) runs the network as a
:class:`~core.engine.fast.mlp.FlatMLP` (its parameters in one flat tensor, the module's parameters
views of it) with the backward pass of the TD loss by the MLP's vjp (checked against autograd in
``tests/test_dqn.py``); gradient clipping and Adam (``core/engine/fast/optim.py``, the fused
kernel) then act on one flat tensor each. Acting on one state at a time runs the greedy forward
pass in numpy on views of the same flat tensor (``FlatQ.greedy_actions``).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional

from core.config import RunConfig
from core.engine.algos.td_learning import FlatQ, td_loss, td_target
from core.engine.envs import final_observations, make_vec_env
from core.engine.fast.optim import Adam
from core.engine.nets import QNetwork
from core.engine.normalize import Normalizer
from core.engine.replay import PrioritizedReplayBuffer, ReplayBuffer, ReplaySample
from core.engine.trainer import Bookkeeper, UpdateReport, eval_seed, evaluate_policy

ADAM_EPS = 1e-8  # torch.optim.Adam's default, which SB3's DQN uses

_ZOO_NET = {"hidden_sizes": (256, 256), "activation": "relu", "n_envs": 1, "n_steps": 256}

# rl-baselines3-zoo hyperparams/dqn.yml: its "Tuned" Acrobot-v1 and LunarLander-v2 entries are
# the same settings
_ZOO_TUNED: dict[str, Any] = {
    **_ZOO_NET,
    "total_steps": 100_000,
    "lr": 6.3e-4,
    "batch_size": 128,
    "buffer_size": 50_000,
    "learning_starts": 0,
    "gamma": 0.99,
    "target_update_interval": 250,
    "train_freq": 4,
    "gradient_steps": 4,
    "exploration_fraction": 0.12,
    "exploration_final_eps": 0.1,
    "eval_every": 5120,
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # rl-baselines3-zoo hyperparams/dqn.yml ("Almost Tuned"); n_timesteps 5e4
    "CartPole-v1": {
        "zoo": {
            **_ZOO_NET,
            "total_steps": 50_000,
            "lr": 2.3e-3,
            "batch_size": 64,
            "buffer_size": 100_000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "target_update_interval": 10,
            "train_freq": 256,
            "gradient_steps": 128,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
            "eval_every": 2560,
        }
    },
    # rl-baselines3-zoo hyperparams/dqn.yml ("Tuned"); n_timesteps 1e5; gradient_steps −1 there
    # means "as many as env steps collected", i.e. train_freq · n_envs = 4 with one env
    "Acrobot-v1": {"zoo": _ZOO_TUNED},
    # rl-baselines3-zoo hyperparams/dqn.yml "LunarLander-v2" ("Tuned"); n_timesteps 1e5;
    # gradient_steps −1 as for Acrobot: train_freq · n_envs = 4; no normalize
    "LunarLander-v3": {"zoo": {**_ZOO_TUNED, "normalize_obs": False, "normalize_reward": False}},
}


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """start → end linearly over the first ``fraction`` of training, then constant at ``end``."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(1.0, progress / fraction)


class DQN:
    """The DQN family as a :class:`~core.engine.trainer.Trainer` (flags: double, dueling,
    prioritized)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        p = config.params
        torch.manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        if not isinstance(self.env.single_action_space, gym.spaces.Discrete):
            raise TypeError("DQN needs a discrete action space")
        self.obs, _ = self.env.reset(seed=config.seed)
        self.normalizer = Normalizer.for_run(config, self.env.single_observation_space.shape)
        self.normalizer.update_obs(self.obs)
        obs_dim = int(self.env.single_observation_space.shape[0])
        self.n_actions = int(self.env.single_action_space.n)
        self.q = QNetwork(
            obs_dim, self.n_actions, config.hidden_sizes, config.activation, p.dueling
        )
        self.q_target = copy.deepcopy(self.q)
        self.q.requires_grad_(False)
        self.q_target.requires_grad_(False)
        self.online = FlatQ(self.q)
        self.target = FlatQ(self.q_target)
        self.optimizer = Adam(self.online.flat, config.lr, eps=ADAM_EPS)
        self.rng = np.random.default_rng(config.seed)
        if p.prioritized:
            self.replay: ReplayBuffer = PrioritizedReplayBuffer(
                p.buffer_size, obs_dim, p.per_alpha, p.per_eps
            )
        else:
            self.replay = ReplayBuffer(p.buffer_size, obs_dim)
        self.book = Bookkeeper(config)
        self.epsilon = p.exploration_initial_eps
        self.target_updates = 0
        self.gradient_steps_done = 0
        self._since_train = 0  # env steps since the last training round

    # -- the contract ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    def reconfigure(self, config: RunConfig) -> None:
        """Adopt a config with new live values; Adam takes the new ``lr`` (the rest is read from
        ``self.config`` at every env step); the normalizer's return discount follows γ."""
        self.config = config
        self.optimizer.lr = config.lr
        self.normalizer.gamma = config.gamma

    def update(self) -> UpdateReport:
        """``n_steps`` vector steps (``n_steps · n_envs`` env steps) and the gradient steps due."""
        self.book.start()
        stats: list[dict[str, torch.Tensor]] = []
        with torch.no_grad():
            for _ in range(self.config.n_steps):
                self._env_step()
                if self._since_train >= self.config.params.train_freq:
                    self._since_train = 0
                    if self.book.env_steps > self.config.params.learning_starts:
                        stats.append(self._train(self.config.params.gradient_steps))
        return self.book.finish(self._metrics(stats), self._evaluate_for_book)

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """The greedy actions argmax_a q(ŝ, a; θ) for raw observations s (ŝ normalized with the
        current statistics, which this does not change)."""
        return self.online.forward(self.normalizer.obs_tensor(obs)).argmax(-1)

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of :meth:`policy` on a separate env (the seeds of ``eval_seed``), with the
        normalization statistics frozen."""
        with self.normalizer.frozen_stats():
            return evaluate_policy(
                self.config.env_id, self.policy, n_episodes, eval_seed(self.config)
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "book": self.book.state_dict(),
            "config": self.config.to_json(),
            "epsilon": self.epsilon,
            "target_updates": self.target_updates,
            "gradient_steps_done": self.gradient_steps_done,
            "since_train": self._since_train,
            "rng": self.rng.bit_generator.state,
            "normalizer": self.normalizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reconfigure(RunConfig.from_json(state["config"]))
        self.q.load_state_dict(state["q"])  # copies into the views of the flat tensors
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.book.load_state_dict(state["book"])
        self.epsilon = float(state["epsilon"])
        self.target_updates = int(state["target_updates"])
        self.gradient_steps_done = int(state["gradient_steps_done"])
        self._since_train = int(state["since_train"])
        self.rng.bit_generator.state = state["rng"]
        if "normalizer" in state:  # checkpoints written before normalization have none
            self.normalizer.load_state_dict(state["normalizer"])

    # -- acting ---------------------------------------------------------------------------------

    def _env_step(self) -> None:
        """One vector step: act, store the transitions, refresh θ⁻ and ε when due."""
        p = self.config.params
        actions = self._act(self.normalizer.obs(self.obs))
        next_obs, rewards, terminated, truncated, infos = self.env.step(actions)
        real_next = final_observations(next_obs, infos)
        self.replay.add(self.obs, actions, rewards, real_next, terminated, truncated)
        before = self.book.env_steps
        self.book.on_step(rewards, terminated | truncated)
        self.normalizer.update(next_obs, rewards, terminated | truncated)
        self.obs = next_obs
        self._since_train += self.config.n_envs
        C = p.target_update_interval
        if self.book.env_steps // C > before // C:
            self._update_target()
        progress = self.book.env_steps / self.config.total_steps
        self.epsilon = linear_schedule(
            p.exploration_initial_eps, p.exploration_final_eps, p.exploration_fraction, progress
        )

    def _act(self, obs: np.ndarray) -> np.ndarray:
        """ε-greedy on q(s, ·; θ); uniformly random before ``learning_starts`` (as SB3 does)."""
        n = len(obs)
        if self.book.env_steps < self.config.params.learning_starts:
            return self.rng.integers(self.n_actions, size=n)
        actions = self.online.greedy_actions(obs)
        explore = self.rng.random(n) < self.epsilon
        if explore.any():
            actions = np.where(explore, self.rng.integers(self.n_actions, size=n), actions)
        return actions

    def _update_target(self) -> None:
        """θ⁻ ← τθ + (1 − τ)θ⁻ (τ = 1: hard copy)."""
        tau = self.config.params.tau
        if tau >= 1.0:
            self.target.flat.copy_(self.online.flat)
        else:
            self.target.flat.lerp_(self.online.flat, tau)
        self.target_updates += 1

    # -- learning -------------------------------------------------------------------------------

    def _train(self, n_steps: int) -> dict[str, torch.Tensor]:
        """``n_steps`` gradient steps; returns per-step δ and q(s, a; θ) stacked ([n_steps, B])."""
        p = self.config.params
        if p.prioritized:
            return self._train_prioritized(n_steps)
        block = self._normalized(self.replay.sample((n_steps, p.batch_size), self.rng))
        q_next_target = self.target.forward(block.next_obs)  # θ⁻ is fixed during the block
        y_plain = None
        if not p.double:
            y_plain = td_target(block.rewards, block.terminated, q_next_target, self.config.gamma)
        else:  # Double DQN: one forward pass over [s; s′] gives q(s, ·; θ) and q(s′, ·; θ)
            obs_and_next = torch.cat([block.obs, block.next_obs], dim=1)
        actions = block.actions.unsqueeze(-1)
        onehot_over_b = functional.one_hot(block.actions, self.n_actions) / p.batch_size
        huber = p.loss == "huber"
        tds, q_sa = [], []
        for g in range(n_steps):
            if y_plain is None:
                td, q = self._double_td_grad(
                    obs_and_next[g],
                    actions[g],
                    onehot_over_b[g],
                    block.rewards[g],
                    block.terminated[g],
                    q_next_target[g],
                    None,
                )
            else:
                td, q = self.online.td_grad(
                    block.obs[g], actions[g], onehot_over_b[g], y_plain[g], None, huber
                )
            self._clipped_adam_step()
            tds.append(td)
            q_sa.append(q)
        return {"td": torch.stack(tds), "q_sa": torch.stack(q_sa)}

    def _train_prioritized(self, n_steps: int) -> dict[str, torch.Tensor]:
        """Gradient steps on prioritized minibatches; priorities refresh after every step."""
        p = self.config.params
        replay: PrioritizedReplayBuffer = self.replay  # type: ignore[assignment]
        beta, huber = self.per_beta, p.loss == "huber"
        tds, q_sa, weights = [], [], []
        for _ in range(n_steps):
            batch = self._normalized(replay.sample_prioritized(p.batch_size, beta, self.rng))
            actions = batch.actions.unsqueeze(-1)
            onehot_over_b = functional.one_hot(batch.actions, self.n_actions) / p.batch_size
            q_next_target = self.target.forward(batch.next_obs)
            if p.double:
                td, q = self._double_td_grad(
                    torch.cat([batch.obs, batch.next_obs]),
                    actions,
                    onehot_over_b,
                    batch.rewards,
                    batch.terminated,
                    q_next_target,
                    batch.weights,
                )
            else:
                y = td_target(batch.rewards, batch.terminated, q_next_target, self.config.gamma)
                td, q = self.online.td_grad(
                    batch.obs, actions, onehot_over_b, y, batch.weights, huber
                )
            self._clipped_adam_step()
            replay.update_priorities(batch.idx, td.numpy())
            tds.append(td)
            q_sa.append(q)
            weights.append(batch.weights)
        return {"td": torch.stack(tds), "q_sa": torch.stack(q_sa), "weights": torch.stack(weights)}

    def _normalized(self, sample: ReplaySample) -> ReplaySample:
        """The sample with ŝ, ŝ′ and r̂ normalized by the current statistics (unchanged when
        normalization is off)."""
        norm = self.normalizer
        sample.obs = norm.obs_tensor(sample.obs)
        sample.next_obs = norm.obs_tensor(sample.next_obs)
        if norm.normalize_reward:
            sample.rewards = torch.from_numpy(norm.reward(sample.rewards.numpy()))
        return sample

    def _double_td_grad(
        self,
        obs_and_next: torch.Tensor,
        actions: torch.Tensor,
        onehot_over_b: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        q_next_target: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Double DQN's TD gradient from one forward pass over the rows [s; s′].

        The first B rows give q(s, ·; θ) (the prediction, and the backward pass), the last B give
        q(s′, ·; θ), which picks a* = argmax_a q(s′, a; θ) for the target.
        """
        B = len(rewards)
        inputs: list[torch.Tensor] = []
        q_both = self.online.forward(obs_and_next, inputs)
        y = td_target(rewards, terminated, q_next_target, self.config.gamma, q_both[B:])
        huber = self.config.params.loss == "huber"
        return self.online.td_backward(
            [h[:B] for h in inputs], q_both[:B], actions, onehot_over_b, y, weights, huber
        )

    def _clipped_adam_step(self) -> None:
        """One Adam step on the gradient in ``online.grad``, its norm clipped first.

        Clipping as ``torch.nn.utils.clip_grad_norm_``: g ← g · min(1, c / (‖g‖ + 10⁻⁶)).
        """
        grad = self.online.grad
        coef = self.config.params.max_grad_norm / (float(grad.dot(grad)) ** 0.5 + 1e-6)
        if coef < 1.0:
            grad.mul_(coef)
        self.optimizer.step(grad)
        self.gradient_steps_done += 1

    # -- bookkeeping ----------------------------------------------------------------------------

    @property
    def per_beta(self) -> float:
        """β annealed linearly from ``per_beta0`` to 1 over the budget."""
        progress = min(1.0, self.book.env_steps / self.config.total_steps)
        beta0 = self.config.params.per_beta0
        return beta0 + (1.0 - beta0) * progress

    def _metrics(self, stats: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        nan = float("nan")
        metrics = {
            "epsilon": self.epsilon,
            "target_updates": float(self.target_updates),
            "buffer_size": float(len(self.replay)),
            "gradient_steps": float(self.gradient_steps_done),
            "lr": self.config.lr,
            "td_loss": nan,
            "q_mean": nan,
            "q_max": nan,
        }
        if stats:
            q_sa = torch.cat([s["q_sa"].flatten() for s in stats])
            huber = self.config.params.loss == "huber"
            losses = [td_loss(s["td"], s.get("weights"), huber) for s in stats]
            metrics.update(
                td_loss=torch.cat(losses).mean().item(),
                q_mean=q_sa.mean().item(),
                q_max=q_sa.max().item(),
            )
        if self.config.params.prioritized:
            metrics["per_beta"] = self.per_beta
            metrics["per_weight_mean"] = (
                torch.cat([s["weights"].flatten() for s in stats]).mean().item() if stats else nan
            )
        return metrics

    def _evaluate_for_book(self) -> list[float]:
        return self.evaluate(self.config.eval_episodes)

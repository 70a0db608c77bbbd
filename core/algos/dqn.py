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
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional

from core.config import RunConfig
from core.envs import final_observations, make_vec_env
from core.nets import QNetwork
from core.replay import PrioritizedReplayBuffer, ReplayBuffer, ReplaySample
from core.trainer import Bookkeeper, UpdateReport, apply_changes, evaluate_policy

_ZOO_NET = {"hidden_sizes": (256, 256), "activation": "relu", "n_envs": 1, "n_steps": 256}

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
    "Acrobot-v1": {
        "zoo": {
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
    },
}


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    q_next_target: torch.Tensor,
    gamma: float,
    q_next_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = r + γ(1 − terminated) · q(s′, a*; θ⁻).

    ``q_next_target`` holds q(s′, ·; θ⁻) (actions last). With ``q_next_online`` = q(s′, ·; θ) the
    action is chosen by the online network (Double DQN: a* = argmax_a q(s′, a; θ)); without it
    a* = argmax_a q(s′, a; θ⁻), i.e. the plain max.
    """
    chooser = q_next_target if q_next_online is None else q_next_online
    a_star = chooser.argmax(-1, keepdim=True)
    bootstrap = q_next_target.gather(-1, a_star).squeeze(-1)
    return rewards + gamma * (1.0 - terminated) * bootstrap


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """start → end linearly over the first ``fraction`` of training, then constant at ``end``."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(1.0, progress / fraction)


class DQN:
    """The DQN family as a :class:`~core.trainer.Trainer` (flags: double, dueling, prioritized)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self._pending: RunConfig | None = None
        p = config.params
        torch.manual_seed(config.seed)
        self.env = make_vec_env(config.env_id, config.n_envs, config.seed)
        if not isinstance(self.env.single_action_space, gym.spaces.Discrete):
            raise TypeError("DQN needs a discrete action space")
        self.obs, _ = self.env.reset(seed=config.seed)
        obs_dim = int(self.env.single_observation_space.shape[0])
        self.n_actions = int(self.env.single_action_space.n)
        self.q = QNetwork(
            obs_dim, self.n_actions, config.hidden_sizes, config.activation, p.dueling
        )
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=config.lr, fused=True)
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

    def set_hyperparams(self, **changes: Any) -> dict[str, tuple[Any, Any]]:
        """Validate live changes now; they take effect at the start of the next ``update()``."""
        new, diff = apply_changes(self._pending or self.config, changes)
        self._pending = new
        return diff

    def update(self) -> UpdateReport:
        """``n_steps`` vector steps (``n_steps · n_envs`` env steps) and the gradient steps due."""
        self._apply_pending()
        self.book.start()
        stats: list[dict[str, torch.Tensor]] = []
        for _ in range(self.config.n_steps):
            self._env_step()
            if self._since_train >= self.config.params.train_freq:
                self._since_train = 0
                if self.book.env_steps > self.config.params.learning_starts:
                    stats.append(self._train(self.config.params.gradient_steps))
        return self.book.finish(self._metrics(stats), self._evaluate_for_book)

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of the greedy policy argmax_a q(s, a; θ) (fixed evaluation seeds)."""
        return evaluate_policy(
            self.config.env_id,
            lambda obs: self.q(obs).argmax(-1),
            n_episodes,
            seed=self.config.seed + 10_000,
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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.config = RunConfig.from_json(state["config"])
        self._pending = None
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._set_lr(self.config.lr)
        self.replay.load_state_dict(state["replay"])
        self.book.load_state_dict(state["book"])
        self.epsilon = float(state["epsilon"])
        self.target_updates = int(state["target_updates"])
        self.gradient_steps_done = int(state["gradient_steps_done"])
        self._since_train = int(state["since_train"])
        self.rng.bit_generator.state = state["rng"]

    # -- acting ---------------------------------------------------------------------------------

    def _env_step(self) -> None:
        """One vector step: act, store the transitions, refresh θ⁻ and ε when due."""
        p = self.config.params
        actions = self._act(self.obs)
        next_obs, rewards, terminated, truncated, infos = self.env.step(actions)
        real_next = final_observations(next_obs, infos)
        self.replay.add(self.obs, actions, rewards, real_next, terminated, truncated)
        before = self.book.env_steps
        self.book.on_step(rewards, terminated | truncated)
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
        actions = self.rng.integers(self.n_actions, size=n)
        if self.book.env_steps < self.config.params.learning_starts:
            return actions
        greedy = self.rng.random(n) >= self.epsilon
        if greedy.any():
            with torch.inference_mode():
                q = self.q(torch.as_tensor(obs, dtype=torch.float32))
            actions = np.where(greedy, q.argmax(-1).numpy(), actions)
        return actions

    def _update_target(self) -> None:
        """θ⁻ ← τθ + (1 − τ)θ⁻ (τ = 1: hard copy)."""
        tau = self.config.params.tau
        with torch.no_grad():
            online, target = list(self.q.parameters()), list(self.q_target.parameters())
            if tau >= 1.0:
                torch._foreach_copy_(target, online)
            else:
                torch._foreach_lerp_(target, online, tau)
        self.target_updates += 1

    # -- learning -------------------------------------------------------------------------------

    def _train(self, n_steps: int) -> dict[str, torch.Tensor]:
        """``n_steps`` gradient steps; returns stacked per-step statistics (tensors)."""
        p = self.config.params
        if p.prioritized:
            return self._train_prioritized(n_steps)
        block = self.replay.sample((n_steps, p.batch_size), self.rng)
        with torch.no_grad():
            q_next_target = self.q_target(block.next_obs)  # θ⁻ is fixed during the block
            y_plain = None
            if not p.double:
                y_plain = td_target(
                    block.rewards, block.terminated, q_next_target, self.config.gamma
                )
        losses, q_sa = [], []
        for g in range(n_steps):
            if y_plain is None:
                with torch.no_grad():
                    y = td_target(
                        block.rewards[g],
                        block.terminated[g],
                        q_next_target[g],
                        self.config.gamma,
                        q_next_online=self.q(block.next_obs[g]),
                    )
            else:
                y = y_plain[g]
            loss, q, _ = self._gradient_step(block.obs[g], block.actions[g], y, None)
            losses.append(loss)
            q_sa.append(q)
        return {"td_loss": torch.stack(losses), "q_sa": torch.stack(q_sa)}

    def _train_prioritized(self, n_steps: int) -> dict[str, torch.Tensor]:
        """Gradient steps on prioritized minibatches; priorities refresh after every step."""
        p = self.config.params
        replay: PrioritizedReplayBuffer = self.replay  # type: ignore[assignment]
        beta = self.per_beta
        losses, q_sa, weights = [], [], []
        for _ in range(n_steps):
            batch = replay.sample_prioritized(p.batch_size, beta, self.rng)
            with torch.no_grad():
                y = self._targets(batch)
            loss, q, td = self._gradient_step(batch.obs, batch.actions, y, batch.weights)
            replay.update_priorities(batch.idx, td.numpy())
            losses.append(loss)
            q_sa.append(q)
            weights.append(batch.weights)
        return {
            "td_loss": torch.stack(losses),
            "q_sa": torch.stack(q_sa),
            "weights": torch.stack(weights),
        }

    def _targets(self, batch: ReplaySample) -> torch.Tensor:
        online = self.q(batch.next_obs) if self.config.params.double else None
        return td_target(
            batch.rewards,
            batch.terminated,
            self.q_target(batch.next_obs),
            self.config.gamma,
            q_next_online=online,
        )

    def _gradient_step(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        y: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One Adam step on mean_i w_i · ℓ(q(s_i, a_i; θ) − y_i); returns (loss, q_sa, δ)."""
        p = self.config.params
        q_sa = self.q(obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        if p.loss == "huber":
            per_sample = functional.smooth_l1_loss(
                q_sa, y, reduction="none" if weights is not None else "mean"
            )
        else:
            per_sample = functional.mse_loss(
                q_sa, y, reduction="none" if weights is not None else "mean"
            )
        loss = per_sample if weights is None else (weights * per_sample).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q.parameters(), p.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.gradient_steps_done += 1
        q_sa = q_sa.detach()
        return loss.detach(), q_sa, q_sa - y

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
            metrics.update(
                td_loss=torch.cat([s["td_loss"] for s in stats]).mean().item(),
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

    def _apply_pending(self) -> None:
        if self._pending is not None:
            self.config, self._pending = self._pending, None
            self._set_lr(self.config.lr)

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

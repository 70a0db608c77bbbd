"""Experience replay: a uniform buffer and prioritized replay with a sum-tree.

Both store transitions (s, a, r, s′, terminated, truncated) in preallocated numpy arrays (a ring
of ``capacity`` rows). ``terminated`` (a true terminal state: no bootstrap) is kept apart from
``truncated`` (a time-limit cut: the state is not terminal, so the target still bootstraps from
s′, the real final observation, never the reset observation).

Prioritized replay (Schaul et al. 2016), proportional variant:

    p_i  = |δ_i| + ε                        (priority from the last TD error)
    P(i) = p_iᵅ / Σ_k p_kᵅ                  (α applied once: the tree stores p_iᵅ)
    w_i  = (N · P(i))^(−β) / max_j w_j      (importance weights; max over the minibatch, so the
                                             largest weight is 1 and updates only shrink)

New transitions get the largest priority seen so far, so each is replayed at least once soon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ReplaySample:
    """A minibatch (or a stack of minibatches: leading dims ``idx.shape``) as torch tensors."""

    idx: np.ndarray
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    weights: torch.Tensor | None = None


class ReplayBuffer:
    """Uniform replay over a ring of ``capacity`` transitions (oldest overwritten first)."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.truncated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> np.ndarray:
        """Store a batch of transitions (one per sub-env); return the rows written."""
        n = len(actions)
        idx = np.arange(self.pos, self.pos + n) % self.capacity
        # without a wrap-around, a slice writes the same rows faster than the index array
        rows = slice(self.pos, self.pos + n) if self.pos + n <= self.capacity else idx
        self.obs[rows] = obs
        self.next_obs[rows] = next_obs
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.terminated[rows] = terminated
        self.truncated[rows] = truncated
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return idx

    def sample_indices(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Uniform indices (with replacement) over the stored transitions."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=shape)

    def gather(self, idx: np.ndarray) -> ReplaySample:
        """The transitions at ``idx`` (any shape) as tensors with leading dims ``idx.shape``."""
        return ReplaySample(
            idx=idx,
            obs=torch.from_numpy(self.obs[idx]),
            actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]),
            next_obs=torch.from_numpy(self.next_obs[idx]),
            terminated=torch.from_numpy(self.terminated[idx]),
            truncated=torch.from_numpy(self.truncated[idx]),
        )

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> ReplaySample:
        """Uniformly drawn transitions; ``shape=(G, B)`` draws G minibatches of B at once."""
        return self.gather(self.sample_indices(shape, rng))

    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")

    def state_dict(self) -> dict:
        """The stored rows (only the filled part) as tensors, plus the ring position."""
        state = {
            name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in self._ARRAYS
        }
        state.update(pos=self.pos, size=self.size)
        return state

    def load_state_dict(self, state: dict) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"saved buffer holds {size} rows, capacity is {self.capacity}")
        for name in self._ARRAYS:
            getattr(self, name)[:size] = state[name].numpy()
        self.pos, self.size = int(state["pos"]), size


class SumTree:
    """A binary tree whose internal nodes hold the sum of their children's values.

    Leaves live at ``tree[L + i]`` (``L`` = capacity rounded up to a power of two), the root at
    ``tree[1]``. Updating k leaves and drawing k samples both cost O(k log n) as log n vectorised
    numpy steps (one per tree level). Values are float64, and every parent is recomputed from its
    children (never incremented), so the total does not drift.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.leaf0 = 1 << max(0, (capacity - 1).bit_length())
        self.depth = self.leaf0.bit_length() - 1
        self.tree = np.zeros(2 * self.leaf0, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[self.leaf0 + np.asarray(idx)]

    def update(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx`` to ``values`` (≥ 0) and refresh their ancestors, level by level.

        Repeated indices are fine: the last value wins, and parents are recomputed from children.
        """
        values = np.asarray(values, dtype=np.float64)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("sum-tree values must be finite and non-negative")
        node = self.leaf0 + np.asarray(idx, dtype=np.int64)
        self.tree[node] = values
        for _ in range(self.depth):
            node >>= 1
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaves i with Σ_{j<i} v_j ≤ u < Σ_{j≤i} v_j for each u in ``prefix`` (in [0, total)).

        A leaf of value 0 is never returned for u inside [0, total).
        """
        u = np.array(prefix, dtype=np.float64)
        node = np.ones(u.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.tree[left]
            right = u >= left_sum
            u = np.where(right, u - left_sum, u)
            # rounding can leave u a hair above the right subtree's sum: stay inside a non-empty
            # child rather than walk into an empty one
            right &= self.tree[left + 1] > 0
            node = left + right
        return node - self.leaf0

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Leaves drawn i.i.d. with probability v_i / Σ v (rejects an all-zero tree)."""
        total = self.total
        if not total > 0:
            raise ValueError("cannot sample: all priorities are zero")
        return self.find(rng.random(shape) * total)


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (see the module docstring for the formulas)."""

    def __init__(self, capacity: int, obs_dim: int, alpha: float, eps: float) -> None:
        super().__init__(capacity, obs_dim)
        self.alpha = alpha
        self.eps = eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # largest p_i = |δ_i| + ε seen so far (before the exponent α)

    def add(self, *transition: np.ndarray) -> np.ndarray:
        idx = super().add(*transition)
        self.tree.update(idx, np.full(len(idx), self.max_priority**self.alpha))
        return idx

    def probabilities(self, idx: np.ndarray) -> np.ndarray:
        """P(i) = p_iᵅ / Σ_k p_kᵅ."""
        return self.tree[idx] / self.tree.total

    def importance_weights(self, idx: np.ndarray, beta: float) -> np.ndarray:
        """w_i = (N · P(i))^(−β) / max_j w_j over the minibatch (last axis) of ``idx``."""
        w = (self.size * self.probabilities(idx)) ** (-beta)
        return w / w.max(axis=-1, keepdims=True)

    def sample_prioritized(
        self, batch_size: int, beta: float, rng: np.random.Generator
    ) -> ReplaySample:
        """A minibatch drawn with P(i), with its importance weights (float32 tensor)."""
        idx = self.tree.sample((batch_size,), rng)
        sample = self.gather(idx)
        sample.weights = torch.from_numpy(self.importance_weights(idx, beta).astype(np.float32))
        return sample

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i ← |δ_i| + ε; the tree stores p_iᵅ."""
        p = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(p.max()))
        self.tree.update(idx, p**self.alpha)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(
            priorities=torch.from_numpy(self.tree[np.arange(self.size)].copy()),
            max_priority=self.max_priority,
        )
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tree.update(np.arange(self.size), state["priorities"].numpy())
        self.max_priority = float(state["max_priority"])

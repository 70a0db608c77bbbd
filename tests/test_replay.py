"""Replay buffers: ring storage, the sum-tree, and prioritized sampling / importance weights."""

import numpy as np
import pytest
from scipy import stats

from core.engine.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree


def _add(buffer: ReplayBuffer, start: int, n: int, terminated=None, truncated=None) -> np.ndarray:
    """Store n transitions whose observations and rewards encode their index start..start+n-1."""
    i = np.arange(start, start + n, dtype=np.float32)
    return buffer.add(
        np.stack([i, -i], 1),
        (i % 2).astype(np.int64),
        i,
        np.stack([i + 0.5, -i], 1),
        np.zeros(n) if terminated is None else terminated,
        np.zeros(n) if truncated is None else truncated,
    )


def _internal_nodes_are_sums(tree: SumTree) -> bool:
    t = tree.tree
    return np.allclose(t[1 : tree.leaf0], t[2 : 2 * tree.leaf0 : 2] + t[3 : 2 * tree.leaf0 : 2])


def test_sum_tree_sampling_frequencies_match_priorities():
    rng = np.random.default_rng(0)
    tree = SumTree(11)  # not a power of two: padded leaves must never be drawn
    values = rng.uniform(0.1, 3.0, size=11)
    values[4] = 0.0
    tree.update(np.arange(11), values)
    draws = tree.sample((200_000,), np.random.default_rng(1))
    counts = np.bincount(draws, minlength=tree.leaf0)
    assert counts[4] == 0 and counts[11:].sum() == 0
    nonzero = values > 0
    expected = values[nonzero] / values.sum() * len(draws)
    _, p_value = stats.chisquare(counts[:11][nonzero], expected)
    assert p_value > 1e-3


def test_sum_tree_total_stays_exact_under_repeated_updates():
    rng = np.random.default_rng(2)
    tree = SumTree(37)
    leaves = np.zeros(37)
    for _ in range(200):
        idx = rng.integers(0, 37, size=8)  # repeats included: the last value wins
        values = rng.exponential(size=8)
        tree.update(idx, values)
        for i, v in zip(idx, values):
            leaves[i] = v
        assert tree.total == pytest.approx(leaves.sum(), rel=1e-12)
    assert np.array_equal(tree[np.arange(37)], leaves)
    assert _internal_nodes_are_sums(tree)


def test_sum_tree_find_returns_the_leaf_holding_each_prefix_sum():
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 0.0, 2.0, 3.0]))
    u = np.array([0.0, 0.999, 1.0, 2.5, 2.999, 3.0, 5.999])
    assert tree.find(u).tolist() == [0, 0, 2, 2, 2, 3, 3]


def test_sum_tree_rejects_all_zero_and_negative_priorities():
    tree = SumTree(8)
    with pytest.raises(ValueError, match="all priorities are zero"):
        tree.sample((4,), np.random.default_rng(0))
    tree.update(np.arange(8), np.zeros(8))
    with pytest.raises(ValueError, match="all priorities are zero"):
        tree.sample((4,), np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        tree.update(np.array([1]), np.array([-0.5]))
    with pytest.raises(ValueError, match="non-negative"):
        tree.update(np.array([1]), np.array([np.nan]))


def test_replay_ring_wraps_around_capacity_keeping_newest_rows():
    buffer = ReplayBuffer(capacity=5, obs_dim=2)
    assert _add(buffer, 0, 3).tolist() == [0, 1, 2]
    assert _add(buffer, 3, 3).tolist() == [3, 4, 0]  # the rows written, across the wrap
    assert _add(buffer, 6, 1).tolist() == [1]
    assert len(buffer) == 5 and buffer.pos == 2
    # rows 0, 1 now hold transitions 5, 6; rows 2..4 still hold 2..4
    assert buffer.rewards.tolist() == [5, 6, 2, 3, 4]
    assert np.array_equal(buffer.next_obs[:, 0], buffer.rewards + 0.5)


def test_uniform_sampling_draws_only_stored_rows():
    buffer = ReplayBuffer(capacity=100, obs_dim=2)
    _add(buffer, 0, 7)
    sample = buffer.sample((50, 4), np.random.default_rng(0))
    assert sample.obs.shape == (50, 4, 2) and sample.actions.shape == (50, 4)
    assert set(sample.idx.ravel().tolist()) == set(range(7))
    assert np.array_equal(sample.rewards.numpy(), sample.idx.astype(np.float32))


def test_terminated_and_truncated_are_stored_apart():
    buffer = ReplayBuffer(capacity=4, obs_dim=2)
    _add(buffer, 0, 3, terminated=np.array([0, 1, 0]), truncated=np.array([0, 0, 1]))
    sample = buffer.gather(np.arange(3))
    assert sample.terminated.tolist() == [0, 1, 0]
    assert sample.truncated.tolist() == [0, 0, 1]


def test_prioritized_replay_applies_alpha_once():
    alpha, eps = 0.6, 1e-3
    buffer = PrioritizedReplayBuffer(capacity=8, obs_dim=2, alpha=alpha, eps=eps)
    _add(buffer, 0, 5)
    td = np.array([0.5, -2.0, 0.0, 1.0, 3.0])
    buffer.update_priorities(np.arange(5), td)
    p = np.abs(td) + eps
    expected_P = p**alpha / np.sum(p**alpha)
    assert np.allclose(buffer.probabilities(np.arange(5)), expected_P, rtol=1e-12)


def test_new_transitions_get_the_largest_priority_seen_and_overwrite_on_wrap():
    buffer = PrioritizedReplayBuffer(capacity=4, obs_dim=2, alpha=0.5, eps=0.0)
    _add(buffer, 0, 4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 9.0, 4.0, 1.0]))
    _add(buffer, 4, 2)  # overwrites rows 0 and 1
    assert np.allclose(buffer.tree[np.arange(4)], [3.0, 3.0, 2.0, 1.0])
    assert buffer.tree.total == pytest.approx(9.0)


def test_importance_weights_equal_the_formula_with_max_one():
    alpha, beta, eps = 0.7, 0.4, 1e-2
    buffer = PrioritizedReplayBuffer(capacity=16, obs_dim=2, alpha=alpha, eps=eps)
    _add(buffer, 0, 10)
    td = np.random.default_rng(3).normal(size=10)
    buffer.update_priorities(np.arange(10), td)
    sample = buffer.sample_prioritized(32, beta, np.random.default_rng(4))
    p = (np.abs(td) + eps) ** alpha
    P = p / p.sum()
    w = (10 * P[sample.idx]) ** (-beta)
    assert np.allclose(sample.weights.numpy(), w / w.max(), rtol=1e-5)
    assert sample.weights.max().item() == pytest.approx(1.0)
    assert np.array_equal(sample.rewards.numpy(), sample.idx.astype(np.float32))


def test_prioritized_buffer_state_dict_round_trip():
    buffer = PrioritizedReplayBuffer(capacity=8, obs_dim=2, alpha=0.6, eps=1e-3)
    _add(buffer, 0, 6)
    buffer.update_priorities(np.arange(6), np.arange(6.0))
    copy = PrioritizedReplayBuffer(capacity=8, obs_dim=2, alpha=0.6, eps=1e-3)
    copy.load_state_dict(buffer.state_dict())
    assert np.array_equal(copy.obs, buffer.obs) and copy.pos == buffer.pos
    assert np.array_equal(copy.tree.tree, buffer.tree.tree)
    assert copy.max_priority == buffer.max_priority

"""Policy, value and Q-networks as ``nn.Module``s: their parameters, initialisation and checkpoint
format (orthogonal init, as in the PPO/TRPO reference implementations).

Each network is an MLP built from its layer sizes and an activation name, and keeps both as
``sizes`` and ``activation``. The trainers' fast paths run it as a
:class:`~core.engine.fast.mlp.FlatMLP` of the same sizes whose flat tensor the module's parameters
become views of (``FlatMLP.bind``), so the ``state_dict`` keys and the checkpoints stay the
modules'. The modules' own forward pass (with autograd) serves TRPO's policy gradient, evaluation
and the tests.

Actors expose the same small interface whatever the action space, in closed form
(``core/engine/fast/heads.py``):

- ``log_prob_entropy(obs, actions)``: log π(a|s) and the entropy (the rollout's log-probabilities);
- ``act(obs, deterministic)``: sampled (or greedy / mean) actions and their log-probabilities.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from core.engine.fast import heads

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(
    in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: str, out_gain: float
) -> nn.Sequential:
    """Linear layers with ``activation`` between; orthogonal init (gain √2, last ``out_gain``)."""
    layers: list[nn.Module] = []
    sizes = (in_dim, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [_ortho(nn.Linear(a, b), math.sqrt(2)), ACTIVATIONS[activation]()]
    layers.append(_ortho(nn.Linear(sizes[-1], out_dim), out_gain))
    return nn.Sequential(*layers)


def _ortho(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class CategoricalActor(nn.Module):
    """π(a|s) = softmax(logits(s))_a for discrete actions."""

    discrete = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.sizes, self.activation = (obs_dim, *hidden, n_actions), activation
        self.net = mlp(obs_dim, hidden, n_actions, activation, out_gain=0.01)

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor):
        """log π(a|s) = log_softmax(logits)_a and H = −Σ p log p."""
        logp_all = torch.log_softmax(self.net(obs), dim=-1)
        return heads.categorical_log_prob(logp_all, actions), heads.categorical_entropy(logp_all)

    def act(self, obs: torch.Tensor, deterministic: bool = False):
        logits = self.net(obs)
        if deterministic:
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(torch.softmax(logits, -1), 1).squeeze(-1)
        return actions, heads.categorical_log_prob(torch.log_softmax(logits, -1), actions)


class GaussianActor(nn.Module):
    """π(a|s) = N(μ(s), diag(σ²)) with a state-independent log σ."""

    discrete = False

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...],
        activation: str,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.sizes, self.activation = (obs_dim, *hidden, act_dim), activation
        self.net = mlp(obs_dim, hidden, act_dim, activation, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor):
        """log N(a; μ, σ²) summed over action dims; H = Σ (½ log(2πe) + log σ)."""
        mean = self.net(obs)
        log_std = self.log_std.expand_as(mean)
        u = (actions - mean) / log_std.exp()
        return heads.gaussian_log_prob(u, log_std), heads.gaussian_entropy(log_std)

    def act(self, obs: torch.Tensor, deterministic: bool = False):
        mean = self.net(obs)
        std = self.log_std.exp()
        actions = mean if deterministic else mean + std * torch.randn_like(mean)
        return actions, heads.gaussian_log_prob((actions - mean) / std, self.log_std)


Actor = CategoricalActor | GaussianActor


def make_actor(
    obs_space: gym.Space, act_space: gym.Space, hidden: tuple[int, ...], activation: str
) -> Actor:
    """The actor matching the action space (Discrete → Categorical, Box → diagonal Gaussian)."""
    obs_dim = int(obs_space.shape[0])
    if isinstance(act_space, gym.spaces.Discrete):
        return CategoricalActor(obs_dim, int(act_space.n), hidden, activation)
    if isinstance(act_space, gym.spaces.Box):
        return GaussianActor(obs_dim, int(act_space.shape[0]), hidden, activation)
    raise TypeError(f"unsupported action space {act_space}")


class Critic(nn.Module):
    """V(s): an MLP with one output."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.sizes, self.activation = (obs_dim, *hidden, 1), activation
        self.net = mlp(obs_dim, hidden, 1, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class QNetwork(nn.Module):
    """Q(s, ·; θ) for discrete actions: an MLP, or a dueling head (Wang et al. 2016).

    Dueling: a shared trunk (the hidden layers) feeds a value stream V(s) and an advantage stream
    A(s, a), combined as Q(s, a) = V(s) + A(s, a) − mean_a′ A(s, a′), so the centred advantages
    have zero mean over actions and V is identifiable.

    Layers keep PyTorch's default initialisation, as Stable-Baselines3's DQN does (on CartPole at
    RL-Zoo settings the orthogonal √2 init of the actors learned less stably in our benchmark).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: tuple[int, ...],
        activation: str,
        dueling: bool = False,
    ):
        super().__init__()
        self.sizes, self.activation = (obs_dim, *hidden, n_actions), activation
        self.dueling = dueling
        layers: list[nn.Module] = []
        for a, b in zip((obs_dim, *hidden[:-1]), hidden):
            layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        if dueling:
            self.trunk = nn.Sequential(*layers)
            self.value = nn.Linear(hidden[-1], 1)
            self.advantage = nn.Linear(hidden[-1], n_actions)
        else:
            self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], n_actions))

    def streams(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dueling only: V(s) with shape ``[..., 1]`` and the centred advantages A − mean_a A."""
        h = self.trunk(obs)
        a = self.advantage(h)
        return self.value(h), a - a.mean(-1, keepdim=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.dueling:
            return self.net(obs)
        v, a = self.streams(obs)
        return v + a

"""The run: everything one training run needs, validated in one place.

``RunConfig`` holds the shared fields (environment, budget, rollout, discount, networks,
evaluation) and the algorithm's own dataclass in ``params``. Its :meth:`RunConfig.validate` is
the one validation path: every field's type and range (its ``Spec``), the algorithm's parameter
class, the environment (``core.config.environments``) and the cross-field rules.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from core.config.algorithms import (
    ALGO_PARAMS,
    ALGORITHMS,
    UNUSED_FIELDS,
    DQNConfig,
    default_params,
)
from core.config.environments import check_env_id
from core.config.specs import (
    ConfigError,
    Spec,
    check_at_most,
    check_value,
    coerce,
    field_names,
    field_spec,
    param,
)


@dataclass
class RunConfig:
    """Everything one training run needs. Algorithm-specific fields live in ``params``."""

    algo: str = param("ppo", "Algorithm", choices=ALGORITHMS)
    env_id: str = param("CartPole-v1", "Environment")
    total_steps: int = param(100_000, "Budget (env steps)", low=1, high=100_000_000)
    seed: int = param(0, "Seed", low=0, high=2**31 - 1)
    n_envs: int = param(8, "Parallel envs", low=1, high=64)
    n_steps: int = param(256, "Steps per env per update", low=1, high=100_000)
    gamma: float = param(0.99, "Discount γ", low=0, low_open=True, high=1.0, live=True)
    gae_lambda: float = param(0.95, "GAE λ", low=0, high=1.0, live=True)
    lr: float = param(3e-4, "Learning rate", low=0, low_open=True, high=1.0, live=True, log=True)
    hidden_sizes: tuple[int, ...] = param((64, 64), "Hidden layer sizes", low=1, high=1024)
    activation: str = param("tanh", "Activation", choices=("tanh", "relu"))
    normalize_advantage: bool = param(True, "Normalize advantages")
    normalize_obs: bool = param(
        False,
        "Normalize observations",
        help="(s − running mean) / running std, clipped to ±clip_obs (SB3's VecNormalize); "
        "statistics learn while training, frozen at evaluation.",
    )
    normalize_reward: bool = param(
        False,
        "Normalize rewards",
        help="r / running std of the discounted return, clipped to ±clip_reward; "
        "episode returns shown stay raw.",
    )
    clip_obs: float = param(
        10.0, "Observation clip", low=0, low_open=True, high=1e6, help="Normalized s in ±this."
    )
    clip_reward: float = param(
        10.0, "Reward clip", low=0, low_open=True, high=1e6, help="Normalized r in ±this."
    )
    eval_every: int = param(
        10_000, "Evaluate every (env steps, 0 = never)", low=0, high=100_000_000
    )
    eval_episodes: int = param(5, "Evaluation episodes", low=1, high=1000)
    name: str = param("", "Run name")
    params: Any = field(default=None, metadata={"spec": Spec(label="Algorithm parameters")})

    def __post_init__(self) -> None:
        if self.params is None:
            self.params = default_params(self.algo)
        self.hidden_sizes = tuple(self.hidden_sizes)

    # -- lookup -------------------------------------------------------------------------------

    def owner_of(self, key: str) -> Any:
        """The dataclass instance holding field ``key`` (self or ``params``)."""
        if key != "params" and key in field_names(self):
            return self
        if key in field_names(self.params):
            return self.params
        raise ConfigError(
            key, f"unknown hyperparameter for {self.algo}; known: " + ", ".join(sorted(self.keys()))
        )

    def keys(self) -> list[str]:
        """All flat hyperparameter names of this run (shared first, then the algorithm's)."""
        shared = [n for n in field_names(self) if n != "params"]
        return shared + list(field_names(self.params))

    def get(self, key: str) -> Any:
        return getattr(self.owner_of(key), key)

    def spec(self, key: str) -> Spec:
        return field_spec(self.owner_of(key), key)

    def live_keys(self) -> list[str]:
        """Hyperparameters that may be changed while the run trains (and that it uses)."""
        unused = self.unused_keys()
        return [k for k in self.keys() if self.spec(k).live and k not in unused]

    def unused_keys(self) -> set[str]:
        """Fields this algorithm and variant never read (the pages hide them)."""
        unused = set(UNUSED_FIELDS.get(self.algo, ()))
        if self.algo in ("ppo", "ppo-kl"):
            kl = self.params.penalty == "kl"
            unused |= {"clip_eps", "anneal_clip"} if kl else {"kl_target", "kl_beta0"}
        return unused

    # -- change and validate --------------------------------------------------------------------

    def with_changes(self, **changes: Any) -> RunConfig:
        """A validated copy with ``changes`` applied (values may be strings, as from a CLI).

        Changing ``algo`` resets ``params`` to that algorithm's defaults before other changes.
        """
        new = dataclasses.replace(self, params=dataclasses.replace(self.params))
        if "algo" in changes:
            algo = coerce(new, "algo", changes["algo"])
            if algo != new.algo:
                new.algo = algo
                new.params = default_params(algo)
        for key, raw in changes.items():
            if key == "algo":
                continue
            owner = new.owner_of(key)
            setattr(owner, key, coerce(owner, key, raw))
        new.validate()
        return new

    def validate(self) -> RunConfig:
        """Raise :class:`ConfigError` naming the first bad field; return self if all is well."""
        for owner in (self, self.params):
            for f in dataclasses.fields(owner):
                if f.name != "params":
                    check_value(owner, f.name, getattr(owner, f.name))
        if self.params.__class__ is not ALGO_PARAMS[self.algo]:
            raise ConfigError(
                "params",
                f"parameters of {type(self.params).__name__} do not belong "
                f"to algorithm {self.algo}",
            )
        check_env_id(self.env_id, self.algo)
        self._check_pairs()
        return self

    def _check_pairs(self) -> None:
        """Cross-field rules; each error names the field to change and its allowed range.

        - PPO ``minibatch_size`` and TRPO/NPG ``critic_minibatch`` ≤ the batch n_envs·n_steps
          (a larger one silently becomes one full-batch step per epoch);
        - DQN ``batch_size`` ≤ ``buffer_size`` (the buffer never holds that many rows, so every
          minibatch repeats some).
        """
        batch = self.n_envs * self.n_steps
        for key in ("minibatch_size", "critic_minibatch"):
            check_at_most(self.params, key, batch, "the batch n_envs·n_steps")
        if isinstance(self.params, DQNConfig):
            check_at_most(self.params, "batch_size", self.params.buffer_size, "buffer_size")

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def flat(self) -> dict[str, Any]:
        """All hyperparameters as one flat dict (for tables and CSV headers)."""
        return {k: self.get(k) for k in self.keys()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        algo = d.get("algo", "ppo")
        params = d.pop("params", None) or {}
        base = cls(algo=algo)
        flat = {k: v for k, v in d.items() if k != "algo"}
        flat.update(params)
        return base.with_changes(**_stored_meaning(base, flat))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))


def _stored_meaning(base: RunConfig, flat: dict[str, Any]) -> dict[str, Any]:
    """Stored values that older versions accepted, in today's terms: a TRPO/NPG
    ``critic_minibatch`` larger than the batch always meant one full-batch step (the
    cross-check came later), so it reads as the batch; runs stored before stay readable."""
    if "critic_minibatch" in field_names(base.params):
        try:
            batch = int(flat.get("n_envs", base.n_envs)) * int(flat.get("n_steps", base.n_steps))
            if int(flat.get("critic_minibatch", 0)) > batch:
                flat = {**flat, "critic_minibatch": batch}
        except (TypeError, ValueError):
            pass  # a bad value gets its own message from validation
    return flat

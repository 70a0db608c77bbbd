"""Run configuration: one dataclass per algorithm plus the shared ``RunConfig``.

Every field carries a :class:`Spec` (label, allowed range, whether it may be changed on a
running run). The one validation path (:meth:`RunConfig.validate`) and the app's widgets both
read it, so the CLI, the pages and the sweeps accept exactly the same values.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

ALGORITHMS = ("trpo", "npg", "ppo", "ppo-kl", "a2c", "dqn")


class ConfigError(ValueError):
    """A configuration value is not allowed. ``field`` names it; ``str()`` is one readable line."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Spec:
    """What a field means and which values it accepts.

    ``low``/``high`` bound numbers (``*_open`` excludes the bound); ``choices`` lists the allowed
    strings; ``live`` marks hyperparameters a running run may change; ``log`` asks widgets for a
    log-scale control; ``optional`` allows ``None`` (meaning "off").
    """

    label: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    live: bool = False
    log: bool = False
    optional: bool = False

    def range_text(self) -> str:
        """The allowed range in interval notation, e.g. ``(0, 1]``."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        lo = "-∞" if self.low is None else _fmt(self.low)
        hi = "∞" if self.high is None else _fmt(self.high)
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{left}{lo}, {hi}{right}"

    def contains(self, value: float) -> bool:
        """Whether a number lies in the allowed range."""
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _fmt(x: float) -> str:
    return f"{x:g}"


def param(default: Any, label: str, **spec: Any) -> Any:
    """A dataclass field with its :class:`Spec` in the metadata."""
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are not allowed")
    return field(default=default, metadata={"spec": Spec(label=label, **spec)})


# ---------------------------------------------------------------------------------------------
# Algorithm-specific parameters
# ---------------------------------------------------------------------------------------------


@dataclass
class TRPOConfig:
    """TRPO / NPG (Schulman et al. 2015, App. C). NPG is the same step without the line search."""

    delta: float = param(
        0.01,
        "KL bound δ",
        low=0,
        low_open=True,
        high=1.0,
        live=True,
        log=True,
        help="Trust-region radius: mean KL(π_old‖π_new) allowed per update.",
    )
    damping: float = param(
        0.1,
        "CG damping c",
        low=0,
        high=10.0,
        live=True,
        log=True,
        help="Added to the Fisher matrix: (F + cI)x = g.",
    )
    cg_iters: int = param(10, "CG iterations", low=1, high=100, live=True)
    cg_tol: float = param(1e-10, "CG tolerance on rᵀr", low=0, low_open=True, high=1.0, log=True)
    backtrack_coef: float = param(
        0.8,
        "Backtrack coefficient α",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        live=True,
        help="Trial steps are αʲ·s.",
    )
    max_backtracks: int = param(10, "Max backtracks", low=1, high=50, live=True)
    fvp_subsample: float = param(
        1.0,
        "FVP subsample fraction",
        low=0,
        low_open=True,
        high=1.0,
        help="Fraction of the batch used for Fisher-vector products.",
    )
    critic_lr: float = param(
        1e-3, "Critic learning rate", low=0, low_open=True, high=1.0, live=True, log=True
    )
    critic_iters: int = param(20, "Critic epochs per update", low=1, high=200, live=True)
    critic_minibatch: int = param(128, "Critic minibatch size", low=1, high=1_000_000)


@dataclass
class PPOConfig:
    """PPO (Schulman et al. 2017): clipped objective, or adaptive-KL penalty (``penalty='kl'``)."""

    penalty: str = param(
        "clip",
        "Objective",
        choices=("clip", "kl"),
        help="clip: min(r·Â, clip(r)·Â); kl: r·Â − β·KL with adaptive β.",
    )
    clip_eps: float = param(0.2, "Clip ε", low=0, low_open=True, high=1.0, live=True)
    kl_target: float = param(
        0.01, "KL target d_targ", low=0, low_open=True, high=1.0, live=True, log=True
    )
    kl_beta0: float = param(1.0, "Initial β", low=0, low_open=True, high=1e3, log=True)
    epochs: int = param(10, "Epochs per update", low=1, high=100, live=True)
    minibatch_size: int = param(64, "Minibatch size", low=1, high=1_000_000)
    target_kl: float | None = param(
        None,
        "Early-stop KL",
        low=0,
        low_open=True,
        high=1.0,
        optional=True,
        live=True,
        help="Stop the epochs when approx_kl exceeds this (off: None).",
    )
    vf_coef: float = param(0.5, "Value loss coefficient", low=0, high=10.0, live=True)
    ent_coef: float = param(0.0, "Entropy coefficient", low=0, high=1.0, live=True)
    max_grad_norm: float = param(
        0.5, "Gradient clip norm", low=0, low_open=True, high=100.0, live=True
    )
    anneal_lr: bool = param(False, "Decay lr linearly to 0")
    anneal_clip: bool = param(False, "Decay clip ε linearly to 0")
    log_std_init: float = param(
        0.0, "Initial log σ", low=-5.0, high=2.0, help="Gaussian policies (continuous actions)."
    )


@dataclass
class A2CConfig:
    """Synchronous advantage actor-critic with GAE (Mnih et al. 2016)."""

    vf_coef: float = param(0.5, "Value loss coefficient", low=0, high=10.0, live=True)
    ent_coef: float = param(0.0, "Entropy coefficient", low=0, high=1.0, live=True)
    max_grad_norm: float = param(
        0.5, "Gradient clip norm", low=0, low_open=True, high=100.0, live=True
    )
    optimizer: str = param(
        "rmsprop",
        "Optimizer",
        choices=("rmsprop", "adam"),
        help="rmsprop: α 0.99, ε 1e-5 (as SB3's A2C); adam: ε 1e-5.",
    )
    anneal_lr: bool = param(False, "Decay lr linearly to 0")
    log_std_init: float = param(
        0.0, "Initial log σ", low=-5.0, high=2.0, help="Gaussian policies (continuous actions)."
    )


@dataclass
class DQNConfig:
    """DQN (Mnih et al. 2015) with optional Double, Dueling and prioritized replay.

    ``target_update_interval`` counts **env steps** (SB3 semantics), not gradient steps.
    """

    double: bool = param(False, "Double DQN")
    dueling: bool = param(False, "Dueling head")
    prioritized: bool = param(False, "Prioritized replay")
    buffer_size: int = param(100_000, "Replay buffer size", low=1, high=10_000_000)
    batch_size: int = param(64, "Batch size", low=1, high=65_536)
    learning_starts: int = param(1000, "Learning starts (env steps)", low=0, high=10_000_000)
    train_freq: int = param(
        4,
        "Train every (env steps)",
        low=1,
        high=100_000,
        help="Env steps between training rounds (summed over the parallel envs).",
    )
    gradient_steps: int = param(1, "Gradient steps per train", low=1, high=100_000)
    target_update_interval: int = param(
        1000,
        "Target update every (env steps)",
        low=1,
        high=10_000_000,
        live=True,
        help="Counts env steps, not gradient steps (SB3 semantics): with train_freq 256 and "
        "interval 10, θ⁻ is refreshed once before each block of gradient steps.",
    )
    tau: float = param(
        1.0,
        "Target update τ (1 = hard copy)",
        low=0,
        low_open=True,
        high=1.0,
        help="At each refresh θ⁻ ← τθ + (1 − τ)θ⁻.",
    )
    exploration_fraction: float = param(0.1, "ε decay fraction of budget", low=0, high=1.0)
    exploration_initial_eps: float = param(1.0, "Initial ε", low=0, high=1.0)
    exploration_final_eps: float = param(0.05, "Final ε", low=0, high=1.0, live=True)
    loss: str = param("huber", "TD loss", choices=("huber", "mse"))
    max_grad_norm: float = param(10.0, "Gradient clip norm", low=0, low_open=True, high=1000.0)
    per_alpha: float = param(0.6, "PER α", low=0, high=1.0)
    per_beta0: float = param(0.4, "PER initial β", low=0, high=1.0)
    per_eps: float = param(1e-6, "PER ε", low=0, low_open=True, high=1.0, log=True)


ALGO_PARAMS: dict[str, type] = {
    "trpo": TRPOConfig,
    "npg": TRPOConfig,
    "ppo": PPOConfig,
    "ppo-kl": PPOConfig,
    "a2c": A2CConfig,
    "dqn": DQNConfig,
}


# Fields an algorithm ignores: TRPO/NPG step by δ, not a policy learning rate; NPG has no line
# search; DQN learns from TD targets (no GAE, no advantages). PPO's two objectives: unused_keys.
UNUSED_FIELDS: dict[str, tuple[str, ...]] = {
    "trpo": ("lr",),
    "npg": ("lr", "backtrack_coef", "max_backtracks"),
    "dqn": ("gae_lambda", "normalize_advantage"),
}


def default_params(algo: str) -> Any:
    """The algorithm-specific defaults (``ppo-kl`` is PPO with the adaptive-KL objective)."""
    if algo not in ALGO_PARAMS:
        raise ConfigError("algo", f"{algo!r} is not supported; allowed: {', '.join(ALGORITHMS)}")
    params = ALGO_PARAMS[algo]()
    if algo == "ppo-kl":
        params.penalty = "kl"
    return params


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


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
        if key != "params" and key in _field_names(self):
            return self
        if key in _field_names(self.params):
            return self.params
        raise ConfigError(
            key, f"unknown hyperparameter for {self.algo}; known: " + ", ".join(sorted(self.keys()))
        )

    def keys(self) -> list[str]:
        """All flat hyperparameter names of this run (shared first, then the algorithm's)."""
        shared = [n for n in _field_names(self) if n != "params"]
        return shared + list(_field_names(self.params))

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
        from core.engine.envs import check_env_id  # late import: envs imports this module

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
            _check_at_most(self.params, key, batch, "the batch n_envs·n_steps")
        if isinstance(self.params, DQNConfig):
            _check_at_most(self.params, "batch_size", self.params.buffer_size, "buffer_size")

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
    if "critic_minibatch" in _field_names(base.params):
        try:
            batch = int(flat.get("n_envs", base.n_envs)) * int(flat.get("n_steps", base.n_steps))
            if int(flat.get("critic_minibatch", 0)) > batch:
                flat = {**flat, "critic_minibatch": batch}
        except (TypeError, ValueError):
            pass  # a bad value gets its own message from validation
    return flat


# ---------------------------------------------------------------------------------------------
# Field helpers
# ---------------------------------------------------------------------------------------------


def _check_at_most(owner: Any, key: str, limit: int, what: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` when its value exceeds ``limit`` (``what`` says
    what the limit is); the allowed range is the field's own with ``limit`` as the top. An
    ``owner`` without the field passes."""
    if key not in _field_names(owner):
        return
    value = getattr(owner, key)
    if value > limit:
        allowed = dataclasses.replace(field_spec(owner, key), high=limit, high_open=False)
        raise ConfigError(
            key, f"{value} is larger than {what} = {limit}; allowed {allowed.range_text()}"
        )


def _field_names(obj: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(obj))


def field_spec(owner: Any, key: str) -> Spec:
    for f in dataclasses.fields(owner):
        if f.name == key:
            return f.metadata["spec"]
    raise ConfigError(key, "unknown field")


def field_type(owner: Any, key: str) -> Any:
    """The declared type of a field, with ``X | None`` reduced to ``X``."""
    return _type_hints(type(owner))[key]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Each field's declared type, resolved once per class (``get_type_hints`` evaluates the
    annotation strings: ~0.4 ms a call, and validation asks for every field)."""
    return {key: _without_none(hint) for key, hint in typing.get_type_hints(cls).items()}


def _without_none(hint: Any) -> Any:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in args if a is not type(None))
    return hint


def coerce(owner: Any, key: str, raw: Any) -> Any:
    """Convert ``raw`` (a value or a CLI/widget string) to the field's type, or raise."""
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if spec.optional and (raw is None or (isinstance(raw, str) and raw.lower() in ("", "none"))):
        return None
    try:
        if kind is bool:
            return _to_bool(raw)
        if kind is int:
            return _to_int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind is str:
            if not isinstance(raw, str):
                raise ValueError
            return raw
        if typing.get_origin(kind) is tuple:
            if isinstance(raw, str):
                raw = [p for p in raw.replace("[", "").replace("]", "").replace(",", " ").split()]
            return tuple(_to_int(x) for x in raw)
    except (TypeError, ValueError):
        raise ConfigError(
            key, f"{raw!r} is not a valid {_type_name(kind)}; allowed {allowed_text(owner, key)}"
        ) from None
    raise ConfigError(key, f"unsupported field type {kind}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "list of integers"
    return {bool: "boolean", int: "integer", float: "number", str: "text"}.get(kind, str(kind))


MAX_TEXT = 200  # characters in a free-text field (run name, env id)
MAX_LAYERS = 4  # hidden layers
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def allowed_text(owner: Any, key: str) -> str:
    """The values field ``key`` accepts, in words that fit its type.

    Numbers give their interval (``(0, 1]``, plus ``or none (off)`` when optional), choices list
    themselves, booleans their spellings, text its length and layer sizes their count and range.
    """
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if spec.choices is not None:
        return spec.range_text()
    if kind is bool:
        return "true or false (also " + ", ".join(map("/".join, zip(_TRUE[1:], _FALSE[1:]))) + ")"
    if kind is str:
        return f"text of at most {MAX_TEXT} characters"
    if typing.get_origin(kind) is tuple:
        return f"1 to {MAX_LAYERS} layer sizes, each in {spec.range_text()}, e.g. 64, 64"
    if spec.optional:
        return f"{spec.range_text()} or none (off)"
    return spec.range_text()


def _to_bool(raw: Any) -> bool:
    """A bool, or a spelling in ``_TRUE``/``_FALSE`` (any case); anything else: ValueError."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE:
        return True
    if isinstance(raw, str) and raw.lower() in _FALSE:
        return False
    raise ValueError


_COUNT_SUFFIXES = {"k": 10**3, "m": 10**6}


def _to_int(raw: Any) -> int:
    """An integer from an int, a whole float, or text such as ``100000``, ``1e6``, ``100k``,
    ``2.5M`` or ``100,000`` (anything that is not a whole number raises ValueError)."""
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace(",", "").replace("_", "")
        scale = _COUNT_SUFFIXES.get(text[-1:].lower(), 1)
        value = float(text[:-1] if scale > 1 else text) * scale
        if not value.is_integer():
            raise ValueError
        return int(value)
    return int(raw)


def check_value(owner: Any, key: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` has the field's type and lies in its range;
    the message says what is wrong, then the values the field accepts (:func:`allowed_text`)."""
    problem = _problem(owner, key, value)
    if problem is not None:
        raise ConfigError(key, f"{problem}; allowed {allowed_text(owner, key)}")


def _problem(owner: Any, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``key``, or ``None`` when it is allowed."""
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if value is None:
        return None if spec.optional else "a value is required"
    if spec.choices is not None:
        return None if value in spec.choices else f"{value!r} is not allowed"
    if kind is bool:
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind is str:
        return _text_problem(value)
    if typing.get_origin(kind) is tuple:
        return _layers_problem(value, spec)
    return _number_problem(value, spec, kind)


def _text_problem(value: Any) -> str | None:
    """Text must be a ``str`` of at most ``MAX_TEXT`` characters."""
    if not isinstance(value, str):
        return f"{value!r} is not text"
    if len(value) > MAX_TEXT:
        return f"{len(value)} characters is too long"
    return None


def _layers_problem(value: Any, spec: Spec) -> str | None:
    """Layer sizes must be a sequence of 1 to ``MAX_LAYERS`` integers inside the spec's range."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        return f"{value!r} is not a list of layer sizes"
    if not 1 <= len(value) <= MAX_LAYERS:
        return f"{list(value)} has {len(value)} layers"
    problems = (_number_problem(v, spec, int) for v in value)
    return next((f"layer size {p}" for p in problems if p is not None), None)


def _number_problem(value: Any, spec: Spec, kind: type) -> str | None:
    """A number must be finite (whole for ``int``) and inside the spec's interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if kind is int and not float(value).is_integer():
        return f"{value!r} is not an integer"
    if not math.isfinite(value):
        return f"{value!r} is not finite"
    if not spec.contains(value):
        return f"{value:g} is out of range"
    return None

"""The algorithm registry: algorithm name → trainer class, and per-environment presets.

Each algorithm module defines a trainer class (the contract in ``core.engine.trainer.Trainer``; an
on-policy one subclasses ``core.engine.algos.on_policy.OnPolicyTrainer``) and
``PRESETS: dict[env_id, dict[preset_name, dict[field, value]]]`` with tuned hyperparameters (shared
by the algorithms a module serves: trpo/npg, ppo/ppo-kl).
Modules are imported lazily so that listing algorithms stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.config import ALGORITHMS, ConfigError, RunConfig

if TYPE_CHECKING:  # the trainer module imports torch, which listing algorithms does not need
    from core.engine.trainer import Trainer

_MODULES = {
    "trpo": ("core.engine.algos.trpo", "TRPO"),
    "npg": ("core.engine.algos.trpo", "TRPO"),
    "ppo": ("core.engine.algos.ppo", "PPO"),
    "ppo-kl": ("core.engine.algos.ppo", "PPO"),
    "a2c": ("core.engine.algos.a2c", "A2C"),
    "dqn": ("core.engine.algos.dqn", "DQN"),
}
assert set(_MODULES) == set(ALGORITHMS)


def _module(algo: str):
    if algo not in _MODULES:
        raise ConfigError("algo", f"{algo!r} is not supported; allowed: {', '.join(ALGORITHMS)}")
    return importlib.import_module(_MODULES[algo][0])


def make_trainer(config: RunConfig) -> Trainer:
    """A fresh trainer for a validated config."""
    config.validate()
    module = _module(config.algo)
    return getattr(module, _MODULES[config.algo][1])(config)


def presets(algo: str, env_id: str) -> dict[str, dict[str, Any]]:
    """Named presets for (algorithm, environment): preset name → field changes."""
    return dict(getattr(_module(algo), "PRESETS", {}).get(env_id, {}))


def preset_config(algo: str, env_id: str, preset: str, /, **overrides: Any) -> RunConfig:
    """A validated config: defaults, then the preset, then ``overrides`` (which may include a
    run ``name``)."""
    table = presets(algo, env_id)
    if preset not in table:
        known = ", ".join(table) or "none"
        raise ConfigError(
            "preset", f"{preset!r} is not defined for {algo} on {env_id}; allowed: {known}"
        )
    return RunConfig(algo=algo, env_id=env_id).with_changes(**{**table[preset], **overrides})

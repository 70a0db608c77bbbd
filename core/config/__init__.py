"""Run configuration: what a run is, which values each field accepts, which envs exist.

Modules, each with one job:

- ``specs``: :class:`Spec`, :func:`param`, :class:`ConfigError` and the field helpers
  (coerce, check, describe the allowed values);
- ``algorithms``: one dataclass per algorithm (:data:`ALGORITHMS`, :data:`ALGO_PARAMS`);
- ``environments``: the catalogue of supported environments (:func:`check_env_id`);
- ``run``: :class:`RunConfig`, the shared fields and the one validation path.

The names below are the package's public face: ``from core.config import RunConfig``.
"""

from core.config.algorithms import (
    ALGO_PARAMS,
    ALGORITHMS,
    UNUSED_FIELDS,
    A2CConfig,
    DQNConfig,
    PPOConfig,
    TRPOConfig,
    default_params,
)
from core.config.environments import SUPPORTED_ENVS, EnvInfo, check_env_id
from core.config.run import RunConfig
from core.config.specs import (
    ConfigError,
    Spec,
    allowed_text,
    check_value,
    coerce,
    field_spec,
    field_type,
    param,
)

__all__ = [
    "ALGORITHMS",
    "ALGO_PARAMS",
    "SUPPORTED_ENVS",
    "UNUSED_FIELDS",
    "A2CConfig",
    "ConfigError",
    "DQNConfig",
    "EnvInfo",
    "PPOConfig",
    "RunConfig",
    "Spec",
    "TRPOConfig",
    "allowed_text",
    "check_env_id",
    "check_value",
    "coerce",
    "default_params",
    "field_spec",
    "field_type",
    "param",
]

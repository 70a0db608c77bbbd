"""The catalogue of supported environments: only these ids can be configured or made.

No arbitrary ``module:Class`` entry points: :func:`check_env_id` accepts an id listed in
:data:`SUPPORTED_ENVS` (and, for an algorithm that needs discrete actions, only a discrete one).
Building the environments is ``core.engine.envs``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config.specs import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What the app tells users about an environment."""

    env_id: str
    discrete: bool
    solved_return: float
    blurb: str


SUPPORTED_ENVS: dict[str, EnvInfo] = {
    e.env_id: e
    for e in (
        EnvInfo("CartPole-v1", True, 475.0, "Balance a pole on a cart; +1 per step, 500 max."),
        EnvInfo("Acrobot-v1", True, -100.0, "Swing a two-link arm above a line; −1 per step."),
        EnvInfo("MountainCar-v0", True, -110.0, "Rock a car up a hill; sparse −1 per step."),
        EnvInfo("Pendulum-v1", False, -200.0, "Swing up and hold a pendulum; continuous torque."),
        EnvInfo("MountainCarContinuous-v0", False, 90.0, "Mountain car with continuous force."),
    )
}

DISCRETE_ONLY_ALGOS = ("dqn",)


def check_env_id(env_id: str, algo: str | None = None) -> EnvInfo:
    """Return the env's info, or raise :class:`ConfigError` naming ``env_id``."""
    info = SUPPORTED_ENVS.get(env_id)
    if info is None:
        raise ConfigError(
            "env_id", f"{env_id!r} is not supported; allowed: {', '.join(SUPPORTED_ENVS)}"
        )
    if algo in DISCRETE_ONLY_ALGOS and not info.discrete:
        discrete = ", ".join(e for e, i in SUPPORTED_ENVS.items() if i.discrete)
        raise ConfigError(
            "env_id", f"{algo} needs a discrete action space; allowed with {algo}: {discrete}"
        )
    return info

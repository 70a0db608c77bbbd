"""The catalogue of supported environments: only these ids can be configured or made.

No arbitrary ``module:Class`` entry points: :func:`check_env_id` accepts an id listed in
:data:`SUPPORTED_ENVS` (and, for an algorithm that needs discrete actions, only a discrete one).
Building the environments is ``core.engine.envs``'s job.

The MuJoCo and Box2D tasks need a Gymnasium extra (``gymnasium[mujoco]``, ``gymnasium[box2d]``,
both in ``requirements.txt``). Where one cannot be imported, :func:`unavailable_reason` says why
in one line, the other environments still work, and :func:`check_env_id` refuses that env with
the same line.

Headless rendering: MuJoCo picks its OpenGL backend when it is first imported. The first import
in any process is :func:`extra_problem`'s (``check_env_id`` runs before every ``gym.make``), so
it sets ``MUJOCO_GL=egl`` there when unset (Linux: no display needed; ``Makefile`` installs
libegl1 and libegl-mesa0).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass

from core.config.specs import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What the app tells users about an environment. ``extra`` names the Gymnasium extra it
    needs ("" for classic control); ``solved_return`` is Gymnasium's reward threshold where it
    has one, else a reference return of a well-tuned agent."""

    env_id: str
    discrete: bool
    solved_return: float
    blurb: str
    extra: str = ""


SUPPORTED_ENVS: dict[str, EnvInfo] = {
    e.env_id: e
    for e in (
        EnvInfo("CartPole-v1", True, 475.0, "Balance a pole on a cart; +1 per step, 500 max."),
        EnvInfo("Acrobot-v1", True, -100.0, "Swing a two-link arm above a line; −1 per step."),
        EnvInfo("MountainCar-v0", True, -110.0, "Rock a car up a hill; sparse −1 per step."),
        EnvInfo("Pendulum-v1", False, -200.0, "Swing up and hold a pendulum; continuous torque."),
        EnvInfo("MountainCarContinuous-v0", False, 90.0, "Mountain car with continuous force."),
        EnvInfo("Hopper-v5", False, 3800.0, "Make a one-legged robot hop forward.", "mujoco"),
        EnvInfo("Walker2d-v5", False, 3000.0, "Make a 2-D biped walk forward.", "mujoco"),
        EnvInfo("HalfCheetah-v5", False, 4800.0, "Make a 2-D cheetah run forward.", "mujoco"),
        EnvInfo("Swimmer-v5", False, 360.0, "Make a three-link snake swim forward.", "mujoco"),
        EnvInfo("InvertedPendulum-v5", False, 950.0, "Balance a pole on a sliding cart.", "mujoco"),
        EnvInfo(
            "InvertedDoublePendulum-v5",
            False,
            9100.0,
            "Balance two stacked poles on a sliding cart.",
            "mujoco",
        ),
        EnvInfo("LunarLander-v3", True, 200.0, "Land a craft on the pad; four engines.", "box2d"),
        EnvInfo(
            "LunarLanderContinuous-v3",
            False,
            200.0,
            "Lunar lander with continuous throttles.",
            "box2d",
        ),
        EnvInfo("BipedalWalker-v3", False, 300.0, "Walk a 2-D biped over rough ground.", "box2d"),
    )
}

DISCRETE_ONLY_ALGOS = ("dqn",)

EXTRA_MODULES = {"mujoco": "mujoco", "box2d": "Box2D"}  # Gymnasium extra → module it needs


@functools.cache
def extra_problem(extra: str) -> str | None:
    """Why Gymnasium extra ``extra`` cannot be used here (one line), or None if it can."""
    if extra == "mujoco" and sys.platform.startswith("linux"):
        os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        importlib.import_module(EXTRA_MODULES[extra])
    except Exception as err:  # ImportError, or a native library that fails to load (OSError)
        why = " ".join(f"{type(err).__name__}: {err}".split())
        return (
            f"{EXTRA_MODULES[extra]} cannot be imported ({why}); pip install 'gymnasium[{extra}]'"
        )
    return None


def unavailable_reason(env_id: str) -> str | None:
    """Why ``env_id`` cannot be made on this machine (one line), or None if it can."""
    extra = SUPPORTED_ENVS[env_id].extra
    problem = extra_problem(extra) if extra else None
    return f"{env_id} is unavailable here: {problem}" if problem else None


def check_env_id(env_id: str, algo: str | None = None) -> EnvInfo:
    """Return the env's info, or raise :class:`ConfigError` naming ``env_id``."""
    info = SUPPORTED_ENVS.get(env_id)
    if info is None:
        raise ConfigError(
            "env_id", f"{env_id!r} is not supported; allowed: {', '.join(SUPPORTED_ENVS)}"
        )
    reason = unavailable_reason(env_id)
    if reason:
        raise ConfigError("env_id", reason)
    if algo in DISCRETE_ONLY_ALGOS and not info.discrete:
        discrete = ", ".join(e for e, i in SUPPORTED_ENVS.items() if i.discrete)
        raise ConfigError(
            "env_id", f"{algo} needs a discrete action space; allowed with {algo}: {discrete}"
        )
    return info

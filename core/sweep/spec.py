"""What a sweep is: a grid of hyperparameters × seeds × algorithms, expanded to validated trials.

A :class:`SweepSpec` expands to validated run configs: every grid value goes through the one
validation path (``RunConfig.with_changes``) before anything starts, so a bad value is a
``ConfigError`` naming its field and nothing is written. Each expanded config is a *trial*; an
executor (``core/sweep/local.py``, ``core/sweep/ray_backend.py``) launches trials as
:class:`Job` objects, each an ordinary run in the store tagged with the sweep's id.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.config import ConfigError, RunConfig

MAX_TRIALS = 1000


class SweepError(RuntimeError):
    """A sweep cannot do what was asked; ``str()`` is one readable line."""


@dataclass(frozen=True)
class Trial:
    """One expanded point of a sweep: its validated config and a short label (``delta=0.01 …``)."""

    config: RunConfig
    label: str


@dataclass
class SweepSpec:
    """A base config, a grid over validated hyperparameters, seeds, and optionally algorithms.

    ``grid`` maps a flat hyperparameter name (``cfg.keys()``) to its values (typed or strings, as
    from a CLI). ``seeds`` is a count ``n`` (seeds ``base.seed … base.seed + n − 1``) or an explicit
    list of distinct seeds. ``algos`` (default: ``base.algo`` alone) multiplies the grid; a grid key
    applies to the algorithms that have it (``delta`` to TRPO/NPG only) and must exist for one.
    The sweep has |algos| · Π|grid values| · |seeds| trials (fewer where a key does not apply).
    """

    base: RunConfig
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: int | list[int] = 1
    algos: list[str] | None = None
    name: str = ""

    def seed_list(self) -> list[int]:
        """The seeds of every grid point, validated and distinct."""
        if isinstance(self.seeds, bool):
            raise ConfigError("seeds", f"{self.seeds!r} is not a count or a list of seeds")
        if isinstance(self.seeds, int):
            if not 1 <= self.seeds <= MAX_TRIALS:
                raise ConfigError(
                    "seeds", f"{self.seeds} is out of range; allowed [1, {MAX_TRIALS}]"
                )
            seeds: list[Any] = [self.base.seed + i for i in range(self.seeds)]
        else:
            seeds = list(self.seeds)
            if not seeds:
                raise ConfigError("seeds", "the sweep needs at least one seed")
        seeds = [self.base.with_changes(seed=s).seed for s in seeds]
        duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
        if duplicates:
            raise ConfigError("seeds", f"seeds must be distinct; repeated: {duplicates}")
        return seeds

    def trials(self) -> list[Trial]:
        """All trials in order algorithm → grid point → seed, every value validated first."""
        algos = list(self.algos) if self.algos else [self.base.algo]
        bases = [self.base.with_changes(algo=a) for a in algos]
        grid = self._checked_grid(bases)
        seeds = self.seed_list()
        n_points = len(bases) * math.prod(len(v) for v in grid.values()) * len(seeds)
        if n_points > MAX_TRIALS:
            raise ConfigError("grid", f"{n_points} trials is more than the {MAX_TRIALS} allowed")
        trials: list[Trial] = []
        seen: set[str] = set()
        for base in bases:
            known = set(base.keys())
            keys = [k for k in grid if k in known]
            for values in itertools.product(*(grid[k] for k in keys)):
                point = dict(zip(keys, values))
                for seed in seeds:
                    config = base.with_changes(**point, seed=seed)
                    if config.to_json() in seen:
                        continue
                    seen.add(config.to_json())
                    trials.append(Trial(config, _label(config, point, len(bases) > 1)))
        return trials

    def expand(self) -> list[RunConfig]:
        """The validated config of every trial (see :meth:`trials`)."""
        return [t.config for t in self.trials()]

    def _checked_grid(self, bases: list[RunConfig]) -> dict[str, list[Any]]:
        """Grid values coerced to their field's type; a bad key or value names its field."""
        grid: dict[str, list[Any]] = {}
        for key, values in self.grid.items():
            if key in ("algo", "seed"):
                raise ConfigError(key, f"sweep over {key} with the sweep's {key}s, not the grid")
            owners = [b for b in bases if key in set(b.keys())]
            if not owners:
                bases[0].owner_of(key)  # raises: unknown hyperparameter, with the known ones
            values = list(values)
            if not values:
                raise ConfigError(key, "the grid needs at least one value")
            coerced = [owners[0].with_changes(**{key: v}).get(key) for v in values]
            for other in owners[1:]:
                for v in coerced:
                    other.with_changes(**{key: v})
            repeated = [v for i, v in enumerate(coerced) if v in coerced[:i]]
            if repeated:
                raise ConfigError(key, f"{repeated[0]!r} is listed twice")
            grid[key] = coerced
        return grid


def _label(config: RunConfig, point: dict[str, Any], with_algo: bool) -> str:
    parts = [config.algo] if with_algo else []
    parts += [f"{k}={format_value(v)}" for k, v in point.items()]
    parts.append(f"seed={config.seed}")
    return " ".join(parts)


def format_value(value: Any) -> str:
    """A hyperparameter value as trial labels show it (``0.01``, ``64x64``)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def new_sweep_id() -> str:
    """A fresh sweep id, ``sw-`` and ten hex digits."""
    return "sw-" + uuid.uuid4().hex[:10]


def sweep_name(spec: SweepSpec, sweep_id: str | None = None) -> str:
    """The name every run of the sweep carries: the spec's name when it has one, else its
    algorithms, ``sweep`` and the sweep id (``ppo sweep sw-1a2b3c4d5e``), so that a run of an
    unnamed sweep still says which sweep it belongs to."""
    if spec.name:
        return spec.name
    algos = " vs ".join(spec.algos or [spec.base.algo])
    return f"{algos} sweep" + (f" {sweep_id}" if sweep_id else "")


def run_name(spec_name: str, trial: Trial) -> str:
    """The stored run name of a trial: the sweep's name (or ``sweep``) and the trial label."""
    return f"{spec_name or 'sweep'} · {trial.label}"


@dataclass(frozen=True)
class Job:
    """What an executor launches: a config, the run's name, the run it replaces (if any) and the
    checkpoint file to continue from (if any)."""

    config: RunConfig
    name: str
    parent_id: str | None = None
    resume_from: str | None = None


def jobs_of(spec: SweepSpec, sweep_id: str | None = None) -> list[Job]:
    """The spec's trials as jobs (this validates the whole sweep), each named
    ``<sweep name> · <trial label>`` (:func:`sweep_name`: an unnamed sweep's runs carry
    ``sweep_id``)."""
    name = sweep_name(spec, sweep_id)
    return [Job(t.config, run_name(name, t)) for t in spec.trials()]

"""Sweeps built from the pages' choices: the Compare page's (environment, budget, algorithms,
seeds, a grid) and the GAE Lab's λ sweep.

Without presets the choices are one sweep over all algorithms, as ``python -m core sweep
--algos …`` runs it. With each algorithm's tuned preset the base configs differ, so each
algorithm is its own sweep, over the grid keys it has.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.config import ConfigError, RunConfig
from core.engine.algos import presets
from core.sweep.spec import SweepSpec


def build_sweeps(
    env_id: str,
    budget: int,
    algos: list[str],
    seeds: int,
    grid: Mapping[str, list[str]],
    tuned: bool,
    name: str,
) -> list[SweepSpec]:
    """The sweeps to launch, every trial validated (raises ConfigError naming the bad field).

    ``grid`` maps a hyperparameter to its values as typed (strings, coerced by the spec); every
    run starts from seed 0 and trains ``budget`` env steps. ``name`` names the sweep (with
    several tuned sweeps, ``<name> <algo>``); left empty, each sweep's runs are named after its
    algorithms and sweep id at launch (``core.sweep.spec.sweep_name``).
    """
    if not algos:
        raise ConfigError("algo", "pick at least one algorithm")
    for key, values in grid.items():
        if not values:
            raise ConfigError(key, "give at least one value, e.g. 0.001, 0.01, 0.05")
    grid = dict(grid)

    def base(algo: str, preset: dict) -> RunConfig:
        changes = preset | {"total_steps": budget, "seed": 0}
        return RunConfig(algo=algo, env_id=env_id).with_changes(**changes)

    if not tuned:
        specs = [SweepSpec(base(algos[0], {}), grid, seeds, algos, name)]
    else:
        specs = []
        for algo in algos:
            b = base(algo, next(iter(presets(algo, env_id).values()), {}))
            own = {k: v for k, v in grid.items() if k in set(b.keys())}
            label = f"{name} {algo}" if name and len(algos) > 1 else name
            specs.append(SweepSpec(b, own, seeds, None, label))
    for spec in specs:
        spec.trials()
    return specs


def sweep_ids(specs: list[SweepSpec], request: str) -> list[str]:
    """The ids under which ``specs`` are launched for one request token: the same token gives
    the same ids, so a double click starts each trial once (the run manager's request ids are
    derived from them); with several sweeps each id ends with its algorithm."""
    return [
        f"sw-{request[:10]}" + (f"-{spec.base.algo}" if len(specs) > 1 else "") for spec in specs
    ]


def lambda_sweep(algo: str, env_id: str, budget: int, seeds: int, lams: list[float]) -> SweepSpec:
    """The GAE Lab's sweep: ``algo`` at its first preset for ``env_id`` (defaults where it has
    none), ``budget`` env steps without evaluations, GAE λ over ``lams`` × ``seeds`` seeds."""
    preset = next(iter(presets(algo, env_id).values()), {})
    base = RunConfig(algo=algo, env_id=env_id).with_changes(
        **{**preset, "total_steps": budget, "eval_every": 0}
    )
    spec = SweepSpec(base, {"gae_lambda": sorted(lams)}, seeds, None, f"GAE lab {algo} λ sweep")
    spec.trials()
    return spec

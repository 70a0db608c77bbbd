"""Start, stop and resume a sweep on its backend: the one place that chooses the executor.

``local`` (default): every trial is a run of the process's
:class:`~core.runtime.runner.RunManager` (``core/sweep/local.py``). ``ray``
(``core/sweep/ray_backend.py``, imported only when asked for): every trial is a Ray task whose
update reports stream back to this process and are written to the same store as they arrive.

Resuming a sweep (``python -m core sweep --resume SWEEP_ID``, after a stop or a driver restart,
whose runs the next run manager marks ``interrupted``) re-launches each unfinished trial as a new
run in the same sweep, continuing from the old run's last checkpoint, with ``parent_id`` linking
it to the run it replaces.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from core.config import ConfigError, RunConfig
from core.sweep.local import start_local
from core.sweep.progress import ACTIVE, RESUMABLE, sweep_progress
from core.sweep.registry import remote_sweep
from core.sweep.spec import Job, SweepError

if TYPE_CHECKING:
    from core.runtime.run_loop import TrainerFactory
    from core.runtime.runner import RunManager
    from core.runtime.store import RunStore

BACKENDS = ("local", "ray")


def load_ray_backend(backend: str = "ray") -> ModuleType:
    """The Ray executor module, or a one-line :class:`SweepError` saying how to get it."""
    if backend not in BACKENDS:
        raise ConfigError(
            "backend", f"{backend!r} is not supported; allowed: {', '.join(BACKENDS)}"
        )
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SweepError(
            "the ray backend needs Ray: pip install -r requirements-ray.txt "
            "(or use --backend local)"
        ) from None
    from core.sweep import ray_backend

    return ray_backend


def start_jobs(
    manager: RunManager,
    jobs: list[Job],
    sweep_id: str,
    *,
    backend: str = "local",
    cpus_per_trial: float = 1.0,
    ray_cpus: int = 2,
    max_in_flight: int | None = None,
    trainer_factory: TrainerFactory | None = None,
) -> None:
    """Start ``jobs`` (validated already) as the trials of ``sweep_id`` on ``backend``.

    ``local``: the manager's supervisors (``max_in_flight`` is the manager's own cap there).
    ``ray``: one Ray task per trial with ``cpus_per_trial`` CPUs, at most ``max_in_flight`` at
    once (default: as many as the cluster has CPUs for), on ``RAY_ADDRESS`` or else a local
    runtime with ``ray_cpus`` CPUs.
    """
    if backend == "local":
        start_local(manager, jobs, sweep_id, trainer_factory)
        return
    load_ray_backend(backend).start_ray(
        manager,
        jobs,
        sweep_id,
        cpus_per_trial=cpus_per_trial,
        trainer_factory=trainer_factory,
        local_cpus=ray_cpus,
        max_in_flight=max_in_flight,
    )


def stop_sweep(manager: RunManager, sweep_id: str) -> list[str]:
    """Stop every active run of the sweep (queued ones never start); returns their run ids.

    Raises :class:`SweepError` when the sweep's runs belong to another process (stop it there).
    """
    from core.runtime.runner import RunError

    progress = sweep_progress(manager.store, sweep_id)
    active = progress.runs.loc[progress.runs["status"].isin(ACTIVE), "run_id"].tolist()
    remote = remote_sweep(sweep_id)
    if remote is not None:
        remote.stop()
        return active
    stopped = []
    for run_id in active:
        try:
            manager.stop(run_id)
            stopped.append(run_id)
        except RunError:
            continue  # ended meanwhile, or trained by another process
    if active and not stopped and not sweep_progress(manager.store, sweep_id).is_done:
        raise SweepError(
            f"sweep {sweep_id} runs in another process; stop it there (Ctrl-C on its CLI)"
        )
    return stopped


def resume_sweep(
    manager: RunManager,
    sweep_id: str,
    *,
    backend: str = "local",
    cpus_per_trial: float = 1.0,
    ray_cpus: int = 2,
    max_in_flight: int | None = None,
    trainer_factory: TrainerFactory | None = None,
) -> list[str]:
    """Re-launch each interrupted or stopped trial as a new run linked to the old one.

    A trial continues from its last checkpoint (its metrics go on from that env step), or starts
    again from scratch where it has none. Returns the old run ids that were re-launched; refused
    while the sweep still has active runs. Failed trials stay failed.
    """
    progress = sweep_progress(manager.store, sweep_id)
    if progress.active:
        raise SweepError(f"sweep {sweep_id} still has {progress.active} active runs; stop it first")
    todo = progress.runs[progress.runs["status"].isin(RESUMABLE)]
    jobs = [_resume_job(manager.store, row.run_id, row.name) for row in todo.itertuples()]
    if not jobs:
        return []
    start_jobs(
        manager,
        jobs,
        sweep_id,
        backend=backend,
        cpus_per_trial=cpus_per_trial,
        ray_cpus=ray_cpus,
        max_in_flight=max_in_flight,
        trainer_factory=trainer_factory,
    )
    return [j.parent_id for j in jobs if j.parent_id]


def _resume_job(store: RunStore, run_id: str, name: str) -> Job:
    """The job that takes over trial ``run_id``: from its newest readable checkpoint, if any."""
    from core.runtime.checkpoint import CheckpointError, load_checkpoint

    name = name if name.endswith("(resumed)") else f"{name} (resumed)"
    for path in reversed(store.checkpoints(run_id)["path"].tolist()):
        try:
            config = RunConfig.from_json(load_checkpoint(path)["config"])
        except (CheckpointError, ConfigError, KeyError):
            continue
        return Job(config, name, parent_id=run_id, resume_from=str(path))
    return Job(store.config(run_id), name, parent_id=run_id)

"""The local executor: every trial of a sweep is a run of this process's run manager.

The manager's supervisors, its concurrency cap and its queue do the scheduling: runs beyond the
cap wait in its queue (status ``queued``), each run trains in its own worker process (or a thread,
``workers="thread"``), and every run carries the sweep's ``sweep_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.sweep.spec import Job, SweepSpec, jobs_of, new_sweep_id

if TYPE_CHECKING:
    from core.runtime.run_loop import TrainerFactory
    from core.runtime.runner import RunManager


def launch_local(
    manager: RunManager,
    spec: SweepSpec,
    *,
    sweep_id: str | None = None,
    trainer_factory: TrainerFactory | None = None,
) -> str:
    """Validate the whole sweep, then start every trial on the run manager; returns the sweep id.

    Runs beyond the manager's concurrency cap wait in its queue (status ``queued``); each run
    is named after the sweep (``core.sweep.spec.jobs_of``).
    """
    sweep_id = sweep_id or new_sweep_id()
    return start_local(manager, jobs_of(spec, sweep_id), sweep_id, trainer_factory)


def start_local(
    manager: RunManager, jobs: list[Job], sweep_id: str, trainer_factory: TrainerFactory | None
) -> str:
    """Start ``jobs`` (validated already) as the runs of ``sweep_id``; returns the sweep id.

    Each run's request id is derived from the sweep id and the job, so starting the same jobs
    again (a double click) starts each run once.
    """
    for i, job in enumerate(jobs):
        manager.start(
            job.config,
            name=job.name,
            request_id=f"{sweep_id}/{job.parent_id or i}",
            sweep_id=sweep_id,
            parent_id=job.parent_id,
            trainer_factory=trainer_factory,
            resume_from=job.resume_from,
        )
    return sweep_id

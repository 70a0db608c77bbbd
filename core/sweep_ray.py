"""The Ray executor of a sweep: each trial a Ray task, its reports streamed into the driver's store.

Imported only when the ``ray`` backend is asked for (``pip install -r requirements-ray.txt``).
Connects to ``RAY_ADDRESS`` when set (``ray://head:10001`` or a cluster started with
``ray start``), otherwise starts a local Ray runtime with ``ray.init(num_cpus=2)``.

Data flow: the driver creates every trial's run in its store (status ``queued``) and submits one
task per trial with ``num_cpus=cpus_per_trial``. A task builds the trainer from the config
(``core.algos.make_trainer``, one torch thread) and, after every ``update()``, pushes the report to
one :class:`Hub` actor; the push answers whether the trial was asked to stop. A driver thread
drains the hub a few times a second and writes each report to the store as it arrives, so the
pages see sweep runs train live. When a task returns, its status (``finished`` or ``stopped``)
is stored; when it raises, the run is marked ``failed`` with the remote traceback and the other
trials go on. The tasks die with the driver's job, so a dead driver leaves ``running`` rows that
the next run manager marks ``interrupted`` (``python -m core sweep --resume SWEEP_ID``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import ray

from core.config import RunConfig
from core.store import RunStore
from core.sweep import (
    Job,
    SweepSpec,
    TrainerFactory,
    jobs_of,
    new_sweep_id,
    register_remote,
    unregister_remote,
)
from core.trainer import Episode

LOCAL_CPUS = 2
DRAIN_EVERY = 0.2  # seconds between the driver's reads of the hub
REPO_ROOT = Path(__file__).resolve().parent.parent
UPLOAD_EXCLUDES = [".venv", ".git", "data", "node_modules", "**/__pycache__"]


def connect(num_cpus: int = LOCAL_CPUS) -> None:
    """Join ``RAY_ADDRESS`` (shipping this repository as the workers' working dir) or start a
    local runtime with ``num_cpus`` CPUs; a no-op when Ray is already initialised."""
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": UPLOAD_EXCLUDES}
        ray.init(runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


@ray.remote(num_cpus=0)
class Hub:
    """Where trials push their reports and learn whether to stop (one per sweep)."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str, Any]] = []
        self._stop_all = False

    def push(self, run_id: str, kind: str, payload: Any) -> bool:
        """Queue ``(run_id, kind, payload)``; answer True when the trial should stop."""
        self._items.append((run_id, kind, payload))
        return self._stop_all

    def drain(self) -> list[tuple[str, str, Any]]:
        items, self._items = self._items, []
        return items

    def stop(self) -> None:
        self._stop_all = True


@ray.remote(max_retries=0)
def run_trial(run_id: str, config_json: str, hub: Any, factory: TrainerFactory | None) -> str:
    """Train one trial inside a Ray worker; returns ``finished`` or ``stopped``, or raises."""
    import torch

    from core.algos import make_trainer

    torch.set_num_threads(1)
    config = RunConfig.from_json(config_json)
    if ray.get(hub.push.remote(run_id, "started", os.getpid())):
        return "stopped"
    trainer = (factory or make_trainer)(config)
    while not trainer.done:
        report = trainer.update()
        episodes = [(e.env_step, e.ret, e.length) for e in report.episodes]
        if ray.get(hub.push.remote(run_id, "update", (report.metrics, episodes))):
            return "stopped"
    return "finished"


class RaySweep:
    """A sweep running on Ray, driven from this process: ``stop()``, ``wait()``, ``done``."""

    def __init__(
        self,
        store: RunStore,
        sweep_id: str,
        jobs: list[Job],
        cpus_per_trial: float,
        trainer_factory: TrainerFactory | None,
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.run_ids = [
            store.create_run(
                j.config, name=j.name, parent_id=j.parent_id, sweep_id=sweep_id, status="queued"
            )
            for j in jobs
        ]
        self._env_steps = dict.fromkeys(self.run_ids, 0)
        self._started: set[str] = set()
        self._hub = Hub.remote()
        task = run_trial.options(num_cpus=cpus_per_trial)
        self._pending = {
            task.remote(run_id, j.config.to_json(), self._hub, trainer_factory): run_id
            for run_id, j in zip(self.run_ids, jobs)
        }
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drive, name=f"ray-{sweep_id}", daemon=True)
        register_remote(self)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        """Ask every trial to stop after its current update; trials not yet started never do."""
        self._stopping.set()
        self._hub.stop.remote()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every trial has ended and its last report is stored."""
        return self._done.wait(timeout)

    def _drive(self) -> None:
        try:
            while self._pending:
                ready, _ = ray.wait(
                    list(self._pending), num_returns=len(self._pending), timeout=DRAIN_EVERY
                )
                self._drain()
                for ref in ready:
                    self._settle(self._pending.pop(ref), ref)
            self.store.flush()
        finally:
            unregister_remote(self.sweep_id)
            self._done.set()

    def _drain(self) -> None:
        for run_id, kind, payload in ray.get(self._hub.drain.remote()):
            if kind == "started":
                self._started.add(run_id)
                self.store.set_status(run_id, "running")
                self.store.add_event(run_id, "started", 0, {"backend": "ray", "pid": payload})
            else:
                metrics, episodes = payload
                self._env_steps[run_id] = int(metrics.get("env_steps", 0))
                self.store.append_update(run_id, metrics, [Episode(*e) for e in episodes])

    def _settle(self, run_id: str, ref: Any) -> None:
        """Store how a finished task ended (its reports were all drained before it returned)."""
        env_step = self._env_steps[run_id]
        try:
            status = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            status = "stopped"
        except Exception as e:  # a failing trial must not stop the others
            self.store.set_status(run_id, "failed", error=str(e))
            self.store.add_event(run_id, "failed", env_step, {"error": str(e).splitlines()[0]})
            return
        self.store.set_status(run_id, status)
        self.store.add_event(run_id, status, env_step)


def start_ray(
    store: RunStore,
    jobs: list[Job],
    sweep_id: str,
    *,
    cpus_per_trial: float = 1.0,
    trainer_factory: TrainerFactory | None = None,
) -> RaySweep:
    """Connect to Ray and start ``jobs`` as the trials of ``sweep_id`` (configs already valid)."""
    connect()
    return RaySweep(store, sweep_id, jobs, cpus_per_trial, trainer_factory)


def launch_ray(
    store: RunStore,
    spec: SweepSpec,
    *,
    cpus_per_trial: float = 1.0,
    trainer_factory: TrainerFactory | None = None,
) -> RaySweep:
    """Validate the whole sweep, then run it on Ray against ``store``."""
    jobs = jobs_of(spec)
    return start_ray(
        store, jobs, new_sweep_id(), cpus_per_trial=cpus_per_trial, trainer_factory=trainer_factory
    )

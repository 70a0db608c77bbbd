"""The Ray executor of a sweep: each trial a Ray task, its reports streamed into the driver's store.

Imported only when the ``ray`` backend is asked for (``pip install -r requirements-ray.txt``).
It joins ``RAY_ADDRESS`` or starts a local Ray runtime that ends with this process
(``core/sweep/ray_runtime.py``).

Data flow: the driver creates every trial's run in the store of its
:class:`~core.runtime.runner.RunManager` (status ``queued``, owned by that manager, so another
process never mistakes the rows for orphans) and submits one task per trial with
``num_cpus=cpus_per_trial``, as many at a time as the cluster has CPUs for (so Ray reuses its worker
processes instead of starting and killing extra ones for a backlog). A task builds the trainer
(``core.engine.algos.make_trainer``, one torch thread) and after every ``update()`` pushes the
report to the sweep's :class:`Hub` actor, with the update's snapshot for the Update Inspector where
the trainer takes one (TRPO, NPG, PPO; ``core/engine/snapshot.py``); the push answers whether the
sweep was stopped. At each checkpoint (after the first update, every ``checkpoint_every`` updates,
every ``checkpoint_seconds`` of training, and at the end) it also pushes the trainer's state. A
driver thread drains the hub a few times a second and writes each report to the store as it arrives
(each state as a checkpoint file, each snapshot beside them under the manager's retention rule, as a
local run's worker does: ``core/runtime/snapshots.py``), so the pages see sweep runs train live and
can replay, inspect or continue them like local runs. When a task returns, its status (``finished``
or ``stopped``) is stored; when it raises, the run is marked ``failed`` with the remote traceback
and the other trials go on. The tasks belong to the driver's Ray job, so a dead driver leaves
``running`` rows that any process reading the store then marks ``interrupted`` (``python -m core
sweep --resume SWEEP_ID`` continues them from their last checkpoints)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from core.config import ConfigError, RunConfig
from core.runtime.snapshots import SnapshotWriter, snapshot_dir
from core.sweep.ray_runtime import LOCAL_CPUS, connect
from core.sweep.registry import register_remote, unregister_remote
from core.sweep.spec import Job, SweepSpec, jobs_of, new_sweep_id

if TYPE_CHECKING:
    from core.engine.snapshot import UpdateSnapshot
    from core.runtime.run_loop import TrainerFactory
    from core.runtime.runner import RunManager

DRAIN_EVERY = 0.2  # seconds between the driver's reads of the hub
KEEP_CHECKPOINTS = 3


@ray.remote(num_cpus=0)
class Hub:
    """Where trials push their reports and learn whether to stop (one actor per sweep)."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str, Any]] = []
        self._stop = False

    def push(self, run_id: str, kind: str, payload: Any) -> bool:
        """Queue ``(run_id, kind, payload)``; answer True when the trial should stop."""
        self._items.append((run_id, kind, payload))
        return self._stop

    def drain(self) -> list[tuple[str, str, Any]]:
        items, self._items = self._items, []
        return items

    def stop(self) -> None:
        self._stop = True

    def stopped(self) -> bool:
        return self._stop


@ray.remote(max_retries=0)
def run_trial(
    run_id: str,
    config_json: str,
    hub: Any,
    factory: TrainerFactory | None,
    state: dict | None,
    checkpoint_every: int,
    checkpoint_seconds: float = 30.0,
    snapshots: bool = True,
) -> str:
    """Train one trial inside a Ray worker; returns ``finished`` or ``stopped``, or raises.

    With ``snapshots`` a trainer that takes update snapshots (TRPO, NPG, PPO) captures one per
    update and it travels with that update's report.

    Checkpoints as the run loop does (``core/runtime/run_loop.py``): after the first update, every
    ``checkpoint_every`` updates, whenever ``checkpoint_seconds`` have passed, and at the end.
    Every push is awaited, so the hub holds all of a trial's reports before its task returns.
    """
    import torch

    from core.engine.algos import make_trainer

    if ray.get(hub.stopped.remote()):
        return "stopped"  # the sweep was stopped before this trial got a CPU
    torch.set_num_threads(1)
    config = RunConfig.from_json(config_json)
    trainer = (factory or make_trainer)(config)
    if state is not None:
        trainer.load_state_dict(state)
    if snapshots and hasattr(trainer, "capture_snapshots"):
        trainer.capture_snapshots = True
    saved, saved_at = trainer.book.update, time.monotonic()
    outcome = "stopped" if ray.get(hub.push.remote(run_id, "started", os.getpid())) else None
    while outcome is None and not trainer.done:
        report = trainer.update()
        episodes = [(e.env_step, e.ret, e.length) for e in report.episodes]
        update = trainer.book.update
        taken = getattr(trainer, "last_snapshot", None) if snapshots else None
        snap = None if taken is None else (update, taken)
        if ray.get(hub.push.remote(run_id, "update", (report.metrics, episodes, snap))):
            outcome = "stopped"
        elif (
            update == 1
            or update % checkpoint_every == 0
            or time.monotonic() - saved_at >= checkpoint_seconds
        ):
            ray.get(hub.push.remote(run_id, "checkpoint", _snapshot(trainer)))
            saved, saved_at = update, time.monotonic()
    if trainer.book.update > saved:
        ray.get(hub.push.remote(run_id, "checkpoint", _snapshot(trainer)))
    return outcome or "finished"


def _snapshot(trainer: Any) -> tuple[int, int, str, dict]:
    book = trainer.book
    return book.update, book.env_steps, trainer.config.to_json(), trainer.state_dict()


class RaySweep:
    """A sweep running on Ray, driven from this process: ``stop()``, ``wait()``, ``done``."""

    def __init__(
        self,
        manager: RunManager,
        sweep_id: str,
        jobs: list[Job],
        cpus_per_trial: float,
        trainer_factory: TrainerFactory | None,
        max_in_flight: int | None = None,
    ) -> None:
        self.store = manager.store
        self.sweep_id = sweep_id
        self.run_ids = [
            self.store.create_run(
                j.config,
                name=j.name,
                parent_id=j.parent_id,
                sweep_id=sweep_id,
                status="queued",
                owner=manager.owner,
            )
            for j in jobs
        ]
        self._env_steps = dict.fromkeys(self.run_ids, 0)
        self._checkpoints: dict[str, list[Path]] = {r: [] for r in self.run_ids}
        self._snapshot_policy = manager.snapshots
        self._snapshot_writers: dict[str, SnapshotWriter] = {}
        self._hub = Hub.remote()
        self._task = run_trial.options(num_cpus=cpus_per_trial)
        self._factory = trainer_factory
        self._checkpoint_every = manager.checkpoint_every
        self._checkpoint_seconds = manager.checkpoint_seconds
        self._cpus_per_trial = cpus_per_trial
        self._max_in_flight = max_in_flight
        self._waiting = deque(zip(self.run_ids, jobs))
        self._pending: dict[Any, str] = {}
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drive, name=f"ray-{sweep_id}", daemon=True)
        register_remote(self)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        """Stop every trial after its current update; trials not started yet end at once."""
        self._stopping.set()
        self._hub.stop.remote()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every trial has ended and its last report is stored."""
        return self._done.wait(timeout)

    def _drive(self) -> None:
        try:
            while self._top_up():
                ready, _ = ray.wait(
                    list(self._pending), num_returns=len(self._pending), timeout=DRAIN_EVERY
                )
                self._drain()
                for ref in ready:
                    self._settle(self._pending.pop(ref), ref)
        except Exception as e:  # Ray went away under the driver: say so on every open trial
            reason = f"lost the Ray runtime: {' '.join(str(e).split())[:200]}"
            for run_id in [*self._pending.values(), *(r for r, _ in self._waiting)]:
                self.store.add_event(
                    run_id, "interrupted", self._env_steps[run_id], {"reason": reason}
                )
                self.store.set_status(run_id, "interrupted", error=reason)
        finally:
            for writer in self._snapshot_writers.values():
                writer.close()  # what arrived is on disk
            self.store.flush()
            unregister_remote(self.sweep_id)
            self._done.set()

    def _top_up(self) -> bool:
        """Submit waiting trials while the cluster has CPUs for them; return whether any trial
        is still in flight. Submitting no more than fit keeps Ray from starting extra worker
        processes for a backlog (and killing them idle), so workers and their imports are reused.
        Once the sweep is stopped, waiting trials are marked stopped instead."""
        while self._waiting and (self._stopping.is_set() or len(self._pending) < self._slots()):
            run_id, job = self._waiting.popleft()
            if self._stopping.is_set():
                self.store.add_event(run_id, "stopped", self._env_steps[run_id])
                self.store.set_status(run_id, "stopped")
                continue
            ref = self._task.remote(
                run_id,
                job.config.to_json(),
                self._hub,
                self._factory,
                _state(job),
                self._checkpoint_every,
                self._checkpoint_seconds,
                self._snapshot_policy.enabled,
            )
            self._pending[ref] = run_id
        return bool(self._pending)

    def _slots(self) -> int:
        """How many trials may run at once: ``max_in_flight``, else the cluster's CPUs (read
        again each time, so a cluster that grows gets more) over ``cpus_per_trial``."""
        if self._max_in_flight is not None:
            return self._max_in_flight
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self._cpus_per_trial))

    def _drain(self) -> None:
        """Write everything the trials pushed since the last drain to the store, in order."""
        from core.engine.trainer import Episode

        for run_id, kind, payload in ray.get(self._hub.drain.remote()):
            if kind == "started":
                self.store.set_status(run_id, "running")
                event = {"backend": "ray", "pid": payload}
                self.store.add_event(run_id, "started", self._env_steps[run_id], event)
            elif kind == "update":
                metrics, episodes, snap = payload
                self._env_steps[run_id] = int(metrics.get("env_steps", 0))
                self.store.append_update(run_id, metrics, [Episode(*e) for e in episodes])
                if snap is not None:
                    self._write_snapshot(run_id, *snap)
            else:
                self._checkpoint(run_id, *payload)

    def _checkpoint(self, run_id: str, update: int, env_steps: int, config: str, state: dict):
        """Save a trial's state as the run's checkpoint; keep the newest few files."""
        from core.runtime.checkpoint import save_checkpoint

        path = self.store.checkpoint_dir(run_id) / f"update_{update:07d}.pt"
        kept = self._checkpoints[run_id]
        if kept and kept[-1] == path:
            return
        save_checkpoint(
            path, run_id=run_id, update=update, env_steps=env_steps, config_json=config, state=state
        )
        self.store.add_checkpoint(run_id, update, env_steps, str(path))
        kept.append(path)
        old = kept[:-KEEP_CHECKPOINTS]
        if old:
            del kept[:-KEEP_CHECKPOINTS]
            for p in old:
                p.unlink(missing_ok=True)
            self.store.remove_checkpoints(run_id, [str(p) for p in old])

    def _write_snapshot(self, run_id: str, update: int, snap: UpdateSnapshot) -> None:
        """Hand a trial's update snapshot to its run's writer thread (started at the first)."""
        writer = self._snapshot_writers.get(run_id)
        if writer is None:
            directory = snapshot_dir(self.store.checkpoint_dir(run_id))
            writer = self._snapshot_writers[run_id] = SnapshotWriter(
                directory, self._snapshot_policy
            )
        writer.put(update, snap)

    def _settle(self, run_id: str, ref: Any) -> None:
        """Store how a task ended (its pushes were all drained before it returned), once its
        snapshots are on disk."""
        writer = self._snapshot_writers.pop(run_id, None)
        if writer is not None:
            writer.close()
        env_step = self._env_steps[run_id]
        try:
            status = ray.get(ref)
        except Exception as e:  # a failing trial must not stop the others
            error = str(e)
            line = next((s for s in reversed(error.splitlines()) if s.strip()), "failed")
            self.store.add_event(run_id, "failed", env_step, {"error": line.strip()[:300]})
            self.store.set_status(run_id, "failed", error=error)
            return
        self.store.add_event(run_id, status, env_step)
        self.store.set_status(run_id, status)


def _state(job: Job) -> dict | None:
    """The trainer state to continue from (read on the driver, shipped to the worker)."""
    from core.runtime.checkpoint import load_checkpoint

    return None if job.resume_from is None else load_checkpoint(job.resume_from)["state"]


def start_ray(
    manager: RunManager,
    jobs: list[Job],
    sweep_id: str,
    *,
    cpus_per_trial: float = 1.0,
    trainer_factory: TrainerFactory | None = None,
    local_cpus: int = LOCAL_CPUS,
    max_in_flight: int | None = None,
) -> RaySweep:
    """Connect to Ray (a local runtime gets ``local_cpus``) and start ``jobs`` as the trials of
    ``sweep_id`` (their configs already validated)."""
    if not cpus_per_trial > 0:
        raise ConfigError("cpus_per_trial", f"{cpus_per_trial!r} must be a positive number")
    if max_in_flight is not None and max_in_flight < 1:
        raise ConfigError("max_in_flight", f"{max_in_flight!r} must be at least 1")
    connect(local_cpus)
    return RaySweep(manager, sweep_id, jobs, cpus_per_trial, trainer_factory, max_in_flight)


def launch_ray(
    manager: RunManager,
    spec: SweepSpec,
    *,
    cpus_per_trial: float = 1.0,
    trainer_factory: TrainerFactory | None = None,
    max_in_flight: int | None = None,
) -> RaySweep:
    """Validate the whole sweep, then run it on Ray against the manager's store."""
    sweep_id = new_sweep_id()
    return start_ray(
        manager,
        jobs_of(spec, sweep_id),
        sweep_id,
        cpus_per_trial=cpus_per_trial,
        trainer_factory=trainer_factory,
        max_in_flight=max_in_flight,
    )

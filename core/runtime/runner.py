"""The run manager: runs train in worker processes, supervised by one thread each.

One :class:`RunManager` per process, a plain lock-guarded object (the app reaches it through
``st.cache_resource``). Each started run has a supervisor thread (``core/runtime/supervisor.py``).
In the default ``process`` mode it starts a worker process (``core/runtime/worker.py``: a fresh
interpreter, one torch thread) that runs the training loop of ``core/runtime/run_loop.py``,
forwards commands to it (pause, resume, stop, live hyperparameter changes) and writes the
worker's messages (updates, episodes, events, checkpoint notices) through the store's one writer.
So trainers never share the web server's interpreter, and N runs use N cores. In ``thread``
mode (``workers="thread"``, or ``PLAYGROUND_WORKERS=thread``) the supervisor thread runs the same
loop itself.

Commands are acknowledged at once (:meth:`RunManager.requested` says "pausing" / "stopping" until
the loop confirms) and take effect at the next update boundary; a paused run blocks without CPU.
A worker that raises, is killed or runs out of memory marks its run ``failed`` with the traceback
or the signal; other runs go on. At most ``max_concurrent`` runs train at once (default: the
number of cores; a paused run keeps its slot); later ones are ``queued``.

Every run row records its owner (host, pid, process start time, manager token;
``core/runtime/owners.py``). On construction, runs left ``running``/``paused``/``queued`` by an
owner that is gone become ``interrupted``, with all their data kept; a run owned by another live
process (say, a CLI run) is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pickle
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

from core.config import ConfigError, RunConfig
from core.engine.trainer import Trainer, apply_changes
from core.runtime.checkpoint import CheckpointError, newest_restorable
from core.runtime.owners import owner_alive, process_owner
from core.runtime.run_loop import LoopSpec, TrainerFactory
from core.runtime.snapshots import SnapshotPolicy
from core.runtime.store import RunStore
from core.runtime.store_schema import ACTIVE_STATUSES, TERMINAL_STATUSES, StoreError
from core.runtime.supervisor import ManagedRun, Supervisor, UpdateCallback
from core.runtime.worker import warm_up

WORKER_MODES = ("process", "thread")

_LIVE_MANAGERS: set[str] = set()  # tokens of this process's managers that are not shut down


class RunError(RuntimeError):
    """A run command cannot be carried out; ``str()`` is one user-readable line."""


def default_checkpoint_seconds() -> float:
    """``PLAYGROUND_CHECKPOINT_SECONDS`` (training seconds between two checkpoints), else 30."""
    raw = os.environ.get("PLAYGROUND_CHECKPOINT_SECONDS", "").strip()
    try:
        seconds = float(raw) if raw else 30.0
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < math.inf:
        raise ValueError(f"PLAYGROUND_CHECKPOINT_SECONDS must be seconds > 0, not {raw!r}")
    return seconds


def default_workers() -> str:
    """``PLAYGROUND_WORKERS`` (``process`` or ``thread``), ``process`` when unset."""
    mode = os.environ.get("PLAYGROUND_WORKERS", "process").strip().lower() or "process"
    if mode not in WORKER_MODES:
        raise ValueError(
            f"PLAYGROUND_WORKERS must be one of {', '.join(WORKER_MODES)}, not {mode!r}"
        )
    return mode


def default_max_concurrent() -> int:
    """The number of cores this process may use: one run per core."""
    return max(1, len(os.sched_getaffinity(0)))


def _default_factory(config: RunConfig) -> Trainer:
    from core.engine.algos import make_trainer

    return make_trainer(config)


class RunManager:
    """Starts, pauses, resumes, stops and continues runs; see the module docstring."""

    def __init__(
        self,
        store: RunStore | None = None,
        max_concurrent: int | None = None,
        checkpoint_every: int = 20,
        keep_checkpoints: int = 3,
        workers: str | None = None,
        warm: bool = False,
        checkpoint_seconds: float | None = None,
        snapshots: SnapshotPolicy | None = None,
    ) -> None:
        max_concurrent = max_concurrent or default_max_concurrent()
        if max_concurrent < 1 or checkpoint_every < 1 or keep_checkpoints < 1:
            raise ValueError("max_concurrent, checkpoint_every and keep_checkpoints must be ≥ 1")
        checkpoint_seconds = checkpoint_seconds or default_checkpoint_seconds()
        if not checkpoint_seconds > 0:
            raise ValueError(f"checkpoint_seconds must be > 0, not {checkpoint_seconds!r}")
        self.checkpoint_seconds = checkpoint_seconds
        workers = workers or default_workers()
        if workers not in WORKER_MODES:
            raise ValueError(f"workers must be one of {', '.join(WORKER_MODES)}, not {workers!r}")
        self.workers = workers
        if warm and workers == "process":
            threading.Thread(target=warm_up, name="worker-fork-server", daemon=True).start()
        self._owns_store = store is None
        self.store = store if store is not None else RunStore()
        self.max_concurrent = max_concurrent
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.snapshots = snapshots or SnapshotPolicy()  # update snapshots for the inspector
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._runs: dict[str, ManagedRun] = {}
        self._queue: deque[str] = deque()
        self._requests: dict[str, str] = {}
        self._closed = False
        self._token = uuid.uuid4().hex
        self.owner = process_owner(self._token)
        _LIVE_MANAGERS.add(self._token)
        self.interrupted = self._recover()
        # At interpreter exit (before the store closes: atexit runs last-in, first-out), stop
        # the runs as interrupted, with a checkpoint to continue from.
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    # -- start-up -----------------------------------------------------------------------------

    def _recover(self) -> list[str]:
        """Mark runs left active by an owner that is gone as ``interrupted`` and make checkpoint
        rows and files agree (``RunStore.reconcile_checkpoints``); return the interrupted ids."""
        owners = self.store.owners()
        gone = self.store.interrupt(
            {rid: owner for rid, owner in owners.items() if not owner_alive(owner, _LIVE_MANAGERS)}
        )
        self.store.reconcile_checkpoints()
        return gone

    # -- commands -----------------------------------------------------------------------------

    def start(
        self,
        config: RunConfig,
        *,
        name: str | None = None,
        request_id: str | None = None,
        sweep_id: str | None = None,
        parent_id: str | None = None,
        trainer_factory: TrainerFactory | None = None,
        on_update: UpdateCallback | None = None,
        resume_from: str | None = None,
    ) -> str:
        """Validate ``config``, write the run row, start it (or queue it) and return its id.

        The same ``request_id`` always returns the same run id (a double click starts one run).
        ``on_update(run_id, report)`` is called in the supervisor after each stored update;
        ``resume_from`` is a checkpoint file to load into the fresh trainer. In process mode
        ``trainer_factory`` must pickle (a module-level function or class, or a partial of one).
        """
        with self._lock:
            if request_id is not None and request_id in self._requests:
                return self._requests[request_id]
        config = config.with_changes()  # a validated copy: later edits by the caller don't leak in
        factory = trainer_factory or _default_factory
        if self.workers == "process":
            _check_picklable(factory)
        with self._lock:
            if request_id is not None and request_id in self._requests:
                return self._requests[request_id]
            if self._closed:
                raise RunError("the run manager is shut down")
            run_id = self.store.create_run(
                config, name=name, parent_id=parent_id, sweep_id=sweep_id, owner=self.owner
            )
            self._runs[run_id] = ManagedRun(
                run_id, config, factory, resume_from=resume_from, on_update=on_update
            )
            if request_id is not None:
                self._requests[request_id] = run_id
            self._queue.append(run_id)
            self._schedule()
            return run_id

    def stop(self, run_id: str) -> None:
        """Stop a run; it lands within one update (a queued run never starts)."""
        with self._lock:
            run = self._active(run_id, "stop")
            if run.supervisor is None:
                self._queue.remove(run_id)
                self._end_queued(run, "stopped")
                return
            run.requested = "stopping"
            run.send(("stop", "stopped"))

    def pause(self, run_id: str) -> None:
        """Pause a running run after its current update; it then waits without using CPU."""
        with self._lock:
            run = self._active(run_id, "pause")
            if run.supervisor is None:
                raise RunError(f"run {run_id} is queued; it can be stopped, not paused")
            run.requested = "pausing"
            run.send(("pause",))

    def resume(self, run_id: str) -> None:
        """Let a paused run continue from where it paused."""
        with self._lock:
            run = self._active(run_id, "resume")
            if run.supervisor is not None:
                run.requested = "resuming"
                run.send(("resume",))

    def set_hyperparams(self, run_id: str, **changes: Any) -> dict[str, tuple]:
        """Validate live changes now (ConfigError), apply them before the run's next update.

        Returns ``{key: (old, new)}``; the loop records a ``hyperparams`` event when applied.
        """
        with self._lock:
            run = self._active(run_id, "change")
            new, diff = apply_changes(run.live_config, changes)
            run.live_config = new
            run.send(("set", {k: new.get(k) for k in changes}))
            if diff:
                run.changes_sent += 1
            return diff

    def wait_for_changes(self, run_id: str, timeout: float) -> bool:
        """Block until every live change sent to the run is recorded in the store (True), or
        ``timeout`` passes or the run ends (False). The loop records a change within a few
        milliseconds of the rollout (``core/runtime/run_loop.py``); a page waits for it to redraw
        once."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                run = self._runs.get(run_id)
                if run is None or run.ended:
                    return False
                if run.changes_recorded >= run.changes_sent:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def wait_for_updates(self, run_id: str, n: int, timeout: float) -> bool:
        """Block until the run has ``n`` updates in the store (True; committed, so any reader
        sees them), or ``timeout`` passes or the run ends short of them (False)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                run = self._runs.get(run_id)
                if run is None:
                    return False
                if run.updates >= n:
                    break
                remaining = deadline - time.monotonic()
                if run.ended or remaining <= 0:
                    return False
                self._changed.wait(remaining)
        self.store.flush()
        return True

    def requested(self, run_id: str) -> str | None:
        """ "pausing", "resuming" or "stopping" while such a command is on its way, else None."""
        with self._lock:
            run = self._runs.get(run_id)
            return run.requested if run is not None else None

    def continue_run(
        self,
        run_id: str,
        extra_steps: int | None = None,
        *,
        trainer_factory: TrainerFactory | None = None,
        on_update: UpdateCallback | None = None,
    ) -> str:
        """Start a new run from ``run_id``'s last checkpoint, linked to it by ``parent_id``.

        The new run's budget is ``extra_steps`` more env steps than the checkpoint, or the old
        budget when ``extra_steps`` is None (an interrupted or stopped run finishes its budget).
        The trainer comes from ``trainer_factory``, else the factory that trained ``run_id`` in
        this process, else the algorithm registry.
        """
        row = self.store.run(run_id)
        if row is None:
            raise RunError(f"no run {run_id!r}")
        if self.status(run_id) in ACTIVE_STATUSES:
            raise RunError(f"run {run_id} is still {self.status(run_id)}; stop it first")
        with self._lock:
            parent = self._runs.get(run_id)
        if trainer_factory is None and parent is not None:
            trainer_factory = parent.factory
        try:
            path, _, ckpt = newest_restorable(
                self.store.checkpoints(run_id)["path"].tolist(),
                run_id=run_id,
                algo=row["algo"],
                factory=trainer_factory or _default_factory,
            )
        except CheckpointError as e:
            raise RunError(str(e)) from None
        config = RunConfig.from_json(ckpt["config"])
        done = int(ckpt["env_steps"])
        if extra_steps is not None:
            if isinstance(extra_steps, bool) or not isinstance(extra_steps, int) or extra_steps < 1:
                raise ConfigError("extra_steps", f"{extra_steps!r} must be a positive integer")
            total = done + extra_steps
        elif done < config.total_steps:
            total = config.total_steps
        else:
            raise RunError(
                f"run {run_id} used its whole budget of {config.total_steps} steps; "
                "give extra steps to continue it"
            )
        config = config.with_changes(total_steps=total)
        return self.start(
            config,
            trainer_factory=trainer_factory,
            on_update=on_update,
            name=f"{row['name']} (continued)",
            parent_id=run_id,
            sweep_id=row["sweep_id"],
            resume_from=str(path),
        )

    def delete(self, run_id: str) -> None:
        """Delete a run and its data; refused while it is running, paused or queued."""
        with self._lock:
            status = self.status(run_id)
            if status in ACTIVE_STATUSES:
                raise RunError(f"run {run_id} is {status}; stop it before deleting it")
            self.store.delete(run_id)
            self._runs.pop(run_id, None)
            for key in [k for k, v in self._requests.items() if v == run_id]:
                del self._requests[key]

    # -- queries ------------------------------------------------------------------------------

    def status(self, run_id: str) -> str:
        """The run's current status (this manager's view first, then the store's)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                return run.status
        row = self.store.run(run_id)
        if row is None:
            raise RunError(f"no run {run_id!r}")
        return row["status"]

    def active(self) -> list[str]:
        """Ids of this manager's queued, running and paused runs."""
        with self._lock:
            return [rid for rid, r in self._runs.items() if r.status in ACTIVE_STATUSES]

    def worker_pid(self, run_id: str) -> int | None:
        """The pid of the run's worker process (process mode, while it trains), else None."""
        with self._lock:
            run = self._runs.get(run_id)
            return run.worker.pid if run is not None and run.worker is not None else None

    def wait(self, run_id: str, timeout: float | None = None) -> str:
        """Block until the run reaches a terminal status (or ``timeout``); return the status."""
        return self.wait_for_status(run_id, TERMINAL_STATUSES, timeout)

    def wait_for_status(
        self, run_id: str, statuses: tuple[str, ...], timeout: float | None = None
    ) -> str:
        """Block until the run's status is one of ``statuses`` (or ``timeout``); return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                status = self.status(run_id)
                if status in statuses:
                    return status
                remaining = 0.5 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return status
                # Runs of other processes change in the store only: look again every 0.5 s.
                self._changed.wait(min(remaining, 0.5))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every run as ``interrupted`` (checkpointed, resumable) and wait for them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._queue:
                self._end_queued(self._runs[self._queue.popleft()], "interrupted")
            running = [
                r
                for r in self._runs.values()
                if r.supervisor is not None and r.status in ACTIVE_STATUSES
            ]
            for run in running:
                run.send(("stop", "interrupted"))
        deadline = time.monotonic() + timeout
        for run in running:
            run.supervisor.join(max(0.0, deadline - time.monotonic()))
            if run.supervisor.is_alive() and run.worker is not None:
                run.worker.kill()
        _LIVE_MANAGERS.discard(self._token)
        if self._owns_store:
            self.store.close()
        else:
            with contextlib.suppress(StoreError):  # a store closed by its owner is fine here
                self.store.flush()

    # -- internals ----------------------------------------------------------------------------

    def _active(self, run_id: str, action: str) -> ManagedRun:
        run = self._runs.get(run_id)
        if run is not None and run.status in ACTIVE_STATUSES:
            return run
        status = self.status(run_id)  # raises RunError for unknown runs
        if status in ACTIVE_STATUSES:
            raise RunError(f"run {run_id} is {status} in another process; {action} it there")
        raise RunError(f"run {run_id} is {status}: it no longer trains, nothing to {action}")

    def _end_queued(self, run: ManagedRun, status: str) -> None:
        """End a run that never started (lock held)."""
        run.status = status
        with contextlib.suppress(StoreError):  # at exit the store may be closed already
            self.store.set_status(run.run_id, status)
            self.store.add_event(run.run_id, status, 0)
        self._changed.notify_all()

    def _schedule(self) -> None:
        """Start queued runs while slots are free (lock held)."""
        busy = sum(
            1
            for r in self._runs.values()
            if r.supervisor is not None and r.status in ACTIVE_STATUSES
        )
        while self._queue and busy < self.max_concurrent:
            run = self._runs[self._queue.popleft()]
            run.supervisor = Supervisor(
                run,
                self._spec(run),
                self.store,
                workers=self.workers,
                keep_checkpoints=self.keep_checkpoints,
                changed=self._changed,
                on_end=self._on_run_end,
            )
            run.supervisor.start()
            busy += 1

    def _on_run_end(self) -> None:
        """A run has ended and freed its slot (lock held): start the next queued one."""
        if not self._closed:
            self._schedule()

    def _spec(self, run: ManagedRun) -> LoopSpec:
        """What the run's loop needs (it travels to the worker process)."""
        return LoopSpec(
            run_id=run.run_id,
            config_json=run.config.to_json(),
            checkpoint_dir=str(self.store.checkpoint_dir(run.run_id)),
            checkpoint_every=self.checkpoint_every,
            resume_from=run.resume_from,
            checkpoint_seconds=self.checkpoint_seconds,
            snapshots=self.snapshots,
        )


def _check_picklable(factory: TrainerFactory) -> None:
    """A worker process rebuilds the factory by import: it must pickle, and not from __main__."""
    try:
        ok = b"__main__" not in pickle.dumps(factory)
        reason = "it is defined in __main__, which a worker process does not import"
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        ok, reason = False, str(e)
    if not ok:
        raise RunError(
            "a trainer factory must be picklable (a module-level function or class) to train "
            f"in a worker process; use workers='thread' for this one ({reason})"
        )


def _shutdown_at_exit(ref: weakref.ref) -> None:
    manager = ref()
    if manager is not None:
        manager.shutdown()

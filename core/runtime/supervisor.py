"""A run's supervisor: the thread that trains one run and writes what happens to the store.

The run manager (``core/runtime/runner.py``) starts one :class:`Supervisor` per run it lets
train. In ``process`` mode the supervisor starts a worker process (``core/runtime/worker.py``)
and forwards the commands sent before the worker existed; in ``thread`` mode it runs the loop of
``core/runtime/run_loop.py`` itself (one torch thread). Either way every message of the loop
(updates, episodes, events, checkpoint notices, the end) becomes store writes here, through the
store's one writer, and the outcome is recorded even when the worker raises, is killed or runs
out of memory (the run is then ``failed`` with the traceback or the signal).

State shared with the manager (:class:`ManagedRun`) changes under the manager's lock, the one
behind ``changed``, which is notified at every change a waiter may want.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.config import RunConfig
from core.engine.trainer import Episode, UpdateReport
from core.runtime.run_loop import Command, LoopSpec, Message, RunLoop, TrainerFactory
from core.runtime.store import RunStore
from core.runtime.store_schema import StoreError
from core.runtime.worker import WorkerProcess

UpdateCallback = Callable[[str, UpdateReport], None]


@dataclass
class ManagedRun:
    """What the manager knows about one run it started."""

    run_id: str
    config: RunConfig
    factory: TrainerFactory
    resume_from: str | None = None
    on_update: UpdateCallback | None = None
    status: str = "queued"
    requested: str | None = None  # "pausing" / "resuming" / "stopping" until the loop confirms
    live_config: RunConfig | None = None  # config with the validated pending changes
    changes_sent: int = 0  # live changes sent to the loop …
    changes_recorded: int = 0  # … and those whose ``hyperparams`` event is in the store
    supervisor: Supervisor | None = None
    commands: queue.Queue = field(default_factory=queue.Queue)  # thread mode
    worker: WorkerProcess | None = None  # process mode
    env_steps: int = 0
    updates: int = 0  # updates handed to the store's writer
    ended: bool = False
    checkpoints: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.live_config = self.config

    def send(self, command: Command) -> None:
        """Forward a command to the run's loop (the manager's lock held)."""
        if self.worker is not None:
            self.worker.send(command)
        else:
            self.commands.put(command)


class Supervisor(threading.Thread):
    """The supervisor thread of one run: train it (here or in a worker), store the outcome."""

    def __init__(
        self,
        managed: ManagedRun,
        spec: LoopSpec,
        store: RunStore,
        *,
        workers: str,
        keep_checkpoints: int,
        changed: threading.Condition,
        on_end: Callable[[], None],
    ) -> None:
        """``changed`` is the manager's condition (on its lock); ``on_end()`` is called with
        that lock held once the run has ended, to free its slot."""
        super().__init__(name=f"run-{managed.run_id}", daemon=True)
        self.managed = managed
        self.spec = spec
        self.store = store
        self.workers = workers
        self.keep_checkpoints = keep_checkpoints
        self.changed = changed
        self.on_end = on_end

    def run(self) -> None:
        run = self.managed
        try:
            if self.workers == "thread":
                torch.set_num_threads(1)
                RunLoop(self.spec, run.factory, run.commands, self._handle).run()
            else:
                self._in_process()
        except BaseException as exc:  # the store or the worker's start failed
            line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            self._handle(("failed", line, line, run.env_steps))

    def _in_process(self) -> None:
        run = self.managed
        worker = WorkerProcess(self.spec, run.factory)
        with self.changed:
            run.worker = worker
            for command in _replay(run):  # commands sent before the worker existed
                worker.send(command)
        for message in worker.messages():
            self._handle(message)
        reason = worker.exit_reason()
        if not run.ended:
            self._handle(("failed", reason, reason, run.env_steps))

    def _handle(self, message: Message) -> None:
        """Write one message of the run's loop to the store (the supervisor's one job)."""
        run, store = self.managed, self.store
        kind, *args = message
        if kind == "update":
            metrics, episodes = args
            run.env_steps = int(metrics.get("env_steps", run.env_steps))
            eps = [Episode(*e) for e in episodes]
            store.append_update(run.run_id, metrics, eps)
            with self.changed:
                run.updates += 1
                self.changed.notify_all()
            if run.on_update is not None:
                run.on_update(run.run_id, UpdateReport(metrics, eps))
        elif kind == "checkpoint":
            self._on_checkpoint(*args)
        elif kind in ("started", "paused", "resumed"):
            run.env_steps = args[0]
            self._set_status("paused" if kind == "paused" else "running")
            store.add_event(run.run_id, kind, run.env_steps)
        elif kind == "hyperparams":
            store.add_event(run.run_id, "hyperparams", args[0], args[1])
            store.flush()
            with self.changed:
                run.changes_recorded += 1
                self.changed.notify_all()
        elif kind == "ended":
            outcome, run.env_steps = args
            store.add_event(run.run_id, outcome, run.env_steps)
            self._finish(outcome)
        elif kind == "failed":
            text, line, steps = args
            with contextlib.suppress(StoreError):  # a broken store must not hide the outcome
                store.add_event(run.run_id, "failed", steps, {"error": line})
            self._finish("failed", text)

    def _set_status(self, status: str) -> None:
        """Commit the new status, then clear the acknowledged command: a page never sees the
        request withdrawn before the store shows its effect."""
        self.store.set_status(self.managed.run_id, status)
        self.store.flush()
        with self.changed:
            self.managed.status = status
            self.managed.requested = None
            self.changed.notify_all()

    def _on_checkpoint(self, update: int, env_steps: int, path: str) -> None:
        """Record the loop's new checkpoint file; keep the newest few."""
        run = self.managed
        self.store.add_checkpoint(run.run_id, update, env_steps, path)
        run.checkpoints.append(Path(path))
        old = run.checkpoints[: -self.keep_checkpoints]
        if old:
            del run.checkpoints[: -self.keep_checkpoints]
            self.store.remove_checkpoints(run.run_id, old)
            self.store.flush()  # the rows go first: a crash here leaves files, never dead rows
            for p in old:
                p.unlink(missing_ok=True)

    def _finish(self, status: str, error: str | None = None) -> None:
        """Record the final status, commit everything, free the slot, wake waiters."""
        run = self.managed
        run.ended = True
        try:
            self.store.set_status(run.run_id, status, error)
            self.store.flush()
        except StoreError:
            pass  # the store is broken; this process still knows the outcome
        with self.changed:
            run.status = status
            run.requested = None
            run.worker = None
            self.changed.notify_all()
            self.on_end()


def _replay(run: ManagedRun) -> list[Command]:
    """Commands queued for a run before its worker process started (lock held)."""
    commands = []
    while True:
        try:
            commands.append(run.commands.get_nowait())
        except queue.Empty:
            return commands

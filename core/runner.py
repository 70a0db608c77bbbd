"""The run manager: background training threads over the run store (DESIGN.md §7).

One :class:`RunManager` per process, a plain lock-guarded object (the app reaches it through
``st.cache_resource``). Each running run has one worker thread (``torch.set_num_threads(1)``) that
loops: check stop/pause → apply pending hyperparameter changes → ``trainer.update()`` → hand the
report to the store → checkpoint every ``checkpoint_every`` updates. So a stop lands within one
update, and a paused run waits on a ``threading.Event`` (no CPU). A crash stores the traceback and
marks that run ``failed``; other runs go on. At most ``max_concurrent`` runs train at once (a paused
run keeps its slot); later ones are ``queued`` and start when a slot frees.

Every run row records its owner (host, pid, process start time, manager token). On construction,
runs left ``running``/``paused``/``queued`` by an owner that is gone become ``interrupted``, with
all their data kept; a run owned by another live process (say, a CLI run) is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
import time
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.config import ConfigError, RunConfig
from core.store import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    RunStore,
    StoreError,
    parse_owner,
    process_alive,
    process_owner,
)
from core.trainer import Trainer, UpdateReport, apply_changes

TrainerFactory = Callable[[RunConfig], Trainer]
UpdateCallback = Callable[[str, UpdateReport], None]

_LIVE_MANAGERS: set[str] = set()  # tokens of this process's managers that are not shut down


class RunError(RuntimeError):
    """A run command cannot be carried out; ``str()`` is one user-readable line."""


@dataclass
class _Run:
    """What the manager knows about one run it started."""

    run_id: str
    config: RunConfig
    factory: TrainerFactory
    resume_from: str | None = None
    on_update: UpdateCallback | None = None
    status: str = "queued"
    live_config: RunConfig | None = None  # config with the validated pending changes
    pending: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    unpaused: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = "stopped"
    thread: threading.Thread | None = None
    checkpoints: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.live_config = self.config
        self.unpaused.set()


def _default_factory(config: RunConfig) -> Trainer:
    from core.algos import make_trainer

    return make_trainer(config)


class RunManager:
    """Starts, pauses, resumes, stops and continues runs; see the module docstring."""

    def __init__(
        self,
        store: RunStore | None = None,
        max_concurrent: int = 2,
        checkpoint_every: int = 20,
        keep_checkpoints: int = 3,
    ) -> None:
        if max_concurrent < 1 or checkpoint_every < 1 or keep_checkpoints < 1:
            raise ValueError("max_concurrent, checkpoint_every and keep_checkpoints must be ≥ 1")
        self._owns_store = store is None
        self.store = store if store is not None else RunStore()
        self.max_concurrent = max_concurrent
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._runs: dict[str, _Run] = {}
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
        """Mark runs left active by an owner that is gone as ``interrupted``; return their ids."""
        gone = [rid for rid, owner in self.store.owners().items() if not _owner_alive(owner)]
        if gone:
            steps = self.store.runs(gone).set_index("run_id")["env_steps"]
            for run_id in gone:
                self.store.set_status(run_id, "interrupted")
                self.store.add_event(
                    run_id, "interrupted", int(steps[run_id]), {"reason": "process ended"}
                )
            self.store.flush()
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
        ``on_update(run_id, report)`` is called in the worker after each stored update;
        ``resume_from`` is a checkpoint file to load into the fresh trainer.
        """
        with self._lock:
            if request_id is not None and request_id in self._requests:
                return self._requests[request_id]
        config = config.with_changes()  # a validated copy: later edits by the caller don't leak in
        with self._lock:
            if request_id is not None and request_id in self._requests:
                return self._requests[request_id]
            if self._closed:
                raise RunError("the run manager is shut down")
            run_id = self.store.create_run(
                config, name=name, parent_id=parent_id, sweep_id=sweep_id, owner=self.owner
            )
            self._runs[run_id] = _Run(
                run_id,
                config,
                trainer_factory or _default_factory,
                resume_from=resume_from,
                on_update=on_update,
            )
            if request_id is not None:
                self._requests[request_id] = run_id
            self._queue.append(run_id)
            self._schedule()
            return run_id

    def stop(self, run_id: str) -> None:
        """Stop a run; it lands within one update (a queued run never starts)."""
        with self._lock:
            run = self._active(run_id)
            if run.thread is None:
                self._queue.remove(run_id)
                self._end_queued(run, "stopped")
                return
            run.stop_reason = "stopped"
            run.stop.set()
            run.unpaused.set()

    def pause(self, run_id: str) -> None:
        """Pause a running run after its current update; it then waits without using CPU."""
        with self._lock:
            run = self._active(run_id)
            if run.thread is None:
                raise RunError(f"run {run_id} is queued; it can be stopped, not paused")
            run.unpaused.clear()

    def resume(self, run_id: str) -> None:
        """Let a paused run continue from where it paused."""
        with self._lock:
            self._active(run_id).unpaused.set()

    def set_hyperparams(self, run_id: str, **changes: Any) -> dict[str, tuple]:
        """Validate live changes now (ConfigError), apply them before the run's next update.

        Returns ``{key: (old, new)}``; the worker records a ``hyperparams`` event when applied.
        """
        with self._lock:
            run = self._active(run_id)
            new, diff = apply_changes(run.live_config, changes)
            run.live_config = new
            run.pending.update({k: new.get(k) for k in changes})
            return diff

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
        ckpts = self.store.checkpoints(run_id)
        if ckpts.empty:
            raise RunError(f"run {run_id} has no checkpoint to continue from")
        path = ckpts["path"].iloc[-1]
        try:
            ckpt = load_checkpoint(path)
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
        with self._lock:
            parent = self._runs.get(run_id)
        if trainer_factory is None and parent is not None:
            trainer_factory = parent.factory
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

    def list_runs(self) -> pd.DataFrame:
        """``store.runs()`` with this manager's live statuses (the store lags a few 100 ms)."""
        df = self.store.runs()
        with self._lock:
            live = {rid: r.status for rid, r in self._runs.items()}
        if not df.empty:
            df["status"] = [live.get(rid, st) for rid, st in zip(df["run_id"], df["status"])]
        return df

    def active(self) -> list[str]:
        """Ids of this manager's queued, running and paused runs."""
        with self._lock:
            return [rid for rid, r in self._runs.items() if r.status in ACTIVE_STATUSES]

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
        """Stop every run as ``interrupted`` (checkpointed, resumable) and wait for the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._queue:
                self._end_queued(self._runs[self._queue.popleft()], "interrupted")
            threads = []
            for run in self._runs.values():
                if run.thread is not None and run.status in ACTIVE_STATUSES:
                    run.stop_reason = "interrupted"
                    run.stop.set()
                    run.unpaused.set()
                    threads.append(run.thread)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        _LIVE_MANAGERS.discard(self._token)
        if self._owns_store:
            self.store.close()
        else:
            with contextlib.suppress(StoreError):  # a store closed by its owner is fine here
                self.store.flush()

    # -- internals ----------------------------------------------------------------------------

    def _active(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            status = self.status(run_id)  # raises RunError for unknown runs
            raise RunError(f"run {run_id} is {status}, not active in this process")
        return run

    def _end_queued(self, run: _Run, status: str) -> None:
        """End a run that never started (lock held)."""
        run.status = status
        with contextlib.suppress(StoreError):  # at exit the store may be closed already
            self.store.set_status(run.run_id, status)
            self.store.add_event(run.run_id, status, 0)
        self._changed.notify_all()

    def _schedule(self) -> None:
        """Start queued runs while slots are free (lock held)."""
        busy = sum(
            1 for r in self._runs.values() if r.thread is not None and r.status in ACTIVE_STATUSES
        )
        while self._queue and busy < self.max_concurrent:
            run = self._runs[self._queue.popleft()]
            run.thread = threading.Thread(
                target=self._work, args=(run,), name=f"run-{run.run_id}", daemon=True
            )
            run.thread.start()
            busy += 1

    def _set_status(self, run: _Run, status: str, error: str | None = None) -> None:
        with self._lock:
            run.status = status
            self._changed.notify_all()
        self.store.set_status(run.run_id, status, error)

    def _work(self, run: _Run) -> None:
        """The worker thread of one run."""
        torch.set_num_threads(1)
        trainer = None
        try:
            trainer = run.factory(run.config)
            if run.resume_from is not None:
                trainer.load_state_dict(self._resume_state(run))
            self._set_status(run, "running")
            self.store.add_event(run.run_id, "started", trainer.book.env_steps)
            outcome = self._loop(run, trainer)
            self._checkpoint(run, trainer)
            self.store.add_event(run.run_id, outcome, trainer.book.env_steps)
            self._finish(run, outcome)
        except BaseException as exc:
            text = traceback.format_exc()
            steps = trainer.book.env_steps if trainer is not None else 0
            line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            with contextlib.suppress(StoreError):  # a broken store must not hide the outcome
                self.store.add_event(run.run_id, "failed", steps, {"error": line})
            self._finish(run, "failed", text)

    @staticmethod
    def _resume_state(run: _Run) -> dict[str, Any]:
        """The checkpoint's trainer state; its config (trainers keep one) becomes the new run's,
        so a continued run trains to its own budget."""
        state = load_checkpoint(run.resume_from)["state"]
        if isinstance(state.get("config"), str):
            state = {**state, "config": run.config.to_json()}
        return state

    def _loop(self, run: _Run, trainer: Trainer) -> str:
        """Train until the budget is spent or a stop arrives; return the outcome status."""
        while not trainer.done:
            if run.stop.is_set():
                return run.stop_reason
            if not run.unpaused.is_set():
                self._pause_point(run, trainer)
                continue
            self._apply_pending(run, trainer)
            report = trainer.update()
            self.store.append_update(run.run_id, report.metrics, report.episodes)
            if run.on_update is not None:
                run.on_update(run.run_id, report)
            if trainer.book.update % self.checkpoint_every == 0:
                self._checkpoint(run, trainer)
        return "finished"

    def _pause_point(self, run: _Run, trainer: Trainer) -> None:
        """Checkpoint, then block on the ``unpaused`` event (set by resume and by stop)."""
        self._checkpoint(run, trainer)
        self._set_status(run, "paused")
        self.store.add_event(run.run_id, "paused", trainer.book.env_steps)
        run.unpaused.wait()
        if not run.stop.is_set():
            self._set_status(run, "running")
            self.store.add_event(run.run_id, "resumed", trainer.book.env_steps)

    def _apply_pending(self, run: _Run, trainer: Trainer) -> None:
        with self._lock:
            pending, run.pending = run.pending, {}
        if pending:
            diff = trainer.set_hyperparams(**pending)
            if diff:
                payload = {k: [old, new] for k, (old, new) in diff.items()}
                self.store.add_event(run.run_id, "hyperparams", trainer.book.env_steps, payload)

    def _checkpoint(self, run: _Run, trainer: Trainer) -> None:
        """Save the trainer's state (once per update number); keep the newest few files."""
        book = trainer.book
        if book.update == 0:
            return
        path = self.store.checkpoint_dir(run.run_id) / f"update_{book.update:07d}.pt"
        if run.checkpoints and run.checkpoints[-1] == path:
            return
        save_checkpoint(
            path,
            run_id=run.run_id,
            update=book.update,
            env_steps=book.env_steps,
            config_json=trainer.config.to_json(),
            state=trainer.state_dict(),
        )
        self.store.add_checkpoint(run.run_id, book.update, book.env_steps, str(path))
        run.checkpoints.append(path)
        old = run.checkpoints[: -self.keep_checkpoints]
        if old:
            del run.checkpoints[: -self.keep_checkpoints]
            for p in old:
                p.unlink(missing_ok=True)
            self.store.remove_checkpoints(run.run_id, [str(p) for p in old])

    def _finish(self, run: _Run, status: str, error: str | None = None) -> None:
        """Record the final status, commit everything, free the slot, wake waiters."""
        try:
            self.store.set_status(run.run_id, status, error)
            self.store.flush()
        except StoreError:
            pass  # the store is broken; this process still knows the outcome
        with self._lock:
            run.status = status
            self._changed.notify_all()
            if not self._closed:
                self._schedule()


def _shutdown_at_exit(ref: weakref.ref) -> None:
    manager = ref()
    if manager is not None:
        manager.shutdown()


# -- process ownership ------------------------------------------------------------------------


def _owner_alive(owner: str | None) -> bool:
    """Whether the process (and, in this process, the manager) owning a run may still train it.

    Runs created through the store alone (no manager token) belong to their process.
    """
    tag = parse_owner(owner)
    if tag is None:
        return False
    if tag["pid"] == os.getpid() and tag.get("host") == socket.gethostname():
        return "manager" not in tag or tag["manager"] in _LIVE_MANAGERS
    return process_alive(tag)

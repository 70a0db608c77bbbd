"""The training loop of one run, the same in a worker process and in a worker thread.

The loop owns the trainer. It takes commands from a queue and reports everything that happens as
messages through ``emit``; it never touches the run store. The run manager's supervisor turns
the messages into store writes (``core/runtime/supervisor.py``), and ``core/runtime/worker.py``
carries both directions over a pipe when the loop runs in its own process.

Commands (supervisor → loop), plain tuples so that they pickle:
``("pause",)``, ``("resume",)``, ``("stop", reason)``, ``("set", {key: value})``.

Messages (loop → supervisor):
``("started", env_steps)``, ``("update", metrics, [(env_step, ret, length), …])``,
``("hyperparams", env_steps, {key: [old, new]})``, ``("paused", env_steps)``,
``("resumed", env_steps)``, ``("checkpoint", update, env_steps, path)``,
``("ended", outcome, env_steps)`` and ``("failed", traceback, one_line, env_steps)``.

After each update the loop hands the trainer's update snapshot (TRPO, NPG, PPO) to a writer
thread of the worker (``SnapshotWriter`` in ``core/runtime/snapshots.py``), which writes it beside
the checkpoints under ``LoopSpec.snapshots``; no message carries it, and the loop waits for the
writer before the run ends.

The loop looks at its commands between two updates and, through ``Bookkeeper.on_poll``, every
few dozen env steps of a rollout and between two learning epochs (``core/engine/trainer.py``),
so commands land within milliseconds:

- pause: between updates the loop checkpoints, says so and blocks on the queue (no CPU) until
  ``resume`` or ``stop``; inside an update it blocks right there (the rollout or the learning
  goes on after resume; the pause is left out of the update's time);
- stop: inside a rollout the unfinished update is dropped (its env steps and episodes are
  forgotten: the run ends at its last finished update, which the final checkpoint holds); in the
  learning phase the update finishes first (at most a few hundred ms), so no checkpoint holds
  half-trained weights;
- live changes are validated at once (paused or not) against the newest config
  (``apply_changes`` in ``core/engine/trainer.py``) and reported; the loop keeps the new config and
  hands it to the trainer (``reconfigure``) right before the next update, so they take effect at
  that update's first env step, which the ``hyperparams`` message carries.
"""

from __future__ import annotations

import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.engine.trainer import Trainer, apply_changes
from core.runtime.checkpoint import load_checkpoint, save_checkpoint
from core.runtime.snapshots import SnapshotPolicy, SnapshotWriter, snapshot_dir

Command = tuple
Message = tuple
Emit = Callable[[Message], None]
TrainerFactory = Callable[[RunConfig], Trainer]


class StopRequestedError(Exception):
    """A stop arrived in the middle of an update: the update is abandoned."""


@dataclass(frozen=True)
class LoopSpec:
    """What a loop needs to train one run (picklable: it travels to a worker process)."""

    run_id: str
    config_json: str
    checkpoint_dir: str
    checkpoint_every: int
    resume_from: str | None = None
    checkpoint_seconds: float = 30.0
    snapshots: SnapshotPolicy = SnapshotPolicy()  # update snapshots (core/runtime/snapshots.py)


class RunLoop:
    """Train one run to its budget or until stopped; see the module docstring."""

    def __init__(self, spec: LoopSpec, factory: TrainerFactory, commands: Any, emit: Emit) -> None:
        """``commands`` has ``get(block)`` raising ``queue.Empty`` (a ``queue.Queue``, or the
        worker's pipe reader)."""
        self.spec = spec
        self.factory = factory
        self.commands = commands
        self.emit = emit
        self.stop_reason: str | None = None
        self.paused = False
        self.pending: dict[str, Any] = {}  # live changes received, not yet validated
        self.next_config: RunConfig | None = None  # validated and reported, for the next update
        self._last_checkpoint = 0
        self._checkpoint_time = time.monotonic()
        self._snapshots: SnapshotWriter | None = None  # started at the first snapshot

    def run(self) -> None:
        """Build the trainer, train, checkpoint at the end; every outcome becomes a message."""
        trainer = None
        try:
            trainer = self.factory(RunConfig.from_json(self.spec.config_json))
            if self.spec.resume_from is not None:
                trainer.load_state_dict(self._resume_state())
            self.emit(("started", trainer.book.env_steps))
            try:
                outcome = self._loop(trainer)
            finally:
                if self._snapshots is not None:
                    self._snapshots.close()  # every snapshot on disk before the run ends
            self._checkpoint(trainer)
            self.emit(("ended", outcome, trainer.book.env_steps))
        except BaseException as exc:
            steps = trainer.book.env_steps if trainer is not None else 0
            line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            self.emit(("failed", traceback.format_exc(), line, steps))

    def _resume_state(self) -> dict[str, Any]:
        """The checkpoint's trainer state; its config (trainers keep one) becomes the new run's,
        so a continued run trains to its own budget."""
        state = load_checkpoint(self.spec.resume_from)["state"]
        if isinstance(state.get("config"), str):
            state = {**state, "config": self.spec.config_json}
        return state

    def _loop(self, trainer: Trainer) -> str:
        """Train until the budget is spent or a stop arrives; return the outcome status."""
        trainer.book.on_poll = lambda stoppable: self._in_update(trainer, stoppable)
        if self.spec.snapshots.enabled and hasattr(trainer, "capture_snapshots"):
            trainer.capture_snapshots = True
        while not trainer.done:
            self._drain(block=False)
            if self.stop_reason is not None:
                return self.stop_reason
            if self.paused:
                self._pause_point(trainer)
                continue
            self._take_changes(trainer, trainer.book.env_steps)
            if self.next_config is not None:
                trainer.reconfigure(self.next_config)
                self.next_config = None
            try:
                report = trainer.update()
            except StopRequestedError:
                trainer.book.discard_update()
                return self.stop_reason or "stopped"
            episodes = [(e.env_step, e.ret, e.length) for e in report.episodes]
            self.emit(("update", report.metrics, episodes))
            self._snapshot(trainer)
            if self._checkpoint_due(trainer.book.update):
                self._checkpoint(trainer)
        return "finished"

    def _snapshot(self, trainer: Trainer) -> None:
        """Hand the update's snapshot, if the trainer left one, to the writer thread (which also
        prunes the older ones)."""
        snap = getattr(trainer, "last_snapshot", None)
        if snap is None or not self.spec.snapshots.enabled:
            return
        if self._snapshots is None:
            directory = snapshot_dir(self.spec.checkpoint_dir)
            self._snapshots = SnapshotWriter(directory, self.spec.snapshots)
        self._snapshots.put(trainer.book.update, snap)

    def _checkpoint_due(self, update: int) -> bool:
        """After the first update, every ``checkpoint_every`` updates, and whenever
        ``checkpoint_seconds`` have passed since the last checkpoint: a kill loses at most that
        much training, however long an update takes."""
        spec = self.spec
        return (
            update == 1
            or update % spec.checkpoint_every == 0
            or time.monotonic() - self._checkpoint_time >= spec.checkpoint_seconds
        )

    def _drain(self, block: bool) -> None:
        """Take every queued command (with ``block``, wait for at least one)."""
        while True:
            try:
                command = self.commands.get(block=block)
            except queue.Empty:
                return
            self._take(command)
            block = False

    def _take(self, command: Command) -> None:
        kind = command[0]
        if kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "stop":
            self.stop_reason = command[1]
        elif kind == "set":
            self.pending.update(command[1])
        else:
            raise ValueError(f"unknown command {command!r}")

    def _pause_point(self, trainer: Trainer) -> None:
        """Checkpoint, say so, then block on the command queue until resume or stop."""
        self._checkpoint(trainer)
        self.emit(("paused", trainer.book.env_steps))
        while self.paused and self.stop_reason is None:
            self._drain(block=True)
            self._take_changes(trainer, trainer.book.env_steps)  # shown while still paused
        if self.stop_reason is None:
            self.emit(("resumed", trainer.book.env_steps))

    def _in_update(self, trainer: Trainer, stoppable: bool = True) -> None:
        """Commands in the middle of an update (called by the bookkeeper: from the rollout,
        ``stoppable``, and between learning steps, where a stop waits for the update's end)."""
        self._drain(block=False)
        if self.stop_reason is not None:
            if stoppable:
                raise StopRequestedError
            return  # the loop stops right after this update
        if not (self.pending or self.paused):
            return  # the common case, every 32 vector steps: nothing to do
        book = trainer.book
        next_update = book.steps_at_start + trainer.config.n_steps * trainer.config.n_envs
        self._take_changes(trainer, next_update)
        if self.paused:
            self.emit(("paused", book.env_steps))
            t0 = time.perf_counter()
            while self.paused and self.stop_reason is None:
                self._drain(block=True)
                self._take_changes(trainer, next_update)
            book.exclude(time.perf_counter() - t0)
            if self.stop_reason is not None:
                if stoppable:
                    raise StopRequestedError
                return
            self.emit(("resumed", book.env_steps))

    def _take_changes(self, trainer: Trainer, effective_at: int) -> None:
        """Validate the received live changes against the newest config (the one kept for the
        next update, else the trainer's), keep the result for the next update, which begins at
        env step ``effective_at``, and report the difference."""
        changes, self.pending = self.pending, {}
        if not changes:
            return
        config, diff = apply_changes(self.next_config or trainer.config, changes)
        if diff:
            self.next_config = config
            payload = {k: [old, new] for k, (old, new) in diff.items()}
            self.emit(("hyperparams", effective_at, payload))

    def _checkpoint(self, trainer: Trainer) -> None:
        """Save the trainer's state once per update number and report the file."""
        book = trainer.book
        if book.update == 0 or book.update == self._last_checkpoint:
            return
        path = Path(self.spec.checkpoint_dir) / f"update_{book.update:07d}.pt"
        save_checkpoint(
            path,
            run_id=self.spec.run_id,
            update=book.update,
            env_steps=book.env_steps,
            config_json=trainer.config.to_json(),
            state=trainer.state_dict(),
        )
        self._last_checkpoint = book.update
        self._checkpoint_time = time.monotonic()
        self.emit(("checkpoint", book.update, book.env_steps, str(path)))

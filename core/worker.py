"""A run's worker process: a fresh interpreter that runs :class:`~core.run_loop.RunLoop`.

Parent side: :class:`WorkerProcess` starts ``python -m core.worker FD`` with one end of a socket
pair as its only inherited descriptor (no ``multiprocessing`` bootstrap, so it works the same
under ``streamlit run``, the CLI, pytest and the local sweep executor). The child imports torch
and the engine (about 3 s of CPU) before it is given a run, so a manager can keep one spare
worker ready and a new run starts training at once. :meth:`WorkerProcess.assign` sends the loop's
spec and the pickled trainer factory; then the parent forwards commands and reads the messages.

Child side (:func:`main`): one torch thread; a reader thread puts commands on the loop's queue.
When the parent dies (kill -9 included), the socket reaches end-of-file and the reader ends the
process at once, so a worker never outlives its app.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from core.run_loop import Command, LoopSpec, Message, RunLoop, TrainerFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
PARENT_GONE_EXIT = 3  # exit status of a worker whose parent went away


class WorkerProcess:
    """The parent's handle on one worker process."""

    def __init__(self) -> None:
        """Start the interpreter; it imports the engine, then waits for :meth:`assign`."""
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": _python_path()}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd=REPO_ROOT,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self._send_lock = threading.Lock()

    def assign(self, spec: LoopSpec, factory: TrainerFactory) -> None:
        """Give the worker its run: the loop starts as soon as the imports are done."""
        with self._send_lock:
            self.conn.send_bytes(pickle.dumps((spec, factory)))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: Command) -> None:
        """Forward a command; a worker that has already exited is not an error."""
        with self._send_lock, contextlib.suppress(OSError):
            self.conn.send(command)

    def messages(self) -> Iterator[Message]:
        """The loop's messages, in order, until the worker closes its end or dies."""
        while True:
            try:
                yield self.conn.recv()
            except (EOFError, OSError):
                return

    def exit_reason(self, timeout: float = 5.0) -> str:
        """Wait for the process to end and say how it ended, in words."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.conn.close()
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory, or killed by hand)" if name == "SIGKILL" else ""
            return f"the worker process was killed by {name}{hint}"
        return f"the worker process exited with status {code} before the run ended"

    def kill(self) -> None:
        """End the process now (a spare, or a worker that ignored a stop)."""
        self.process.kill()
        self.process.wait()
        self.conn.close()


def _python_path() -> str:
    """The parent's import roots first (so factories from tests or benchmarks unpickle)."""
    roots = [str(REPO_ROOT), *(p for p in sys.path if p and Path(p).is_dir())]
    extra = os.environ.get("PYTHONPATH")
    return os.pathsep.join(dict.fromkeys([*roots, *([extra] if extra else [])]))


def _read_commands(conn: Connection, commands: queue.Queue, done: threading.Event) -> None:
    """Put the parent's commands on the loop's queue; end the process when the parent is gone."""
    try:
        while True:
            commands.put(conn.recv())
    except (EOFError, OSError):
        if not done.is_set():
            os._exit(PARENT_GONE_EXIT)


def main(fd: int) -> None:
    import torch

    import core.algos  # noqa: F401  (imported before the run arrives: a spare starts at once)

    torch.set_num_threads(1)
    conn = Connection(fd)
    try:
        payload = conn.recv_bytes()
    except (EOFError, OSError):  # a spare whose parent ended
        return
    try:
        spec, factory = pickle.loads(payload)
    except BaseException as exc:  # the factory's module may not import here
        line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        conn.send(("failed", traceback.format_exc(), line, 0))
        return
    done = threading.Event()
    commands: queue.Queue = queue.Queue()
    threading.Thread(
        target=_read_commands, args=(conn, commands, done), name="commands", daemon=True
    ).start()
    RunLoop(spec, factory, commands, conn.send).run()
    done.set()
    conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""A run's worker process: a fresh interpreter that runs :class:`~core.runtime.run_loop.RunLoop`.

Worker processes are forked by ``multiprocessing``'s fork server: one clean interpreter per
parent process, started once (from the parent's ``sys.path``), that imports torch and the engine
(about 3 s of CPU) and then forks a worker per run in milliseconds. It is single-threaded and
never runs torch, so forking it is safe, and a worker never inherits the web server's threads or
state. :func:`warm_up` starts it ahead of the first run. Module names ending in ``.__main__``
(``python -m streamlit``, ``python -m pytest``, ``python -m core``) are not re-imported in the
workers, so this works the same under ``streamlit run``, the CLI, pytest and the local sweeps.

Parent side: :class:`WorkerProcess` starts one worker with one end of a pipe, sends the loop's
spec and the pickled trainer factory, forwards commands and yields the loop's messages; the fork
server reports the worker's exit status (a signal included).

Child side (:func:`serve`): one torch thread, at a lower scheduling priority than the app
(``WORKER_NICE``: when trainers and the web server want the same core, the server answers
first; with a core each, nothing changes); the loop reads its commands straight from the pipe
at each update boundary, and a watcher thread ends the process the moment the app's end of the
pipe closes (kill -9 included), so a worker never outlives its app (the fork server exits too).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import select
import signal
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection

from core.runtime.run_loop import Command, LoopSpec, Message, RunLoop, TrainerFactory

WORKER_NICE = 5  # a trainer's share of a contended core is 1/3 of the app's (1.25⁵ ≈ 3)

PARENT_GONE_EXIT = 3  # exit status of a worker whose parent went away
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["core.engine.algos", "core.runtime.runner", "core.runtime.worker"])


def warm_up() -> None:
    """Start the fork server and wait until it has imported the engine (one no-op fork), so the
    first run starts at once instead of waiting ~3 s for those imports."""
    probe = _CONTEXT.Process(target=os.getpid, name="warm-up")
    probe.start()
    probe.join()


class WorkerProcess:
    """The parent's handle on one worker process."""

    def __init__(self, spec: LoopSpec, factory: TrainerFactory) -> None:
        """Fork a worker and hand it its run: the loop starts at once."""
        payload = pickle.dumps((spec, factory))  # fails here, in the caller, for a lambda
        ours, theirs = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=serve, args=(theirs,), name=f"run-{spec.run_id}", daemon=True
        )
        self.process.start()
        theirs.close()
        self.conn = ours
        self._send_lock = threading.Lock()
        with self._send_lock:
            self.conn.send_bytes(payload)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

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
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        self.conn.close()
        code = self.process.exitcode
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory, or killed by hand)" if name == "SIGKILL" else ""
            return f"the worker process was killed by {name}{hint}"
        return f"the worker process exited with status {code} before the run ended"

    def kill(self) -> None:
        """End the process now (a worker that ignored a stop)."""
        self.process.kill()
        self.process.join()
        self.conn.close()


class PipeCommands:
    """The loop's command queue read straight from the pipe: a command sent before an update
    ends is always seen at that update's boundary (no reader thread in between)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, block: bool = True) -> Command:
        try:
            if block or self.conn.poll(0):
                return self.conn.recv()
        except (EOFError, OSError):
            os._exit(PARENT_GONE_EXIT)  # the app is gone: nobody to train for
        raise queue.Empty


def _exit_when_parent_hangs_up(fd: int) -> None:
    """End the process as soon as the app's end of the pipe closes (even mid-update): the
    socket reports a peer hang-up (POLLRDHUP) without any command being read here."""
    watcher = select.poll()
    watcher.register(fd, select.POLLRDHUP)
    while True:
        for _, event in watcher.poll():
            if event & (select.POLLRDHUP | select.POLLHUP):
                os._exit(PARENT_GONE_EXIT)


def serve(conn: Connection) -> None:
    """The worker's body: take the run, start the command reader, run the loop."""
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        spec, factory = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):  # the parent went away before sending the run
        return
    except BaseException as exc:  # the factory's module may not import here
        line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        conn.send(("failed", traceback.format_exc(), line, 0))
        return
    threading.Thread(
        target=_exit_when_parent_hangs_up, args=(conn.fileno(),), name="parent", daemon=True
    ).start()
    RunLoop(spec, factory, PipeCommands(conn), conn.send).run()
    conn.close()

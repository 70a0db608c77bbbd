"""The run store's one writer: a thread that owns the write connection and commits in batches.

Writes are queued as operations ``op(conn)``. A batch closes ``commit_interval`` seconds (a few
hundred ms) after its first item, or at once when a caller waits for its write; the whole batch
is one transaction. So a process killed mid-run loses at most the last batch, well under a
second of training. After a failed commit every later write fails with the same
:class:`~core.runtime.store_schema.StoreError`.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.runtime.store_schema import StoreError, one_line

Op = Callable[[sqlite3.Connection], Any]
_STOP = object()


@dataclass
class _Waiter:
    """Lets a caller block until its write is committed (or has failed)."""

    done: threading.Event = field(default_factory=threading.Event)
    error: StoreError | None = None
    result: Any = None


class BatchWriter:
    """Runs queued operations on ``conn`` in one thread, committing them in batches."""

    def __init__(self, conn: sqlite3.Connection, path: Path, commit_interval: float) -> None:
        self.conn = conn
        self.path = path
        self.commit_interval = commit_interval
        self._queue: queue.Queue = queue.Queue()
        self._error: StoreError | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="run-store-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Op, wait: bool = False, timeout: float = 30.0) -> Any:
        """Queue ``op(conn)``; with ``wait``, block until it is committed and return its result."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StoreError("the run store is closed")
        waiter = _Waiter() if wait else None
        self._queue.put((op, waiter))
        if waiter is None:
            return None
        if not waiter.done.wait(timeout):
            raise StoreError(f"the run store did not commit within {timeout:g} s")
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def close(self) -> bool:
        """Commit what is queued, stop the thread and close the connection; False when it was
        closed already."""
        with self._close_lock:
            if self._closed:
                return False
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self.conn.close()
        return True

    def _loop(self) -> None:
        """Collect queued ops for up to ``commit_interval`` s, then run them in one transaction."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = self._collect(batch)
            self._commit(batch)
            if stop:
                return

    def _collect(self, batch: list) -> bool:
        """Add queued items to ``batch`` until the deadline or a waiting caller; True on stop."""
        deadline = time.monotonic() + self.commit_interval
        while batch[-1][1] is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _commit(self, batch: list) -> None:
        conn = self.conn
        waiters = [w for _, w in batch if w is not None]
        if self._error is None:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, waiter in batch:
                    result = op(conn)
                    if waiter is not None:
                        waiter.result = result
                conn.execute("COMMIT")
            except Exception as e:  # any failure must reach the waiting callers
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._error = StoreError(f"writing {self.path} failed: {one_line(e)}")
        for w in waiters:
            w.error = self._error
            w.done.set()

"""The run store: SQLite persistence for runs, per-update metrics, episodes, events, checkpoints.

One file ``<data_dir>/runs.sqlite`` in WAL mode, schema versioned with ``PRAGMA user_version``.
Checkpoint files live under ``<data_dir>/checkpoints/<run_id>/`` and their rows hold paths
relative to the data directory, so a moved data directory, or a process started in another
working directory, finds them (schema 2; a schema-1 store is migrated when opened).

A run's row names the process that trains it (``owner``: host, pid and the process's start
time, so a reused pid is not mistaken for it). Listing or opening runs marks a run whose owner
process is gone as ``interrupted`` (:meth:`RunStore.interrupt_orphans`), whichever process
reads: the CLI, an export, the app.

Writes are queued to ONE writer thread that owns the write connection and commits in batches:
a batch closes ``commit_interval`` seconds (a few hundred ms) after its first item, or at once
when a caller waits for its write (``create_run``, ``rename``, ``delete``, ``flush``). So a process
killed mid-run loses at most the last batch, well under a second of training.

Reads use read-only connections (``file:...?mode=ro``), one per reading thread at a time from a
small pool, and return pandas DataFrames; ``metrics(run_ids, after_update=k)`` and
``episodes(run_ids, after_env_step=s)`` read incrementally.

Metric names vary by algorithm: each name is a REAL column of the ``metrics`` table, added the
first time a run reports it, and ``runs.metric_names`` lists what each run reported. A read is
then one indexed ``SELECT`` of the columns the chosen runs reported: wide, no pivot, no JSON.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import re
import shutil
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import RunConfig
from core.engine.trainer import Episode

SCHEMA_VERSION = 2
DB_NAME = "runs.sqlite"
STATUSES = ("queued", "running", "paused", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATUSES = ("queued", "running", "paused")
TERMINAL_STATUSES = ("finished", "stopped", "failed", "interrupted")
FIXED_METRICS = ("update", "env_steps", "wall_time")
RUN_COLUMNS = (
    "run_id",
    "name",
    "algo",
    "env_id",
    "status",
    "created_at",
    "finished_at",
    "error",
    "config",
    "parent_id",
    "sweep_id",
    "updates",
    "env_steps",
    "last_return",
    "total_steps",
)

_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    algo TEXT NOT NULL,
    env_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    config TEXT NOT NULL,
    parent_id TEXT,
    sweep_id TEXT,
    total_steps INTEGER NOT NULL,
    updates INTEGER NOT NULL DEFAULT 0,
    env_steps INTEGER NOT NULL DEFAULT 0,
    last_return REAL,
    metric_names TEXT NOT NULL DEFAULT '[]',
    owner TEXT
);
CREATE INDEX runs_sweep ON runs(sweep_id);
CREATE TABLE metrics (
    run_id TEXT NOT NULL,
    "update" INTEGER NOT NULL,
    env_steps INTEGER NOT NULL,
    wall_time REAL,
    UNIQUE (run_id, "update")
);
CREATE TABLE episodes (
    run_id TEXT NOT NULL,
    env_step INTEGER NOT NULL,
    ret REAL NOT NULL,
    length INTEGER NOT NULL
);
CREATE INDEX episodes_run ON episodes(run_id, env_step);
CREATE TABLE events (
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    env_step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT
);
CREATE INDEX events_run ON events(run_id, time);
CREATE TABLE checkpoints (
    run_id TEXT NOT NULL,
    "update" INTEGER NOT NULL,
    env_steps INTEGER NOT NULL,
    path TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX checkpoints_run ON checkpoints(run_id, "update");
"""


class StoreError(RuntimeError):
    """The store cannot be used; ``str()`` is one user-readable line."""


def default_data_dir() -> Path:
    """``$PLAYGROUND_DATA_DIR``, else ``./data``."""
    return Path(os.environ.get("PLAYGROUND_DATA_DIR") or "data")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a well-formed id (it is used in file paths), else raise."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise StoreError(f"{run_id!r} is not a valid run id")
    return run_id


def _q(name: str) -> str:
    """A quoted SQL identifier (metric names are checked against ``_METRIC_NAME`` first)."""
    return '"' + name + '"'


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class _Waiter:
    """Lets a caller block until its write is committed (or has failed)."""

    done: threading.Event = field(default_factory=threading.Event)
    error: StoreError | None = None
    result: Any = None


_STOP = object()
_Op = Callable[[sqlite3.Connection], Any]


class RunStore:
    """SQLite run store with one writer thread and pooled read-only readers (module docstring)."""

    def __init__(self, data_dir: str | Path | None = None, commit_interval: float = 0.25) -> None:
        self.data_dir = (Path(data_dir) if data_dir is not None else default_data_dir()).absolute()
        self.path = self.data_dir / DB_NAME
        self.commit_interval = commit_interval
        self._queue: queue.Queue = queue.Queue()
        self._error: StoreError | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._wconn = self._open_writer()
        self._metric_columns = self._table_columns(self._wconn, "metrics")
        self._run_metric_names: dict[str, list[str]] = {}
        self._insert_sql: dict[tuple[str, ...], str] = {}
        self._writer = threading.Thread(
            target=self._write_loop, name="run-store-writer", daemon=True
        )
        self._writer.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- opening ------------------------------------------------------------------------------

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the schema, switch to WAL and create or migrate the schema, retrying while
        another process does the same: SQLite answers "database is locked" without waiting when
        two connections would deadlock upgrading their locks (journal mode switch, a write
        after a read), so the busy timeout alone does not cover a store opened by several
        processes at once."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._prepare_once(conn)
                return
            except sqlite3.OperationalError as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _prepare_once(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")  # one snapshot for both reads of the check
        self._check_schema(conn)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # One process at a time from here: two that open a new store at once must not both
        # create it (the second finds it made once it gets the lock).
        conn.execute("BEGIN IMMEDIATE")
        version = self._check_schema(conn)
        if version == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        elif version == 1:
            self._migrate_checkpoint_paths(conn)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")

    def _open_writer(self) -> sqlite3.Connection:
        """Open (or create) the database; refuse anything that is not a good run store."""
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StoreError(f"data directory {self.data_dir} is a file, not a directory")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"cannot create data directory {self.data_dir}: {e.strerror or e}"
            ) from None
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise StoreError(f"data directory {self.data_dir} is not writable")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path} exists and is not a file")
        if self._truncated():
            raise StoreError(
                f"{self.path} is an empty file (0 bytes), not a run store; a run store that was "
                "truncated has lost its runs. Move it away to start a new store here"
            )
        conn = None
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._prepare(conn)
            return conn
        except sqlite3.Error as e:
            if conn is not None:
                conn.close()
            raise StoreError(
                f"{self.path} is not a usable run store ({_one_line(e)}); "
                "move it away or choose another data directory"
            ) from None
        except StoreError:
            if conn is not None:
                conn.close()
            raise

    def _truncated(self) -> bool:
        """Whether the store file exists but is empty: truncated, or left empty by a crash.
        (Another process creating the store this moment also has an empty file for a few
        milliseconds: a file younger than two seconds is taken as that.)"""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        return stat.st_size == 0 and time.time() - stat.st_mtime > 2.0

    def _check_schema(self, conn: sqlite3.Connection) -> int:
        """The store's schema version; StoreError for a newer one or a foreign SQLite file."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer version (schema {version} > "
                f"{SCHEMA_VERSION}); upgrade, or choose another data directory"
            )
        if version == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise StoreError(
                f"{self.path} is an SQLite file but not a run store; "
                "refusing to touch it, choose another data directory"
            )
        return version

    def _migrate_checkpoint_paths(self, conn: sqlite3.Connection) -> None:
        """Schema 1 → 2: checkpoint paths (stored as given, often relative to the working
        directory of the process that trained) become relative to the data directory."""
        rows = conn.execute("SELECT rowid, run_id, path FROM checkpoints").fetchall()
        for rowid, run_id, path in rows:
            conn.execute(
                "UPDATE checkpoints SET path = ? WHERE rowid = ?",
                (self._stored_path(path, run_id), rowid),
            )

    def _stored_path(self, path: str | Path, run_id: str) -> str:
        """How a checkpoint path is kept: relative to the data directory where it lies under
        ``checkpoints/<run_id>/`` (wherever the data directory was when it was written), as
        given otherwise."""
        p = Path(path)
        parts = p.parts
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] == "checkpoints" and parts[i + 1] == run_id:
                return Path(*parts[i:]).as_posix()
        return str(p.absolute()) if not p.is_absolute() and p.exists() else str(p)

    def resolve_path(self, stored: str) -> Path:
        """The file a stored checkpoint path names (relative paths: under the data directory)."""
        p = Path(stored)
        return p if p.is_absolute() else self.data_dir / p

    @staticmethod
    def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]

    # -- the writer thread --------------------------------------------------------------------

    def _submit(self, op: _Op, wait: bool = False, timeout: float = 30.0) -> Any:
        """Queue ``op(conn)`` for the writer; with ``wait``, block until it is committed."""
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

    def _write_loop(self) -> None:
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
        conn = self._wconn
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
                self._error = StoreError(f"writing {self.path} failed: {_one_line(e)}")
        for w in waiters:
            w.error = self._error
            w.done.set()

    # -- writes -------------------------------------------------------------------------------

    def create_run(
        self,
        config: RunConfig,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        sweep_id: str | None = None,
        status: str = "queued",
        owner: str | None = None,
    ) -> str:
        """Insert a run row (committed before return) and return its new id.

        ``owner`` tags the process training the run (default: this process).
        """
        _check_status(status)
        run_id = uuid.uuid4().hex[:12]
        label = name or config.name or f"{config.algo} · {config.env_id} · seed {config.seed}"
        row = (
            run_id,
            label,
            config.algo,
            config.env_id,
            status,
            time.time(),
            config.to_json(),
            parent_id,
            sweep_id,
            int(config.total_steps),
            owner or process_owner(),
        )

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO runs (run_id, name, algo, env_id, status, created_at, config, "
                "parent_id, sweep_id, total_steps, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )

        self._submit(op, wait=True)
        return run_id

    def append_update(
        self, run_id: str, metrics: dict[str, float], episodes: list[Episode]
    ) -> None:
        """Queue one update's metrics (must include ``update`` and ``env_steps``) and episodes."""
        if "update" not in metrics or "env_steps" not in metrics:
            raise ValueError("metrics must include 'update' and 'env_steps'")
        names = tuple(k for k in metrics if k not in FIXED_METRICS and k != "run_id")
        for k in names:
            if not _METRIC_NAME.fullmatch(k):
                raise ValueError(f"metric name {k!r} is not an identifier of at most 64 characters")
        values = (
            run_id,
            int(metrics["update"]),
            int(metrics["env_steps"]),
            _real(metrics.get("wall_time")),
            *(_real(metrics[k]) for k in names),
        )
        ep_rows = [(run_id, int(e.env_step), float(e.ret), int(e.length)) for e in episodes]
        last_return = _real(metrics.get("episode_return_mean"))

        def op(conn: sqlite3.Connection) -> None:
            self._ensure_metric_columns(conn, run_id, names)
            conn.execute(self._insert_metrics_sql(names), values)
            if ep_rows:
                conn.executemany("INSERT INTO episodes VALUES (?,?,?,?)", ep_rows)
            conn.execute(
                "UPDATE runs SET updates = updates + 1, env_steps = ?, "
                "last_return = COALESCE(?, last_return) WHERE run_id = ?",
                (values[2], last_return, run_id),
            )

        self._submit(op)

    def _insert_metrics_sql(self, names: tuple[str, ...]) -> str:
        sql = self._insert_sql.get(names)
        if sql is None:
            cols = ", ".join(_q(c) for c in ("run_id", *FIXED_METRICS, *names))
            marks = ", ".join("?" * (len(names) + 4))
            sql = f"INSERT OR REPLACE INTO metrics ({cols}) VALUES ({marks})"
            self._insert_sql[names] = sql
        return sql

    def _ensure_metric_columns(
        self, conn: sqlite3.Connection, run_id: str, names: tuple[str, ...]
    ) -> None:
        """Add missing metric columns to the table and record the names the run reported."""
        missing = [n for n in names if n not in self._metric_columns]
        if missing:
            # Another process may have added some meanwhile: we hold the write lock, so re-read.
            self._metric_columns = self._table_columns(conn, "metrics")
            for n in missing:
                if n not in self._metric_columns:
                    conn.execute(f"ALTER TABLE metrics ADD COLUMN {_q(n)} REAL")
                    self._metric_columns.append(n)
        known = self._run_metric_names.get(run_id)
        if known is None:
            row = conn.execute(
                "SELECT metric_names FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            known = json.loads(row[0]) if row else []
            self._run_metric_names[run_id] = known
        new = [n for n in names if n not in known]
        if new:
            known.extend(new)
            conn.execute(
                "UPDATE runs SET metric_names = ? WHERE run_id = ?", (json.dumps(known), run_id)
            )

    def add_event(self, run_id: str, kind: str, env_step: int, payload: dict | None = None) -> None:
        """Queue an event (started, paused, resumed, hyperparams, stopped, finished, ...)."""
        row = (
            run_id,
            time.time(),
            int(env_step),
            str(kind),
            None if payload is None else json.dumps(payload, default=str),
        )
        self._submit(lambda conn: conn.execute("INSERT INTO events VALUES (?,?,?,?,?)", row))

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """Queue a status change; a terminal status also sets ``finished_at``."""
        _check_status(status)
        finished_at = time.time() if status in TERMINAL_STATUSES else None
        row = (status, error, finished_at, run_id)
        self._submit(
            lambda conn: conn.execute(
                "UPDATE runs SET status = ?, error = COALESCE(?, error), finished_at = ? "
                "WHERE run_id = ?",
                row,
            )
        )

    def rename(self, run_id: str, name: str) -> None:
        """Rename a run (committed before return)."""
        name = str(name).strip()
        if not name or len(name) > 200:
            raise StoreError("a run name must be 1 to 200 characters")
        self._submit(
            lambda conn: conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id)),
            wait=True,
        )

    def delete(self, run_id: str) -> None:
        """Delete a run, its rows and its checkpoint files (committed before return)."""
        check_run_id(run_id)

        def op(conn: sqlite3.Connection) -> None:
            for table in ("metrics", "episodes", "events", "checkpoints", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self._run_metric_names.pop(run_id, None)

        self._submit(op, wait=True)
        shutil.rmtree(self.checkpoint_dir(run_id), ignore_errors=True)

    def add_checkpoint(self, run_id: str, update: int, env_steps: int, path: str) -> None:
        """Queue the record of a checkpoint file."""
        row = (run_id, int(update), int(env_steps), self._stored_path(path, run_id), time.time())
        self._submit(lambda conn: conn.execute("INSERT INTO checkpoints VALUES (?,?,?,?,?)", row))

    def remove_checkpoints(self, run_id: str, paths: list[str | Path]) -> None:
        """Queue the removal of checkpoint records (the caller deletes the files, after
        :meth:`flush`: a crash in between leaves files without rows, never rows without files)."""
        rows = [(run_id, self._stored_path(p, run_id)) for p in paths]
        self._submit(
            lambda conn: conn.executemany(
                "DELETE FROM checkpoints WHERE run_id = ? AND path = ?", rows
            )
        )

    def reconcile_checkpoints(self) -> tuple[list[Path], int]:
        """Make checkpoint rows and files agree for every run that is not active: delete files
        no row names (a crash between a row's removal and its file's deletion, half-written
        ``.tmp`` files, folders of deleted runs) and rows whose file is gone. Active runs are
        left alone (their newest file is written before its row). Returns (files deleted,
        rows deleted)."""
        root = self.data_dir / "checkpoints"
        if not root.is_dir():
            return [], 0
        with self._read() as conn:
            status = dict(conn.execute("SELECT run_id, status FROM runs").fetchall())
            rows = conn.execute("SELECT run_id, path FROM checkpoints").fetchall()
        named: dict[str, set[Path]] = {}
        for run_id, path in rows:
            named.setdefault(run_id, set()).add(self.resolve_path(path))
        deleted: list[Path] = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if status.get(folder.name) in ACTIVE_STATUSES:
                continue
            for f in sorted(folder.iterdir()):
                if f.is_file() and f not in named.get(folder.name, set()):
                    f.unlink(missing_ok=True)
                    deleted.append(f)
            if folder.name not in status:
                shutil.rmtree(folder, ignore_errors=True)
        missing = [
            (run_id, path)
            for run_id, path in rows
            if status.get(run_id) not in ACTIVE_STATUSES and not self.resolve_path(path).exists()
        ]
        if missing:
            self._submit(
                lambda conn: conn.executemany(
                    "DELETE FROM checkpoints WHERE run_id = ? AND path = ?", missing
                ),
                wait=True,
            )
        return deleted, len(missing)

    def checkpoint_dir(self, run_id: str) -> Path:
        """Where a run's checkpoint files live: ``<data_dir>/checkpoints/<run_id>``."""
        return self.data_dir / "checkpoints" / check_run_id(run_id)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything queued so far is committed."""
        self._submit(lambda conn: None, wait=True, timeout=timeout)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close every connection."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._writer.join(timeout=30)
        self._wconn.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- reads --------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection, taken from the pool for the duration of one read."""
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        healthy = False
        try:
            if conn is None:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            yield conn
            healthy = True
        except sqlite3.Error as e:
            raise StoreError(f"reading {self.path} failed: {_one_line(e)}") from None
        finally:
            with self._readers_lock:
                if healthy and len(self._readers) < 8 and not self._closed:
                    self._readers.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def interrupt_orphans(self, run_ids: list[str] | None = None) -> list[str]:
        """Mark the active runs (of ``run_ids``, or all) whose owner process is gone as
        ``interrupted`` (committed before return) and return their ids.

        The owner tag holds the process's start time, so a pid reused by another process does
        not keep a dead run alive; an owner on another host is assumed alive. A run whose
        owner process lives but whose run manager is gone is left to that process (the run
        manager's start-up recovery in ``core/runtime/runner.py``)."""
        owners = self.owners(run_ids=run_ids)
        alive = {
            owner: (tag := parse_owner(owner)) is not None and process_alive(tag)
            for owner in set(owners.values())  # one look per process, however many runs
        }
        return self.interrupt({rid: owner for rid, owner in owners.items() if not alive[owner]})

    def interrupt(self, owners: dict[str, str | None]) -> list[str]:
        """Mark runs ``interrupted`` (with an event) that are still active and still have the
        owner read (``run_id → owner``): a run another process took over or ended meanwhile is
        left alone. Committed before return; returns the ids marked."""
        if not owners:
            return []
        marked: list[str] = []

        def op(conn: sqlite3.Connection) -> None:
            for run_id, owner in owners.items():
                changed = conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ? "
                    f"AND owner IS ? AND status IN ({', '.join('?' * len(ACTIVE_STATUSES))})",
                    (time.time(), run_id, owner, *ACTIVE_STATUSES),
                ).rowcount
                if changed:
                    (steps,) = conn.execute(
                        "SELECT env_steps FROM runs WHERE run_id = ?", (run_id,)
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO events VALUES (?,?,?,?,?)",
                        (run_id, time.time(), steps, "interrupted", '{"reason": "process ended"}'),
                    )
                    marked.append(run_id)

        self._submit(op, wait=True)
        return marked

    def runs(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """One row per run (columns ``RUN_COLUMNS``), newest first; runs whose training process
        is gone show as ``interrupted`` (:meth:`interrupt_orphans`)."""
        self.interrupt_orphans(run_ids)
        sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        args: list[Any] = []
        if run_ids is not None:
            sql += f" WHERE run_id IN ({', '.join('?' * len(run_ids))})"
            args = list(run_ids)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
        for col in ("created_at", "finished_at", "last_return"):
            df[col] = df[col].astype(float)
        return df

    def run(self, run_id: str) -> dict | None:
        """One run as a dict (a row of :meth:`runs`), or None."""
        df = self.runs([run_id])
        return None if df.empty else df.iloc[0].to_dict()

    def config(self, run_id: str) -> RunConfig:
        """The configuration a run was started with."""
        with self._read() as conn:
            row = conn.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return RunConfig.from_json(row[0])

    def owners(
        self, statuses: tuple[str, ...] = ACTIVE_STATUSES, run_ids: list[str] | None = None
    ) -> dict[str, str | None]:
        """run_id → owner of the runs in ``statuses`` (of ``run_ids``, or all)."""
        sql = f"SELECT run_id, owner FROM runs WHERE status IN ({', '.join('?' * len(statuses))})"
        args = list(statuses)
        if run_ids is not None:
            sql += f" AND run_id IN ({', '.join('?' * len(run_ids))})"
            args += list(run_ids)
        with self._read() as conn:
            return dict(conn.execute(sql, args).fetchall())

    def metrics(
        self,
        run_ids: str | list[str],
        after_update: int = 0,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """One row per update: run_id, update, env_steps, wall_time, then every reported metric.

        Metric columns are floats, NaN where a run does not report a name (or reported NaN).
        ``columns`` limits the metrics to those names (each present, NaN if never reported),
        which makes wide reads of many updates proportionally cheaper.
        """
        ids = list(dict.fromkeys(_as_ids(run_ids)))
        marks = ", ".join("?" * len(ids))
        with self._read() as conn:
            reported: list[str] = []
            for (text,) in conn.execute(
                f"SELECT metric_names FROM runs WHERE run_id IN ({marks})", ids
            ):
                reported.extend(n for n in json.loads(text) if n not in reported)
            names = reported
            if columns is not None:
                names = [c for c in dict.fromkeys(columns) if c not in FIXED_METRICS]
            selected = [
                _q(c) if c in reported or c in FIXED_METRICS else "NULL"
                for c in (*FIXED_METRICS, *names)
            ]
            sql = (
                f"SELECT {', '.join(selected)} FROM metrics "
                'WHERE run_id = ? AND "update" > ? ORDER BY "update"'
            )
            blocks = [conn.execute(sql, (rid, int(after_update))).fetchall() for rid in ids]
        # one C-level conversion per run (None → NaN), one DataFrame constructor call
        values = [np.array(b, dtype=float).reshape(len(b), len(names) + 3) for b in blocks]
        table = np.concatenate(values) if values else np.empty((0, len(names) + 3))
        data: dict[str, Any] = {
            "run_id": np.repeat(np.array(ids, dtype=object), [len(b) for b in blocks]),
            "update": table[:, 0].astype(np.int64),
            "env_steps": table[:, 1].astype(np.int64),
        }
        data.update({name: table[:, j + 2] for j, name in enumerate(("wall_time", *names))})
        return pd.DataFrame(data)

    def episodes(self, run_ids: str | list[str], after_env_step: int = 0) -> pd.DataFrame:
        """Finished training episodes: run_id, env_step, ret, length (by run, then env step)."""
        ids = _as_ids(run_ids)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT run_id, env_step, ret, length FROM episodes WHERE run_id IN "
                f"({', '.join('?' * len(ids))}) AND env_step > ? ORDER BY run_id, env_step, rowid",
                [*ids, int(after_env_step)],
            ).fetchall()
        df = pd.DataFrame.from_records(rows, columns=["run_id", "env_step", "ret", "length"])
        return df.astype({"env_step": np.int64, "ret": float, "length": np.int64})

    def events(self, run_ids: str | list[str]) -> pd.DataFrame:
        """run_id, time, env_step, kind, payload (dict or None), oldest first."""
        ids = _as_ids(run_ids)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT run_id, time, env_step, kind, payload FROM events WHERE run_id IN "
                f"({', '.join('?' * len(ids))}) ORDER BY time, rowid",
                ids,
            ).fetchall()
        rows = [(*r[:4], None if r[4] is None else json.loads(r[4])) for r in rows]
        df = pd.DataFrame.from_records(
            rows, columns=["run_id", "time", "env_step", "kind", "payload"]
        )
        return df.astype({"time": float, "env_step": np.int64})

    def checkpoints(self, run_id: str) -> pd.DataFrame:
        """run_id, update, env_steps, path, time of a run's checkpoints, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                'SELECT run_id, "update", env_steps, path, time FROM checkpoints '
                'WHERE run_id = ? ORDER BY "update", rowid',
                (run_id,),
            ).fetchall()
        df = pd.DataFrame.from_records(
            rows, columns=["run_id", "update", "env_steps", "path", "time"]
        )
        df["path"] = [str(self.resolve_path(p)) for p in df["path"]]
        return df.astype({"update": np.int64, "env_steps": np.int64, "time": float})


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from ``/proc`` (Linux), or None where unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def process_owner(manager: str | None = None) -> str:
    """The owner tag of this process (host, pid, start time; optionally a manager token)."""
    stat = _proc_stat(os.getpid())
    tag = {"host": socket.gethostname(), "pid": os.getpid(), "start": stat[1] if stat else None}
    if manager is not None:
        tag["manager"] = manager
    return json.dumps(tag)


def parse_owner(owner: str | None) -> dict | None:
    """An owner tag as a dict with an int ``pid``, or None if missing or malformed."""
    try:
        tag = json.loads(owner) if owner else None
        tag["pid"] = int(tag["pid"])
    except (ValueError, TypeError, KeyError):
        return None
    return tag


def process_alive(tag: dict) -> bool:
    """Whether the process of an owner tag may still be running (another host: assume yes)."""
    if tag.get("host") != socket.gethostname():
        return True
    try:
        os.kill(tag["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(tag["pid"])
    if stat is None:
        return not os.path.isdir("/proc")  # without /proc the signal test is all we have
    state, start = stat
    return state not in ("Z", "X") and tag.get("start") in (None, start)


def _close_at_exit(ref: weakref.ref) -> None:
    store = ref()
    if store is not None:
        store.close()


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")


def _as_ids(run_ids: str | list[str]) -> list[str]:
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return ids or [""]


def _real(x: Any) -> float | None:
    """A float for SQLite; NaN and missing values become NULL."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x

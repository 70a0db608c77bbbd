"""The run store on disk: its tables, run statuses, checkpoint paths and error type, and how a
file is opened, checked and migrated (``core/runtime/store.py`` is the store built on them).

One file ``<data_dir>/runs.sqlite`` in WAL mode, schema versioned with ``PRAGMA user_version``.
Checkpoint files live under ``<data_dir>/checkpoints/<run_id>/`` and their rows hold paths
relative to the data directory, so a moved data directory, or a process started in another
working directory, finds them (schema 2; a schema-1 store is migrated when opened). Schema 3
adds the ``decks`` table (lecture decks, ``core/runtime/decks.py``); creating a store or migrating
an older one to it adds the example decks once. A corrupt, foreign or newer-version file is
refused with one line and never overwritten.

Metric names vary by algorithm: each name is a REAL column of the ``metrics`` table, added the
first time a run reports it, and ``runs.metric_names`` lists what each run reported.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

from core.metrics import ENV_STEPS, UPDATE, WALL_TIME
from core.runtime.decks import DECKS_TABLE, insert_examples

SCHEMA_VERSION = 3
DB_NAME = "runs.sqlite"
STATUSES = ("queued", "running", "paused", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATUSES = ("queued", "running", "paused")
TERMINAL_STATUSES = ("finished", "stopped", "failed", "interrupted")
FIXED_METRICS = (UPDATE.name, ENV_STEPS.name, WALL_TIME.name)  # the columns _SCHEMA fixes
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

METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
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


def check_status(status: str) -> None:
    """Raise ValueError unless ``status`` is one of :data:`STATUSES`."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")


def quote(name: str) -> str:
    """A quoted SQL identifier (metric names are checked against :data:`METRIC_NAME` first)."""
    return '"' + name + '"'


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The column names of ``table``."""
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def stored_path(path: str | Path, run_id: str) -> str:
    """How a checkpoint path is kept: relative to the data directory where it lies under
    ``checkpoints/<run_id>/`` (wherever the data directory was when it was written), as
    given otherwise."""
    p = Path(path)
    parts = p.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "checkpoints" and parts[i + 1] == run_id:
            return Path(*parts[i:]).as_posix()
    return str(p.absolute()) if not p.is_absolute() and p.exists() else str(p)


def open_database(data_dir: Path) -> sqlite3.Connection:
    """Open (or create) ``data_dir``'s store as the write connection; refuse anything that is
    not a good run store (:class:`StoreError`, one line)."""
    path = data_dir / DB_NAME
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"data directory {data_dir} is a file, not a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create data directory {data_dir}: {e.strerror or e}") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StoreError(f"data directory {data_dir} is not writable")
    if path.exists() and not path.is_file():
        raise StoreError(f"{path} exists and is not a file")
    if _truncated(path):
        raise StoreError(
            f"{path} is an empty file (0 bytes), not a run store; a run store that was "
            "truncated has lost its runs. Move it away to start a new store here"
        )
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        _prepare(conn, path)
        return conn
    except sqlite3.Error as e:
        if conn is not None:
            conn.close()
        raise StoreError(
            f"{path} is not a usable run store ({one_line(e)}); "
            "move it away or choose another data directory"
        ) from None
    except StoreError:
        if conn is not None:
            conn.close()
        raise


def _truncated(path: Path) -> bool:
    """Whether the store file exists but is empty: truncated, or left empty by a crash.
    (Another process creating the store this moment also has an empty file for a few
    milliseconds: a file younger than two seconds is taken as that.)"""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == 0 and time.time() - stat.st_mtime > 2.0


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the schema, switch to WAL and create or migrate the schema, retrying while
    another process does the same: SQLite answers "database is locked" without waiting when
    two connections would deadlock upgrading their locks (journal mode switch, a write
    after a read), so the busy timeout alone does not cover a store opened by several
    processes at once."""
    deadline = time.monotonic() + 10
    while True:
        try:
            _prepare_once(conn, path)
            return
        except sqlite3.OperationalError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _prepare_once(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN")  # one snapshot for both reads of the check
    _check_schema(conn, path)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # One process at a time from here: two that open a new store at once must not both
    # create it (the second finds it made once it gets the lock).
    conn.execute("BEGIN IMMEDIATE")
    version = _check_schema(conn, path)
    if version == 0:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    if version == 1:
        _migrate_checkpoint_paths(conn)
    if version < 3:  # schema 3: lecture decks, the examples added once
        conn.execute(DECKS_TABLE)
        insert_examples(conn)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    conn.execute("COMMIT")


def _check_schema(conn: sqlite3.Connection, path: Path) -> int:
    """The store's schema version; StoreError for a newer one or a foreign SQLite file."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer version (schema {version} > "
            f"{SCHEMA_VERSION}); upgrade, or choose another data directory"
        )
    if version == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        raise StoreError(
            f"{path} is an SQLite file but not a run store; "
            "refusing to touch it, choose another data directory"
        )
    return version


def _migrate_checkpoint_paths(conn: sqlite3.Connection) -> None:
    """Schema 1 → 2: checkpoint paths (stored as given, often relative to the working
    directory of the process that trained) become relative to the data directory."""
    rows = conn.execute("SELECT rowid, run_id, path FROM checkpoints").fetchall()
    for rowid, run_id, path in rows:
        conn.execute(
            "UPDATE checkpoints SET path = ? WHERE rowid = ?", (stored_path(path, run_id), rowid)
        )

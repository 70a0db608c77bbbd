"""The run store's reads: pooled read-only connections, and each table's rows as a DataFrame.

Reads use read-only connections (``file:...?mode=ro``), one per reading thread at a time from a
small pool (:class:`ReaderPool`). ``core/runtime/store.py`` calls the query functions here with
a pooled connection. Metric reads are one indexed ``SELECT`` of the columns the chosen runs
reported: wide, no pivot, no JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.runtime.store_schema import FIXED_METRICS, RUN_COLUMNS, StoreError, one_line, quote

POOL_SIZE = 8


class ReaderPool:
    """Read-only connections to the store at ``path``, reused across reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection, taken from the pool for the duration of one read; a SQLite
        error becomes a one-line :class:`StoreError`."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        healthy = False
        try:
            if conn is None:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            yield conn
            healthy = True
        except sqlite3.Error as e:
            raise StoreError(f"reading {self.path} failed: {one_line(e)}") from None
        finally:
            with self._lock:
                if healthy and len(self._idle) < POOL_SIZE and not self._closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their read ends."""
        with self._lock:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._idle.clear()


def _marks(n: int) -> str:
    """``?, ?, …`` with ``n`` placeholders."""
    return ", ".join("?" * n)


def read_runs(conn: sqlite3.Connection, run_ids: list[str] | None) -> pd.DataFrame:
    """One row per run (of ``run_ids``, or all; columns ``RUN_COLUMNS``), newest first."""
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
    args: list[Any] = []
    if run_ids is not None:
        sql += f" WHERE run_id IN ({_marks(len(run_ids))})"
        args = list(run_ids)
    rows = conn.execute(sql + " ORDER BY created_at DESC", args).fetchall()
    df = pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
    for col in ("created_at", "finished_at", "last_return"):
        df[col] = df[col].astype(float)
    return df


def read_owners(
    conn: sqlite3.Connection, statuses: tuple[str, ...], run_ids: list[str] | None
) -> dict[str, str | None]:
    """run_id → owner of the runs in ``statuses`` (of ``run_ids``, or all)."""
    sql = f"SELECT run_id, owner FROM runs WHERE status IN ({_marks(len(statuses))})"
    args = list(statuses)
    if run_ids is not None:
        sql += f" AND run_id IN ({_marks(len(run_ids))})"
        args += list(run_ids)
    return dict(conn.execute(sql, args).fetchall())


def read_metrics(
    conn: sqlite3.Connection, ids: list[str], after_update: int, columns: list[str] | None
) -> pd.DataFrame:
    """The metric rows of ``ids`` after ``after_update`` (see ``RunStore.metrics``)."""
    reported: list[str] = []
    for (text,) in conn.execute(
        f"SELECT metric_names FROM runs WHERE run_id IN ({_marks(len(ids))})", ids
    ):
        reported.extend(n for n in json.loads(text) if n not in reported)
    names = reported
    if columns is not None:
        names = [c for c in dict.fromkeys(columns) if c not in FIXED_METRICS]
    selected = [
        quote(c) if c in reported or c in FIXED_METRICS else "NULL"
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


def read_episodes(conn: sqlite3.Connection, ids: list[str], after_env_step: int) -> pd.DataFrame:
    """Finished training episodes: run_id, env_step, ret, length (by run, then env step)."""
    rows = conn.execute(
        f"SELECT run_id, env_step, ret, length FROM episodes WHERE run_id IN "
        f"({_marks(len(ids))}) AND env_step > ? ORDER BY run_id, env_step, rowid",
        [*ids, int(after_env_step)],
    ).fetchall()
    df = pd.DataFrame.from_records(rows, columns=["run_id", "env_step", "ret", "length"])
    return df.astype({"env_step": np.int64, "ret": float, "length": np.int64})


def read_events(conn: sqlite3.Connection, ids: list[str]) -> pd.DataFrame:
    """run_id, time, env_step, kind, payload (dict or None), oldest first."""
    rows = conn.execute(
        f"SELECT run_id, time, env_step, kind, payload FROM events WHERE run_id IN "
        f"({_marks(len(ids))}) ORDER BY time, rowid",
        ids,
    ).fetchall()
    rows = [(*r[:4], None if r[4] is None else json.loads(r[4])) for r in rows]
    df = pd.DataFrame.from_records(rows, columns=["run_id", "time", "env_step", "kind", "payload"])
    return df.astype({"time": float, "env_step": np.int64})


def read_checkpoints(conn: sqlite3.Connection, run_id: str) -> pd.DataFrame:
    """run_id, update, env_steps, path (as stored), time of a run's checkpoints, oldest first."""
    rows = conn.execute(
        'SELECT run_id, "update", env_steps, path, time FROM checkpoints '
        'WHERE run_id = ? ORDER BY "update", rowid',
        (run_id,),
    ).fetchall()
    df = pd.DataFrame.from_records(rows, columns=["run_id", "update", "env_steps", "path", "time"])
    return df.astype({"update": np.int64, "env_steps": np.int64, "time": float})

"""The run store: SQLite persistence for runs, per-update metrics, episodes, events, checkpoints.

One file ``<data_dir>/runs.sqlite`` in WAL mode; its tables, statuses and paths, and how a file
is opened, checked and migrated, are in ``core/runtime/store_schema.py``. :class:`RunStore` is the
one object the rest of the code uses: its writes go through the one writer thread
(``core/runtime/store_writer.py``: batched commits, at once when a caller waits, as
``create_run``, ``rename``, ``delete`` and ``flush`` do), its reads through pooled read-only
connections and return pandas DataFrames (``core/runtime/store_reads.py``);
``metrics(run_ids, after_update=k)`` and ``episodes(run_ids, after_env_step=s)`` read
incrementally.

A run's row names the process that trains it (``owner``: host, pid and the process's start
time, so a reused pid is not mistaken for it; ``core/runtime/owners.py``). Listing or opening
runs marks a run whose owner process is gone as ``interrupted``
(:meth:`RunStore.interrupt_orphans`), whichever process reads: the CLI, an export, the app.

The store also keeps the lecture decks (``decks``, ``save_deck``, ``add_deck``, ``delete_deck``;
the deck format and its SQL are in ``core/runtime/decks.py``).
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import sqlite3
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import RunConfig
from core.engine.trainer import Episode
from core.metrics import ENV_STEPS, EPISODE_RETURN_MEAN, UPDATE, WALL_TIME
from core.runtime import decks as deck_sql
from core.runtime.decks import Deck, check_deck_id
from core.runtime.owners import owner_process_alive, process_owner
from core.runtime.store_reads import (
    ReaderPool,
    read_checkpoints,
    read_episodes,
    read_events,
    read_metrics,
    read_owners,
    read_runs,
)
from core.runtime.store_schema import (
    ACTIVE_STATUSES,
    DB_NAME,
    FIXED_METRICS,
    METRIC_NAME,
    TERMINAL_STATUSES,
    StoreError,
    check_run_id,
    check_status,
    default_data_dir,
    open_database,
    quote,
    stored_path,
    table_columns,
)
from core.runtime.store_writer import BatchWriter, Op


class RunStore:
    """SQLite run store with one writer thread and pooled read-only readers (module docstring)."""

    def __init__(self, data_dir: str | Path | None = None, commit_interval: float = 0.25) -> None:
        self.data_dir = (Path(data_dir) if data_dir is not None else default_data_dir()).absolute()
        self.path = self.data_dir / DB_NAME
        self.commit_interval = commit_interval
        conn = open_database(self.data_dir)
        self._metric_columns = table_columns(conn, "metrics")
        self._run_metric_names: dict[str, list[str]] = {}
        self._insert_sql: dict[tuple[str, ...], str] = {}
        self._readers = ReaderPool(self.path)
        self._writer = BatchWriter(conn, self.path, commit_interval)
        atexit.register(_close_at_exit, weakref.ref(self))

    def _submit(self, op: Op, wait: bool = False, timeout: float = 30.0) -> Any:
        """Queue ``op(conn)`` for the writer; with ``wait``, block until it is committed."""
        return self._writer.submit(op, wait, timeout)

    def resolve_path(self, stored: str) -> Path:
        """The file a stored checkpoint path names (relative paths: under the data directory)."""
        p = Path(stored)
        return p if p.is_absolute() else self.data_dir / p

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
        check_status(status)
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
        if UPDATE.name not in metrics or ENV_STEPS.name not in metrics:
            raise ValueError(f"metrics must include {UPDATE.name!r} and {ENV_STEPS.name!r}")
        names = tuple(k for k in metrics if k not in FIXED_METRICS and k != "run_id")
        for k in names:
            if not METRIC_NAME.fullmatch(k):
                raise ValueError(f"metric name {k!r} is not an identifier of at most 64 characters")
        values = (
            run_id,
            int(metrics[UPDATE.name]),
            int(metrics[ENV_STEPS.name]),
            _real(metrics.get(WALL_TIME.name)),
            *(_real(metrics[k]) for k in names),
        )
        ep_rows = [(run_id, int(e.env_step), float(e.ret), int(e.length)) for e in episodes]
        last_return = _real(metrics.get(EPISODE_RETURN_MEAN.name))

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
            cols = ", ".join(quote(c) for c in ("run_id", *FIXED_METRICS, *names))
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
            self._metric_columns = table_columns(conn, "metrics")
            for n in missing:
                if n not in self._metric_columns:
                    conn.execute(f"ALTER TABLE metrics ADD COLUMN {quote(n)} REAL")
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
        check_status(status)
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
        row = (run_id, int(update), int(env_steps), stored_path(path, run_id), time.time())
        self._submit(lambda conn: conn.execute("INSERT INTO checkpoints VALUES (?,?,?,?,?)", row))

    def remove_checkpoints(self, run_id: str, paths: list[str | Path]) -> None:
        """Queue the removal of checkpoint records (the caller deletes the files, after
        :meth:`flush`: a crash in between leaves files without rows, never rows without files)."""
        rows = [(run_id, stored_path(p, run_id)) for p in paths]
        self._submit(
            lambda conn: conn.executemany(
                "DELETE FROM checkpoints WHERE run_id = ? AND path = ?", rows
            )
        )

    def checkpoint_dir(self, run_id: str) -> Path:
        """Where a run's checkpoint files live: ``<data_dir>/checkpoints/<run_id>``."""
        return self.data_dir / "checkpoints" / check_run_id(run_id)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything queued so far is committed."""
        self._submit(lambda conn: None, wait=True, timeout=timeout)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close every connection."""
        if self._writer.close():
            self._readers.close()

    # -- recovery -----------------------------------------------------------------------------

    def reconcile_checkpoints(self) -> tuple[list[Path], int]:
        """Make checkpoint rows and files agree for every run that is not active: delete files
        no row names (a crash between a row's removal and its file's deletion, half-written
        ``.tmp`` files, folders of deleted runs) and rows whose file is gone. Active runs are
        left alone (their newest file is written before its row). Returns (files deleted,
        rows deleted)."""
        root = self.data_dir / "checkpoints"
        if not root.is_dir():
            return [], 0
        with self._readers.connection() as conn:
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

    def interrupt_orphans(self, run_ids: list[str] | None = None) -> list[str]:
        """Mark the active runs (of ``run_ids``, or all) whose owner process is gone as
        ``interrupted`` (committed before return) and return their ids.

        The owner tag holds the process's start time, so a pid reused by another process does
        not keep a dead run alive; an owner on another host is assumed alive. A run whose
        owner process lives but whose run manager is gone is left to that process (the run
        manager's start-up recovery in ``core/runtime/runner.py``)."""
        owners = self.owners(run_ids=run_ids)
        alive = {
            owner: owner_process_alive(owner)
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

    # -- reads --------------------------------------------------------------------------------

    def runs(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """One row per run (columns ``RUN_COLUMNS``), newest first; runs whose training process
        is gone show as ``interrupted`` (:meth:`interrupt_orphans`)."""
        self.interrupt_orphans(run_ids)
        with self._readers.connection() as conn:
            return read_runs(conn, run_ids)

    def run(self, run_id: str) -> dict | None:
        """One run as a dict (a row of :meth:`runs`), or None."""
        df = self.runs([run_id])
        return None if df.empty else df.iloc[0].to_dict()

    def config(self, run_id: str) -> RunConfig:
        """The configuration a run was started with."""
        with self._readers.connection() as conn:
            row = conn.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return RunConfig.from_json(row[0])

    def owners(
        self, statuses: tuple[str, ...] = ACTIVE_STATUSES, run_ids: list[str] | None = None
    ) -> dict[str, str | None]:
        """run_id → owner of the runs in ``statuses`` (of ``run_ids``, or all)."""
        with self._readers.connection() as conn:
            return read_owners(conn, statuses, run_ids)

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
        with self._readers.connection() as conn:
            return read_metrics(conn, ids, after_update, columns)

    def episodes(self, run_ids: str | list[str], after_env_step: int = 0) -> pd.DataFrame:
        """Finished training episodes: run_id, env_step, ret, length (by run, then env step)."""
        with self._readers.connection() as conn:
            return read_episodes(conn, _as_ids(run_ids), after_env_step)

    def events(self, run_ids: str | list[str]) -> pd.DataFrame:
        """run_id, time, env_step, kind, payload (dict or None), oldest first."""
        with self._readers.connection() as conn:
            return read_events(conn, _as_ids(run_ids))

    def checkpoints(self, run_id: str) -> pd.DataFrame:
        """run_id, update, env_steps, path, time of a run's checkpoints, oldest first."""
        with self._readers.connection() as conn:
            df = read_checkpoints(conn, run_id)
        df["path"] = [str(self.resolve_path(p)) for p in df["path"]]
        return df

    # -- lecture decks (``core/runtime/decks.py``) ----------------------------------------------

    def decks(self) -> list[Deck]:
        """Every lecture deck, by name."""
        with self._readers.connection() as conn:
            return deck_sql.read_decks(conn)

    def deck_names(self) -> dict[str, str]:
        """deck id → name, by name: what a deck picker shows, without parsing the decks."""
        with self._readers.connection() as conn:
            return deck_sql.read_deck_names(conn)

    def deck(self, deck_id: str) -> Deck | None:
        """One deck, or None."""
        with self._readers.connection() as conn:
            return deck_sql.read_deck(conn, deck_id)

    def save_deck(self, deck: Deck) -> None:
        """Insert or replace a deck (committed before return)."""
        check_deck_id(deck.deck_id)
        self._submit(lambda conn: deck_sql.write_deck(conn, deck), wait=True)

    def add_deck(self, deck: Deck, replace: bool = False) -> Deck:
        """Store ``deck`` under its id, or (taken and not ``replace``) under the next free one
        (``id-2``, …); returns the deck as stored (committed before return)."""
        check_deck_id(deck.deck_id)

        def op(conn: sqlite3.Connection) -> Deck:
            free = deck.deck_id if replace else deck_sql.free_deck_id(conn, deck.deck_id)
            stored = Deck(free, deck.name, deck.scenes, deck.description)
            deck_sql.write_deck(conn, stored)
            return stored

        return self._submit(op, wait=True)

    def delete_deck(self, deck_id: str) -> None:
        """Delete a deck (committed before return)."""
        self._submit(
            lambda conn: conn.execute("DELETE FROM decks WHERE deck_id = ?", (deck_id,)), wait=True
        )


def _close_at_exit(ref: weakref.ref) -> None:
    store = ref()
    if store is not None:
        store.close()


def _as_ids(run_ids: str | list[str]) -> list[str]:
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return ids or [""]


def _real(x: Any) -> float | None:
    """A float for SQLite; NaN and missing values become NULL."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x

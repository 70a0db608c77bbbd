"""No run is lost: kill -9 early, move the data directory, continue from elsewhere, crash
between a checkpoint's row and its file, damaged stores.

The kills are real (``SIGKILL`` of a CLI process or of a process running a RunManager); the
moment of each kill is chosen by watching the store's SQLite file for the first checkpoint row,
so no test sleeps to synchronise.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from core.runtime.store_schema import SCHEMA_VERSION, StoreError
from tests.fake_trainer import fake_config
from tests.helpers import ROOT

PYTHON_PATH = {**os.environ, "PYTHONPATH": str(ROOT)}


def _wait_for_checkpoint_row(db: Path, proc: subprocess.Popen, timeout: float = 120.0) -> str:
    """Poll the store file every 20 ms until a checkpoint row is committed; its run id."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.02)):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the process ended"
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    row = conn.execute("SELECT run_id FROM checkpoints LIMIT 1").fetchone()
            except sqlite3.OperationalError:  # the schema is not written yet
                row = None
            if row:
                return row[0]
        tick.wait(0.02)
    raise AssertionError("no checkpoint was committed in time")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=cwd,
        env=PYTHON_PATH,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_cli_run_killed_after_its_first_update_continues_from_elsewhere_after_a_move(tmp_path):
    first, second, third = (tmp_path / d for d in ("first", "second", "third"))
    for d in (first, second, third):
        d.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--algo", "ppo", "--env", "CartPole-v1"]
        + ["--steps", "10000000", "--set", "n_envs=2", "--set", "n_steps=64"]
        + ["--set", "minibatch_size=64", "--data-dir", "data"],  # relative to its cwd
        cwd=first,
        env=PYTHON_PATH,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _wait_for_checkpoint_row(first / "data" / "runs.sqlite", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    listed = _cli("runs", "--data-dir", str(first / "data"), cwd=second)
    assert listed.returncode == 0, listed.stderr
    (line,) = [ln for ln in listed.stdout.splitlines() if ln.startswith(run_id)]
    assert "interrupted" in line  # right after the kill, no app started in between

    moved = third / "moved-data"
    shutil.move(first / "data", moved)
    cont = _cli("continue", run_id, "--steps", "128", "--data-dir", str(moved), cwd=second)
    assert cont.returncode == 0, cont.stderr
    store = RunStore(moved)
    child = store.runs().query("parent_id == @run_id")
    assert child["status"].tolist() == ["finished"]
    assert store.checkpoints(child["run_id"].iloc[0])["path"].str.startswith(str(moved)).all()


def test_a_managed_run_killed_after_its_first_update_continues_after_a_move(tmp_path):
    from tests import train_until_killed

    data = tmp_path / "killed"
    proc = train_until_killed.launch(data)
    try:
        run_id = _wait_for_checkpoint_row(data / "runs.sqlite", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    moved = tmp_path / "elsewhere" / "moved"
    shutil.move(data, moved)
    store = RunStore(moved)
    assert store.run(run_id)["status"] == "interrupted"
    manager = RunManager(store, workers="thread")
    child = manager.continue_run(
        run_id, extra_steps=16, trainer_factory=train_until_killed.ClockedTrainer
    )
    assert manager.wait(child, timeout=60) == "finished"
    manager.shutdown()


def test_pruned_checkpoint_rows_are_committed_before_their_files_are_deleted(tmp_path):
    store = RunStore(tmp_path)
    manager = RunManager(store, checkpoint_every=1, keep_checkpoints=2, workers="thread")
    seen: list[tuple[str, bool]] = []
    unlink = Path.unlink

    def watching_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".pt":  # what another process would read at this very moment
            with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as conn:
                rows = {Path(p).name for (p,) in conn.execute("SELECT path FROM checkpoints")}
            seen.append((self.name, self.name in rows))
        unlink(self, missing_ok=missing_ok)

    Path.unlink = watching_unlink
    try:
        run_id = manager.start(fake_config(total_steps=48))
        assert manager.wait(run_id, timeout=60) == "finished"
    finally:
        Path.unlink = unlink
    manager.shutdown()
    assert [name for name, _ in seen] == [f"update_{u:07d}.pt" for u in (1, 2, 3, 4)]
    assert not any(still_a_row for _, still_a_row in seen)


def test_reconcile_removes_files_without_rows_and_rows_without_files(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(fake_config(), status="stopped")
    folder = store.checkpoint_dir(run_id)
    folder.mkdir(parents=True)
    for update in (1, 2, 3):
        (folder / f"update_{update:07d}.pt").write_bytes(b"x")
        store.add_checkpoint(run_id, update, 8 * update, folder / f"update_{update:07d}.pt")
    store.remove_checkpoints(run_id, [folder / "update_0000001.pt"])  # a crash after this commit
    (folder / "update_0000003.pt").unlink()  # an old crash: the file went, its row stayed
    (folder / "update_0000004.pt.tmp").write_bytes(b"half")  # a save cut short
    gone_run = tmp_path / "checkpoints" / "0123456789ab"  # the folder of a deleted run
    gone_run.mkdir()
    (gone_run / "update_0000001.pt").write_bytes(b"x")
    store.flush()
    deleted, rows = store.reconcile_checkpoints()
    assert sorted(p.name for p in deleted) == [
        "update_0000001.pt",
        "update_0000001.pt",
        "update_0000004.pt.tmp",
    ]
    assert rows == 1 and not gone_run.exists()
    assert [Path(p).name for p in store.checkpoints(run_id).path] == ["update_0000002.pt"]
    assert sorted(p.name for p in folder.iterdir()) == ["update_0000002.pt"]


def test_checkpoint_paths_are_kept_relative_to_the_data_dir_and_old_stores_are_migrated(tmp_path):
    store = RunStore(tmp_path / "a")
    run_id = store.create_run(fake_config(), status="stopped")
    path = store.checkpoint_dir(run_id) / "update_0000001.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    store.add_checkpoint(run_id, 1, 8, path)
    store.close()
    with sqlite3.connect(tmp_path / "a" / "runs.sqlite") as conn:
        (stored,) = conn.execute("SELECT path FROM checkpoints").fetchone()
        assert stored == f"checkpoints/{run_id}/update_0000001.pt"
        # a schema-1 store kept the path as the training process saw it (cwd-relative)
        conn.execute("UPDATE checkpoints SET path = ?", (f"reldata/checkpoints/{run_id}/u.pt",))
        conn.execute("PRAGMA user_version = 1")
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = RunStore(tmp_path / "b")
    assert moved.checkpoints(run_id).path.tolist() == [
        str(tmp_path / "b" / "checkpoints" / run_id / "u.pt")
    ]
    moved.close()
    with sqlite3.connect(tmp_path / "b" / "runs.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_an_empty_store_file_is_refused_with_one_line(tmp_path):
    (tmp_path / "runs.sqlite").write_bytes(b"")
    os.utime(tmp_path / "runs.sqlite", (0, 0))  # not a file another process is creating now
    with pytest.raises(StoreError, match="empty file \\(0 bytes\\)") as e:
        RunStore(tmp_path)
    assert "\n" not in str(e.value)


def test_several_stores_opening_a_new_data_dir_at_once_all_succeed(tmp_path):
    """Each store has its own SQLite connection, as separate processes do (an app and a CLI
    started together): only one may create the schema; the others must find it made."""

    def open_store(data: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
        start.wait()
        try:
            RunStore(data).close()
        except BaseException as e:  # collected: an assert in a thread would be lost
            errors.append(e)

    for i in range(10):
        data = tmp_path / f"d{i}"
        start = threading.Barrier(4)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=open_store, args=(data, start, errors)) for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert RunStore(data).runs().empty


def test_cli_continue_from_damaged_checkpoints_says_so_in_one_line_and_creates_nothing(
    tmp_path, capsys
):
    from core.cli import main

    data = str(tmp_path / "d")
    argv = ["train", "--algo", "a2c", "--env", "CartPole-v1", "--steps", "64", "--data-dir", data]
    assert main(argv) == 0
    store = RunStore(data)
    (run_id,) = store.runs()["run_id"]
    for path in store.checkpoints(run_id)["path"]:
        Path(path).write_bytes(b"damaged")
    capsys.readouterr()
    assert main(["continue", run_id, "--steps", "64", "--data-dir", data]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no usable checkpoint" in err and "corrupt" in err
    assert len(store.runs()) == 1

"""The run store: wide incremental reads, batching, and refusing bad or foreign files."""

from __future__ import annotations

import math
import sqlite3
import threading

import numpy as np
import pytest

from core.engine.trainer import Episode
from core.runtime.store import RunStore
from core.runtime.store_schema import SCHEMA_VERSION, StoreError, default_data_dir
from tests.fake_trainer import fake_config


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "data")
    yield s
    s.close()


def _metrics(update: int, **extra: float) -> dict[str, float]:
    return {"update": update, "env_steps": 8 * update, "wall_time": 0.1 * update, **extra}


def test_default_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("PLAYGROUND_DATA_DIR")
    assert str(default_data_dir()) == "data"


def test_create_run_is_committed_before_return_and_visible_to_readers(store):
    run_id = store.create_run(fake_config(), name="first")
    row = store.run(run_id)
    assert row["name"] == "first" and row["status"] == "queued" and row["algo"] == "a2c"
    assert row["updates"] == 0 and row["total_steps"] == 80
    assert store.config(run_id) == fake_config()


def test_metrics_are_wide_with_nan_where_a_run_does_not_report_a_name(store):
    a = store.create_run(fake_config())
    b = store.create_run(fake_config())
    for u in (1, 2):
        store.append_update(a, _metrics(u, kl_mean=0.01 * u, entropy=0.5), [])
        store.append_update(b, _metrics(u, clip_frac=0.1 * u, entropy=0.7), [])
    store.flush()
    df = store.metrics([a, b])
    assert list(df.columns[:4]) == ["run_id", "update", "env_steps", "wall_time"]
    assert set(df.columns[4:]) == {"kl_mean", "entropy", "clip_frac"}
    ra, rb = df[df.run_id == a], df[df.run_id == b]
    np.testing.assert_allclose(ra.kl_mean, [0.01, 0.02])
    assert ra.clip_frac.isna().all() and rb.kl_mean.isna().all()
    np.testing.assert_allclose(rb.clip_frac, [0.1, 0.2])
    assert list(store.metrics(a).columns[4:]) == ["kl_mean", "entropy"]


def test_incremental_reads_return_only_rows_after_the_cursor(store):
    run_id = store.create_run(fake_config())
    for u in range(1, 6):
        eps = [Episode(8 * u - 1, float(u), 3), Episode(8 * u, float(u) + 0.5, 3)]
        store.append_update(run_id, _metrics(u, loss=float(u)), eps)
    store.flush()
    assert list(store.metrics(run_id, after_update=3)["update"]) == [4, 5]
    eps = store.episodes(run_id, after_env_step=24)
    assert list(eps.env_step) == [31, 32, 39, 40]
    assert list(eps.ret) == [4.0, 4.5, 5.0, 5.5]
    assert store.metrics(run_id, after_update=5).empty


def test_append_update_summarises_the_run_row_and_keeps_last_finite_return(store):
    run_id = store.create_run(fake_config())
    store.append_update(run_id, _metrics(1, episode_return_mean=12.0), [])
    store.append_update(run_id, _metrics(2, episode_return_mean=math.nan), [])
    store.flush()
    row = store.run(run_id)
    assert row["updates"] == 2 and row["env_steps"] == 16 and row["last_return"] == 12.0
    assert math.isnan(store.metrics(run_id).episode_return_mean.iloc[1])


def test_writes_are_batched_but_reach_readers_after_flush(tmp_path):
    store = RunStore(tmp_path / "d", commit_interval=30.0)
    run_id = store.create_run(fake_config())
    store.append_update(run_id, _metrics(1), [])
    assert store.metrics(run_id).empty  # still queued: the batch closes in 30 s or on flush
    store.flush()
    assert list(store.metrics(run_id)["update"]) == [1]
    store.close()


def test_bad_metric_names_are_refused_before_queueing(store):
    run_id = store.create_run(fake_config())
    with pytest.raises(ValueError, match="identifier"):
        store.append_update(run_id, _metrics(1, **{'x"; DROP TABLE runs; --': 1.0}), [])
    with pytest.raises(ValueError, match="update"):
        store.append_update(run_id, {"env_steps": 1}, [])


def test_events_status_rename_and_checkpoints_round_trip(store):
    run_id = store.create_run(fake_config())
    store.add_event(run_id, "hyperparams", 16, {"lr": [0.001, 0.0005]})
    store.set_status(run_id, "failed", "Traceback ...\nRuntimeError: boom")
    store.add_checkpoint(run_id, 2, 16, "/x/update_2.pt")
    store.rename(run_id, "renamed")
    ev = store.events(run_id)
    assert list(ev.kind) == ["hyperparams"] and ev.payload.iloc[0] == {"lr": [0.001, 0.0005]}
    row = store.run(run_id)
    assert row["status"] == "failed" and row["error"].endswith("boom") and row["finished_at"] > 0
    assert row["name"] == "renamed"
    assert list(store.checkpoints(run_id).path) == ["/x/update_2.pt"]
    with pytest.raises(ValueError):
        store.set_status(run_id, "exploded")


def test_delete_removes_rows_and_checkpoint_files(store):
    keep = store.create_run(fake_config())
    gone = store.create_run(fake_config())
    for rid in (keep, gone):
        store.append_update(rid, _metrics(1, loss=1.0), [Episode(8, 1.0, 3)])
        store.add_event(rid, "started", 0)
    ckpt_dir = store.checkpoint_dir(gone)
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "update_1.pt").write_bytes(b"x")
    store.delete(gone)
    assert list(store.runs().run_id) == [keep]
    assert store.metrics(gone).empty and store.episodes(gone).empty and store.events(gone).empty
    assert not ckpt_dir.exists()
    assert len(store.metrics(keep)) == 1


def test_reopening_keeps_everything(tmp_path):
    store = RunStore(tmp_path / "d")
    run_id = store.create_run(fake_config())
    store.append_update(run_id, _metrics(1, kl_mean=0.5), [Episode(8, 2.0, 3)])
    store.close()
    again = RunStore(tmp_path / "d")
    assert again.metrics(run_id).kl_mean.tolist() == [0.5]
    assert again.episodes(run_id).ret.tolist() == [2.0]
    again.close()


def test_data_dir_that_is_a_file_gives_one_line_store_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(StoreError) as e:
            RunStore(bad)
        assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_corrupt_db_gives_one_line_error_and_is_never_overwritten(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    garbage = b"this is not sqlite" * 100
    (d / "runs.sqlite").write_bytes(garbage)
    with pytest.raises(StoreError) as e:
        RunStore(d)
    assert "\n" not in str(e.value) and "not a usable run store" in str(e.value)
    assert (d / "runs.sqlite").read_bytes() == garbage


def test_foreign_or_newer_sqlite_files_are_refused_untouched(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "runs.sqlite")
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    before = (foreign / "runs.sqlite").read_bytes()
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(foreign)
    assert (foreign / "runs.sqlite").read_bytes() == before

    newer = tmp_path / "newer"
    RunStore(newer).close()
    conn = sqlite3.connect(newer / "runs.sqlite")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer version"):
        RunStore(newer)


def test_closed_store_refuses_writes(tmp_path):
    store = RunStore(tmp_path / "d")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.create_run(fake_config())


def test_concurrent_incremental_readers_see_every_update_once_in_order(tmp_path):
    store = RunStore(tmp_path / "d", commit_interval=0.01)
    run_id = store.create_run(fake_config())
    n = 300
    done = threading.Event()
    seen: list[list[int]] = [[] for _ in range(4)]

    def reader(k: int) -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read once more after the writer is done
            df = store.metrics(run_id, after_update=cursor)
            if not df.empty:
                seen[k].extend(df["update"].tolist())
                cursor = int(df["update"].iloc[-1])
            if finished:
                return

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for u in range(1, n + 1):
        store.append_update(run_id, _metrics(u, loss=float(u)), [])
    store.flush()
    done.set()
    for t in threads:
        t.join()
    assert all(s == list(range(1, n + 1)) for s in seen)
    store.close()


def test_metrics_read_can_be_limited_to_named_columns(store):
    a = store.create_run(fake_config())
    store.append_update(a, _metrics(1, kl_mean=0.5, entropy=0.7, clip_frac=0.1), [])
    store.flush()
    df = store.metrics(a, columns=["entropy", "never_reported", "update"])
    assert list(df.columns) == [
        "run_id",
        "update",
        "env_steps",
        "wall_time",
        "entropy",
        "never_reported",
    ]
    assert df.entropy.tolist() == [0.7] and df.never_reported.isna().all()


def test_a_failed_commit_surfaces_as_one_line_store_error_on_later_writes(store):
    run_id = store.create_run(fake_config())
    vandal = sqlite3.connect(store.path)
    vandal.execute("DROP TABLE episodes")
    vandal.commit()
    vandal.close()
    store.append_update(run_id, _metrics(1), [Episode(8, 1.0, 3)])  # queued: fails in the writer
    with pytest.raises(StoreError, match="writing .* failed: no such table: episodes") as e:
        store.flush()
    assert "\n" not in str(e.value)
    with pytest.raises(StoreError, match="no such table"):
        store.add_event(run_id, "started", 0)

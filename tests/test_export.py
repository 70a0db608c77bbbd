"""Exports: CSV files and TensorBoard event files, read back by pandas and by TensorBoard."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from core.engine.trainer import Episode
from core.runtime.export import ExportError, export_csv, export_run, export_tensorboard
from core.runtime.store import RunStore
from core.runtime.store_schema import StoreError
from tests.fake_trainer import fake_config


@pytest.fixture
def stored(tmp_path):
    store = RunStore(tmp_path / "data")
    run_id = store.create_run(fake_config(lr=0.001), name="export me")
    for u in (1, 2, 3):
        metrics = {
            "update": u,
            "env_steps": 8 * u,
            "wall_time": 0.5 * u,
            "kl_mean": 0.01 * u,
            "episode_return_mean": 10.0 * u,
            "eval_return_mean": 100.0 if u == 3 else math.nan,
        }
        store.append_update(run_id, metrics, [Episode(8 * u, 10.0 * u, 3 + u)])
    store.add_event(run_id, "hyperparams", 8, {"lr": [0.001, 0.002]})
    store.set_status(run_id, "finished")
    store.flush()
    yield store, run_id
    store.close()


def test_csv_export_is_readable_and_matches_the_store(stored, tmp_path):
    store, run_id = stored
    metrics_path, episodes_path, events_path = export_csv(store, run_id, tmp_path / "out")
    m = pd.read_csv(metrics_path)
    assert m["update"].tolist() == [1, 2, 3] and m.env_steps.tolist() == [8, 16, 24]
    assert m.kl_mean.tolist() == pytest.approx([0.01, 0.02, 0.03])
    assert m.eval_return_mean.isna().tolist() == [True, True, False]
    e = pd.read_csv(episodes_path)
    assert e.ret.tolist() == [10.0, 20.0, 30.0] and e.length.tolist() == [4, 5, 6]
    ev = pd.read_csv(events_path)
    assert ev.kind.tolist() == ["hyperparams"] and '"lr": [0.001, 0.002]' in ev.payload[0]


def test_tensorboard_export_reads_back_with_event_accumulator(stored, tmp_path):
    store, run_id = stored
    log_dir = export_tensorboard(store, run_id, tmp_path / "tb")
    assert log_dir == tmp_path / "tb" / run_id
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/kl_mean", "train/episode_return_mean", "episodes/return"} <= scalars
    kl = acc.Scalars("train/kl_mean")
    assert [s.step for s in kl] == [8, 16, 24]
    assert [s.value for s in kl] == pytest.approx([0.01, 0.02, 0.03])
    assert [(s.step, s.value) for s in acc.Scalars("train/eval_return_mean")] == [(24, 100.0)]
    assert [s.value for s in acc.Scalars("episodes/length")] == [4, 5, 6]
    assert acc.Scalars("hparam/final_return")[-1].value == 30.0
    assert {"events/text_summary", "config/text_summary"} <= set(acc.Tags()["tensors"])
    hparams = set()
    for path in log_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            hparams |= {
                v.tag
                for v in event.summary.value
                if v.metadata.plugin_data.plugin_name == "hparams"
            }
    assert hparams == {
        f"_hparams_/{k}" for k in ("experiment", "session_start_info", "session_end_info")
    }


def test_export_of_unknown_run_or_format_gives_one_line_errors(stored, tmp_path):
    store, run_id = stored
    with pytest.raises(StoreError, match="no run"):
        export_csv(store, "missing", tmp_path)
    with pytest.raises(ExportError, match="unknown format"):
        export_run(store, run_id, "parquet", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create output directory") as e:
        export_csv(store, run_id, blocker / "sub")
    assert "\n" not in str(e.value)

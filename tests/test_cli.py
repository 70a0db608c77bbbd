"""The CLI: one-line errors on bad input, a stored run per ``train``, ``runs`` and ``export``."""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys

import pandas as pd
import pytest

from core.cli import CsvSink, main, progress_line
from core.runtime import runner
from core.runtime.store import RunStore
from tests.fake_trainer import FakeTrainer
from tests.helpers import ROOT, run_module

BAD_INPUTS = [
    ["train", "--algo", "ppo", "--env", "Foo-v0"],
    ["train", "--algo", "xyz", "--env", "CartPole-v1"],
    ["train", "--algo", "dqn", "--env", "Pendulum-v1"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--steps", "abc"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--steps", "0"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--set", "gamma=2"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--set", "nope=1"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--set", "gamma"],
    ["train", "--algo", "ppo", "--env", "CartPole-v1", "--preset", "nope"],
    ["train", "--algo", "ppo"],
    ["export", "missing-run"],
    ["continue", "missing-run"],
    ["continue", "x", "--steps", "many"],
    ["export", "x", "--format", "parquet"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", BAD_INPUTS, ids=lambda a: " ".join(a))
def test_bad_input_exits_nonzero_with_one_line_and_stores_nothing(argv, capsys, tmp_path):
    data = tmp_path / "data"
    try:
        code = main([*argv, "--data-dir", str(data)])
    except SystemExit as e:  # argparse errors
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if data.exists():
        assert RunStore(data).runs().empty


def test_unusable_data_dir_or_out_file_exit_nonzero_with_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = ["train", "--algo", "a2c", "--env", "CartPole-v1", "--steps", "64"]
    assert main([*base, "--data-dir", str(blocker)]) == 1
    assert main([*base, "--data-dir", str(tmp_path / "d"), "--out", str(blocker / "m.csv")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert RunStore(tmp_path / "d").runs().empty


def test_train_prints_run_id_first_and_writes_one_csv_row_per_update(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_default_factory", FakeTrainer)
    out = tmp_path / "m.csv"
    argv = ["train", "--algo", "a2c", "--env", "CartPole-v1", "--steps", "80", "--seed", "3"]
    argv += ["--set", "n_envs=2", "--set", "n_steps=4", "--out", str(out), "--name", "cli"]
    assert main([*argv, "--data-dir", str(tmp_path / "d")]) == 0
    stdout, stderr = capsys.readouterr()
    run_id = stdout.splitlines()[0]
    assert "100%" in stderr and f"finished: run {run_id}" in stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["update"] for r in rows] == [str(u) for u in range(1, 11)]
    assert {"env_steps", "loss", "lr", "episode_return_mean"} <= set(rows[0])
    store = RunStore(tmp_path / "d")
    row = store.run(run_id)
    assert row["name"] == "cli" and row["updates"] == 10 and row["status"] == "finished"
    assert store.config(run_id).seed == 3

    assert main(["continue", run_id, "--steps", "16", "--data-dir", str(tmp_path / "d")]) == 0
    child = capsys.readouterr().out.splitlines()[0]
    m = store.metrics(child)
    assert store.run(child)["parent_id"] == run_id and m["update"].tolist() == [11, 12]


def test_csv_sink_widens_the_header_when_a_metric_first_appears(tmp_path):
    sink = CsvSink(tmp_path / "m.csv")
    sink.write({"loss": 1.0, "update": 1.0, "env_steps": 8.0})
    sink.write({"loss": 0.5, "update": 2.0, "env_steps": 16.0, "eval_return_mean": 9.0})
    sink.write({"loss": 0.2, "update": 3.0, "env_steps": 24.0})
    sink.close()
    df = pd.read_csv(tmp_path / "m.csv")
    assert list(df.columns) == ["update", "env_steps", "loss", "eval_return_mean"]
    assert df["update"].tolist() == [1, 2, 3]
    assert df.eval_return_mean.isna().tolist() == [True, False, True]


def test_progress_line_shows_fraction_speed_and_returns():
    line = progress_line(
        {"env_steps": 250, "wall_time": 0.5, "episode_return_mean": 20.0}, total=1000, width=8
    )
    assert line == "[██░░░░░░]  25% 250/1,000 steps · 500 steps/s · return 20.0"
    assert "eval" not in progress_line({"env_steps": 1, "eval_return_mean": math.nan}, 10)


def test_python_m_core_trains_a_real_run_then_lists_and_exports_it(tmp_path, capsys):
    data = tmp_path / "d"
    settings = ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "minibatch_size=64"]
    proc = run_module(
        "core", "train", "--algo", "ppo", "--env", "CartPole-v1", "--steps", "256",
        *settings, "--data-dir", str(data),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.splitlines()[0]
    assert main(["runs", "--json", "--data-dir", str(data)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["status"], r["algo"], r["updates"]) for r in listed] == [
        (run_id, "finished", "ppo", 2)
    ]
    assert main(["runs", "--data-dir", str(data)]) == 0
    assert run_id in capsys.readouterr().out
    out = tmp_path / "exp"
    assert (
        main(["export", run_id, "--format", "csv", "--out", str(out), "--data-dir", str(data)]) == 0
    )
    assert (
        main(
            ["export", run_id, "--format", "tensorboard", "--out", str(out)]
            + ["--data-dir", str(data)]
        )
        == 0
    )
    assert len(pd.read_csv(out / f"{run_id}_metrics.csv")) == 2
    assert list((out / run_id).glob("events.out.tfevents.*"))


def test_ctrl_c_stops_the_run_cleanly_and_keeps_it_in_the_store(tmp_path):
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--algo", "a2c", "--env", "CartPole-v1"]
        + ["--steps", "10000000", "--set", "n_envs=1", "--set", "n_steps=16"]
        + ["--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"stopped: run {run_id}" in err
    store = RunStore(data)
    row = store.run(run_id)
    assert row["status"] == "stopped"
    assert store.events(run_id).kind.iloc[-1] == "stopped"


def test_a_preset_and_a_run_name_combine():
    """``train --preset zoo --name X`` used to pass ``name`` twice to the preset builder."""
    import argparse

    from core.cli import train_config
    from core.engine.algos import presets

    args = argparse.Namespace(
        algo="ppo", env="CartPole-v1", preset="zoo", name="mine", set=[], steps=None, seed=3
    )
    config = train_config(args)
    assert (config.name, config.seed) == ("mine", 3)
    assert config.params.epochs == presets("ppo", "CartPole-v1")["zoo"]["epochs"]

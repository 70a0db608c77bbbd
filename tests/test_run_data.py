"""The status line of one run (ui.run_data.progress): progress, speed and ETA."""

from __future__ import annotations

import pandas as pd
import pytest

from ui.run_data import format_seconds, progress


def metrics(env_steps: int, wall_time: float) -> pd.DataFrame:
    return pd.DataFrame({"update": [1], "env_steps": [env_steps], "wall_time": [wall_time]})


def test_a_running_run_shows_speed_and_the_eta_from_it():
    done, text = progress({"status": "running", "total_steps": 10_000}, metrics(2_000, 1.0))
    assert done == pytest.approx(0.2)
    assert "2,000 / 10,000 env steps" in text and "2,000 steps/s" in text
    assert f"ETA {format_seconds(4.0)}" in text


@pytest.mark.parametrize("status", ["paused", "queued", "stopped", "finished"])
def test_no_eta_unless_the_run_is_training(status):
    _, text = progress({"status": status, "total_steps": 10_000}, metrics(2_000, 1.0))
    assert "ETA" not in text and "steps/s" in text


def test_progress_never_passes_the_budget_when_the_last_update_overshoots():
    done, text = progress({"status": "finished", "total_steps": 10_000}, metrics(10_240, 2.0))
    assert done == 1.0 and "10,240 / 10,000" in text


def test_a_run_without_updates_is_at_zero():
    done, text = progress({"status": "queued", "total_steps": 500}, pd.DataFrame())
    assert done == 0.0 and text == "0 / 500 env steps"

"""The live feed the run panel polls (ui/live_feed.py) and its HTTP routes (ui/live_api.py).

Runs use the fake trainer in worker threads (the feed only reads the store and talks to the
manager; worker processes are covered by tests/test_runner.py). Expected values come from
direct reads of the store, not from the feed's incremental reader.
"""

from __future__ import annotations

import functools
import json
import threading

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from tests.fake_trainer import FakeTrainer, fake_config
from ui import live_feed
from ui.charts.run import run_figure_dicts
from ui.live_api import COMMAND_HEADER, routes
from ui.run_data import forget_run, read_run


@pytest.fixture
def manager(tmp_path):
    m = RunManager(RunStore(tmp_path / "data"), max_concurrent=2, workers="thread")
    yield m
    m.shutdown()
    m.store.close()


@pytest.fixture
def client(manager):
    with TestClient(Starlette(routes=routes(lambda: manager))) as c:
        yield c


def finished_run(manager: RunManager, total_steps: int = 80) -> str:
    run_id = manager.start(fake_config(total_steps), trainer_factory=FakeTrainer)
    assert manager.wait(run_id, timeout=60) == "finished"
    manager.store.flush()
    return run_id


class HoldSecond:
    """A gate hook that lets the first update through and holds the second one at its start
    until ``open()`` (then every later one passes)."""

    def __init__(self) -> None:
        self.calls = 0
        self.held = threading.Event()
        self.released = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 2:
            self.held.set()
            self.released.wait()

    def open(self) -> None:
        self.released.set()


def held_run(manager: RunManager, gate: HoldSecond) -> str:
    """A running run with its first update done and its second held at the gate."""
    run_id = manager.start(
        fake_config(10_000), trainer_factory=functools.partial(FakeTrainer, gate=gate)
    )
    assert gate.held.wait(30)
    manager.store.flush()
    return run_id


def test_a_finished_run_answers_with_its_status_progress_and_charts(manager):
    run_id = finished_run(manager)
    state = live_feed.run_state(manager, run_id)
    assert state["found"] and state["status"] == state["shown"] == "finished"
    assert not state["active"] and state["fraction"] == 1.0
    assert state["progress"].startswith("80 / 80 env steps")
    assert state["last_x"] == 80 and state["figures"] is None  # not asked for
    store = manager.store
    expected = run_figure_dicts(
        store.metrics(run_id),
        store.episodes(run_id),
        store.events(run_id),
        algo="a2c",
        config_values=store.config(run_id).flat(),
        revision=run_id,
    )
    with_figures = live_feed.run_state(manager, run_id, figures=True)
    assert json.dumps(with_figures["figures"], allow_nan=False) == json.dumps(expected)
    again = live_feed.run_state(manager, run_id, figures=True, have=with_figures["version"])
    assert again["figures"] is None, "the browser holds this version already"
    large = live_feed.run_state(manager, run_id, figures=True, large=True)
    assert large["version"] != with_figures["version"] and large["figures"] is not None


def test_reads_are_incremental_and_end_equal_to_a_full_read(manager):
    gate = HoldSecond()
    run_id = held_run(manager, gate)
    early = read_run(manager.store, run_id)
    n_early = len(early.metrics)
    gate.open()
    manager.stop(run_id)
    manager.wait(run_id, timeout=60)
    manager.store.flush()
    data = read_run(manager.store, run_id)
    full = manager.store.metrics(run_id)
    assert len(data.metrics) == len(full) > n_early >= 1
    assert data.metrics["update"].tolist() == full["update"].tolist()
    assert data.episodes["env_step"].tolist() == manager.store.episodes(run_id)["env_step"].tolist()
    forget_run(manager.store, run_id)
    assert read_run(manager.store, run_id).metrics.equals(data.metrics)


def test_pause_resume_stop_are_acknowledged_at_once_and_confirmed_within_a_poll(manager):
    gate = HoldSecond()
    run_id = held_run(manager, gate)  # the next update waits at the gate
    answer = live_feed.send_command(manager, run_id, "pause")
    assert answer == {"ok": True, "requested": "pausing"}
    assert live_feed.run_state(manager, run_id)["shown"] == "pausing…"
    gate.open()  # the held update ends, the run pauses after it
    state = live_feed.run_state(manager, run_id, wait_s=5)
    assert state["status"] == state["shown"] == "paused" and state["active"]
    assert state["changes"] == 0, "a pause is no chart marker: nothing to redraw at once"
    assert live_feed.send_command(manager, run_id, "resume")["ok"]
    assert live_feed.run_state(manager, run_id, wait_s=5)["shown"] == "running"
    assert live_feed.send_command(manager, run_id, "stop")["ok"]
    state = live_feed.run_state(manager, run_id, wait_s=5)
    assert state["status"] == state["shown"] == "stopped" and not state["active"]


def test_a_live_change_counts_as_a_marker_for_the_panel(manager):
    gate = HoldSecond()
    run_id = held_run(manager, gate)
    assert live_feed.run_state(manager, run_id)["changes"] == 0
    manager.set_hyperparams(run_id, gamma=0.95)
    gate.open()
    assert manager.wait_for_changes(run_id, 10)
    assert live_feed.run_state(manager, run_id)["changes"] == 1
    manager.stop(run_id)
    manager.wait(run_id, timeout=30)


def test_refused_and_unknown_commands_say_why(manager):
    run_id = finished_run(manager)
    refused = live_feed.send_command(manager, run_id, "pause")
    assert not refused["ok"] and refused["message"].startswith("Could not pause:")
    unknown = live_feed.send_command(manager, run_id, "explode")
    assert not unknown["ok"] and "pause, resume, stop" in unknown["message"]


def test_routes_answer_json_and_refuse_commands_without_the_header(manager, client):
    run_id = finished_run(manager)
    r = client.get(f"/api/runs/{run_id}/live", params={"figures": "1", "wait": "oops"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["status"] == "finished" and set(body["figures"]) >= {"return", "diagnostics"}
    slim = client.get(f"/api/runs/{run_id}/live", params={"figures": "1", "skip": "diagnostics"})
    left_out = slim.json()["figures"]
    assert left_out["diagnostics"] is None and left_out["return"] == body["figures"]["return"]
    assert client.get("/api/runs/nope/live").json() == {
        "run_id": "nope",
        "found": False,
        "message": "This run was deleted.",
    }
    assert client.get("/api/runs/nope/live").status_code == 404
    bare = client.post(f"/api/runs/{run_id}/stop")
    assert bare.status_code == 403 and COMMAND_HEADER in bare.json()["message"]
    refused = client.post(f"/api/runs/{run_id}/stop", headers={COMMAND_HEADER: "1"})
    assert refused.status_code == 409 and refused.json()["message"].startswith("Could not stop:")


def test_a_command_over_http_lands(manager, client):
    gate = HoldSecond()
    run_id = held_run(manager, gate)
    r = client.post(f"/api/runs/{run_id}/stop", headers={COMMAND_HEADER: "1"})
    assert r.status_code == 200 and r.json() == {"ok": True, "requested": "stopping"}
    gate.open()
    state = client.get(f"/api/runs/{run_id}/live", params={"wait": "5"}).json()
    assert state["status"] == "stopped"

"""The Update Inspector page under Streamlit's AppTest: the URL opens a run's update, the figure
shows the δ contour, the ellipse, the trials and θ_new, the slider changes the update (and the
URL), runs without snapshots get a clear message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.runtime.snapshots import save_snapshot, snapshot_dir
from core.runtime.store import RunStore
from ui.inspector_data import compute_view
from ui.inspector_figures import (
    TRACE_ACCEPTED,
    TRACE_CG,
    TRACE_ELLIPSE,
    TRACE_LEVEL,
    TRACE_NEW,
    TRACE_REJECTED,
    inspector_url,
)
from ui.state import get_manager

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "inspector.py")


@pytest.fixture
def store():
    """A run store in this test's data directory (the page's manager opens the same file)."""
    get_manager.clear()
    store = RunStore()
    yield store
    store.close()
    get_manager().shutdown()
    get_manager.clear()


def _trained_run(store: RunStore, algo: str = "trpo", updates: int = 3) -> str:
    """A finished run of ``updates`` small updates with a snapshot each, as the worker writes."""
    config = RunConfig(algo=algo).with_changes(eval_every=0, n_envs=2, n_steps=128)
    run_id = store.create_run(config, status="finished")
    trainer = make_trainer(config)
    trainer.capture_snapshots = True
    for _ in range(updates):
        report = trainer.update()
        store.append_update(run_id, report.metrics, [])
        if trainer.last_snapshot is not None:
            folder = snapshot_dir(store.checkpoint_dir(run_id))
            save_snapshot(folder, trainer.book.update, trainer.last_snapshot)
    store.flush()
    return run_id


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _plane(at: AppTest) -> dict:
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "insp_plane" in c.proto.id]
    return json.loads(chart.proto.spec)


def _names(figure: dict) -> set[str]:
    return {t["name"] for t in figure["data"] if t.get("name")}


def test_the_url_opens_the_update_with_ball_ellipse_trials_and_theta_new(store):
    run_id = _trained_run(store)
    at = _open({"run": run_id, "update": "2"})
    figure = _plane(at)
    assert "Update 2" in figure["layout"]["title"]["text"]
    names = _names(figure)
    assert {
        TRACE_LEVEL.format(name="δ"),
        TRACE_ELLIPSE.format(name="δ"),
        TRACE_NEW,
        TRACE_CG,
    } <= names
    assert TRACE_ACCEPTED in names or TRACE_REJECTED in names
    (level,) = [t for t in figure["data"] if t.get("name") == TRACE_LEVEL.format(name="δ")]
    assert level["contours"]["start"] == level["contours"]["end"] == pytest.approx(0.01)
    assert at.select_slider(key="insp_update").value == 2


def test_the_slider_changes_the_update_and_the_url(store):
    run_id = _trained_run(store)
    at = _open({"run": run_id, "update": "1"})
    at.select_slider(key="insp_update").set_value(3).run()
    assert not at.exception
    assert "Update 3" in _plane(at)["layout"]["title"]["text"]
    assert at.query_params["update"] == ["3"] or at.query_params["update"] == "3"


def test_a_link_to_an_update_the_run_does_not_keep_shows_the_nearest_and_says_so(store):
    run_id = _trained_run(store)
    at = _open({"run": run_id, "update": "999"})
    (warning,) = [w.value for w in at.warning if "999" in w.value]
    assert "not kept" in warning and "from 1 to 3" in warning and "update 3" in warning
    assert at.select_slider(key="insp_update").value == 3
    at.select_slider(key="insp_update").set_value(2).run()
    assert not [w for w in at.warning if "999" in w.value]  # said once, for the link


def test_a_ppo_run_shows_the_clipped_objective(store):
    run_id = _trained_run(store, "ppo", updates=2)
    at = _open({"run": run_id, "update": "2"})
    names = _names(_plane(at))
    assert "clipped ΔL^CLIP" in names and TRACE_NEW in names
    assert TRACE_LEVEL.format(name="KL reached") in names


def test_a_dqn_run_and_an_empty_store_get_clear_messages(store):
    at = _open()
    assert any("No run with update snapshots" in i.value for i in at.info)
    config = RunConfig(algo="dqn").with_changes(eval_every=0)
    dqn = store.create_run(config, status="finished")
    store.flush()
    at = _open({"run": dqn})
    assert any("DQN" in w.value for w in at.warning)


def test_a_computed_update_is_shown_again_from_the_cache_quickly(store):
    run_id = _trained_run(store, updates=2)
    at = _open({"run": run_id, "update": "1"})
    at.select_slider(key="insp_update").set_value(2).run()
    start = time.perf_counter()
    at.select_slider(key="insp_update").set_value(1).run()
    assert not at.exception
    assert time.perf_counter() - start < 1.5  # ≤ 0.3 s in the browser; AppTest adds its own cost


def test_inspector_url_names_the_page_run_and_update():
    assert inspector_url("abc123", 17) == "inspector?run=abc123&update=17"


def test_compute_view_reads_a_snapshot_file(tmp_path):
    trainer = make_trainer(RunConfig(algo="npg").with_changes(eval_every=0, n_envs=2, n_steps=64))
    trainer.capture_snapshots = True
    trainer.update()
    view = compute_view(save_snapshot(tmp_path, 1, trainer.last_snapshot), n=7)
    assert view.kl.shape == (7, 7) and view.numbers["alpha"] == 1.0

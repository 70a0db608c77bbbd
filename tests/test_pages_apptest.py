"""The app's pages under Streamlit's AppTest: they render, start/stop real runs, show their data.

Every wait polls the store (or the manager) against a deadline; nothing sleeps.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.config import RunConfig
from core.sweep.local import launch_local
from core.sweep.progress import sweep_progress, sweeps
from core.sweep.spec import SweepSpec
from tests.fake_trainer import FakeTrainer, exploding_trainer
from tests.helpers import chart_specs, open_page, panels, values
from ui import live_feed
from ui.charts.trust_region import KL_NAMES
from ui.run_data import STATUS_ICONS
from ui.state import get_manager
from ui.text import plain

APP = str(Path(__file__).resolve().parents[1] / "app.py")
DEADLINE_S = 120.0


@pytest.fixture
def app(app_manager):
    """A fresh AppTest and a fresh process-wide manager on this test's data directory."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at, app_manager


def trace(specs: list[dict], name: str) -> dict:
    return next(t for s in specs for t in s["data"] if t.get("name") == name)


def rerun_until(at: AppTest, condition, what: str) -> None:
    """Rerun the page until ``condition()`` holds."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        at.run()
        assert not at.exception, [e.message for e in at.exception]


def tiny_trpo(**changes) -> RunConfig:
    small = {"n_envs": 2, "n_steps": 64, "total_steps": 1024, "critic_iters": 2, "eval_every": 0}
    return RunConfig(algo="trpo", env_id="CartPole-v1").with_changes(**(small | changes))


@pytest.mark.parametrize(
    "page", ["pages/home.py", "pages/train.py", "pages/compare.py", "pages/runs.py"]
)
def test_page_renders_without_exception(app, page):
    at, _ = app
    open_page(at, page)
    assert at.title, "every page has a title"


def test_train_starts_a_run_charts_its_updates_and_stops_it(app):
    at, manager = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("trpo").run()
    at.slider(key="train.trpo.n_envs").set_value(2)
    at.number_input(key="train.trpo.n_steps").set_value(64)
    at.text_input(key="train.trpo.total_steps").input("200k")
    at.text_input(key="train.trpo.eval_every").input("0")
    at.slider(key="train.trpo.gamma").set_value(0.98)
    at.select_slider(key="train.trpo.delta").set_value(0.02)
    at.run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="train.start").click().run()
    run_id = at.query_params["run"]
    config = manager.store.config(run_id)
    assert (config.n_envs, config.n_steps, config.gamma, config.params.delta) == (2, 64, 0.98, 0.02)
    assert [(p["run_id"], p["active"], p["controls"]) for p in panels(at)] == [(run_id, True, True)]

    def kl_points() -> dict:  # what the panel's next poll brings
        specs = list(live_feed.run_state(manager, run_id, figures=True)["figures"].values())
        return next(
            (t for s in specs for t in s["data"] if t.get("name") == KL_NAMES["kl_mean"]), {"x": []}
        )

    assert manager.wait_for_updates(run_id, 2, DEADLINE_S), "two updates in the store"
    assert len(values(kl_points()["x"])) >= 2, "both on the KL chart the panel fetches next"
    stored = manager.store.metrics(run_id).set_index("env_steps")
    kl = kl_points()
    for x, y in zip(values(kl["x"]), values(kl["y"])):
        assert stored.loc[x, "kl_mean"] == pytest.approx(y)
    figures = live_feed.run_state(manager, run_id, figures=True)["figures"]
    assert values(trace(list(figures.values()), "δ")["y"])[0] == 0.02
    assert any(t.get("name") == "accepted" or t.get("name", "").startswith("rejected")
               for s in figures.values() for t in s["data"])  # fmt: skip
    assert live_feed.send_command(manager, run_id, "stop")["ok"]  # the panel's Stop
    assert manager.wait(run_id, timeout=DEADLINE_S) == "stopped"
    at.run()
    assert [p["active"] for p in panels(at)] == [False], "the page redrawn after the end"


def test_train_refuses_bad_values_with_a_message_naming_the_field(app):
    at, _ = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("ppo").run()
    at.slider(key="train.ppo.gamma").set_value(0.0).run()
    assert any("Discount γ" in e.value and plain("(0, 1]") in e.value for e in at.error)
    assert at.button(key="train.start").disabled
    at.slider(key="train.ppo.gamma").set_value(0.99)
    at.slider(key="train.ppo.n_envs").set_value(1)
    at.number_input(key="train.ppo.n_steps").set_value(16)
    at.text_input(key="train.ppo.minibatch_size").input("64").run()
    assert any("minibatch_size" in e.value and plain("[1, 16]") in e.value for e in at.error)
    assert at.button(key="train.start").disabled


def test_train_live_tweak_is_recorded_and_marked_on_the_charts(app):
    at, manager = app
    run_id = manager.start(tiny_trpo(total_steps=500_000))
    at.query_params["run"] = run_id
    open_page(at, "pages/train.py")
    assert manager.wait_for_updates(run_id, 1, DEADLINE_S), "a first update"
    at.select_slider(key=f"live.{run_id}.trpo.delta").set_value(0.05).run()
    at.button(key="train.apply_live").click().run()
    assert any("δ 0.01→0.05" in s.value for s in at.success)

    def marked() -> bool:
        figures = live_feed.run_state(manager, run_id, figures=True)["figures"]
        return all(
            any(sh.get("x0") == sh.get("x1") for sh in f["layout"].get("shapes", []))
            for f in figures.values()
        )

    assert manager.wait_for_changes(run_id, DEADLINE_S), "the change recorded in the store"
    assert marked(), "the change marker on every chart the panel fetches next"
    events = manager.store.events(run_id)
    change = events[events["kind"] == "hyperparams"].iloc[0]
    assert change["payload"]["delta"] == [0.01, 0.05]
    manager.stop(run_id)


def test_compare_launches_a_two_seed_sweep_and_shows_its_progress(app):
    at, manager = app
    open_page(at, "pages/compare.py")
    at.multiselect(key="compare.algos").set_value(["trpo"])
    at.slider(key="compare.seeds").set_value(2)
    at.checkbox(key="compare.tuned").set_value(False)
    at.number_input(key="compare.budget").set_value(2_000).run()
    assert "--algos trpo --env CartPole-v1 --seeds 2 --steps 2000" in at.code[0].value
    launch = at.button(key="compare.launch")
    assert launch.label.endswith("2 runs")
    launch.click().run()
    sweep_id = at.query_params["group"]
    assert sweep_id in set(sweeps(manager.store)["sweep_id"])
    assert at.multiselect(key="compare.sweeps").value == [sweep_id]
    members = manager.store.runs()
    assert set(members["sweep_id"]) == {sweep_id}
    assert sorted(members["name"]) == [f"trpo sweep {sweep_id} · seed={s}" for s in (0, 1)]
    assert sorted(manager.store.config(r).seed for r in members["run_id"]) == [0, 1]
    assert plain(sweep_id) in at.get("progress")[0].proto.text
    for run_id in members["run_id"]:
        assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    rerun_until(at, lambda: len(chart_specs(at)) == 2, "the two comparison charts")
    assert "2/2 trials done" in at.get("progress")[0].proto.text
    assert "2 finished · 0 failed" in at.get("progress")[0].proto.text
    mean = trace(chart_specs(at), f"trpo sweep {sweep_id}")
    assert len(values(mean["x"])) > 0
    assert at.dataframe[0].value.iloc[0]["runs"] == 2


def test_compare_a_bad_grid_value_names_the_field_and_launches_nothing(app):
    at, manager = app
    open_page(at, "pages/compare.py")
    at.multiselect(key="compare.algos").set_value(["trpo"])
    at.multiselect(key="compare.vary").set_value(["delta"]).run()
    at.text_input(key="compare.values.delta").set_value("0.01, 7").run()
    assert any("**delta**" in e.value and "7" in e.value for e in at.error)
    launch = at.button(key="compare.launch")
    assert launch.disabled and launch.label.endswith("0 runs")
    assert manager.store.runs().empty


def test_compare_picks_a_stored_sweep_and_draws_one_band_per_grid_point(app):
    at, manager = app
    grid = {"delta": [0.01, 0.05], "gae_lambda": [0.9, 0.97]}
    base = RunConfig(algo="trpo").with_changes(
        n_envs=2, n_steps=4, total_steps=40, eval_every=0, critic_minibatch=8
    )
    sweep_id = launch_local(
        manager, SweepSpec(base, grid, seeds=2, name="grid"), trainer_factory=FakeTrainer
    )
    other = launch_local(manager, SweepSpec(base, name="other"), trainer_factory=FakeTrainer)
    for run_id in manager.store.runs()["run_id"]:
        assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    manager.store.flush()
    at.query_params["group"] = other  # a link to another sweep; the user then picks this one
    open_page(at, "pages/compare.py")
    assert at.multiselect(key="compare.sweeps").value == [other]
    at.multiselect(key="compare.sweeps").set_value([sweep_id]).run()
    assert at.query_params["group"] == sweep_id
    assert at.multiselect(key="compare.sweeps").value == [sweep_id]
    rerun_until(at, lambda: len(chart_specs(at)) == 2, "the comparison charts")
    points = {
        f"gae_lambda={lam:g} delta={d:g}" for d in grid["delta"] for lam in grid["gae_lambda"]
    }
    for spec in chart_specs(at):
        means = {t["name"] for t in spec["data"] if t.get("showlegend") is not False}
        assert points <= means, means
    summary = at.dataframe[0].value
    assert set(summary["group"]) == points and set(summary["runs"]) == {2}
    assert "8/8 trials done" in at.get("progress")[0].proto.text


def test_compare_stops_a_running_sweep(app):
    at, manager = app
    base = RunConfig(algo="a2c").with_changes(n_envs=2, n_steps=4, total_steps=10**7, eval_every=0)
    sweep_id = launch_local(manager, SweepSpec(base, seeds=3), trainer_factory=FakeTrainer)
    at.query_params["group"] = sweep_id
    open_page(at, "pages/compare.py")
    text = at.get("progress")[0].proto.text
    assert "queued" in text or "running" in text, text  # the sweep's thread may have started one
    at.button(key="compare.stop").click().run()
    for run_id in manager.store.runs()["run_id"]:
        assert manager.wait(run_id, timeout=DEADLINE_S) == "stopped"
    assert sweep_progress(manager.store, sweep_id).status == "stopped"


def test_runs_lists_renames_plays_and_deletes_a_run(app):
    at, manager = app
    run_id = manager.start(tiny_trpo(), name="to rename")
    assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    manager.store.flush()
    at.query_params["run"] = run_id
    open_page(at, "pages/runs.py")
    table = at.dataframe[0].value
    assert run_id in set(table["id"])
    assert [(p["run_id"], p["active"], p["controls"]) for p in panels(at)] == [
        (run_id, False, False)
    ]
    at.text_input(key=f"runs.rename.{run_id}").set_value("renamed").run()
    at.button(key="runs.rename").click().run()
    rerun_until(at, lambda: manager.store.run(run_id)["name"] == "renamed", "the rename")
    at.button(key="runs.play").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.get("imgs") or at.get("image"), "the episode GIF is shown"
    at.checkbox(key=f"runs.sure.{run_id}").check().run()
    at.button(key="runs.delete").click().run()
    assert manager.store.run(run_id) is None
    assert "run" not in at.query_params


def test_runs_shows_a_failed_runs_traceback_in_an_expander(app):
    at, manager = app

    run_id = manager.start(tiny_trpo(), trainer_factory=exploding_trainer)
    assert manager.wait(run_id, timeout=DEADLINE_S) == "failed"
    at.query_params["run"] = run_id
    open_page(at, "pages/runs.py")
    assert any("the environment exploded" in e.value for e in at.error)
    assert any("Traceback" in x.label for x in at.expander)
    assert not at.exception


def test_train_widgets_survive_a_page_change_and_the_choice_is_in_the_url(app):
    at, _ = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("ppo").run()
    at.slider(key="train.ppo.clip_eps").set_value(0.3).run()
    open_page(at, "pages/compare.py")
    open_page(at, "pages/train.py")
    assert at.selectbox(key="train.algo").value == "ppo"
    assert at.slider(key="train.ppo.clip_eps").value == 0.3
    assert at.query_params["algo"] == "ppo" and at.query_params["env"] == "CartPole-v1"


def test_a_link_with_an_unknown_algorithm_names_the_field_and_the_choices(app):
    at, _ = app
    at.query_params["algo"] = "sac"
    open_page(at, "pages/train.py")
    (warning,) = [w.value for w in at.warning if "sac" in w.value]
    assert "algorithm (`algo`)" in warning and "trpo, npg, ppo, ppo-kl, a2c, dqn" in warning
    assert at.selectbox(key="train.algo").value == "trpo"
    assert at.query_params["algo"] == "trpo"
    at.run()
    assert not [w for w in at.warning if "sac" in w.value]  # said once, for the link


def test_a_compare_link_to_sweeps_and_runs_the_store_lacks_says_so_once(app):
    at, _ = app
    at.query_params["group"] = "gone-sweep"
    at.query_params["runs"] = "gone-run-1,gone-run-2"
    open_page(at, "pages/compare.py")
    notes = [w.value for w in at.warning if "not in this store" in w.value]
    gone = [plain(r) for r in ("gone-sweep", "gone-run-1", "gone-run-2")]
    assert any(f"sweep (`group`) {gone[0]} is" in n for n in notes), notes
    assert any(f"runs (`runs`) {gone[1]}, {gone[2]} are" in n for n in notes), notes
    assert "group" not in at.query_params and "runs" not in at.query_params
    at.run()
    assert not [w for w in at.warning if "not in this store" in w.value]


def test_an_unusable_run_store_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(not_a_folder))
    get_manager.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        for page in ("pages/home.py", "pages/train.py", "pages/runs.py"):
            at.switch_page(page).run()
            assert not at.exception, [e.message for e in at.exception]
            assert any("run store cannot be opened" in e.value for e in at.error)
    finally:
        get_manager.clear()


def test_compare_adds_stored_runs_and_links_them_in_the_url(app):
    at, manager = app
    run_ids = [manager.start(tiny_trpo(seed=s), name=f"stored · seed {s}") for s in (0, 1)]
    for run_id in run_ids:
        assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    manager.store.flush()
    open_page(at, "pages/compare.py")
    at.multiselect(key="compare.extra").set_value(run_ids).run()
    assert set(at.query_params["runs"].split(",")) == set(run_ids)
    rerun_until(at, lambda: len(chart_specs(at)) == 2, "the comparison charts")
    assert trace(chart_specs(at), "stored")  # both seeds in one group, labelled by name
    assert at.dataframe[0].value.iloc[0]["runs"] == 2


def test_runs_continues_a_finished_run_as_a_linked_new_run(app):
    at, manager = app
    run_id = manager.start(tiny_trpo(), name="short")
    assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    manager.store.flush()
    at.query_params["run"] = run_id
    open_page(at, "pages/runs.py")
    at.number_input(key=f"runs.extra.{run_id}").set_value(256).run()
    at.button(key="runs.continue").click().run()
    new_id = at.query_params["run"]
    assert new_id != run_id
    assert manager.store.run(new_id)["parent_id"] == run_id
    assert manager.wait(new_id, timeout=DEADLINE_S) == "finished"
    assert manager.store.config(new_id).total_steps == 1024 + 256


# -- the Train page for a student (issue: live loop, part 4) --------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [("1e12", "out of range"), ("2.5", "not a valid integer"), ("0", "out of range")],
)
def test_train_budget_rejects_values_it_cannot_train_with_a_message_and_no_start(
    app, typed, message
):
    at, _ = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("ppo").run()
    at.text_input(key="train.ppo.total_steps").input(typed).run()
    assert any("Budget (env steps)" in e.value and message in e.value for e in at.error)
    assert any(plain("[1, 1e+08]") in e.value for e in at.error)
    assert at.button(key="train.start").disabled


def test_train_budget_reads_scientific_and_suffixed_counts(app):
    at, manager = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("ppo").run()
    at.text_input(key="train.ppo.total_steps").input("250k").run()
    assert not at.error and not at.button(key="train.start").disabled
    at.button(key="train.start").click().run()
    run_id = at.query_params["run"]
    assert manager.store.config(run_id).total_steps == 250_000
    manager.stop(run_id)


def test_train_shows_only_the_knobs_the_algorithm_and_variant_use(app):
    at, _ = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("trpo").run()
    keys = {w.key for w in at.slider} | {w.key for w in at.select_slider}
    assert "train.trpo.delta" in keys and "train.trpo.lr" not in keys
    at.selectbox(key="train.algo").set_value("ppo").run()
    keys = {w.key for w in at.slider} | {w.key for w in at.select_slider}
    assert "train.ppo.clip_eps" in keys and "train.ppo.kl_target" not in keys
    at.selectbox(key="train.algo").set_value("ppo-kl").run()
    keys = {w.key for w in at.slider} | {w.key for w in at.select_slider}
    assert "train.ppo-kl.kl_target" in keys and "train.ppo-kl.clip_eps" not in keys


def test_train_live_tweaks_stay_in_the_sidebar_and_pause_is_acknowledged_at_once(app):
    at, manager = app
    run_id = manager.start(tiny_trpo(total_steps=500_000))
    at.query_params["run"] = run_id
    open_page(at, "pages/train.py")
    manager.wait_for_status(run_id, ("running",), timeout=DEADLINE_S)
    sidebar_buttons = {b.key for b in at.sidebar.button}
    assert "train.apply_live" in sidebar_buttons
    live = {w.key for w in at.sidebar.select_slider} | {w.key for w in at.sidebar.slider}
    assert f"live.{run_id}.trpo.delta" in live and f"live.{run_id}.trpo.lr" not in live
    assert live_feed.send_command(manager, run_id, "pause")["ok"]  # the panel's Pause
    assert live_feed.run_state(manager, run_id)["shown"] in ("pausing…", "paused")
    state = live_feed.run_state(manager, run_id, wait_s=live_feed.MAX_WAIT_S)
    assert state["shown"] == "paused" and "ETA" not in state["progress"]
    at.run()
    assert "train.apply_live" in {b.key for b in at.sidebar.button}, "a paused run is tweakable"
    manager.stop(run_id)


def test_a_plain_train_tab_lists_the_active_runs_and_attaches_to_one(app):
    at, manager = app
    run_id = manager.start(tiny_trpo(total_steps=500_000))
    open_page(at, "pages/train.py")
    watch = at.button(key=f"train.attach.{run_id}")
    watch.click().run()
    assert at.query_params["run"] == run_id
    assert [p["run_id"] for p in panels(at)] == [run_id]
    manager.stop(run_id)


# -- user text is shown as typed, never as Markdown (issue 13, item 4) ----------------------------

IMAGE = "![x](http://127.0.0.1:9/t.png)"
NAME = f"{IMAGE} **bold**"
MARKDOWN_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "error", "warning")


def markdown_sources(at: AppTest) -> list[str]:
    """The Markdown of every element on the page that renders it, labels and status bars too."""
    texts = [e.value for kind in (*MARKDOWN_ELEMENTS, "info", "success") for e in at.get(kind)]
    return texts + [p.proto.text for p in at.get("progress")] + [b.label for b in at.button]


def assert_no_raw_markup(at: AppTest) -> None:
    raw = [t for t in markdown_sources(at) if "![" in t or "**bold" in t]
    assert not raw, raw


def test_a_run_name_and_error_with_markdown_show_as_typed_on_runs_and_train(app):
    at, manager = app
    run_id = manager.store.create_run(tiny_trpo(), name=NAME, status="failed")
    manager.store.set_status(run_id, "failed", error=f"Traceback …\nRuntimeError: {IMAGE}")
    manager.store.flush()
    label = f"{STATUS_ICONS['failed']} {plain(NAME)} · {run_id[:8]}"
    for page in ("pages/runs.py", "pages/train.py"):
        at.query_params["run"] = run_id
        open_page(at, page)
        if page == "pages/runs.py":
            assert label in [h.value for h in at.subheader], page
        else:  # the run panel's title, set as text in the browser (ui/js/run_panel.js)
            assert [p["run_id"] for p in panels(at)] == [run_id]
            title = live_feed.run_state(manager, run_id)["label"]
            assert title == f"{STATUS_ICONS['failed']} {NAME} · {run_id[:8]}"
        assert any(plain(f"RuntimeError: {IMAGE}") in e.value for e in at.error), page
        assert_no_raw_markup(at)


@pytest.mark.parametrize("page", ["pages/runs.py", "pages/train.py"])
def test_a_run_link_with_markdown_is_quoted_as_typed_in_the_warning(app, page):
    at, manager = app
    manager.store.create_run(tiny_trpo(), status="finished")  # the Runs page needs a run to list
    at.query_params["run"] = IMAGE
    open_page(at, page)
    assert any(w.value.startswith(f"Run {plain(IMAGE)} is not in the store") for w in at.warning)
    assert_no_raw_markup(at)


def test_a_typed_value_with_markdown_is_quoted_as_typed_in_the_field_error(app):
    at, _ = app
    open_page(at, "pages/train.py")
    at.selectbox(key="train.algo").set_value("ppo").run()
    at.text_input(key="train.ppo.total_steps").input(IMAGE).run()
    assert any(plain(repr(IMAGE)) in e.value for e in at.error)
    assert_no_raw_markup(at)


def test_a_refused_command_quotes_the_value_in_its_message_as_typed():
    def page() -> None:
        from core.runtime.runner import RunError
        from ui import run_view

        def refuse() -> None:
            raise RunError("no run '![x](http://127.0.0.1:9/t.png)'")

        run_view.command("open the run", refuse)
        run_view.show_flash()

    at = AppTest.from_function(page).run()
    assert [e.value for e in at.error] == [f"Could not open the run: {plain(f'no run {IMAGE!r}')}"]
    assert_no_raw_markup(at)


def test_compare_shows_a_sweep_named_with_markdown_as_typed(app):
    at, manager = app
    base = RunConfig(algo="a2c").with_changes(n_envs=2, n_steps=4, total_steps=40, eval_every=0)
    sweep_id = launch_local(manager, SweepSpec(base, name=NAME), trainer_factory=FakeTrainer)
    for run_id in manager.store.runs()["run_id"]:
        assert manager.wait(run_id, timeout=DEADLINE_S) == "finished"
    manager.store.flush()
    at.query_params["group"] = sweep_id
    open_page(at, "pages/compare.py")
    assert f"**{plain(NAME)}**" in at.get("progress")[0].proto.text
    assert_no_raw_markup(at)
    # a select box shows its options as plain text: the name as typed, no backslashes
    assert any(o.startswith(f"{NAME} · ") for o in at.multiselect(key="compare.sweeps").options)

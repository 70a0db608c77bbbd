"""Train: choose an environment and an algorithm, set hyperparameters, start, watch it learn."""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from core.config import ALGORITHMS, RunConfig
from core.config.environments import SUPPORTED_ENVS, unavailable_reason
from core.engine.algos import presets
from ui import run_view, widgets
from ui.charts.events import change_text
from ui.state import ensure_app_navigation, require_manager
from ui.text import plain

ensure_app_navigation()

manager = require_manager()
store = manager.store
params = st.query_params


def _pick(name: str, label: str, options: list[str], default: str, **kwargs: Any) -> str:
    """A selectbox whose value is also in the URL (``?name=value``) so a link reproduces it."""
    key = f"train.{name}"
    if name in params and params[name] in options and not widgets.is_kept(key):
        widgets.set_kept(key, params[name])
    value = widgets.kept_widget(st.selectbox, label, key, default, options, **kwargs)
    params[name] = value
    return value


def env_label(env_id: str) -> str:
    """The env's name in the selectbox, marked where its extra cannot be imported (choosing it
    shows the one-line reason under the buttons, from the config's validation)."""
    return f"{env_id} (unavailable)" if unavailable_reason(env_id) else env_id


def apply_preset(algo: str, env_id: str, preset: str) -> None:
    """Set every widget of this algorithm to the defaults, then to the preset's values."""
    widgets.forget(f"train.{algo}.")
    base = RunConfig(algo=algo, env_id=env_id)
    for key, value in presets(algo, env_id).get(preset, {}).items():
        widgets.set_kept(
            widgets.widget_key("train", algo, key), widgets.widget_value(base, key, value)
        )
    st.session_state["_flash"] = ("success", f"Preset “{preset}” applied.")


def start(config: RunConfig) -> None:
    """Start callback: one request id per click, so reruns and refreshes never start twice."""
    request = st.session_state.setdefault("train.request", uuid.uuid4().hex)
    ok, run_id = run_view.command(
        "start the run", manager.start, config, name=config.name or None, request_id=request
    )
    if ok:
        st.session_state["train.request"] = uuid.uuid4().hex
        st.session_state["train.run"] = run_id
        params["run"] = run_id
        st.session_state["_flash"] = ("success", f"Started run {run_id[:8]}.")


def apply_live(run_id: str, changes: dict) -> None:
    ok, result = run_view.command(
        "change the hyperparameters", manager.set_hyperparams, run_id, **changes
    )
    if ok:
        text = change_text({k: [old, new] for k, (old, new) in result.items()})
        st.session_state.pop("_flash", None)  # the note goes under the button instead
        st.session_state["train.apply_note"] = f"Applied from the next update: {text}."
        st.session_state["train.apply_wait"] = run_id


def live_tweaks(run_id: str) -> None:
    """The run's live hyperparameters (only those its algorithm uses), always in view. After an
    Apply it waits (briefly) until the run has recorded the change, then redraws the whole page
    so the charts show its marker at once instead of at the next refresh."""
    if st.session_state.pop("train.apply_wait", None) == run_id:
        manager.wait_for_changes(run_id, run_view.LIVE_REFRESH_S)
        st.rerun()
    st.subheader("⚡ Live tweaks")
    st.caption("Change a knob while the run trains; it applies from the next update.")
    data = run_view.read_run(store, run_id)
    now = run_view.current_config(store.config(run_id), data.events)
    live = widgets.hyperparameter_inputs(now, now.live_keys(), f"live.{run_id}", columns=1)
    new, live_error = widgets.validated(now, live)
    if live_error:
        st.error(live_error)
    diff = widgets.changed(now, live) if new is not None else {}
    st.button(
        "Apply from the next update",
        type="primary",
        disabled=not diff,
        on_click=apply_live,
        args=(run_id, diff),
        key="train.apply_live",
        width="stretch",
    )
    note = st.session_state.pop("train.apply_note", None)
    if note:
        st.success(note)


def attach(run_id: str) -> None:
    st.session_state["train.run"] = run_id
    params["run"] = run_id


def show_active_runs() -> None:
    """With no run chosen: the runs training now, each with a button to watch it."""
    active = store.runs()
    active = active[active["status"].isin(run_view.ACTIVE)]
    if active.empty:
        return
    st.subheader("Runs training now")
    for _, r in active.iterrows():
        cols = st.columns([6, 1])
        cols[0].text(run_view.run_text(r))
        rid = r["run_id"]
        cols[1].button("Watch", key=f"train.attach.{rid}", on_click=attach, args=(rid,))


def other_active_runs(run_id: str) -> None:
    """Switch to another run that is training (each tab watches one run)."""
    active = store.runs()
    active = active[active["status"].isin(run_view.ACTIVE) & (active["run_id"] != run_id)]
    if active.empty:
        return
    st.subheader("Other active runs")
    for _, r in active.iterrows():
        st.button(
            run_view.run_label(r),
            key=f"train.switch.{r['run_id']}",
            on_click=attach,
            args=(r["run_id"],),
            width="stretch",
        )


# --- setup ---------------------------------------------------------------------------------------
st.title("Train")
# Messages that come and go sit in one container that is always there: the live area below is
# a fragment re-run on its own, and the elements above it must keep their places between runs
# (an element that appears in one run and not the next shifts the fragment's position in the
# page, and a fragment refresh addressed to the old position breaks the page).
notices = st.container()
with notices:
    run_view.show_flash()
top = st.columns([2, 2, 2, 2])
with top[0]:
    env_id = _pick("env", "Environment", list(SUPPORTED_ENVS), "CartPole-v1", format_func=env_label)
with top[1]:
    algo = _pick("algo", "Algorithm", list(ALGORITHMS), "trpo")
available = presets(algo, env_id)
with top[2]:
    choices = ["defaults", *available]
    if widgets.kept("train.preset", "defaults") not in choices:
        widgets.set_kept("train.preset", "defaults")
    preset = widgets.kept_widget(st.selectbox, "Preset", "train.preset", "defaults", choices)
    st.button(
        "Apply preset",
        on_click=apply_preset,
        args=(algo, env_id, preset),
        help="Set every hyperparameter below to this preset (tuned values where available).",
    )
with top[3]:
    name = widgets.kept_widget(
        st.text_input, "Run name (optional)", "train.name", "", max_chars=200
    )

run_id = params.get("run") or st.session_state.get("train.run")
base = RunConfig(algo=algo, env_id=env_id)
values: dict = {}
title = "Hyperparameters  (⚡ = can be changed while the run trains)"
with st.expander(title, expanded=not run_id):
    tabs = st.tabs([f"{algo.upper()} parameters", *widgets.shared_groups(base)])
    with tabs[0]:
        values.update(
            widgets.hyperparameter_inputs(base, widgets.algorithm_keys(base), "train", columns=3)
        )
    for tab, keys in zip(tabs[1:], widgets.shared_groups(base).values()):
        with tab:
            values.update(widgets.hyperparameter_inputs(base, keys, "train", columns=3))
config, error = widgets.validated(base, {**values, "name": name})
with st.container():  # always there, empty or not (see ``notices`` above)
    if error:
        st.error(error)

buttons = st.columns([1, 4])
buttons[0].button(
    "▶ Start",
    type="primary",
    disabled=config is None,
    on_click=start,
    args=(config,),
    key="train.start",
)
with buttons[1]:
    large = widgets.presentation_toggle()

# --- the run shown -----------------------------------------------------------------------------
if not run_id:
    show_active_runs()
row = store.run(run_id) if run_id else None
if run_id and row is None:
    st.warning(f"Run {plain(run_id)} is not in the store (deleted?). Start a new one.")
if row is None:
    st.info("Set the hyperparameters and press **Start**. The charts appear here and refresh live.")
    st.stop()

status = row["status"]
with st.sidebar:
    if status in run_view.ACTIVE:
        st.fragment(live_tweaks)(run_id)
    other_active_runs(run_id)


def controls(status: str) -> None:
    """Pause / Resume / Stop for the run's current status (inside the live area: a click reruns
    only the live area, so the acknowledgement shows at once)."""
    cols = st.columns([1, 1, 1, 5])
    for col, (label, action, fn, enabled) in zip(
        cols,
        (
            ("⏸ Pause", "pause", manager.pause, status == "running"),
            ("⏯️ Resume", "resume", manager.resume, status == "paused"),
            ("⏹ Stop", "stop", manager.stop, status in run_view.ACTIVE),
        ),
    ):
        col.button(
            label,
            disabled=not enabled,
            key=f"train.{action}",
            on_click=run_view.command,
            args=(action, fn, run_id),
        )


def live_area() -> None:
    """Controls, status, progress and charts; re-runs on its own every second while the run is
    active. Right after a command it first waits (briefly, woken by the manager) for the run to
    confirm it, so the page usually goes straight to "paused"; a later confirmation shows at the
    next refresh, "pausing…" until then."""
    requested = manager.requested(run_id)
    if requested is not None:
        run_view.await_confirmation(manager, run_id, requested)
        requested = manager.requested(run_id)
    fresh = store.run(run_id)
    if fresh is not None:
        st.subheader(run_view.run_label(fresh))  # its status icon follows the run
        controls(fresh["status"])
    with st.container():  # a slot that is always there: the charts below keep their places
        run_view.show_flash()
    fresh = run_view.live_charts(store, run_id, large=large, requested=requested)
    if fresh is None:
        return
    if status in run_view.ACTIVE and fresh["status"] not in run_view.ACTIVE:
        # The run ended: this refresh shows its outcome at once; the next one redraws the whole
        # page, which removes the live tweaks and the refresh timer.
        if st.session_state.get("train.ended") == run_id:
            st.rerun()
        st.session_state["train.ended"] = run_id


st.fragment(run_every=run_view.LIVE_REFRESH_S if status in run_view.ACTIVE else None)(live_area)()

"""Train: choose an environment and an algorithm, set hyperparameters, start, watch it learn."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

import streamlit as st

from core.config import ALGORITHMS, RunConfig
from core.config.environments import SUPPORTED_ENVS, unavailable_reason
from core.engine.algos import presets
from ui import run_view, widgets
from ui.charts.events import change_text
from ui.run_data import ACTIVE, current_config, read_run, run_text
from ui.run_panel import run_panel
from ui.state import ensure_app_navigation, require_manager
from ui.text import link_note, plain

ensure_app_navigation()

manager = require_manager()
store = manager.store
params = st.query_params


link_notes: list[str] = []  # what this run's link asked for and did not get (shown once)


def _pick(name: str, label: str, options: list[str], default: str, **kwargs: Any) -> str:
    """A selectbox whose value is also in the URL (``?name=value``) so a link reproduces it; a
    value the choices lack gets a note in ``link_notes``."""
    key = f"train.{name}"
    if name in params and params[name] in options and not widgets.is_kept(key):
        widgets.set_kept(key, params[name])
    value = widgets.kept_widget(st.selectbox, label, key, default, options, **kwargs)
    if name in params and params[name] not in options:  # said once: the URL gets `value` below
        link_notes.append(link_note(name, params[name], ", ".join(options), value, label.lower()))
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


def live_tweaks(run_id: str) -> None:
    """The run's live hyperparameters (only those its algorithm uses), always in view. The run
    records an applied change as an event; the run panel draws its marker as soon as it sees it."""
    st.subheader("⚡ Live tweaks")
    st.caption("Change a knob while the run trains; it applies from the next update.")
    now = current_config(store.config(run_id), read_run(store, run_id).events)
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
    active = active[active["status"].isin(ACTIVE)]
    if active.empty:
        return
    st.subheader("Runs training now")
    for _, r in active.iterrows():
        cols = st.columns([6, 1])
        cols[0].text(run_text(r))
        rid = r["run_id"]
        cols[1].button("Watch", key=f"train.attach.{rid}", on_click=attach, args=(rid,))


def other_active_runs(run_id: str) -> None:
    """Switch to another run that is training (each tab watches one run)."""
    active = store.runs()
    active = active[active["status"].isin(ACTIVE) & (active["run_id"] != run_id)]
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
# Messages that come and go sit in one container that is always there, so the elements after it
# (the run panel above all) keep their places and DOM nodes between reruns.
notices = st.container()
with notices:
    run_view.show_flash()
run_id = params.get("run") or st.session_state.get("train.run")
large = widgets.presentation_on()
# Presentation mode with a run shown: the run comes first, the setup of a new one folds under it.
run_first = large and bool(run_id) and store.run(run_id) is not None
run_area = st.container() if run_first else None
setup = (
    st.expander(
        f"⚙️ New run: {params.get('env', 'CartPole-v1')} · {params.get('algo', 'trpo')} "
        "(hyperparameters, ▶ Start)"
    )
    if run_first
    else nullcontext()
)
with setup:
    top = st.columns([2, 2, 2, 2])
    with top[0]:
        env_id = _pick(
            "env", "Environment", list(SUPPORTED_ENVS), "CartPole-v1", format_func=env_label
        )
    with top[1]:
        algo = _pick("algo", "Algorithm", list(ALGORITHMS), "trpo")
    for note in link_notes:
        st.warning(note, icon="⚠️")
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

    base = RunConfig(algo=algo, env_id=env_id)
    values: dict = {}
    title = "Hyperparameters  (⚡ = can be changed while the run trains)"
    # a deck: ▶ Start in view; folded with the rest when the run comes first
    hyper = (
        st.container(border=True)
        if run_first
        else st.expander(title, expanded=not run_id and "deck" not in params)
    )
    with hyper:
        if run_first:
            st.markdown(f"**{title}**")
        tabs = st.tabs([f"{algo.upper()} parameters", *widgets.shared_groups(base)])
        with tabs[0]:
            values.update(
                widgets.hyperparameter_inputs(
                    base, widgets.algorithm_keys(base), "train", columns=3
                )
            )
        for tab, keys in zip(tabs[1:], widgets.shared_groups(base).values()):
            with tab:
                values.update(widgets.hyperparameter_inputs(base, keys, "train", columns=3))
    config, error = widgets.validated(base, {**values, "name": name})
    with st.container():  # always there, empty or not (see ``notices`` above)
        if error:
            st.error(error)

    st.button(
        "▶ Start",
        type="primary",
        disabled=config is None,
        on_click=start,
        args=(config,),
        key="train.start",
    )


# --- the run shown -----------------------------------------------------------------------------
if not run_id:
    show_active_runs()
row = store.run(run_id) if run_id else None
if run_id and row is None:
    st.warning(f"Run {plain(run_id)} is not in the store (deleted?). Start a new one.")
if row is None:
    st.info("Set the hyperparameters and press **Start**. The charts appear here and refresh live.")
    st.stop()
out = run_area or st  # presentation mode: above the setup

status = row["status"]
with st.sidebar:
    if status in ACTIVE:
        st.fragment(live_tweaks)(run_id)
    other_active_runs(run_id)
with out.container():  # always there, empty or not (see ``notices`` above)
    run_view.show_outcome(row)
# Title, Pause / Resume / Stop, status, progress and charts: one component that polls the run's
# live feed by itself (``ui/run_panel.py``); when the run ends it redraws this page once.
with run_area or nullcontext():
    run_panel(run_id, active=status in ACTIVE, large=large, algo=row["algo"])

"""Runs: every stored run (app or CLI): open, rename, delete, export, continue, watch it play."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from core.config import ConfigError, RunConfig
from ui import exports, run_view, widgets
from ui.run_data import ACTIVE, STATUS_ICONS, current_config, forget_run, read_run
from ui.run_panel import run_panel
from ui.state import ensure_app_navigation, require_manager
from ui.tables import data_table
from ui.text import plain

ensure_app_navigation()

manager = require_manager()
store = manager.store
params = st.query_params


@st.cache_data(max_entries=2000, show_spinner=False)
def changed_hyperparameters(config_json: str) -> str:
    """The run's hyperparameters that differ from its algorithm's defaults, as ``k=v`` text."""
    try:
        cfg = RunConfig.from_json(config_json)
    except (ConfigError, ValueError, TypeError):
        return "(unreadable config)"
    default = RunConfig(algo=cfg.algo, env_id=cfg.env_id).flat()
    skip = {"name", "algo", "env_id"}
    return ", ".join(f"{k}={v}" for k, v in cfg.flat().items() if k not in skip and default[k] != v)


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": runs["name"].where(runs["name"].astype(bool), runs["algo"]),
            "status": runs["status"].map(lambda s: f"{STATUS_ICONS.get(s, '')} {s}"),
            "algorithm": runs["algo"],
            "environment": runs["env_id"],
            "progress": (runs["env_steps"] / runs["total_steps"].clip(lower=1)).clip(upper=1.0),
            "env steps": runs["env_steps"],
            "final return": runs["last_return"],
            "created": pd.to_datetime(runs["created_at"], unit="s", utc=True),
            "hyperparameters (changed)": runs["config"].map(changed_hyperparameters),
            "id": runs["run_id"],
        }
    )


def kept_filter(col, label: str, options: list[str], key: str) -> list[str]:
    """A multiselect filter that survives page changes (values no longer present are dropped)."""
    widgets.set_kept(key, [v for v in widgets.kept(key, []) if v in options])
    return widgets.kept_widget(col.multiselect, label, key, [], options)


def select(run_id: str | None) -> None:
    if run_id:
        params["run"] = run_id
    elif "run" in params:
        del params["run"]


def delete(run_id: str) -> None:
    ok, _ = run_view.command("delete the run", manager.delete, run_id)
    if ok:
        forget_run(store, run_id)
        select(None)


def rename(run_id: str) -> None:
    name = st.session_state.get(f"runs.rename.{run_id}", "").strip()
    if not name:
        st.session_state["_flash"] = ("error", "Could not rename: the name is empty.")
        return
    run_view.command("rename the run", store.rename, run_id, name)


def continue_run(run_id: str) -> None:
    extra = st.session_state.get(f"runs.extra.{run_id}") or None
    ok, new_id = run_view.command(
        "continue the run", manager.continue_run, run_id, int(extra) if extra else None
    )
    if ok:
        select(new_id)
        st.session_state["_flash"] = ("success", f"Continued as the new run {new_id[:8]}.")


st.title("Runs")
large = widgets.presentation_on()
if not large:  # presentation mode: the run's charts need the room
    st.caption(
        "Every run in the store, started from the app or from the CLI (`python -m core train`)."
    )
run_view.show_flash()

runs = store.runs()
if runs.empty:
    st.info("No runs yet. Start one on the Train page, or from a shell: `python -m core train`.")
    st.stop()

# Presentation mode: the run opened comes first and the filters and the table fold under it.
run_area = st.container() if large else None
opened = bool(params.get("run")) and store.run(params["run"]) is not None
table_area = (
    st.expander(f"Runs table ({len(runs)} runs)", expanded=not opened) if large else st.container()
)
f = table_area.columns([2, 2, 2, 3])
statuses = kept_filter(f[0], "Status", sorted(runs["status"].unique()), "runs.f.status")
algos = kept_filter(f[1], "Algorithm", sorted(runs["algo"].unique()), "runs.f.algo")
envs = kept_filter(f[2], "Environment", sorted(runs["env_id"].unique()), "runs.f.env")
text = widgets.kept_widget(f[3].text_input, "Search names and ids", "runs.f.text", "")
keep = pd.Series(True, index=runs.index)
for column, chosen in (("status", statuses), ("algo", algos), ("env_id", envs)):
    if chosen:
        keep &= runs[column].isin(chosen)
if text:
    keep &= runs["name"].str.contains(text, case=False, regex=False) | runs["run_id"].str.contains(
        text, regex=False
    )
shown = runs[keep].reset_index(drop=True)

event = table_area.dataframe(
    run_table(shown),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="runs.table",
    column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
        "final return": st.column_config.NumberColumn(format="%.1f"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)
picked = event.selection.rows if event is not None else []
if picked:
    select(shown["run_id"].iloc[picked[0]])
run_id = params.get("run")
row = store.run(run_id) if run_id else None
out = run_area or st  # where the run goes: above the table in presentation mode
if run_id and row is None:
    out.warning(f"Run {plain(run_id)} is not in the store (deleted?).")
if row is None:
    out.info("Select a run in the table to open it.")
    st.stop()

# --- one run ---------------------------------------------------------------------------------
if not large:
    st.divider()
out.subheader(run_view.run_label(row))
active = row["status"] in ACTIVE
tabs = out.tabs(["📈 Charts", "⚙️ Hyperparameters", "🎬 Watch it play", "⬇️ Export", "🛠️ Manage"])


with tabs[0]:
    run_view.show_outcome(row)
    run_panel(run_id, active=active, large=large, algo=row["algo"], controls=False, title=False)

with tabs[1]:
    try:
        config = current_config(store.config(run_id), store.events(run_id))
        table = pd.DataFrame(
            [
                {"hyperparameter": config.spec(k).label, "key": k, "value": str(v)}
                for k, v in config.flat().items()
            ]
        )
        data_table(table)
        st.caption(
            "Values now, with live changes applied (they are vertical markers on the charts)."
        )
    except ConfigError as err:
        st.error(f"This run's configuration cannot be read: {plain(err)}")

with tabs[2]:
    exports.watch_agent(store, run_id)

with tabs[3]:
    data = read_run(store, run_id)
    exports.export_buttons(store, row, data, large=large)

with tabs[4]:
    m = st.columns(3)
    with m[0], st.container(border=True):
        st.markdown("**Rename**")
        st.text_input(
            "New name", value=row["name"] or "", key=f"runs.rename.{run_id}", max_chars=200
        )
        st.button("Rename", on_click=rename, args=(run_id,), key="runs.rename")
    with m[1], st.container(border=True):
        st.markdown("**Continue from the last checkpoint** (as a new, linked run)")
        st.number_input(
            "Extra env steps (empty: finish the original budget)",
            min_value=1,
            value=None,
            step=10_000,
            key=f"runs.extra.{run_id}",
        )
        st.button(
            "Continue", disabled=active, on_click=continue_run, args=(run_id,), key="runs.continue"
        )
        if active:
            st.button("⏹ Stop it first", on_click=functools.partial(manager.stop, run_id))
    with m[2], st.container(border=True):
        st.markdown("**Delete** (its metrics, episodes and checkpoints)")
        sure = st.checkbox("Yes, delete this run", key=f"runs.sure.{run_id}", disabled=active)
        st.button(
            "Delete",
            disabled=not sure or active,
            on_click=delete,
            args=(run_id,),
            key="runs.delete",
        )
        if active:
            st.caption("A run that is training, paused or queued cannot be deleted; stop it first.")

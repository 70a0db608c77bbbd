"""Compare: sweeps (algorithms × a hyperparameter grid × seeds) and stored runs, side by side."""

from __future__ import annotations

import json
import uuid
from contextlib import nullcontext

import pandas as pd
import streamlit as st

from core.config import ALGORITHMS, ConfigError, RunConfig
from core.config.environments import SUPPORTED_ENVS
from core.metrics import ENV_STEPS, WALL_TIME
from core.sweep.build import build_sweeps, sweep_ids
from core.sweep.cli import command_line
from core.sweep.control import stop_sweep
from core.sweep.local import launch_local
from core.sweep.progress import SweepProgress, sweep_points, sweep_progress, sweeps
from core.sweep.spec import SweepError, SweepSpec
from ui import run_view, widgets
from ui.charts.comparison import (
    compare_figure,
    group_summary,
    point_labels,
    readable_summary,
    run_summary,
    seed_band,
    seed_group,
)
from ui.exports import comparison_file_name
from ui.live_chart import live_chart
from ui.run_data import ACTIVE, read_run, run_text
from ui.state import ensure_app_navigation, require_manager
from ui.tables import data_table
from ui.text import plain

ensure_app_navigation()

manager = require_manager()
store = manager.store
params = st.query_params
SWEEPS_KEY = "compare.sweeps"


def launch(specs: list[SweepSpec]) -> None:
    """Start the sweeps on the run manager (it queues what exceeds its cap); select them.

    The sweep ids come from a per-request token, so a double click starts each trial once.
    """
    request = st.session_state.setdefault("compare.request", uuid.uuid4().hex)
    ids = []
    for spec, wanted in zip(specs, sweep_ids(specs, request)):
        ok, sweep_id = run_view.command(
            "launch the sweep", launch_local, manager, spec, sweep_id=wanted
        )
        if not ok:
            return
        ids.append(sweep_id)
    st.session_state["compare.request"] = uuid.uuid4().hex
    widgets.set_kept(SWEEPS_KEY, ids)
    params["group"] = st.session_state["compare.group_in_url"] = ",".join(ids)
    runs = sum(len(s.trials()) for s in specs)
    st.session_state["_flash"] = ("success", f"Launched {runs} runs as {', '.join(ids)}.")


def stop(sweep_ids: list[str], run_ids: list[str]) -> None:
    """Stop the selected sweeps (every run, queued ones included) and the added active runs."""
    try:
        stopped = sum(len(stop_sweep(manager, s)) for s in sweep_ids)
    except SweepError as err:
        st.session_state["_flash"] = ("error", f"Could not stop: {plain(err)}")
        return
    for run_id in run_ids:
        run_view.command("stop", manager.stop, run_id)
    st.session_state["_flash"] = ("success", f"Stopped {stopped + len(run_ids)} runs.")


def sweep_label(table: pd.DataFrame, names: dict[str, str], sweep_id: str) -> str:
    row = table[table["sweep_id"] == sweep_id].iloc[0]
    name = names.get(sweep_id, sweep_id)
    return (
        f"{name} · {row['algos']} on {row['env_id']} · {row['trials']} trials, {row['status']}"
        + (f" · {sweep_id}" if sweep_id not in name else "")
    )


def choice_label(table: pd.DataFrame, names: dict[str, str], chosen: list[str], runs: str) -> str:
    """The choice in one line (presentation mode folds it): the sweeps compared, their
    algorithms and the stored runs added."""
    algos = dict(zip(table["sweep_id"], table["algos"]))
    what = [f"{names.get(s, s)} · {algos[s]}" for s in chosen if s in algos]
    added = len([r for r in runs.split(",") if r])
    what += [f"{added} added runs"] if added else []
    return f"📊 {'; '.join(what)} · sweeps, runs, threshold" if what else "📊 Sweeps and runs"


def missing_link_notice(what: str, field: str, missing: list[str]) -> None:
    """Say which of the link's sweeps or runs (``field`` in the URL) this store lacks."""
    if missing:
        listed = ", ".join(plain(m) for m in missing)
        st.warning(
            f"The link's {what}{'s' if len(missing) > 1 else ''} (`{field}`) {listed} "
            f"{'are' if len(missing) > 1 else 'is'} not in this store (deleted, or from another "
            "store); the comparison shows what it finds."
        )


def show_progress(progress: SweepProgress, name: str) -> None:
    """One sweep's progress bar and its trial counts by status."""
    counts = " · ".join(
        f"{progress.counts.get(s, 0)} {s}" for s in ("running", "queued", "finished", "failed")
    )
    others = " · ".join(
        f"{progress.counts[s]} {s}"
        for s in ("paused", "stopped", "interrupted")
        if s in progress.counts
    )
    title = f"**{plain(name)}**" + (
        f" ({plain(progress.sweep_id)})" if progress.sweep_id not in name else ""
    )
    tail = f" · {others}" if others else ""
    st.progress(
        min(1.0, progress.fraction),
        text=f"{title} — {progress.done}/{progress.total} trials done · {counts}{tail} · "
        f"{100 * progress.fraction:.0f}%",
    )


st.title("Compare")
large = widgets.presentation_on()
if not large:  # presentation mode: the charts need the room
    st.caption(
        "Sweep algorithms × a grid of hyperparameters × seeds on one environment and budget, or "
        "pick any stored sweep (from this page, the CLI or the GAE lab). Each grid point is one "
        "curve: the mean across its seeds with a ± one standard deviation band, solid where "
        "every seed contributes and faint and dotted where fewer do (a seed ended or has not "
        "started); the strip under each chart and the hover give the number of seeds n behind "
        "every point."
    )
run_view.show_flash()

# --- which sweeps are compared: settled before anything is drawn (presentation mode names them)
all_runs = store.runs()
table = sweeps(store)
names = {}
for sid, g in all_runs[all_runs["sweep_id"].notna()].groupby("sweep_id"):
    prefixes = {seed_group(n, a).split(" · ")[0] for n, a in zip(g["name"], g["algo"])}
    names[str(sid)] = prefixes.pop() if len(prefixes) == 1 else str(sid)
widgets.kept(SWEEPS_KEY, [])
if params.get("group", "") != st.session_state.get("compare.group_in_url"):
    # the URL came from outside (a shared link): it wins over the remembered choice
    linked = [s for s in params.get("group", "").split(",") if s]
    url_sweeps = [s for s in linked if s in set(table["sweep_id"])]
    if url_sweeps:
        widgets.set_kept(SWEEPS_KEY, url_sweeps)
    missing_link_notice("sweep", "group", [s for s in linked if s not in url_sweeps])
linked_runs = [r for r in params.get("runs", "").split(",") if r]
stored_runs = set(all_runs["run_id"])  # said once: the URL keeps only the runs it finds (below)
missing_link_notice("run", "runs", [r for r in linked_runs if r not in stored_runs])
widgets.set_kept(
    SWEEPS_KEY, [s for s in st.session_state[SWEEPS_KEY] if s in set(table["sweep_id"])]
)
if large:  # presentation mode: the comparison first; the choice and a new sweep fold under it
    view = st.container()
    label = choice_label(table, names, st.session_state[SWEEPS_KEY], params.get("runs", ""))
    choice = st.expander(label, expanded=not (st.session_state[SWEEPS_KEY] or params.get("runs")))
    new_sweep = st.expander("New sweep")
else:
    view = None
    new_sweep = st.expander("New sweep", expanded="group" not in params)
    choice = nullcontext()

with new_sweep:
    c = st.columns(4)
    with c[0]:
        env_id = widgets.kept_widget(
            st.selectbox, "Environment", "compare.env", "CartPole-v1", options=list(SUPPORTED_ENVS)
        )
    with c[1]:
        budget = widgets.kept_widget(
            st.number_input,
            "Budget (env steps per run)",
            "compare.budget",
            50_000,
            min_value=1_000,
            max_value=10_000_000,
            step=10_000,
        )
    with c[2]:
        seeds = widgets.kept_widget(
            st.slider, "Seeds", "compare.seeds", 3, min_value=1, max_value=10
        )
    with c[3]:
        tuned = widgets.kept_widget(
            st.checkbox, "Use each algorithm's tuned preset", "compare.tuned", True
        )
    a = st.columns([2, 1])
    with a[0]:
        algos = widgets.kept_widget(
            st.multiselect, "Algorithms", "compare.algos", ["trpo", "ppo"], options=list(ALGORITHMS)
        )
    with a[1]:
        name = widgets.kept_widget(
            st.text_input, "Sweep name", "compare.name", "", placeholder="e.g. delta study"
        )
    keys = sorted(set().union(*(RunConfig(algo=a).keys() for a in algos)) - set(widgets.PAGE_KEYS))
    keys = [k for k in keys if k not in ("seed", "total_steps")]
    widgets.set_kept("compare.vary", [k for k in widgets.kept("compare.vary", []) if k in keys])
    vary = widgets.kept_widget(
        st.multiselect,
        "Grid: hyperparameters to vary",
        "compare.vary",
        [],
        options=keys,
        placeholder="none: one curve per algorithm",
    )
    grid: dict[str, list[str]] = {}
    value_cols = st.columns(max(len(vary), 1))
    for col, key in zip(value_cols, vary):
        with col:
            raw = widgets.kept_widget(
                st.text_input,
                f"{key} values (comma-separated)",
                f"compare.values.{key}",
                "",
                placeholder="e.g. 0.001, 0.01, 0.05",
            )
        grid[key] = [v.strip() for v in raw.split(",") if v.strip()]
    specs: list[SweepSpec] = []
    try:
        specs = build_sweeps(env_id, int(budget), algos, int(seeds), grid, tuned, name.strip())
    except ConfigError as err:
        st.error(f"**{err.field}**: {plain(err.message)}")
    n_runs = sum(len(s.trials()) for s in specs)
    b = st.columns([1, 3])
    b[0].button(
        f"🚀 Launch {n_runs} runs",
        type="primary",
        disabled=not specs,
        on_click=launch,
        args=(specs,),
        key="compare.launch",
    )
    note = f"At most {getattr(manager, 'max_concurrent', 2)} runs train at once; the rest queue."
    if len(specs) > 1:
        note += f" The tuned presets differ, so this is {len(specs)} sweeps, one per algorithm."
    b[1].caption(note)
    if specs and not tuned:
        st.caption("The same sweep from a terminal:")
        st.code(command_line(specs[0]), language="bash")

# --- which runs are compared -------------------------------------------------------------------
with choice:
    chosen_sweeps = widgets.kept_widget(
        st.multiselect,
        "Sweeps to compare",
        SWEEPS_KEY,
        [],
        options=table["sweep_id"].tolist(),
        format_func=lambda s: sweep_label(table, names, s),
        placeholder="launch one above, or pick a stored sweep",
    )
    if chosen_sweeps:
        params["group"] = ",".join(chosen_sweeps)
    elif "group" in params:
        del params["group"]
    st.session_state["compare.group_in_url"] = params.get("group", "")
    progress = {s: sweep_progress(store, s) for s in chosen_sweeps}
    in_sweeps = [r for p in progress.values() for r in p.runs["run_id"]]
    labels_all = {r["run_id"]: run_text(r) for _, r in all_runs.iterrows()}
    extra_default = [r for r in params.get("runs", "").split(",") if r in labels_all]
    extra = st.multiselect(
        "Add stored runs to the comparison",
        options=[r for r in labels_all if r not in in_sweeps],
        default=[r for r in extra_default if r not in in_sweeps],
        format_func=labels_all.get,
        key="compare.extra",
    )
    if extra:
        params["runs"] = ",".join(extra)
    elif "runs" in params:
        del params["runs"]
    run_ids = in_sweeps + extra
    if not run_ids:
        st.info("Launch a new sweep, pick a stored sweep, or add stored runs to compare them.")
        st.stop()

    chosen = all_runs[all_runs["run_id"].isin(run_ids)]
    env_ids = chosen["env_id"].unique()
    if len(env_ids) > 1:
        (view or st).warning(
            f"These runs use different environments ({plain(', '.join(env_ids))}): returns differ "
            "in scale."
        )
    solved = SUPPORTED_ENVS[env_ids[0]].solved_return if env_ids[0] in SUPPORTED_ENVS else 0.0
    t = st.columns([1, 1, 2])
    threshold = t[0].number_input("Return threshold", value=float(solved), key="compare.threshold")
    active = chosen[chosen["status"].isin(ACTIVE)]["run_id"].tolist()
    active_sweeps = [s for s, p in progress.items() if not p.is_done]
    active_extra = [r for r in active if r in extra]
    if active:
        what = [f"{len(active_sweeps)} sweeps"] if active_sweeps else []
        what += [f"{len(active_extra)} added runs"] if active_extra else []
        t[2].button(
            f"⏹ Stop the {' and the '.join(what)}",
            on_click=stop,
            args=(active_sweeps, active_extra),
            key="compare.stop",
        )


def comparison() -> None:
    """Sweep progress, mean ± std curves per grid point, the summary table and the export;
    refreshes while runs train."""
    for sweep_id in chosen_sweeps:
        show_progress(sweep_progress(store, sweep_id), names.get(sweep_id, sweep_id))
    rows = store.runs(run_ids)
    fallback = {r["run_id"]: seed_group(r["name"], r["algo"]) for _, r in rows.iterrows()}
    labels = point_labels(sweep_points(rows), fallback)
    metrics = pd.concat([read_run(store, r).metrics for r in run_ids], ignore_index=True)
    if rows["run_id"][rows["status"].isin(ACTIVE)].tolist() != active:
        st.rerun()  # a run finished or left the queue: redraw the controls above
    if metrics.empty:
        st.info("Waiting for the first updates…")
        return
    revision = ",".join(chosen_sweeps) or ",".join(run_ids)
    cols = st.columns(2)
    for col, x, title in (
        (cols[0], ENV_STEPS.name, ENV_STEPS.axis_title),
        (cols[1], WALL_TIME.name, WALL_TIME.axis_title),
    ):
        band = seed_band(metrics, labels, x=x)
        fig = compare_figure(
            band, x_title=title, threshold=threshold, large=large, revision=revision
        )
        with col:
            live_chart(json.loads(fig.to_json()), key=f"compare.{x}", name=f"compare-{x}")
    summary = run_summary(metrics, labels, threshold)
    st.subheader("Summary")
    data_table(
        readable_summary(group_summary(summary), threshold),
        {"final return (mean)": "%.1f", "final return (std)": "%.1f", "env steps / s": "%.0f"},
    )
    per_run = summary.merge(rows[["run_id", "status", "total_steps"]], on="run_id")
    with st.expander("Per run"):
        data_table(readable_summary(per_run, threshold))
    ids = chosen_sweeps or run_ids
    d = st.columns(2)
    d[0].download_button(
        "⬇ Export the comparison (CSV)",
        metrics.assign(group=metrics["run_id"].map(labels)).to_csv(index=False),
        file_name=comparison_file_name(ids),
        mime="text/csv",
        key="compare.csv",
    )
    d[1].download_button(  # numeric: a run that never reached the threshold is an empty cell
        "⬇ Export the summary per run (CSV)",
        per_run.assign(threshold=threshold).to_csv(index=False),
        file_name=comparison_file_name(ids, "summary"),
        mime="text/csv",
        key="compare.summary_csv",
    )


with view or nullcontext():  # presentation mode: above the choice
    st.fragment(run_every=1.0 if active else None)(comparison)()

"""Compare: algorithms (or values of one hyperparameter) × seeds on one env and budget."""

from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from core.algos import presets
from core.config import ALGORITHMS, ConfigError, RunConfig
from core.envs import SUPPORTED_ENVS
from ui import charts, run_view, widgets
from ui.state import ensure_app_navigation, require_manager

ensure_app_navigation()

manager = require_manager()
store = manager.store
params = st.query_params


def _kept_widget(fn, label: str, key: str, default, **kw):
    widgets.kept(key, default)
    return fn(label, key=key, on_change=widgets.remember, args=(key,), **kw)


def group_label(name: str | None, algo: str) -> str:
    """The comparison group of a run: its name without the trailing ' · seed N'."""
    return (name or algo).split(" · seed ")[0]


def plan(
    env_id: str, budget: int, algos: list[str], seeds: int, vary: str, raw_values: str, tuned: bool
) -> list[tuple[str, RunConfig]]:
    """(run name, validated config) for every algorithm × value × seed; raises ConfigError."""
    values = [v.strip() for v in raw_values.split(",") if v.strip()] if vary != "—" else [None]
    if not values:
        raise ConfigError(vary, "give at least one value, e.g. 0.001, 0.01, 0.05")
    out = []
    for algo in algos:
        preset = presets(algo, env_id) if tuned else {}
        base = RunConfig(algo=algo, env_id=env_id).with_changes(**next(iter(preset.values()), {}))
        for value in values:
            label = algo if value is None else f"{algo} {vary}={value}"
            changes = {"total_steps": budget} | ({vary: value} if value is not None else {})
            for seed in range(seeds):
                name = f"{label} · seed {seed}"
                out.append((name, base.with_changes(**changes, seed=seed, name=name)))
    return out


def launch(configs: list[tuple[str, RunConfig]]) -> None:
    """Start the group (the manager queues what exceeds its concurrency cap); ids go in the URL."""
    request = st.session_state.setdefault("compare.request", uuid.uuid4().hex)
    group = f"cmp-{request[:12]}"
    for i, (name, config) in enumerate(configs):
        ok, _ = run_view.command(
            "start the group",
            manager.start,
            config,
            name=name,
            request_id=f"{request}:{i}",
            sweep_id=group,
        )
        if not ok:
            return
    st.session_state["compare.request"] = uuid.uuid4().hex
    params["group"] = group
    st.session_state["_flash"] = ("success", f"Launched {len(configs)} runs as group {group}.")


def stop_all(run_ids: list[str]) -> None:
    for run_id in run_ids:
        run_view.command("stop", manager.stop, run_id)


st.title("Compare")
st.caption(
    "Several seeds of each algorithm (or of each value of one hyperparameter) on the same "
    "environment and budget. Curves are the mean across seeds with a ± one standard deviation band."
)
run_view.show_flash()

with st.expander("New comparison", expanded="group" not in params):
    c = st.columns(4)
    with c[0]:
        env_id = _kept_widget(
            st.selectbox, "Environment", "compare.env", "CartPole-v1", options=list(SUPPORTED_ENVS)
        )
    with c[1]:
        budget = _kept_widget(
            st.number_input,
            "Budget (env steps per run)",
            "compare.budget",
            50_000,
            min_value=1_000,
            max_value=10_000_000,
            step=10_000,
        )
    with c[2]:
        seeds = _kept_widget(st.slider, "Seeds", "compare.seeds", 3, min_value=1, max_value=10)
    with c[3]:
        tuned = _kept_widget(
            st.checkbox, "Use each algorithm's tuned preset", "compare.tuned", True
        )
    algos = _kept_widget(
        st.multiselect, "Algorithms", "compare.algos", ["trpo", "ppo"], options=list(ALGORITHMS)
    )
    keys = sorted(set().union(*(RunConfig(algo=a).keys() for a in algos)) - set(widgets.PAGE_KEYS))
    v = st.columns([1, 2])
    with v[0]:
        vary = _kept_widget(
            st.selectbox, "Vary one hyperparameter", "compare.vary", "—", options=["—", *keys]
        )
    with v[1]:
        raw_values = _kept_widget(
            st.text_input,
            "Its values (comma-separated)",
            "compare.values",
            "",
            disabled=vary == "—",
            placeholder="e.g. 0.001, 0.01, 0.05",
        )
    configs: list = []
    try:
        if not algos:
            raise ConfigError("algo", "pick at least one algorithm")
        configs = plan(env_id, int(budget), algos, int(seeds), vary, raw_values, tuned)
    except ConfigError as err:
        st.error(f"**{err.field}**: {err.message}")
    st.button(
        f"🚀 Launch {len(configs)} runs",
        type="primary",
        disabled=not configs,
        on_click=launch,
        args=(configs,),
        key="compare.launch",
    )
    st.caption(
        f"At most {getattr(manager, 'max_concurrent', 2)} runs train at once; the rest queue."
    )

# --- which runs are compared -------------------------------------------------------------------
all_runs = store.runs()
group = params.get("group")
in_group = all_runs[all_runs["sweep_id"] == group]["run_id"].tolist() if group else []
labels_all = {r["run_id"]: run_view.run_label(r) for _, r in all_runs.iterrows()}
extra_default = [r for r in params.get("runs", "").split(",") if r in labels_all]
extra = st.multiselect(
    "Add stored runs to the comparison",
    options=[r for r in labels_all if r not in in_group],
    default=[r for r in extra_default if r not in in_group],
    format_func=labels_all.get,
    key="compare.extra",
)
if extra:
    params["runs"] = ",".join(extra)
elif "runs" in params:
    del params["runs"]
run_ids = in_group + extra
if not run_ids:
    st.info("Launch a comparison above, or add stored runs to compare them.")
    st.stop()

chosen = all_runs[all_runs["run_id"].isin(run_ids)]
env_ids = chosen["env_id"].unique()
if len(env_ids) > 1:
    st.warning(
        f"These runs use different environments ({', '.join(env_ids)}): returns differ in scale."
    )
solved = SUPPORTED_ENVS[env_ids[0]].solved_return if env_ids[0] in SUPPORTED_ENVS else 0.0
t = st.columns([1, 1, 2])
threshold = t[0].number_input("Return threshold", value=float(solved), key="compare.threshold")
with t[1]:
    large = widgets.presentation_toggle()
active = chosen[chosen["status"].isin(run_view.ACTIVE)]["run_id"].tolist()
if active:
    t[2].button(f"⏹ Stop the {len(active)} active runs", on_click=stop_all, args=(active,))


def comparison() -> None:
    """Mean ± std curves, the summary table and the export; refreshes while runs train."""
    rows = store.runs(run_ids)
    labels = {r["run_id"]: group_label(r["name"], r["algo"]) for _, r in rows.iterrows()}
    metrics = pd.concat([run_view.read_run(store, r).metrics for r in run_ids], ignore_index=True)
    if rows["run_id"][rows["status"].isin(run_view.ACTIVE)].tolist() != active:
        st.rerun()  # a run finished or left the queue: redraw the controls above
    if metrics.empty:
        st.info("Waiting for the first updates…")
        return
    revision = group or ",".join(run_ids)
    cols = st.columns(2)
    for col, x, title in (
        (cols[0], "env_steps", "env steps"),
        (cols[1], "wall_time", "wall time (s)"),
    ):
        band = charts.seed_band(metrics, labels, x=x)
        fig = charts.compare_figure(
            band, x_title=title, threshold=threshold, large=large, revision=revision
        )
        col.plotly_chart(fig, key=f"compare.{x}", width="stretch")
    summary = charts.run_summary(metrics, labels, threshold)
    st.subheader("Summary")
    st.dataframe(
        charts.group_summary(summary),
        hide_index=True,
        width="stretch",
        column_config={
            "final return (mean)": st.column_config.NumberColumn(format="%.1f"),
            "final return (std)": st.column_config.NumberColumn(format="%.1f"),
            "steps to threshold (median)": st.column_config.NumberColumn(format="%d"),
            "env steps / s": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    with st.expander("Per run"):
        per_run = summary.merge(rows[["run_id", "status", "total_steps"]], on="run_id")
        st.dataframe(per_run, hide_index=True, width="stretch")
    st.download_button(
        "⬇ Export the comparison (CSV)",
        metrics.assign(group=metrics["run_id"].map(labels)).to_csv(index=False),
        file_name=f"comparison-{revision[:20]}.csv",
        mime="text/csv",
        key="compare.csv",
    )


st.fragment(run_every=1.0 if active else None)(comparison)()

"""Update Inspector: the trust region of one real update of a TRPO, NPG or PPO run.

Widgets + calls: the snapshots and the runs come from ``ui.inspector_data``, the math from
``core.labs.inspector``, the figures from ``ui.inspector_figures``. The run and the update are in
the URL (``?run=…&update=…``, built by ``ui.inspector_figures.inspector_url``), so an update is a
link; a new URL wins over the widgets' remembered values.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.labs.inspector import InspectorView
from core.runtime.snapshots import SnapshotError, SnapshotRef
from ui import deck_url, widgets
from ui import inspector_data as data
from ui.inspector_figures import plane_figure, slice_figure
from ui.state import ensure_app_navigation, require_manager
from ui.tables import data_table

ensure_app_navigation()
manager = require_manager()
store = manager.store

RUN, UPDATE, NEXT, URL = "insp_run", "insp_update", "insp_next", "insp_url"
PLAY_DELAY_S = 0.8

EXPLANATION = r"""
**The plane.** Every point is a full parameter vector
$\theta = \theta_{old} + a\,u_1 + b\,u_2$: $u_1$ along the policy gradient $g$, $u_2$ along the
part of the step that is orthogonal to $g$ (parameter units). The **black** curve is the exact
mean $\mathrm{KL}(\pi_{old}\,\|\,\pi_\theta)$ on the update's own batch at the level $\delta$;
the **pink** dashes are its quadratic model $\tfrac12 d^\top F d = \delta$ restricted to the
plane ($U^\top F U$ from the engine's Fisher-vector product). The filled contours are the
surrogate change $\Delta L$ (PPO: the clipped $L^{CLIP}$, flat where the ratio left
$[1-\epsilon, 1+\epsilon]$).

**Arrows.** **Orange**: $g$ scaled to the ellipse (the steepest step in Euclidean distance);
**purple**: the natural direction $F^{-1}g$ scaled to the ellipse and projected (TRPO's own CG
solution, which lies in the plane). **Grey diamonds**: the CG iterates, scaled like $s$; the
hover says how far each lies off the plane. **Green / red**: the line-search trials
$\theta_{old} + \alpha^j s$, accepted / rejected; the open **blue** diamond is $\theta_{new}$.
"""


def _first_from_url() -> None:
    """Adopt the URL's run and update when they differ from what this page last wrote there."""
    query = (st.query_params.get("run"), st.query_params.get("update"))
    if query[0] and query != st.session_state.get(URL):
        widgets.set_kept(RUN, query[0])
        st.session_state.pop(UPDATE, None)
        if query[1] and query[1].isdigit():
            st.session_state[NEXT] = int(query[1])


@st.cache_resource(max_entries=128, show_spinner="Computing this update's trust region…")
def _view(path: str, offset: int) -> InspectorView:
    """The view of one snapshot record (cached by file and offset, shared by every session: a
    record, once written, never changes)."""
    return data.compute_view(SnapshotRef(Path(path), offset))


@st.cache_resource(max_entries=128, show_spinner=False)
def _figures(path: str, offset: int, objective: str, equal: bool) -> tuple[go.Figure, go.Figure]:
    """The plane and slice figures of a view (cached as objects: rebuilding them costs more
    than the rest of a rerun; Streamlit serializes them without changing them)."""
    view = _view(path, offset)
    return plane_figure(view, objective, equal), slice_figure(view)


def _pick_run(runs: pd.DataFrame) -> str | None:
    """The run picker over the runs with snapshots; a wanted run (URL) that has none gets its
    reason (DQN, A2C, an old run) and the picker falls back to the newest inspectable one."""
    ids = runs["run_id"].tolist()
    wanted = widgets.kept(RUN, ids[0] if ids else None)
    if wanted is not None and wanted not in ids:
        message = data.run_message(store, wanted)
        st.warning(message or f"Run {wanted} has no snapshots yet: pick another run.")
        if not ids:
            return None
        widgets.set_kept(RUN, ids[0])
    if not ids:
        return None
    labels = dict(zip(ids, runs["label"]))
    return widgets.kept_widget(
        st.sidebar.selectbox, "Run", RUN, ids[0], ids, format_func=labels.__getitem__
    )


def _pick_update(updates: list[int]) -> int:
    """The update slider (and play); a pending value (URL, play) is applied before it is drawn."""
    pending = st.session_state.pop(NEXT, None)
    if pending is not None:
        st.session_state[UPDATE] = data.nearest(updates, pending)
        if pending not in updates:  # a link to an update this run does not keep (play's are)
            st.warning(
                f"The link's update (`update`) = {pending} is not kept for this run (kept: "
                f"{len(updates)} updates from {updates[0]} to {updates[-1]}); showing the "
                f"nearest, update {st.session_state[UPDATE]}."
            )
    elif st.session_state.get(UPDATE) not in updates:
        st.session_state[UPDATE] = updates[-1]
    if len(updates) == 1:
        st.sidebar.caption(f"Update {updates[0]} (the only one kept so far)")
        return updates[0]
    return st.sidebar.select_slider("Update", updates, key=UPDATE)


def _numbers(view: InspectorView, stored: dict[str, float]) -> None:
    """The numbers beside the picture, and the run's own kl_mean for this update."""
    n = view.numbers
    ppo = view.clipped is not None or view.algo in ("ppo", "ppo-kl")
    c1, c2 = st.columns(2)
    c1.metric(view.level_name, f"{view.level:.4g}")
    c2.metric("accepted α", "rejected: kept θ_old" if n["alpha"] == 0 else f"{n['alpha']:.4g}")
    c1.metric("exact KL at θ_new", f"{n['kl_exact']:.5f}")
    c2.metric("quadratic ½(αd)ᵀF(αd)", f"{n['kl_quadratic']:.5f}")
    c1.metric("‖g‖", f"{n['grad_norm']:.4g}")
    c2.metric("gᵀF⁻¹g", f"{n['g_natural']:.4g}")
    c1.metric("angle(g, F⁻¹g)", f"{n['angle_deg']:.1f}°")
    c2.metric("F⁻¹g in the plane", f"{100 * n['natural_in_plane']:.1f} %")
    lines = [
        f"- ΔL at θ_new = {n['surrogate_new']:.5g} (linear model αgᵀd = {n['predicted']:.5g})",
        f"- ‖θ_new − θ_old‖ = {n['step_norm']:.4g}",
    ]
    if ppo and not math.isnan(n.get("clip_eps", math.nan)):
        lines.append(f"- clip ε = {n['clip_eps']:.3g}, ΔL^CLIP at θ_new = {n['clipped_new']:.5g}")
    if "kl_mean" in stored and not math.isnan(stored["kl_mean"]):
        lines.append(f"- the run reported kl_mean = {stored['kl_mean']:.5f} for this update")
    if view.degenerate:
        lines.append("- the step is parallel to g here: u₂ is an arbitrary direction ⊥ g")
    st.markdown("\n".join(lines))


def _trials_table(view: InspectorView) -> None:
    if not len(view.trials):
        st.caption("No line search in this update (NPG takes the full step; PPO takes epochs).")
        return
    data_table(
        pd.DataFrame(
            {
                "αʲ": view.trials[:, 2],
                "exact KL": view.trials[:, 3],
                "ΔL": view.trials[:, 4],
                "verdict": ["accepted" if ok else "rejected" for ok in view.trials[:, 5]],
            }
        ),
        {"αʲ": "%.4f", "exact KL": "%.5f", "ΔL": "%.5f"},
    )


def main() -> None:
    st.title("Update Inspector")
    st.caption(
        "One real update of a TRPO, NPG or PPO policy network: its exact KL ball, the Fisher "
        "ellipse that predicted it and the step it took, in the plane of g and the step."
    )
    _first_from_url()
    runs = data.inspectable_runs(store)
    run_id = _pick_run(runs)
    if run_id is None:
        st.info(
            "No run with update snapshots yet. Train TRPO, NPG or PPO on the Train page (or "
            "`python -m core train --algo trpo`); every update it takes is kept for this page."
        )
        return
    files = data.snapshot_files(store, run_id)
    update = _pick_update(list(files))
    playing = st.sidebar.toggle("▶ Play through the updates", key="insp_play")
    objective = "default"
    if runs.set_index("run_id").loc[run_id, "algo"] in ("ppo", "ppo-kl"):
        objective = st.sidebar.radio(
            "Contours", ["clipped", "surrogate"], key="insp_objective", horizontal=True
        )
    equal = st.sidebar.toggle(
        "Equal axis scales",
        key="insp_equal",
        help="Off: each axis fits the ball. On: true Euclidean angles (the ball is often a "
        "sliver: the Fisher metric of a network is very uneven).",
    )
    written = (run_id, str(update))
    st.session_state[URL] = written
    if (st.query_params.get("run"), st.query_params.get("update")) != written:
        query = widgets.with_flag({"run": run_id, "update": str(update)})
        st.query_params.from_dict(deck_url.carried(query))  # keeps ?present=1, ?deck=

    ref = files[update]
    try:
        view = _view(str(ref.path), ref.offset)
        plane, cut = _figures(str(ref.path), ref.offset, objective, equal)
    except (OSError, SnapshotError) as err:  # pruned meanwhile, or a damaged file
        st.error(f"Update {update} cannot be shown: {err}")
        return
    stored = store.metrics(run_id, after_update=update - 1)
    stored = stored[stored["update"] == update].iloc[0].to_dict() if len(stored) else {}
    left, right = st.columns([2.3, 1], gap="medium")
    with left:
        st.plotly_chart(plane, key="insp_plane", theme=None)
    with right:
        _numbers(view, stored)
        st.markdown(EXPLANATION)
    left, right = st.columns([1.4, 1], gap="large")
    with left:
        st.plotly_chart(cut, key="insp_slice", theme=None)
    with right:
        st.subheader("Line-search trials")
        _trials_table(view)
    if playing:
        time.sleep(PLAY_DELAY_S)
        updates = list(files)
        st.session_state[NEXT] = updates[(updates.index(update) + 1) % len(updates)]
        st.rerun()


main()

"""Exports of one run (CSV, TensorBoard, figure HTML/PNG) and the "watch it play" panel."""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.runtime import export
from core.runtime.checkpoint import CheckpointError
from core.runtime.store import RunStore
from core.runtime.store_schema import StoreError
from ui import live_feed
from ui.charts.style import EXPORT_TEMPLATE
from ui.run_data import RunData
from ui.text import plain

PNG_HELP = (
    "PNG rendering uses Kaleido with the system Chromium. Without it, download the HTML, or use "
    "the 📷 camera button in any chart's toolbar (Plotly's own “download as PNG”)."
)


def metrics_csv(store: RunStore, run_id: str) -> bytes:
    return store.metrics(run_id).to_csv(index=False).encode()


def episodes_csv(store: RunStore, run_id: str) -> bytes:
    return store.episodes(run_id).to_csv(index=False).encode()


def events_csv(store: RunStore, run_id: str) -> bytes:
    return export.events_frame(store, run_id).to_csv(index=False).encode()


CSV_TABLES = {"metrics": metrics_csv, "episodes": episodes_csv, "events": events_csv}
"""The run's tables offered as CSV downloads, in column order."""


def tensorboard_zip(store: RunStore, run_id: str) -> bytes:
    """The run as TensorBoard event files (``core.runtime.export``), zipped for download."""
    with tempfile.TemporaryDirectory() as tmp:
        export.export_tensorboard(store, run_id, Path(tmp))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp))
    return buf.getvalue()


def figure_html(fig: go.Figure | dict) -> bytes:
    """A standalone HTML page with the interactive figure (Plotly's JS embedded, works offline)."""
    styled = go.Figure(fig).update_layout(template=EXPORT_TEMPLATE)
    return styled.to_html(include_plotlyjs=True, full_html=True).encode()


def figure_png(fig: go.Figure | dict) -> bytes:
    """A PNG of the figure rendered by Kaleido (headless Chromium), at 2× for sharp slides."""
    styled = go.Figure(fig).update_layout(template=EXPORT_TEMPLATE)
    height = int(styled.layout.height or 500)
    return styled.to_image(format="png", width=1200, height=height, scale=2)


def run_file_stem(row: dict[str, Any]) -> str:
    """The plain-ASCII start of a run's download names: its name (or algorithm), at most 40
    characters (``core.runtime.export.ascii_file_stem``), and the first 8 characters of its id:
    ``ppo_seed_1-0a1b2c3d``."""
    name = export.ascii_file_stem(str(row.get("name") or row["algo"]), 40, str(row["algo"]))
    return f"{name}-{export.ascii_file_stem(str(row['run_id'])[:8])}"


def comparison_file_name(ids: list[str], what: str = "comparison") -> str:
    """The plain-ASCII CSV name of a comparison of the sweeps or runs ``ids``:
    ``comparison-sw-1a2b3c4d5e_sw-...csv`` (the ids' first 40 characters)."""
    return f"{what}-{export.ascii_file_stem('_'.join(ids), 40, 'runs')}.csv"


def export_buttons(store: RunStore, row: dict[str, Any], data: RunData, *, large: bool) -> None:
    """Download buttons; files are generated only when clicked (deferred ``data`` callables)."""
    run_id = row["run_id"]
    stem = run_file_stem(row)
    st.markdown("**Data**")
    c = st.columns(4)
    for col, (table, make_csv) in zip(c, CSV_TABLES.items()):
        col.download_button(
            f"{table.capitalize()} (CSV)",
            functools.partial(make_csv, store, run_id),
            file_name=f"{stem}-{table}.csv",
            mime="text/csv",
            on_click="ignore",
        )
    with c[3]:
        if st.button("Prepare TensorBoard files", key="runs.tb"):
            try:
                st.session_state[f"runs.tb.{run_id}"] = tensorboard_zip(store, run_id)
            except (export.ExportError, StoreError, OSError) as err:
                st.error(f"TensorBoard export failed: {plain(err)}")
        if f"runs.tb.{run_id}" in st.session_state:
            st.download_button(
                "TensorBoard event files (zip)",
                st.session_state[f"runs.tb.{run_id}"],
                file_name=f"{stem}-tensorboard.zip",
                mime="application/zip",
                on_click="ignore",
            )
            st.caption("Unzip, then `tensorboard --logdir <folder>`.")
    st.markdown("**Figures**")
    figs = live_feed.figures(store, row, data, large=large)
    name = st.selectbox("Figure", list(figs), key="runs.fig")
    fig = figs[name]
    f = st.columns(3)
    f[0].download_button(
        "Interactive HTML",
        lambda: figure_html(fig),
        file_name=f"{stem}-{export.ascii_file_stem(name)}.html",
        mime="text/html",
        on_click="ignore",
    )
    with f[1]:
        if st.button("Render PNG", key="runs.png", help=PNG_HELP):
            with st.spinner("Rendering with Chromium…"):
                try:
                    st.session_state[f"runs.png.{run_id}.{name}"] = figure_png(fig)
                except Exception as err:  # kaleido raises many types when Chrome is missing
                    st.error(
                        f"PNG rendering is not available here ({type(err).__name__}). {PNG_HELP}"
                    )
        png = st.session_state.get(f"runs.png.{run_id}.{name}")
        if png:
            st.download_button(
                "Download PNG",
                png,
                file_name=f"{stem}-{export.ascii_file_stem(name)}.png",
                mime="image/png",
                on_click="ignore",
            )
    f[2].caption(PNG_HELP)


@st.cache_data(max_entries=16, show_spinner=False)
def _rendered_episode(
    paths: tuple[str, ...], run_id: str, algo: str, seed: int
) -> tuple[bytes, float, int, int]:
    """GIF bytes, return, length and checkpoint env step of one greedy episode of the newest
    usable checkpoint among ``paths`` (cached)."""
    from core.runtime import playback

    trainer, env_steps = playback.load_trainer(list(paths), run_id=run_id, algo=algo)
    episode = playback.play_episode(trainer, seed=seed)
    return playback.to_gif(episode.frames), episode.ret, episode.length, env_steps


def watch_agent(store: RunStore, run_id: str) -> None:
    """Render one deterministic episode of the run's last checkpoint as an animated GIF."""
    ckpts = store.checkpoints(run_id)
    if ckpts.empty:
        st.info(
            "This run has no checkpoint yet (one is written every few updates and at the end). "
            "Come back when it has trained a little."
        )
        return
    last = ckpts.iloc[-1]
    st.caption(f"Last checkpoint: update {last['update']}, {last['env_steps']:,} env steps.")
    seed = st.number_input("Episode seed", min_value=0, value=0, step=1, key="runs.play.seed")
    if st.button("🎬 Play one episode", type="primary", key="runs.play"):
        paths = tuple(str(p) for p in ckpts["path"])
        st.session_state["runs.play.for"] = (run_id, paths, int(seed))
    request = st.session_state.get("runs.play.for")
    if not request or request[0] != run_id:
        return
    algo = str(store.run(run_id)["algo"])
    from core.runtime.playback import RenderError  # imported late, as in _rendered_episode

    try:
        with st.spinner("Playing the greedy policy…"):
            gif, ret, length, steps = _rendered_episode(request[1], run_id, algo, request[2])
    except CheckpointError as err:
        st.error(f"Could not play this run: {plain(err)}")
        return
    except RenderError as err:  # one line naming what to install (core/runtime/playback.py)
        st.error(plain(err))
        return
    except Exception as err:  # rendering: a missing display backend, an env that cannot draw
        st.error(f"Could not render an episode: {plain(f'{type(err).__name__}: {err}')}")
        return
    st.image(
        gif,
        caption=f"Greedy policy after {steps:,} env steps: return {ret:.1f} "
        f"in {length} steps (seed {request[2]})",
    )

"""One run on screen, live: a component that polls the live feed instead of re-running a script.

A Streamlit fragment re-run every second made the browser rebuild its elements each second
(a third of a core in Chromium with nothing changing) and sent whole figures; commands went
through a script re-run before they were even acknowledged. This panel is mounted once per run
and then talks to ``ui/live_api.py`` itself (``ui/js/run_panel.js``): it shows the run's title,
Pause / Resume / Stop (acknowledged as "pausing…" on click, confirmed the moment the run
confirms), the status and progress line, and the charts, updated in place as the run trains.
When a run it watched ends, it asks the page to redraw once (the live tweaks go away and the
outcome shows).
"""

from __future__ import annotations

import streamlit as st

from core.labs.inspector import SUPPORTED as INSPECTED
from ui.inspector_figures import inspector_url
from ui.live_chart import CSS as CHART_CSS
from ui.live_chart import SCRIPT_URL, component_js

CSS = (
    CHART_CSS
    + """
.run-panel { font-family: inherit; color: inherit; }
.run-panel .rp-title { margin: 0 0 0.5rem 0; font-size: 1.5rem; font-weight: 600; }
.run-panel .rp-controls { display: flex; gap: 0.5rem; align-items: center; flex-wrap: wrap;
  margin-bottom: 0.75rem; }
.run-panel .rp-button { font: inherit; padding: 0.25rem 0.75rem; min-height: 2.5rem;
  border-radius: 0.5rem; border: 1px solid rgba(128, 128, 128, 0.4); background: transparent;
  color: inherit; cursor: pointer; }
.run-panel .rp-button:hover:not(:disabled) { border-color: #ff4b4b; color: #ff4b4b; }
.run-panel .rp-button:disabled { opacity: 0.4; cursor: not-allowed; }
.run-panel .rp-message { margin-left: 0.5rem; }
.run-panel .rp-message.rp-error { color: #d33; }
.run-panel .rp-status-text { margin-bottom: 0.35rem; }
.run-panel .rp-bar { height: 0.5rem; border-radius: 0.25rem; background: rgba(128, 128, 128, 0.2);
  overflow: hidden; margin-bottom: 1rem; }
.run-panel .rp-bar-fill { height: 100%; width: 0; background: #ff4b4b; }
.run-panel[data-status="finished"] .rp-bar-fill { background: #21c354; }
.run-panel[data-status="paused"] .rp-bar-fill,
.run-panel[data-status="stopped"] .rp-bar-fill { background: #808495; }
.run-panel .rp-hint { margin-top: 0.5rem; font-size: 0.85rem; opacity: 0.65; }
.run-panel .rp-charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr));
  gap: 1rem; }
.run-panel.rp-large .rp-title { font-size: 2rem; }
.run-panel.rp-large .rp-status-text, .run-panel.rp-large .rp-button { font-size: 1.25rem; }
@media (max-width: 900px) { .run-panel .rp-charts { grid-template-columns: 1fr; } }
"""
)

_mount = st.components.v2.component(
    "live_run_panel", js=component_js("run_panel"), css=CSS, isolate_styles=False
)


def run_panel(
    run_id: str,
    *,
    active: bool,
    large: bool,
    algo: str,
    controls: bool = True,
    title: bool = True,
    on_end: object | None = None,
) -> None:
    """Show ``run_id`` live: title (``title``), Pause / Resume / Stop (``controls``), status and
    progress, and its charts, polling the live feed while the run is ``active``. For an
    algorithm the Update Inspector reads (``core.labs.inspector.SUPPORTED``), a click on a point
    of the KL or line-search chart opens that update there. ``on_end`` is called (and the page
    re-run) when a run this panel watched ends."""
    data = {
        "run_id": run_id,
        "active": active,
        "large": large,
        "controls": controls,
        "title": title,
        "src": SCRIPT_URL,
        "inspect": inspector_url(run_id, 0) if algo in INSPECTED else None,
    }
    _mount(key=f"run_panel.{run_id}", data=data, on_ended_change=on_end or (lambda: None))

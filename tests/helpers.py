"""Shared by the test modules: the repository root, running one of its modules as a process, the
metrics every trainer's report carries (added by ``Bookkeeper.finish``), and reading Plotly charts
out of AppTest runs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

BOOKKEEPER_METRICS = (
    "env_steps",
    "update",
    "wall_time",
    "fps",
    "episode_return_mean",
    "episode_length_mean",
)


def run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m *args`` from the repository root, stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def chart_specs(at) -> list[dict]:
    """The Plotly figure specs of every chart an AppTest run rendered: ``st.plotly_chart``
    elements and the live charts (``ui/live_chart.py``, whose data holds the figure)."""
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    for el in at.get("bidi_component"):
        if el.proto.component_name == "live_plotly_chart":
            specs.append(json.loads(el.proto.json)["figure"])
    return specs


def panels(at) -> list[dict]:
    """The data of every run panel (``ui/run_panel.py``) an AppTest run rendered: which run it
    shows and how (its status and charts come from the live feed, tests/test_live_feed.py)."""
    return [
        json.loads(el.proto.json)
        for el in at.get("bidi_component")
        if el.proto.component_name == "live_run_panel"
    ]


def values(v) -> np.ndarray:
    """A trace's x/y as an array (Plotly sends numpy data base64-encoded as {dtype, bdata})."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def run_ok(at):
    """Run the AppTest ``at`` and fail with its page's exceptions, if any."""
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_page(at, page: str):
    """Switch the app's AppTest ``at`` to ``page`` (a path under pages/), run it, fail on errors."""
    return run_ok(at.switch_page(page))

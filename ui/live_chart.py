"""Charts that update in place: a Streamlit component (no build step) holding Plotly.js.

``st.plotly_chart`` replaces its element whenever the figure's data changes: on a live page that
means a new DOM node every refresh (flicker, lost zoom, hover errors mid-drag). This component is
mounted once per key; each refresh hands it the new figure (a plain Plotly JSON dict, see
``ui/charts/``) and its script calls ``Plotly.react`` on the same ``<div>``. With a constant
``layout.uirevision`` Plotly keeps the user's zoom, pan and legend clicks, and while a mouse button
is held on the chart the update waits until it is released; a chart scrolled out of view (once
drawn) waits until it is scrolled back (its newest figure is kept, older ones are dropped).

Plotly.js itself is the file shipped inside the ``plotly`` Python package, copied once into
``static/`` beside ``app.py`` and served by Streamlit's static file serving
(``server.enableStaticServing`` in ``.streamlit/config.toml``): nothing is fetched from outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import plotly
import streamlit as st

REPO_ROOT = Path(__file__).resolve().parent.parent
PLOTLY_SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC_DIR = REPO_ROOT / "static"
SCRIPT_NAME = f"plotly-{plotly.__version__}.min.js"
SCRIPT_URL = f"app/static/{SCRIPT_NAME}"  # relative: works under a base URL path too

JS_DIR = Path(__file__).resolve().parent / "js"
CSS = """
div.live-chart { width: 100%; }
"""


def component_js(name: str) -> str:
    """A component's script: the shared Plotly loader and drawing queue
    (``ui/js/plotly_queue.js``) followed by ``ui/js/<name>.js`` (one ES module)."""
    return (JS_DIR / "plotly_queue.js").read_text() + (JS_DIR / f"{name}.js").read_text()


def ensure_plotly_js() -> Path:
    """Copy the plotly package's ``plotly.min.js`` into ``static/`` (once; atomically)."""
    target = STATIC_DIR / SCRIPT_NAME
    if not target.is_file() or target.stat().st_size != PLOTLY_SOURCE.stat().st_size:
        STATIC_DIR.mkdir(exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(PLOTLY_SOURCE, tmp)
        os.replace(tmp, target)
    return target


ensure_plotly_js()
_mount = st.components.v2.component(
    "live_plotly_chart", js=component_js("live_chart"), css=CSS, isolate_styles=False
)


def live_chart(
    figure: dict[str, Any],
    *,
    key: str,
    name: str,
    last_x: float | None = None,
    version: str | None = None,
) -> None:
    """Show ``figure`` (Plotly JSON, NaN-free) in the chart element ``key``, updated in place.

    ``last_x`` (the newest x the figure holds) is written to the element (``data-last-x``) once
    drawn, so a browser test or a benchmark can see how far the drawn chart reaches. A figure
    equal to the one already shown is not redrawn: a refresh that brought no new data, or one that
    only shows a command's acknowledgement, costs the browser nothing. Figures are told apart by
    ``version`` (a caller that knows what its figure is built from can name it cheaply), else by
    a hash of the figure.
    """
    height = int(figure.get("layout", {}).get("height", 360))
    if version is None:
        version = hashlib.blake2b(json.dumps(figure).encode(), digest_size=8).hexdigest()
    data = {"figure": figure, "src": SCRIPT_URL, "name": name, "last_x": last_x, "version": version}
    _mount(key=key, data=data, height=height)

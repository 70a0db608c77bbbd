"""The house style: colours, font sizes and the layout of both kinds of figure.

No Plotly template is applied in the page (it costs ~10 ms per figure on every refresh):
Streamlit's theme styles the charts there; exports add ``EXPORT_TEMPLATE``.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from core.metrics import ENV_STEPS

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"]
ACCEPTED = "#16a34a"
REJECTED = "#dc2626"
REFERENCE = "#111827"
EVENT = "#f59e0b"
EXPORT_TEMPLATE = "plotly_white"
X_TITLE = ENV_STEPS.axis_title  # the x axis of every chart of a run
# Width (px) assumed for one legend row when reserving room for a legend under a run's chart.
LEGEND_ROW_PX = 500


def base_font(large: bool) -> int:
    """Font size of the text of a chart (``large``: presentation mode)."""
    return 18 if large else 13


def subtitle_size(large: bool) -> int:
    """Font size of the titles over subplots."""
    return 20 if large else 16


def left_margin(large: bool) -> int:
    """Room (px) left of the plot for the y tick labels and the y-axis title."""
    return 80 if large else 60


def house_style(title: str, *, large: bool, revision: str | None, height: int) -> dict[str, Any]:
    """Title at the top left, font sizes, height, unified hover and ``uirevision``.

    Plotly keeps the user's zoom and legend clicks while ``layout.uirevision`` stays the same, so a
    live chart that is redrawn every second with the same revision does not jump back.
    """
    base = base_font(large)
    return {
        "title": {
            "text": title,
            "font": {"size": base + 4},
            "x": 0.01,
            "y": 0.98,
            "yanchor": "top",
        },
        "font": {"size": base},
        "height": int(height * (1.25 if large else 1.0)),
        "hovermode": "x unified",
        "uirevision": revision or "static",
    }


def finish(
    fig: go.Figure,
    *,
    title: str = "",
    large: bool = False,
    revision: str | None = None,
    height: int = 360,
) -> go.Figure:
    """House style of the ``go.Figure`` charts (comparison, GAE lab): legend in a row above the
    plot; ``large`` is the projector mode; ``revision`` keeps zoom across refreshes."""
    fig.update_layout(
        **house_style(title, large=large, revision=revision, height=height),
        margin={"l": left_margin(large), "r": 20, "t": 90, "b": 50},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "x": 0,
            "font": {"size": base_font(large) - 1},
        },
    )
    if large:
        fig.update_traces(selector={"mode": "lines"}, line={"width": 3})
    return fig


def run_layout(
    title: str, *, large: bool, revision: str | None, height: int, subtitled: bool, legend_rows: int
) -> dict[str, Any]:
    """House style of a run's chart: the legend in ``legend_rows`` rows under the x-axis title.

    Sizes in px are estimated from the fonts (a line of text ≈ 1.5 × its font size): the top
    margin holds the title and, if ``subtitled``, the subplot titles above the first row; the
    bottom margin holds the tick labels, the x-axis title and the legend, so nothing overlaps.
    """
    style = house_style(title, large=large, revision=revision, height=height)
    base, px = base_font(large), style["height"]
    under_title = 1.5 * subtitle_size(large) + 6 if subtitled else 10
    top = 0.02 * px + 1.5 * (base + 4) + under_title
    axis = 4 * base + 12  # tick labels and the axis title under the plot area
    legend = legend_rows * math.ceil(1.7 * (base - 1))
    bottom = axis + (legend + 14 if legend_rows else 8)
    style["margin"] = {"l": left_margin(large), "r": 20, "t": round(top), "b": round(bottom)}
    style["legend"] = {
        "orientation": "h",
        "xanchor": "left",
        "x": 0,
        "yanchor": "top",
        "y": -round((axis + 6) / (px - round(top) - round(bottom)), 4),
        "font": {"size": base - 1},
    }
    return style


def legend_rows(data: list[dict[str, Any]], large: bool) -> int:
    """Rows the horizontal legend needs; 0 when Plotly shows none (no entry, or a single trace)."""
    names = [t["name"] for t in data if t.get("showlegend", True)]
    if not names or len(data) < 2:
        return 0
    width = sum(40 + 0.6 * (base_font(large) - 1) * len(n) for n in names)
    return min(3, math.ceil(width / LEGEND_ROW_PX))

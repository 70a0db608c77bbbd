"""The building blocks of a run's charts as Plotly JSON: a metric's series, lines, subplot grids,
empty-state notes, and :func:`figure`, which assembles them with the hyperparameter-change markers
and the house style.

Everything here is a plain dict or list (no ``go`` objects, no property validation): a run's four
charts are rebuilt every second on a live page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from core.metrics import ENV_STEPS, UPDATE
from ui.charts.events import event_layers
from ui.charts.style import X_TITLE, base_font, legend_rows, run_layout, subtitle_size
from ui.downsample import downsample

# A figure as Plotly JSON: {"data": [trace, ...], "layout": {...}}, built without go objects.
FigureDict = dict[str, Any]


class Points(NamedTuple):
    """The updates that report a metric (at most ``downsample``'s limit, evenly spaced)."""

    rows: np.ndarray  # positions in the metrics frame
    x: np.ndarray  # env steps
    update: np.ndarray
    y: np.ndarray


def has(metrics: pd.DataFrame, key: str) -> bool:
    """Whether the run reports metric ``key`` (a column with at least one value)."""
    return key in metrics.columns and metrics[key].notna().any()


def column(frame: pd.DataFrame, key: str) -> np.ndarray:
    """Column ``key`` as floats, NaN where missing."""
    return frame[key].to_numpy(dtype=float, na_value=np.nan)


def series(metrics: pd.DataFrame, key: str) -> Points:
    """Metric ``key`` where it is reported (not NaN), downsampled (numpy: no pandas indexing)."""
    y = column(metrics, key)
    rows = downsample(pd.Series(np.flatnonzero(~np.isnan(y)))).to_numpy()
    x, update = column(metrics, ENV_STEPS.name)[rows], column(metrics, UPDATE.name)[rows]
    return Points(rows, x, update, y[rows])


def values(data: pd.Series | np.ndarray) -> list[float | None]:
    """A plain list of floats for JSON; NaN and ±inf become None (Plotly leaves a gap)."""
    if isinstance(data, pd.Series):
        arr = data.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(data, dtype=float)
    out = arr.tolist()
    if not np.isfinite(arr).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


def _axis(letter: str, k: int) -> str:
    """Layout key of subplot ``k``'s axis: ``xaxis``, ``xaxis2``…"""
    return f"{letter}axis" if k == 1 else f"{letter}axis{k}"


def _ref(letter: str, k: int) -> str:
    """How traces and shapes name subplot ``k``'s axis: ``x``, ``x2``…"""
    return letter if k == 1 else f"{letter}{k}"


def on(trace: dict[str, Any], subplot: int | None) -> dict[str, Any]:
    """``trace`` on subplot ``subplot`` (1-based), or on the only axes when None."""
    if subplot is not None:
        trace["xaxis"], trace["yaxis"] = _ref("x", subplot), _ref("y", subplot)
    return trace


def metric_line(
    points: Points,
    name: str,
    color: str,
    *,
    mode: str = "lines",
    line: dict[str, Any] | None = None,
    subplot: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A metric against env steps; the hover shows the value and the update."""
    trace = {
        "type": "scatter",
        "x": values(points.x),
        "y": values(points.y),
        "customdata": values(points.update),
        "mode": mode,
        "name": name,
        "line": {"color": color, **(line or {})},
        "hovertemplate": f"{name}: %{{y:.4g}}<br>update %{{customdata:.0f}}<extra></extra>",
        **extra,
    }
    return on(trace, subplot)


def empty_note(text: str) -> dict[str, Any]:
    """An annotation in the middle of an empty chart saying what it waits for."""
    return {
        "text": text,
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
        "showarrow": False,
        "font": {"size": 14},
    }


def grid(
    rows: int,
    cols: int,
    *,
    vspace: float,
    row_heights: list[float] | None = None,
    hspace: float = 0.1,
) -> list[tuple[list[float], list[float]]]:
    """(x domain, y domain) of each cell of a grid, row by row from the top, as make_subplots
    lays them out: rows share 1 − (rows − 1)·vspace of the height in proportion to
    ``row_heights``, columns 1 − (cols − 1)·hspace of the width equally."""
    heights = row_heights or [1.0] * rows
    scale = (1 - vspace * (rows - 1)) / sum(heights)
    width = (1 - hspace * (cols - 1)) / cols
    cells, top = [], 1.0
    for h in heights:
        bottom = max(0.0, top - h * scale)
        for c in range(cols):
            left = c * (width + hspace)
            x = [round(left, 6), round(left + width, 6)]
            cells.append((x, [round(bottom, 6), round(top, 6)]))
        top = bottom - vspace
    return cells


def subplots(
    cells: list[tuple[list[float], list[float]]], titles: list[str], *, cols: int, large: bool
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Axes of one subplot per cell (filled row by row) and the titles above the subplots.

    The x axes of a column share the range of the column's bottom subplot, which alone shows
    tick labels and the title "env steps".
    """
    axes: dict[str, dict[str, Any]] = {}
    for k, (x, y) in enumerate(cells, start=1):
        bottom = k + cols * ((len(cells) - k) // cols)
        xaxis: dict[str, Any] = {"anchor": _ref("y", k), "domain": x}
        if k == bottom:
            xaxis["title"] = {"text": X_TITLE}
        else:
            xaxis.update(matches=_ref("x", bottom), showticklabels=False)
        axes[_axis("x", k)] = xaxis
        axes[_axis("y", k)] = {"anchor": _ref("x", k), "domain": y}
    notes = [
        {
            "text": text,
            "x": (x[0] + x[1]) / 2,
            "y": y[1],
            "xref": "paper",
            "yref": "paper",
            "xanchor": "center",
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": subtitle_size(large)},
        }
        for text, (x, y) in zip(titles, cells)
    ]
    return axes, notes


def figure(
    traces: list[dict[str, Any]],
    axes: dict[str, dict[str, Any]],
    *,
    title: str,
    events: pd.DataFrame | None,
    large: bool,
    revision: str | None,
    notes: Iterable[dict[str, Any]] = (),
    subtitled: bool = False,
    event_xrefs: tuple[str, ...] = ("x",),
    height: int = 360,
) -> FigureDict:
    """A run's chart: ``traces``, the hyperparameter-change markers, ``axes`` with the house tick
    font, ``notes`` (subplot titles, empty-state text) and the house style."""
    shapes, texts, entry = event_layers(events, event_xrefs, large)
    data = traces + entry
    if large:
        for trace in data:
            if trace.get("mode") == "lines":
                trace["line"] = {**trace.get("line", {}), "width": 3}
    layout = run_layout(
        title,
        large=large,
        revision=revision,
        height=height,
        subtitled=subtitled,
        legend_rows=legend_rows(data, large),
    )
    for name, axis in (axes or {"xaxis": {}, "yaxis": {}}).items():
        layout[name] = {**axis, "tickfont": {"size": base_font(large)}}
    layout["annotations"] = [*notes, *texts]
    layout["shapes"] = shapes
    return {"data": data, "layout": layout}

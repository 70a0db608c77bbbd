"""The trust-region charts of a run: the KL of every update against its bound, and TRPO's line
search (accepted step fraction, backtracks, predicted against actual surrogate improvement)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.metrics import (
    APPROX_KL,
    KL_MAX,
    KL_MEAN,
    KL_QUADRATIC,
    LS_ACCEPTED,
    LS_BACKTRACKS,
    LS_STEP_FRAC,
    SURROGATE_ACTUAL,
    SURROGATE_PREDICTED,
)
from ui.charts.style import ACCEPTED, COLORS, REFERENCE, REJECTED, X_TITLE
from ui.charts.traces import (
    FigureDict,
    column,
    empty_note,
    figure,
    grid,
    has,
    metric_line,
    on,
    series,
    subplots,
    values,
)

MARKED_UPDATES = 150  # the KL chart marks each update up to this many updates

# Trace names on the KL chart (short, so the legend fits on one line).
KL_NAMES = {
    KL_MEAN.name: "exact mean KL",
    KL_QUADRATIC.name: "quadratic ½ sᵀFs",
    APPROX_KL.name: "approx. KL (k3)",
    KL_MAX.name: "max KL",
}


def kl_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    reference: pd.DataFrame | None = None,
    reference_label: str = "δ",
    large: bool = False,
    revision: str | None = None,
) -> FigureDict:
    """KL per update vs env steps, against the trust-region bound (a step line, live-changeable).

    Shows the exact mean KL(π_old‖π_new) on the batch, the quadratic model ½ sᵀFs that TRPO's step
    was scaled to (= δ before the line search shrinks it) and PPO's k3 estimate if reported; the max
    KL over states is in the legend, off by default (it dwarfs the mean).
    """
    dotted = len(metrics) <= MARKED_UPDATES  # a marker per update while they are few
    mean_style = {"mode": "lines+markers", "marker": {"size": 5}} if dotted else {}
    traces = [
        metric_line(series(metrics, key), KL_NAMES[key], color, **extra)
        for key, color, extra in (
            (KL_MEAN.name, COLORS[0], mean_style),
            (KL_QUADRATIC.name, COLORS[3], {"line": {"dash": "dot"}}),
            (APPROX_KL.name, COLORS[4], {}),
            (KL_MAX.name, "#94a3b8", {"line": {"width": 1}, "visible": "legendonly"}),
        )
        if has(metrics, key)
    ]
    if reference is not None and reference["value"].notna().any():
        traces.append(_reference_trace(reference, reference_label))
    notes = [] if traces else [empty_note("no KL reported yet")]
    axes = {
        "xaxis": {"title": {"text": X_TITLE}},
        "yaxis": {"title": {"text": f"KL ({KL_MEAN.unit})"}, "rangemode": "tozero"},
    }
    return figure(
        traces,
        axes,
        title="KL per update",
        events=events,
        notes=notes,
        large=large,
        revision=revision,
    )


def _reference_trace(reference: pd.DataFrame, label: str) -> dict[str, Any]:
    """The KL bound over env steps (from ``events.parameter_history``) as a black step line."""
    return {
        "type": "scatter",
        "x": values(reference["env_step"]),
        "y": values(reference["value"]),
        "mode": "lines",
        "line": {"color": REFERENCE, "width": 2, "shape": "hv"},
        "name": label,
        "hovertemplate": f"{label} = %{{y:.4g}}<extra></extra>",
    }


def line_search_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    large: bool = False,
    revision: str | None = None,
) -> FigureDict:
    """TRPO's backtracking line search per update, three rows sharing the env-steps axis.

    Row 1: accepted step fraction αⁱ (green) or rejected (red ×, the update kept θ_old).
    Row 2: number of backtracks i. Row 3: predicted surrogate improvement gᵀs (for the full step)
    against the actual change L(θ_new) − L(θ_old).
    """
    cells = grid(3, 1, vspace=0.07, row_heights=[0.4, 0.2, 0.4])
    titles = ["accepted step fraction αⁱ", "backtracks", "surrogate improvement"]
    axes, notes = subplots(cells, titles, cols=1, large=large)
    axes["yaxis"]["range"] = [-0.05, 1.05]
    axes["yaxis2"]["rangemode"] = "nonnegative"
    traces = [*_step_traces(metrics), *_backtrack_traces(metrics), *_surrogate_traces(metrics)]
    return figure(
        traces,
        axes,
        title="Line search",
        events=events,
        notes=notes,
        subtitled=True,
        large=large,
        revision=revision,
        height=540,
    )


def _step_traces(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Row 1: accepted updates as green dots at their step fraction αⁱ, rejected as red × at 0."""
    if not has(metrics, LS_ACCEPTED.name):
        return []
    points = series(metrics, LS_ACCEPTED.name)
    if LS_STEP_FRAC.name in metrics:
        frac = column(metrics, LS_STEP_FRAC.name)[points.rows]
    else:
        frac = np.ones(len(points.y))
    accepted = points.y > 0.5
    traces = []
    for ok, name, color, symbol in (
        (True, "accepted", ACCEPTED, "circle"),
        (False, "rejected (kept θ_old)", REJECTED, "x"),
    ):
        rows = accepted == ok
        trace = {
            "type": "scatter",
            "x": values(points.x[rows]),
            "y": values(frac[rows]) if ok else [0.0] * int(rows.sum()),
            "customdata": values(points.update[rows]),
            "mode": "markers",
            "name": name,
            "marker": {"color": color, "symbol": symbol, "size": 8 if ok else 10},
            "hovertemplate": f"{name}: αⁱ=%{{y:.3g}}<br>update %{{customdata:.0f}}<extra></extra>",
        }
        traces.append(on(trace, 1))
    return traces


def _backtrack_traces(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Row 2: the number of backtracks i of each update, as grey bars."""
    if not has(metrics, LS_BACKTRACKS.name):
        return []
    points = series(metrics, LS_BACKTRACKS.name)
    bars = {
        "type": "bar",
        "x": values(points.x),
        "y": values(points.y),
        "name": "backtracks",
        "marker": {"color": "#94a3b8"},
    }
    return [on(bars, 2)]


def _surrogate_traces(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Row 3: predicted surrogate improvement gᵀs (dotted) and the actual change ΔL."""
    return [
        metric_line(series(metrics, key), label, color, line=line, subplot=3)
        for key, label, color, line in (
            (SURROGATE_PREDICTED.name, "predicted gᵀs", COLORS[3], {"dash": "dot"}),
            (SURROGATE_ACTUAL.name, "actual ΔL", COLORS[0], None),
        )
        if has(metrics, key)
    ]

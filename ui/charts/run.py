"""A run's charts: episode return, the diagnostics grid, and every chart that applies to a run
by name (:func:`run_figure_dicts`, with the KL and line-search charts of ``trust_region``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core.metrics import (
    APPROX_KL,
    CG_RESIDUAL,
    CLIP_FRAC,
    ENTROPY,
    ENV_STEPS,
    EPISODE_RETURN_MEAN,
    EPOCHS_RUN,
    EPSILON,
    EVAL_RETURN_MEAN,
    EXPLAINED_VARIANCE,
    FPS,
    KL_BETA,
    KL_MEAN,
    LS_ACCEPTED,
    POLICY_LOSS,
    Q_MEAN,
    STEP_NORM,
    TD_LOSS,
    VALUE_LOSS,
    kl_bound,
)
from core.metrics import label as metric_label
from ui.charts.events import parameter_history
from ui.charts.style import COLORS, X_TITLE
from ui.charts.traces import (
    FigureDict,
    empty_note,
    figure,
    grid,
    has,
    metric_line,
    series,
    subplots,
    values,
)
from ui.charts.trust_region import kl_figure, line_search_figure
from ui.downsample import downsample

MAX_DOTS = 400  # episode dots on the return chart

# Charted in the diagnostics grid when a run reports them, in this order.
DIAGNOSTICS = tuple(
    m.name
    for m in (
        VALUE_LOSS,
        POLICY_LOSS,
        ENTROPY,
        EXPLAINED_VARIANCE,
        CLIP_FRAC,
        APPROX_KL,
        KL_BETA,
        EPOCHS_RUN,
        TD_LOSS,
        Q_MEAN,
        EPSILON,
        CG_RESIDUAL,
        STEP_NORM,
        FPS,
    )
)


def smoothed_returns(episodes: pd.DataFrame, window: int) -> pd.Series:
    """Moving average of the last ``window`` episode returns: ȳ_i = mean(ret_{i−w+1..i})."""
    return episodes["ret"].rolling(window, min_periods=1).mean()


def return_figure(
    metrics: pd.DataFrame,
    episodes: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    smooth: int = 20,
    large: bool = False,
    revision: str | None = None,
) -> FigureDict:
    """Episode return vs env steps: every episode (dots), a moving average, evaluation returns."""
    if not episodes.empty:
        traces = _episode_traces(episodes, smooth)
    elif has(metrics, EPISODE_RETURN_MEAN.name):
        traces = [metric_line(series(metrics, EPISODE_RETURN_MEAN.name), "mean return", COLORS[0])]
    else:
        traces = []
    if has(metrics, EVAL_RETURN_MEAN.name):
        points = series(metrics, EVAL_RETURN_MEAN.name)
        marker = {"symbol": "diamond", "size": 8}
        name = "evaluation return"
        traces.append(metric_line(points, name, COLORS[2], mode="lines+markers", marker=marker))
    notes = [] if traces else [empty_note("waiting for the first finished episode…")]
    axes = {"xaxis": {"title": {"text": X_TITLE}}, "yaxis": {"title": {"text": "return"}}}
    return figure(
        traces,
        axes,
        title="Episode return",
        events=events,
        notes=notes,
        large=large,
        revision=revision,
    )


def _episode_traces(episodes: pd.DataFrame, smooth: int) -> list[dict[str, Any]]:
    """Every episode's return as a dot (at most ``MAX_DOTS``, evenly spaced: each is an SVG node
    the browser redraws at every refresh) and the moving average of the last ``smooth``."""
    ep = episodes.sort_values("env_step").reset_index(drop=True)
    shown = downsample(ep.assign(smoothed=smoothed_returns(ep, smooth)))
    some = downsample(ep, MAX_DOTS)
    dots = {
        "type": "scatter",
        "x": values(some["env_step"]),
        "y": values(some["ret"]),
        "mode": "markers",
        "name": "episode return",
        "marker": {"color": COLORS[0], "size": 4, "opacity": 0.3},
        "hovertemplate": "return %{y:.4g}<extra></extra>",
    }
    average = {
        "type": "scatter",
        "x": values(shown["env_step"]),
        "y": values(shown["smoothed"]),
        "mode": "lines",
        "name": f"moving average ({smooth} episodes)",
        "line": {"color": COLORS[0], "width": 2.5},
        "hovertemplate": "smoothed %{y:.4g}<extra></extra>",
    }
    return [dots, average]


def available_diagnostics(metrics: pd.DataFrame) -> list[str]:
    """The diagnostics this run reports (at least one non-NaN value), in display order."""
    return [k for k in DIAGNOSTICS if has(metrics, k)]


def diagnostics_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    keys: Iterable[str] | None = None,
    large: bool = False,
    revision: str | None = None,
) -> FigureDict:
    """Small multiples (two per row) of losses, entropy, explained variance, β, ε… vs env steps,
    each titled with its label in the metric catalogue (``core/metrics.py``)."""
    keys = list(keys) if keys is not None else available_diagnostics(metrics)
    keys = [k for k in keys if has(metrics, k)]
    if not keys:
        notes = [empty_note("no diagnostics reported yet")]
        return figure(
            [], {}, title="Diagnostics", events=None, notes=notes, large=large, revision=revision
        )
    rows = math.ceil(len(keys) / 2)
    cells = grid(rows, 2, vspace=min(0.12, 0.5 / rows))[: len(keys)]
    labels = [metric_label(k) for k in keys]
    axes, notes = subplots(cells, labels, cols=2, large=large)
    traces = [
        metric_line(series(metrics, k), label, COLORS[i % 8], subplot=i + 1, showlegend=False)
        for i, (k, label) in enumerate(zip(keys, labels))
    ]
    return figure(
        traces,
        axes,
        title="Diagnostics",
        events=events,
        notes=notes,
        subtitled=True,
        event_xrefs=("x", "x2")[: len(keys)],
        large=large,
        revision=revision,
        height=120 + 200 * rows,
    )


def run_figure_dicts(
    metrics: pd.DataFrame,
    episodes: pd.DataFrame,
    events: pd.DataFrame | None,
    *,
    algo: str,
    config_values: Mapping[str, object],
    large: bool = False,
    revision: str | None = None,
) -> dict[str, FigureDict]:
    """Every chart that applies to a run, by name (return, kl, line_search, diagnostics), as
    Plotly JSON dicts: plain lists, None for NaN, ready for ``st.plotly_chart`` or ``go.Figure``.

    The KL chart's reference line is the algorithm's KL bound in the metric catalogue
    (``core.metrics.kl_bound``), followed through its live changes."""
    x_end = float(metrics[ENV_STEPS.name].max()) if not metrics.empty else 0.0
    figs = {"return": return_figure(metrics, episodes, events, large=large, revision=revision)}
    bound = kl_bound(algo)
    reference = (
        parameter_history(config_values.get(bound.key), events, bound.key, x_end) if bound else None
    )
    if any(has(metrics, k) for k in (KL_MEAN.name, APPROX_KL.name)) or reference is not None:
        figs["kl"] = kl_figure(
            metrics,
            events,
            reference=reference,
            reference_label=bound.label if bound else "",
            large=large,
            revision=revision,
        )
    if has(metrics, LS_ACCEPTED.name):
        figs["line_search"] = line_search_figure(metrics, events, large=large, revision=revision)
    figs["diagnostics"] = diagnostics_figure(metrics, events, large=large, revision=revision)
    return figs


def run_figures(
    metrics: pd.DataFrame,
    episodes: pd.DataFrame,
    events: pd.DataFrame | None,
    *,
    algo: str,
    config_values: Mapping[str, object],
    large: bool = False,
    revision: str | None = None,
) -> dict[str, go.Figure]:
    """:func:`run_figure_dicts` as ``go.Figure`` objects (for exports; slower: Plotly validates)."""
    dicts = run_figure_dicts(
        metrics,
        episodes,
        events,
        algo=algo,
        config_values=config_values,
        large=large,
        revision=revision,
    )
    return {name: go.Figure(d) for name, d in dicts.items()}

"""Pure Plotly figure builders: DataFrames from the store → figures. No Streamlit here.

A run's live charts are built as plain Plotly JSON dicts (:func:`run_figure_dicts`: no ``go``
objects, no property validation, so they are cheap to rebuild every second); the charts that
compare runs are ``go.Figure`` objects.

Inputs are the store's frames (``RunStore.metrics``/``episodes``/``events``): one row per update
with ``env_steps``, ``update``, ``wall_time`` and the trainers' metrics; one row per
finished episode (``env_step``, ``ret``); one row per event (``kind``, ``env_step``, ``payload``).
Every x axis of a run's charts is env steps, so a live hyperparameter change (an event at an env
step) is the same vertical marker on every chart.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.config import ALGO_PARAMS, RunConfig
from ui.downsample import downsample

MAX_DOTS = 400  # episode dots on the return chart
MARKED_UPDATES = 150  # the KL chart marks each update up to this many updates

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"]
ACCEPTED = "#16a34a"
REJECTED = "#dc2626"
REFERENCE = "#111827"
EVENT = "#f59e0b"
EXPORT_TEMPLATE = "plotly_white"

METRIC_LABELS = {
    "episode_return_mean": "Episode return (mean of last 20)",
    "eval_return_mean": "Evaluation return",
    "kl_mean": "Exact mean KL(π_old‖π_new)",
    "kl_max": "Max KL",
    "kl_quadratic": "Quadratic estimate ½ sᵀFs",
    "approx_kl": "Approx. KL (k3)",
    "value_loss": "Value loss",
    "policy_loss": "Policy loss",
    "entropy": "Entropy",
    "explained_variance": "Explained variance",
    "clip_frac": "Clip fraction",
    "kl_beta": "KL penalty β",
    "epochs_run": "Epochs run",
    "td_loss": "TD loss",
    "q_mean": "Mean Q",
    "epsilon": "Exploration ε",
    "cg_residual": "CG residual rᵀr",
    "cg_iters": "CG iterations",
    "step_norm": "Step norm ‖s‖",
    "fps": "Env steps / s",
}
# Trace names on the KL chart (short, so the legend fits on one line).
KL_NAMES = {
    "kl_mean": "exact mean KL",
    "kl_quadratic": "quadratic ½ sᵀFs",
    "approx_kl": "approx. KL (k3)",
    "kl_max": "max KL",
}
# Charted in the diagnostics grid when a run reports them, in this order.
DIAGNOSTICS = (
    "value_loss",
    "policy_loss",
    "entropy",
    "explained_variance",
    "clip_frac",
    "approx_kl",
    "kl_beta",
    "epochs_run",
    "td_loss",
    "q_mean",
    "epsilon",
    "cg_residual",
    "step_norm",
    "fps",
)
# The KL reference drawn on the KL chart: algorithm → (hyperparameter, label).
KL_REFERENCE = {
    "trpo": ("delta", "δ"),
    "npg": ("delta", "δ"),
    "ppo-kl": ("kl_target", "d_targ"),
    "ppo": ("target_kl", "early-stop KL"),
}


# ---------------------------------------------------------------------------------------------
# Shared styling and markers
# ---------------------------------------------------------------------------------------------

# A figure as Plotly JSON: {"data": [trace, ...], "layout": {...}}, built without go objects.
FigureDict = dict[str, Any]
# Width (px) assumed for one legend row when reserving room for a legend under a run's chart.
LEGEND_ROW_PX = 500
# The symbol a widget label ends with ("KL bound δ", "KL target d_targ", "CG damping c").
_SYMBOL = re.compile(r" ((?:log )?(?:[^\W\d_A-Za-z]+|[a-z]|[a-z]+_[a-z]+))$")


def _base_font(large: bool) -> int:
    return 18 if large else 13


def _subtitle_size(large: bool) -> int:
    return 20 if large else 16


def _house_style(title: str, *, large: bool, revision: str | None, height: int) -> dict[str, Any]:
    """Title at the top left, font sizes, height, unified hover and ``uirevision``.

    No Plotly template is applied (it costs ~10 ms per figure on every refresh): in the page,
    Streamlit's theme styles the charts; exports add ``EXPORT_TEMPLATE``.

    Plotly keeps the user's zoom and legend clicks while ``layout.uirevision`` stays the same, so a
    live chart that is redrawn every second with the same revision does not jump back.
    """
    base = _base_font(large)
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
        **_house_style(title, large=large, revision=revision, height=height),
        margin={"l": 60, "r": 20, "t": 90, "b": 50},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "x": 0,
            "font": {"size": _base_font(large) - 1},
        },
    )
    if large:
        fig.update_traces(selector={"mode": "lines"}, line={"width": 3})
    return fig


def _run_layout(
    title: str, *, large: bool, revision: str | None, height: int, subtitled: bool, legend_rows: int
) -> dict[str, Any]:
    """House style of a run's chart: the legend in ``legend_rows`` rows under the x-axis title.

    Sizes in px are estimated from the fonts (a line of text ≈ 1.5 × its font size): the top
    margin holds the title and, if ``subtitled``, the subplot titles above the first row; the
    bottom margin holds the tick labels, the x-axis title and the legend, so nothing overlaps.
    """
    style = _house_style(title, large=large, revision=revision, height=height)
    base, px = _base_font(large), style["height"]
    under_title = 1.5 * _subtitle_size(large) + 6 if subtitled else 10
    top = 0.02 * px + 1.5 * (base + 4) + under_title
    axis = 4 * base + 12  # tick labels and the axis title under the plot area
    legend = legend_rows * math.ceil(1.7 * (base - 1))
    bottom = axis + (legend + 14 if legend_rows else 8)
    style["margin"] = {"l": 60, "r": 20, "t": round(top), "b": round(bottom)}
    style["legend"] = {
        "orientation": "h",
        "xanchor": "left",
        "x": 0,
        "yanchor": "top",
        "y": -round((axis + 6) / (px - round(top) - round(bottom)), 4),
        "font": {"size": base - 1},
    }
    return style


def _legend_rows(data: list[dict[str, Any]], large: bool) -> int:
    """Rows the horizontal legend needs; 0 when Plotly shows none (no entry, or a single trace)."""
    names = [t["name"] for t in data if t.get("showlegend", True)]
    if not names or len(data) < 2:
        return 0
    width = sum(40 + 0.6 * (_base_font(large) - 1) * len(n) for n in names)
    return min(3, math.ceil(width / LEGEND_ROW_PX))


def _figure(
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
    shapes, texts, entry = _event_layers(events, event_xrefs, large)
    data = traces + entry
    if large:
        for trace in data:
            if trace.get("mode") == "lines":
                trace["line"] = {**trace.get("line", {}), "width": 3}
    layout = _run_layout(
        title,
        large=large,
        revision=revision,
        height=height,
        subtitled=subtitled,
        legend_rows=_legend_rows(data, large),
    )
    for name, axis in (axes or {"xaxis": {}, "yaxis": {}}).items():
        layout[name] = {**axis, "tickfont": {"size": _base_font(large)}}
    layout["annotations"] = [*notes, *texts]
    layout["shapes"] = shapes
    return {"data": data, "layout": layout}


@functools.cache
def _field_labels() -> dict[str, str]:
    """Each config field's label as the widgets show it, shortened to its symbol if it ends in one
    (``delta`` → ``δ``, ``gae_lambda`` → ``λ``, ``lr`` → ``Learning rate``)."""
    owners = (RunConfig, *ALGO_PARAMS.values())
    return {
        f.name: _short_label(f.metadata["spec"].label)
        for owner in owners
        for f in dataclasses.fields(owner)
        if f.name != "params"
    }


def _short_label(label: str) -> str:
    """``"KL bound δ"`` → ``"δ"``, ``"Initial log σ"`` → ``"log σ"``; else the label itself."""
    symbol = _SYMBOL.search(label)
    return symbol.group(1) if symbol else label


def hyperparameter_changes(events: pd.DataFrame | None) -> list[tuple[float, str]]:
    """(env step, "δ 0.01→0.02, λ 0.95→0.9") for each recorded live change (:func:`change_text`)."""
    if events is None or events.empty:
        return []
    return [(step, change_text(payload)) for step, payload in _hyperparam_events(events)]


def change_text(changes: Mapping[str, Sequence[object]]) -> str:
    """``{"delta": [0.01, 0.02], "gae_lambda": [0.95, 0.9]}`` → ``"δ 0.01→0.02, λ 0.95→0.9"``.

    Each hyperparameter is named as its widget is: the symbol its label ends with, else the whole
    label (a key no config knows stays as it is).
    """
    labels = _field_labels()
    return ", ".join(
        f"{labels.get(k, k)} {_fmt(old)}→{_fmt(new)}" for k, (old, new) in changes.items()
    )


def _hyperparam_events(events: pd.DataFrame) -> list[tuple[float, dict[str, Any]]]:
    """(env step, {key: [old, new]}) of each ``hyperparams`` event, in order."""
    changes = events[events["kind"] == "hyperparams"]
    return [
        (float(step), payload or {})
        for step, payload in zip(changes["env_step"], changes["payload"])
    ]


def _event_layers(
    events: pd.DataFrame | None, xrefs: tuple[str, ...], large: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The hyperparameter changes: (shapes, annotations, legend entry).

    Each change is one dashed vertical line over the whole height of the plot area per x axis in
    ``xrefs`` (one per column of subplots, so every row shares it), its text at the top, and one
    "hyperparameter change" legend entry for all of them.
    """
    changes = hyperparameter_changes(events)
    shapes = [_event_line(x, xref) for x, _ in changes for xref in xrefs]
    texts = [_event_text(x, text, i, large) for i, (x, text) in enumerate(changes)]
    entry = {
        "type": "scatter",
        "x": [None],
        "y": [None],
        "mode": "lines",
        "name": "hyperparameter change",
        "line": {"color": EVENT, "dash": "dash"},
    }
    return shapes, texts, [entry] if changes else []


def _event_line(x: float, xref: str) -> dict[str, Any]:
    """A dashed vertical line at env step ``x`` from the bottom to the top of the plot area."""
    return {
        "type": "line",
        "xref": xref,
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": EVENT, "width": 2, "dash": "dash"},
    }


def _event_text(x: float, text: str, i: int, large: bool) -> dict[str, Any]:
    """The change's text at the top of its line; three heights in turn so neighbours don't clash."""
    return {
        "text": text,
        "x": x,
        "y": 1.0,
        "xref": "x",
        "yref": "paper",
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "top",
        "yshift": -4 - (_base_font(large) + 3) * (i % 3),
        "font": {"size": _base_font(large) - 2, "color": "#92400e"},
        "bgcolor": "rgba(255,251,235,0.85)",
    }


def parameter_history(
    initial: float | None, events: pd.DataFrame | None, key: str, x_end: float
) -> pd.DataFrame:
    """The value of hyperparameter ``key`` over env steps, as a step function ending at ``x_end``.

    Starts at ``initial`` (the run's config) and changes at each ``hyperparams`` event naming it.
    Rows with a None value (the option switched off) are kept as NaN so the line breaks there.
    """
    xs, ys = [0.0], [initial]
    if events is not None and not events.empty:
        for step, payload in _hyperparam_events(events):
            if key in payload:
                xs.append(step)
                ys.append(payload[key][1])
    xs.append(max(float(x_end), xs[-1]))
    ys.append(ys[-1])
    values = [np.nan if v is None else float(v) for v in ys]
    return pd.DataFrame({"env_step": xs, "value": values})


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _has(metrics: pd.DataFrame, key: str) -> bool:
    return key in metrics.columns and metrics[key].notna().any()


class _Points(NamedTuple):
    """The updates that report a metric (at most ``MAX_POINTS`` of them, evenly spaced)."""

    rows: np.ndarray  # positions in the metrics frame
    x: np.ndarray  # env steps
    update: np.ndarray
    y: np.ndarray


def _column(frame: pd.DataFrame, key: str) -> np.ndarray:
    return frame[key].to_numpy(dtype=float, na_value=np.nan)


def _series(metrics: pd.DataFrame, key: str) -> _Points:
    """Metric ``key`` where it is reported (not NaN), downsampled (numpy: no pandas indexing)."""
    y = _column(metrics, key)
    rows = downsample(pd.Series(np.flatnonzero(~np.isnan(y)))).to_numpy()
    x, update = _column(metrics, "env_steps")[rows], _column(metrics, "update")[rows]
    return _Points(rows, x, update, y[rows])


def _values(values: pd.Series | np.ndarray) -> list[float | None]:
    """A plain list of floats for JSON; NaN and ±inf become None (Plotly leaves a gap)."""
    if isinstance(values, pd.Series):
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=float)
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


def _on(trace: dict[str, Any], subplot: int | None) -> dict[str, Any]:
    """``trace`` on subplot ``subplot`` (1-based), or on the only axes when None."""
    if subplot is not None:
        trace["xaxis"], trace["yaxis"] = _ref("x", subplot), _ref("y", subplot)
    return trace


def _line(
    points: _Points,
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
        "x": _values(points.x),
        "y": _values(points.y),
        "customdata": _values(points.update),
        "mode": mode,
        "name": name,
        "line": {"color": color, **(line or {})},
        "hovertemplate": f"{name}: %{{y:.4g}}<br>update %{{customdata:.0f}}<extra></extra>",
        **extra,
    }
    return _on(trace, subplot)


def _empty_note(text: str) -> dict[str, Any]:
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


def _grid(
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


def _subplots(
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
            xaxis["title"] = {"text": "env steps"}
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
            "font": {"size": _subtitle_size(large)},
        }
        for text, (x, y) in zip(titles, cells)
    ]
    return axes, notes


# ---------------------------------------------------------------------------------------------
# One run (Plotly JSON dicts: cheap enough to rebuild every second on a live page)
# ---------------------------------------------------------------------------------------------


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
    elif _has(metrics, "episode_return_mean"):
        traces = [_line(_series(metrics, "episode_return_mean"), "mean return", COLORS[0])]
    else:
        traces = []
    if _has(metrics, "eval_return_mean"):
        points = _series(metrics, "eval_return_mean")
        marker = {"symbol": "diamond", "size": 8}
        name = "evaluation return"
        traces.append(_line(points, name, COLORS[2], mode="lines+markers", marker=marker))
    notes = [] if traces else [_empty_note("waiting for the first finished episode…")]
    axes = {"xaxis": {"title": {"text": "env steps"}}, "yaxis": {"title": {"text": "return"}}}
    return _figure(
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
        "x": _values(some["env_step"]),
        "y": _values(some["ret"]),
        "mode": "markers",
        "name": "episode return",
        "marker": {"color": COLORS[0], "size": 4, "opacity": 0.3},
        "hovertemplate": "return %{y:.4g}<extra></extra>",
    }
    average = {
        "type": "scatter",
        "x": _values(shown["env_step"]),
        "y": _values(shown["smoothed"]),
        "mode": "lines",
        "name": f"moving average ({smooth} episodes)",
        "line": {"color": COLORS[0], "width": 2.5},
        "hovertemplate": "smoothed %{y:.4g}<extra></extra>",
    }
    return [dots, average]


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
        _line(_series(metrics, key), KL_NAMES[key], color, **extra)
        for key, color, extra in (
            ("kl_mean", COLORS[0], mean_style),
            ("kl_quadratic", COLORS[3], {"line": {"dash": "dot"}}),
            ("approx_kl", COLORS[4], {}),
            ("kl_max", "#94a3b8", {"line": {"width": 1}, "visible": "legendonly"}),
        )
        if _has(metrics, key)
    ]
    if reference is not None and reference["value"].notna().any():
        traces.append(_reference_trace(reference, reference_label))
    notes = [] if traces else [_empty_note("no KL reported yet")]
    axes = {
        "xaxis": {"title": {"text": "env steps"}},
        "yaxis": {"title": {"text": "KL (nats)"}, "rangemode": "tozero"},
    }
    return _figure(
        traces,
        axes,
        title="KL per update",
        events=events,
        notes=notes,
        large=large,
        revision=revision,
    )


def _reference_trace(reference: pd.DataFrame, label: str) -> dict[str, Any]:
    """The KL bound over env steps (from :func:`parameter_history`) as a black step line."""
    return {
        "type": "scatter",
        "x": _values(reference["env_step"]),
        "y": _values(reference["value"]),
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
    cells = _grid(3, 1, vspace=0.07, row_heights=[0.4, 0.2, 0.4])
    titles = ["accepted step fraction αⁱ", "backtracks", "surrogate improvement"]
    axes, notes = _subplots(cells, titles, cols=1, large=large)
    axes["yaxis"]["range"] = [-0.05, 1.05]
    axes["yaxis2"]["rangemode"] = "nonnegative"
    traces = [*_step_traces(metrics), *_backtrack_traces(metrics), *_surrogate_traces(metrics)]
    return _figure(
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
    if not _has(metrics, "ls_accepted"):
        return []
    points = _series(metrics, "ls_accepted")
    has_frac = "ls_step_frac" in metrics
    frac = _column(metrics, "ls_step_frac")[points.rows] if has_frac else np.ones(len(points.y))
    accepted = points.y > 0.5
    traces = []
    for ok, name, color, symbol in (
        (True, "accepted", ACCEPTED, "circle"),
        (False, "rejected (kept θ_old)", REJECTED, "x"),
    ):
        rows = accepted == ok
        trace = {
            "type": "scatter",
            "x": _values(points.x[rows]),
            "y": _values(frac[rows]) if ok else [0.0] * int(rows.sum()),
            "customdata": _values(points.update[rows]),
            "mode": "markers",
            "name": name,
            "marker": {"color": color, "symbol": symbol, "size": 8 if ok else 10},
            "hovertemplate": f"{name}: αⁱ=%{{y:.3g}}<br>update %{{customdata:.0f}}<extra></extra>",
        }
        traces.append(_on(trace, 1))
    return traces


def _backtrack_traces(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Row 2: the number of backtracks i of each update, as grey bars."""
    if not _has(metrics, "ls_backtracks"):
        return []
    points = _series(metrics, "ls_backtracks")
    bars = {
        "type": "bar",
        "x": _values(points.x),
        "y": _values(points.y),
        "name": "backtracks",
        "marker": {"color": "#94a3b8"},
    }
    return [_on(bars, 2)]


def _surrogate_traces(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Row 3: predicted surrogate improvement gᵀs (dotted) and the actual change ΔL."""
    return [
        _line(_series(metrics, key), label, color, line=line, subplot=3)
        for key, label, color, line in (
            ("surrogate_predicted", "predicted gᵀs", COLORS[3], {"dash": "dot"}),
            ("surrogate_actual", "actual ΔL", COLORS[0], None),
        )
        if _has(metrics, key)
    ]


def available_diagnostics(metrics: pd.DataFrame) -> list[str]:
    """The diagnostics this run reports (at least one non-NaN value), in display order."""
    return [k for k in DIAGNOSTICS if _has(metrics, k)]


def diagnostics_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    keys: Iterable[str] | None = None,
    large: bool = False,
    revision: str | None = None,
) -> FigureDict:
    """Small multiples (two per row) of losses, entropy, explained variance, β, ε… vs env steps."""
    keys = list(keys) if keys is not None else available_diagnostics(metrics)
    keys = [k for k in keys if _has(metrics, k)]
    if not keys:
        notes = [_empty_note("no diagnostics reported yet")]
        return _figure(
            [], {}, title="Diagnostics", events=None, notes=notes, large=large, revision=revision
        )
    rows = math.ceil(len(keys) / 2)
    cells = _grid(rows, 2, vspace=min(0.12, 0.5 / rows))[: len(keys)]
    labels = [METRIC_LABELS.get(k, k) for k in keys]
    axes, notes = _subplots(cells, labels, cols=2, large=large)
    traces = [
        _line(_series(metrics, k), label, COLORS[i % 8], subplot=i + 1, showlegend=False)
        for i, (k, label) in enumerate(zip(keys, labels))
    ]
    return _figure(
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
    Plotly JSON dicts: plain lists, None for NaN, ready for ``st.plotly_chart`` or ``go.Figure``."""
    x_end = float(metrics["env_steps"].max()) if not metrics.empty else 0.0
    figs = {"return": return_figure(metrics, episodes, events, large=large, revision=revision)}
    ref_key, ref_label = KL_REFERENCE.get(algo, (None, ""))
    reference = (
        parameter_history(config_values.get(ref_key), events, ref_key, x_end) if ref_key else None
    )
    if any(_has(metrics, k) for k in ("kl_mean", "approx_kl")) or reference is not None:
        figs["kl"] = kl_figure(
            metrics,
            events,
            reference=reference,
            reference_label=ref_label,
            large=large,
            revision=revision,
        )
    if _has(metrics, "ls_accepted"):
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


# ---------------------------------------------------------------------------------------------
# Several runs
# ---------------------------------------------------------------------------------------------


def seed_group(name: str | None, algo: str) -> str:
    """A run's name without its seed (``… · seed 3`` or ``… seed=3``): what its seeds share."""
    return re.sub(r"\s*·?\s*seed[ =]-?\d+$", "", name or "") or algo


def point_labels(points: pd.DataFrame, fallback: Mapping[str, str]) -> dict[str, str]:
    """The curve of each run: its grid point, so that the seeds of one point share a label.

    ``points`` is ``core.sweep.local.sweep_points(runs)`` (run_id, the hyperparameters that differ,
    seed). A label names the algorithm when there are several, then every hyperparameter that
    takes more than one value among the runs of one algorithm (``delta=0.01 gae_lambda=0.9``); a
    key another algorithm lacks, or one that differs only because the algorithms differ, is left
    out. A run whose label would be empty takes ``fallback[run_id]``.
    """
    algos = points["algo"] if "algo" in points else pd.Series("", index=points.index)
    keys = [c for c in points.columns if c not in ("run_id", "seed", "point", "algo")]
    varying = [
        k for k in keys if (points[k].dropna().map(_fmt_value).groupby(algos).nunique() > 1).any()
    ]
    labels = {}
    for i, run_id in enumerate(points["run_id"]):
        parts = [algos.iloc[i]] if algos.nunique() > 1 else []
        parts += [
            f"{k}={_fmt_value(points[k].iloc[i])}" for k in varying if _given(points[k].iloc[i])
        ]
        labels[run_id] = " ".join(parts) or fallback[run_id]
    return labels


def _given(value: object) -> bool:
    return not (isinstance(value, float) and math.isnan(value)) and value is not None


def _fmt_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return str(value)


def seed_band(
    metrics: pd.DataFrame,
    labels: Mapping[str, str],
    *,
    x: str = "env_steps",
    y: str = "episode_return_mean",
    grid_points: int = 200,
) -> pd.DataFrame:
    """Mean and standard deviation across the runs of each group on a common x grid.

    Each run's curve is linearly interpolated onto x_k = k·x_max/(K−1) inside its own x range
    (NaN outside it, so no run is extrapolated); then, per group and grid point,
    mean = (1/n) Σ y_r(x_k), std = √((1/n) Σ (y_r − mean)²) over the n runs that reached x_k.
    Returns columns: label, x, mean, std, n.
    """
    cols = ["label", "x", "mean", "std", "n"]
    data = metrics[metrics["run_id"].isin(labels)].dropna(subset=[x, y])
    if data.empty:
        return pd.DataFrame(columns=cols)
    grid = np.linspace(0.0, float(data[x].max()), grid_points)
    curves: dict[str, list[np.ndarray]] = {}
    for run_id, run in data.groupby("run_id"):
        run = run.sort_values(x)
        xs, ys = run[x].to_numpy(float), run[y].to_numpy(float)
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        curves.setdefault(labels[run_id], []).append(
            np.where(inside, np.interp(grid, xs, ys), np.nan)
        )
    frames = []
    for label, ys in curves.items():
        stack = np.vstack(ys)
        n = np.sum(~np.isnan(stack), axis=0)
        keep = n > 0
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(stack[:, keep], axis=0)
            std = np.nanstd(stack[:, keep], axis=0)
        frames.append(
            pd.DataFrame({"label": label, "x": grid[keep], "mean": mean, "std": std, "n": n[keep]})
        )
    return pd.concat(frames, ignore_index=True)


def compare_figure(
    band: pd.DataFrame,
    *,
    x_title: str = "env steps",
    y_title: str = "return",
    threshold: float | None = None,
    large: bool = False,
    revision: str | None = None,
) -> go.Figure:
    """Mean ± one standard deviation across seeds, one colour per group (from :func:`seed_band`)."""
    fig = go.Figure()
    for i, (label, g) in enumerate(band.groupby("label", sort=False)):
        color = COLORS[i % len(COLORS)]
        upper, lower = g["mean"] + g["std"], g["mean"] - g["std"]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([g["x"], g["x"][::-1]]),
                y=np.concatenate([upper, lower[::-1]]),
                fill="toself",
                fillcolor=_rgba(color, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=label,
                name=f"{label} ± std",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=g["x"],
                y=g["mean"],
                customdata=np.stack([g["std"], g["n"]], axis=-1),
                mode="lines",
                name=label,
                legendgroup=label,
                line={"color": color, "width": 2.5},
                hovertemplate=(
                    f"{label}: %{{y:.4g}} ± %{{customdata[0]:.3g}} (%{{customdata[1]}} runs)"
                    "<extra></extra>"
                ),
            )
        )
    if threshold is not None:
        fig.add_hline(
            y=threshold, line={"color": REFERENCE, "dash": "dot"}, annotation_text="threshold"
        )
    if not fig.data:
        fig.add_annotation(_empty_note("no returns yet"))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return finish(
        fig,
        title=f"{y_title.capitalize()} vs {x_title} (mean ± std across seeds)",
        large=large,
        revision=revision,
        height=420,
    )


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def run_summary(metrics: pd.DataFrame, labels: Mapping[str, str], threshold: float) -> pd.DataFrame:
    """Per run: final return, env steps to reach ``threshold`` (NaN if never), env steps per second.

    final return = the last reported ``episode_return_mean``; steps to threshold = the first
    ``env_steps`` with ``episode_return_mean ≥ threshold``; speed = env_steps / wall_time.
    """
    rows = []
    for run_id, label in labels.items():
        run = metrics[metrics["run_id"] == run_id].sort_values("env_steps")
        ret = run.dropna(subset=["episode_return_mean"]) if not run.empty else run
        reached = ret[ret["episode_return_mean"] >= threshold] if not ret.empty else ret
        last = run.iloc[-1] if not run.empty else None
        rows.append(
            {
                "run_id": run_id,
                "label": label,
                "env_steps": float(last["env_steps"]) if last is not None else 0.0,
                "final_return": float(ret["episode_return_mean"].iloc[-1])
                if not ret.empty
                else np.nan,
                "steps_to_threshold": float(reached["env_steps"].iloc[0])
                if not reached.empty
                else np.nan,
                "env_steps_per_s": float(last["env_steps"] / last["wall_time"])
                if last is not None and last["wall_time"] > 0
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def group_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per group: runs, final return mean/std, median steps to threshold, runs that reached it."""
    if summary.empty:
        return summary
    grouped = summary.groupby("label", sort=False)
    return pd.DataFrame(
        {
            "runs": grouped.size(),
            "final return (mean)": grouped["final_return"].mean(),
            "final return (std)": grouped["final_return"].std(ddof=0),
            "steps to threshold (median)": grouped["steps_to_threshold"].median(),
            "reached threshold": grouped["steps_to_threshold"].count(),
            "env steps / s": grouped["env_steps_per_s"].mean(),
        }
    ).reset_index(names="group")

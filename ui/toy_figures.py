"""Pure Plotly builders for the Trust Region Lab (arrays and traces in, ``go.Figure`` out).

Sized for a projector: large fonts, thick lines, colours that stay distinct for colour-blind
viewers (orange = vanilla gradient, purple = natural gradient, blue = TRPO, green / red =
accepted / rejected line-search trials, black = exact KL ball, pink dashes = its quadratic model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labs.toy_problems import Bounds
from core.labs.toy_step import LabStep, Path
from ui.toy_geometry import Grid
from ui.toy_stages import LAYERS, Stage

FONT = 18
COLORS = {
    "vanilla": "#e66100",
    "npg": "#7b3294",
    "trpo": "#0072b2",
    "accepted": "#1a9850",
    "rejected": "#d7191c",
    "kl": "#111111",
    "quadratic": "#d01c8b",
    "cg": "#4d4d4d",
    "start": "#111111",
}
METHOD_NAMES = {"vanilla": "vanilla gradient", "npg": "NPG (no line search)", "trpo": "TRPO"}
CONTOUR_SCALE = [[0.0, "#f7fbff"], [0.35, "#c6dbef"], [0.7, "#6baed6"], [1.0, "#2171b5"]]
# Names the page's tests look for in the figure's JSON.
TRACE_KL = "exact KL = δ"
TRACE_ELLIPSE = "quadratic ½dᵀFd = δ"
TRACE_VANILLA = "vanilla g (to the ellipse)"
TRACE_NATURAL = "natural F⁻¹g (to the ellipse)"
TRACE_CG = "CG iterates (scaled like s)"
TRACE_ACCEPTED = "line search: accepted"
TRACE_REJECTED = "line search: rejected"
TRACE_CLICK = "click to set θ₀"
TRACE_STEP = "max step s (on the ellipse)"
TRACE_NEW = "θ_new"
# N-update paths: each method its own line dash, width and marker, so paths that coincide (NPG
# and TRPO while every line search accepts the full step) stay visible: NPG's wide dashed line
# and large open diamonds lie under TRPO's thin line and small dots.
PATH_STYLES = {
    "vanilla": dict(dash="solid", width=4, symbol="square", size=9),
    "npg": dict(dash="dash", width=7, symbol="diamond-open", size=17),
    "trpo": dict(dash="solid", width=2.5, symbol="circle", size=7),
}


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        template="plotly_white",
        font=dict(size=FONT),
        hoverlabel=dict(font_size=FONT),
        margin=dict(l=70, r=20, t=50, b=60),
        legend=dict(font=dict(size=FONT - 2), bgcolor="rgba(255,255,255,0.85)"),
    )
    return fig


def _np(x) -> np.ndarray:
    return np.asarray(x.tolist() if hasattr(x, "tolist") else x, dtype=float)


def _landscape(
    grid: Grid,
    values: np.ndarray,
    title: str,
    labels: Sequence[str],
    bounds: Bounds,
    equal_aspect: bool = True,
) -> go.Figure:
    """Filled contours of ``values`` over the grid, fixed window (equal axis scales or not)."""
    fig = go.Figure(
        go.Contour(
            x=_np(grid.x),
            y=_np(grid.y),
            z=values,
            colorscale=CONTOUR_SCALE,
            ncontours=18,
            contours=dict(showlabels=True, labelfont=dict(size=FONT - 4, color="#333")),
            line=dict(width=1, color="rgba(60,60,60,0.35)"),
            showscale=False,  # the contour lines carry their values
            hoverinfo="skip",
            name=title,
        )
    )
    fig.update_xaxes(title_text=labels[0], range=list(bounds[0]))
    fig.update_yaxes(title_text=labels[1], range=list(bounds[1]))
    if equal_aspect:
        fig.update_xaxes(constrain="domain")
        fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def _click_layer(fig: go.Figure, grid: Grid, values: np.ndarray, kl: np.ndarray | None) -> None:
    """Invisible points over the window: hovering shows the values, clicking one (Streamlit
    ``on_select``) moves θ₀ there. Every third grid node, so about 40 × 40 points."""
    sub = slice(None, None, 3)
    X, Y = np.meshgrid(_np(grid.x)[sub], _np(grid.y)[sub])
    z = values[sub, sub]
    custom = np.stack([z, kl[sub, sub]], -1) if kl is not None else z[..., None]
    extra = "<br>KL(θ₀‖θ) = %{customdata[1]:.4g}" if kl is not None else ""
    fig.add_trace(
        go.Scatter(
            x=X.ravel(),
            y=Y.ravel(),
            customdata=custom.reshape(-1, custom.shape[-1]),
            mode="markers",
            marker=dict(size=14, opacity=0),
            selected=dict(marker=dict(opacity=0)),
            unselected=dict(marker=dict(opacity=0)),
            hovertemplate="θ = (%{x:.2f}, %{y:.2f})<br>value = %{customdata[0]:.4g}"
            + extra
            + "<br><i>click: start here</i><extra></extra>",
            name=TRACE_CLICK,
            showlegend=False,
        )
    )


def _arrow(start: np.ndarray, end: np.ndarray, color: str, name: str, dash: str = "solid"):
    return go.Scatter(
        x=[start[0], end[0]],
        y=[start[1], end[1]],
        mode="lines+markers",
        line=dict(color=color, width=5, dash=dash),
        marker=dict(symbol="arrow", size=[0, 24], angleref="previous", color=color),
        unselected=dict(marker=dict(opacity=1)),
        name=name,
        hovertemplate=f"{name}<br>end = (%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
    )


def _start_marker(theta0: np.ndarray, name: str = "θ_old") -> go.Scatter:
    return go.Scatter(
        x=[theta0[0]],
        y=[theta0[1]],
        mode="markers+text",
        marker=dict(
            symbol="star", size=24, color=COLORS["start"], line=dict(width=1, color="white")
        ),
        unselected=dict(marker=dict(opacity=1)),
        text=[name],
        textposition="bottom left",
        textfont=dict(size=FONT),
        name=name,
        hovertemplate=f"{name} = (%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
    )


def step_figure(
    step: LabStep,
    grid: Grid,
    ellipse: np.ndarray,
    delta: float,
    labels: Sequence[str],
    bounds: Bounds,
    view: str = "surrogate",
    stage: Stage | None = None,
) -> go.Figure:
    """The main picture of one TRPO step from θ_old.

    Contours of ΔL(θ) = L_{θ_old}(θ) − L_{θ_old}(θ_old) (``view="surrogate"``) or of J(θ)
    (``view="objective"``); the exact KL ball {θ : D̄_KL(θ_old, θ) = δ}; its quadratic model
    θ_old + {d : ½dᵀFd = δ} (``ellipse`` holds the displacements d); the vanilla and natural
    directions, both scaled to the ellipse; the CG iterates; the max step s; every line-search
    trial. With a ``stage`` (``ui.toy_stages``) only what that stage reveals is drawn; the other
    layers stay in the legend (greyed), so the window and the legend do not move between stages.
    """
    shown = frozenset(LAYERS) if stage is None else stage.layers
    n_cg = len(step.cg_points) if stage is None else stage.cg_shown
    n_trials = len(step.trials) if stage is None else stage.trials_shown

    def visible(layer: str) -> bool | str:
        return True if layer in shown else "legendonly"

    theta0 = _np(step.theta_old)
    if view == "objective":
        values, title = _np(grid.objective), "J(θ)"
    else:
        values, title = _np(grid.surrogate), "ΔL(θ)"
    kl = _np(grid.kl)
    fig = _landscape(grid, values, title, labels, bounds)
    _click_layer(fig, grid, values, kl)
    fig.add_trace(
        go.Contour(
            x=_np(grid.x),
            y=_np(grid.y),
            z=kl,
            contours=dict(start=delta, end=delta, size=1.0, coloring="lines"),
            colorscale=[[0, COLORS["kl"]], [1, COLORS["kl"]]],
            line=dict(width=4),
            showscale=False,
            showlegend=True,
            hoverinfo="skip",
            name=TRACE_KL,
            visible=visible("kl_ball"),
        )
    )
    ring = theta0 + _np(ellipse)
    fig.add_trace(
        go.Scatter(
            x=ring[:, 0],
            y=ring[:, 1],
            mode="lines",
            line=dict(color=COLORS["quadratic"], width=4, dash="dash"),
            name=TRACE_ELLIPSE,
            hoverinfo="skip",
            visible=visible("ellipse"),
        )
    )
    vanilla = _arrow(theta0, theta0 + _np(step.vanilla_step), COLORS["vanilla"], TRACE_VANILLA)
    natural = _arrow(theta0, theta0 + _np(step.natural_step), COLORS["npg"], TRACE_NATURAL)
    fig.add_trace(vanilla.update(visible=visible("gradient")))
    fig.add_trace(natural.update(visible=visible("natural")))
    cg = np.array([theta0] + [theta0 + _np(p) for p in step.cg_points[:n_cg]])
    fig.add_trace(
        go.Scatter(
            x=cg[:, 0],
            y=cg[:, 1],
            mode="lines+markers+text",
            line=dict(color=COLORS["cg"], width=2, dash="dot"),
            marker=dict(symbol="diamond", size=13, color=COLORS["cg"]),
            unselected=dict(marker=dict(opacity=1)),
            text=[""] + [f"x{_sub(k + 1)}" for k in range(len(cg) - 1)],
            textposition="top left",
            textfont=dict(size=FONT, color=COLORS["cg"]),
            name=TRACE_CG,
            hovertemplate="CG iterate %{text}, scaled to the ellipse<extra></extra>",
            visible=visible("cg"),
        )
    )
    end = theta0 + _np(step.step)
    fig.add_trace(
        go.Scatter(
            x=[end[0]],
            y=[end[1]],
            mode="markers",
            marker=dict(symbol="circle-open", size=30, color=COLORS["npg"], line=dict(width=3)),
            unselected=dict(marker=dict(opacity=1)),
            name=TRACE_STEP,
            hovertemplate="max step s: θ_old + s = (%{x:.3f}, %{y:.3f})<extra></extra>",
            visible=visible("natural"),
        )
    )
    for accepted, name in ((False, TRACE_REJECTED), (True, TRACE_ACCEPTED)):
        if not any(t.accepted == accepted for t in step.trials):
            continue
        trials = [t for t in step.trials[:n_trials] if t.accepted == accepted]
        fig.add_trace(_trial_markers(trials, name, accepted).update(visible=visible("trials")))
    if step.accepted:
        new = _start_marker(_np(step.theta_new), TRACE_NEW)
        new.update(marker=dict(color=COLORS["trpo"], size=26), textposition="top right")
        fig.add_trace(new.update(visible=visible("accepted")))
    fig.add_trace(_start_marker(theta0))
    fig.update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
        clickmode="event+select",
        hovermode="closest",
    )
    return _layout(fig, height=860)


def _sub(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _trial_markers(trials, name: str, accepted: bool) -> go.Scatter:
    color = COLORS["accepted" if accepted else "rejected"]
    pts = np.array([_np(t.theta) for t in trials]).reshape(-1, 2)
    custom = np.array(
        [[t.j, t.frac, t.kl, t.surrogate_change, t.objective_change] for t in trials]
    ).reshape(-1, 5)
    return go.Scatter(
        x=pts[:, 0],
        y=pts[:, 1],
        customdata=custom,
        mode="markers",
        marker=dict(
            symbol="circle" if accepted else "x",
            size=20,
            color=color,
            line=dict(width=2, color="white"),
        ),
        unselected=dict(marker=dict(opacity=1)),
        name=name,
        hovertemplate=(
            "trial j = %{customdata[0]:.0f}, αʲ = %{customdata[1]:.4g}"
            "<br>exact KL = %{customdata[2]:.5f}"
            "<br>ΔL = %{customdata[3]:.5f}<br>ΔJ = %{customdata[4]:.5f}"
            f"<br><b>{'accepted' if accepted else 'rejected'}</b><extra></extra>"
        ),
    )


def paths_figure(
    paths: Sequence[Path],
    grid: Grid,
    labels: Sequence[str],
    bounds: Bounds,
    theta0: np.ndarray,
    *,
    equal_aspect: bool = True,
    upto: int | None = None,
) -> go.Figure:
    """Contours of the true objective J and the paths of N updates of each method.

    Each method has its own dash, width and marker (:data:`PATH_STYLES`), so coinciding paths
    stay visible. ``upto`` = k draws updates 0…k only (the window stays the same); with
    ``equal_aspect`` one unit of θ₁ is as long as one of θ₂ (else each axis fills its range,
    for a window fitted to paths that run far along one axis). Points outside the window are
    counted in a note.
    """
    values = _np(grid.objective)
    fig = _landscape(grid, values, "J(θ)", labels, bounds, equal_aspect)
    _click_layer(fig, grid, values, None)
    outside = 0
    for path in paths:
        pts = _np(path.thetas)[: None if upto is None else upto + 1]
        J = _np(path.objectives)[: len(pts)]
        style = PATH_STYLES.get(path.method, PATH_STYLES["vanilla"])
        inside = (
            (pts[:, 0] >= bounds[0][0])
            & (pts[:, 0] <= bounds[0][1])
            & (pts[:, 1] >= bounds[1][0])
            & (pts[:, 1] <= bounds[1][1])
        )
        outside += int((~inside).sum())
        fig.add_trace(
            go.Scatter(
                x=pts[:, 0],
                y=pts[:, 1],
                customdata=np.stack([np.arange(len(J)), J], -1),
                mode="lines+markers",
                line=dict(color=COLORS[path.method], width=style["width"], dash=style["dash"]),
                marker=dict(
                    size=style["size"],
                    symbol=style["symbol"],
                    color=COLORS[path.method],
                    line=dict(width=2.5 if "open" in style["symbol"] else 0),
                ),
                unselected=dict(marker=dict(opacity=1)),
                name=METHOD_NAMES[path.method],
                hovertemplate=(
                    f"{METHOD_NAMES[path.method]}<br>update %{{customdata[0]:.0f}}"
                    "<br>θ = (%{x:.3f}, %{y:.3f})<br>J = %{customdata[1]:.4f}<extra></extra>"
                ),
            )
        )
    if outside:
        fig.add_annotation(
            text=f"{outside} point{'s' if outside > 1 else ''} outside this window",
            xref="paper",
            yref="paper",
            x=0.99,
            y=0.99,
            xanchor="right",
            yanchor="top",
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
            font=dict(size=FONT - 2),
        )
    fig.add_trace(_start_marker(_np(theta0), "θ₀"))
    fig.update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.14, x=0),
        clickmode="event+select",
        hovermode="closest",
    )
    if not equal_aspect:
        return _layout(fig, height=700)
    aspect = (bounds[1][1] - bounds[1][0]) / (bounds[0][1] - bounds[0][0])
    return _layout(fig, height=int(min(max(700 * aspect + 170, 450), 870)))


def objective_figure(
    paths: Sequence[Path], optimum: float | None = None, upto: int | None = None
) -> go.Figure:
    """J after each update, one line per method (``upto`` = k: updates 0…k, same axes)."""
    fig = go.Figure()
    for path in paths:
        J = _np(path.objectives)
        shown = J[: None if upto is None else upto + 1]
        style = PATH_STYLES.get(path.method, PATH_STYLES["vanilla"])
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(shown)),
                y=shown,
                mode="lines+markers",
                line=dict(color=COLORS[path.method], width=style["width"], dash=style["dash"]),
                marker=dict(size=max(style["size"] - 4, 5), symbol=style["symbol"]),
                name=METHOD_NAMES[path.method],
            )
        )
    if optimum is not None:
        fig.add_hline(
            y=optimum,
            line=dict(color="#555", dash="dot", width=2),
            annotation_text="optimum",
            annotation_font_size=FONT - 2,
        )
    all_J = np.concatenate([_np(p.objectives) for p in paths])
    top = max(float(all_J.max()), optimum if optimum is not None else -np.inf)
    pad = 0.05 * max(top - float(all_J.min()), 1e-9)
    n = max(len(p.objectives) for p in paths) - 1
    fig.update_xaxes(title_text="update", range=[-0.5, n + 0.5])
    fig.update_yaxes(title_text="J(θ)", range=[float(all_J.min()) - pad, top + pad])
    fig.update_layout(
        title=dict(text="Objective per update", font=dict(size=FONT + 2)),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return _layout(fig, height=520)


def slice_figure(cut: dict, step: LabStep, delta: float) -> go.Figure:
    """Along θ(t) = θ_old + t·s: top, ΔL(t), its linear model t·gᵀs and the true ΔJ(t);
    bottom, the exact D̄_KL(t) against its quadratic model ½t²sᵀFs and the bound δ. The
    line-search trials sit at t = αʲ."""
    t = _np(cut["t"])
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("improvement along the step", "KL along the step"),
    )
    lines = [
        (1, "surrogate", "ΔL (surrogate)", COLORS["trpo"], "solid"),
        (1, "linear", "linear model t·gᵀs", "#555555", "dash"),
        (1, "objective", "ΔJ (true)", COLORS["vanilla"], "dot"),
        (2, "kl", "exact KL", COLORS["kl"], "solid"),
        (2, "kl_quadratic", "quadratic ½t²sᵀFs", COLORS["quadratic"], "dash"),
    ]
    for row, key, name, color, dash in lines:
        fig.add_trace(
            go.Scatter(
                x=t,
                y=_np(cut[key]),
                mode="lines",
                line=dict(color=color, width=4, dash=dash),
                name=name,
                hovertemplate=f"{name}<br>t = %{{x:.3f}}<br>%{{y:.5f}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    fig.add_hline(
        y=delta,
        row=2,
        col=1,
        line=dict(color=COLORS["rejected"], width=2, dash="dashdot"),
        annotation_text="δ",
        annotation_font_size=FONT,
    )
    for tr in step.trials:
        color = COLORS["accepted" if tr.accepted else "rejected"]
        symbol = "circle" if tr.accepted else "x"
        for row, y in ((1, tr.surrogate_change), (2, tr.kl)):
            fig.add_trace(
                go.Scatter(
                    x=[tr.frac],
                    y=[y],
                    mode="markers",
                    marker=dict(symbol=symbol, size=16, color=color),
                    showlegend=False,
                    hovertemplate=f"trial j = {tr.j}, αʲ = {tr.frac:.4g}"
                    "<br>%{y:.5f}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_xaxes(title_text="step fraction t (θ = θ_old + t·s)", row=2, col=1)
    fig.update_yaxes(title_text="change", row=1, col=1)
    fig.update_yaxes(title_text="KL", row=2, col=1)
    fig.update_annotations(font_size=FONT)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.14, x=0))
    return _layout(fig, height=620)


def for_screen(fig: go.Figure) -> go.Figure:
    """A main chart in presentation mode (``ui.presentation`` sizes it to the screen): the legend
    beside the plot, one entry a line, so a short chart keeps its height for the plot and the
    legend never covers the x-axis title."""
    return fig.update_layout(
        legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"),
        margin=dict(t=16, r=10),
    )

"""Pure Plotly builders for the Update Inspector (an ``InspectorView`` in, ``go.Figure`` out).

The same picture as the Trust Region Lab's (``ui/toy_figures.py``, whose colours and font it
uses), for the real network: the plane through θ_old spanned by g and the step, in parameter
units (axis a along g, axis b along the step's part orthogonal to g); the surrogate change as
filled contours; the exact mean KL as contour lines with its δ level in black; the quadratic
ellipse ½dᵀFd = δ of UᵀFU in pink dashes; g and F⁻¹g scaled to the ellipse; the CG iterates; the
line-search trials; θ_new. The slice figure follows θ(t) = θ_old + t·d.
"""

from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labs.inspector import InspectorView
from ui.toy_figures import COLORS, CONTOUR_SCALE, FONT

# Trace names (the page's tests look for them in the figure's JSON).
TRACE_SURROGATE = "surrogate ΔL"
TRACE_CLIPPED = "clipped ΔL^CLIP"
TRACE_KL_LINES = "exact KL (contours)"
TRACE_LEVEL = "exact KL = {name}"
TRACE_ELLIPSE = "quadratic ½dᵀFd = {name}"
TRACE_G = "g (to the ellipse)"
TRACE_NATURAL = "F⁻¹g (to the ellipse, projected)"
TRACE_CG = "CG iterates (scaled like s, projected)"
TRACE_ACCEPTED = "line search: accepted"
TRACE_REJECTED = "line search: rejected"
TRACE_NEW = "θ_new"
TRACE_OLD = "θ_old"
PAGE_PATH = "inspector"  # the page's url_path in app.py


def inspector_url(run_id: str, update: int) -> str:
    """The inspector's URL for ``run_id`` at update ``update``, relative to the app's root page
    (``inspector?run=…&update=…``), for links from other pages."""
    return f"{PAGE_PATH}?{urlencode({'run': run_id, 'update': int(update)})}"


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        template="plotly_white",
        font=dict(size=FONT - 2),
        hoverlabel=dict(font_size=FONT - 2),
        margin=dict(l=70, r=20, t=50, b=60),
        legend=dict(font=dict(size=FONT - 4), bgcolor="rgba(255,255,255,0.85)"),
    )
    return fig


def _arrow(end: np.ndarray, color: str, name: str) -> go.Scatter:
    return go.Scatter(
        x=[0.0, float(end[0])],
        y=[0.0, float(end[1])],
        mode="lines+markers",
        line=dict(color=color, width=4),
        marker=dict(symbol="arrow", size=[0, 20], angleref="previous", color=color),
        name=name,
        hovertemplate=f"{name}<br>end = (%{{x:.4g}}, %{{y:.4g}})<extra></extra>",
    )


def _point(xy: np.ndarray, name: str, symbol: str, color: str, size: int = 20) -> go.Scatter:
    return go.Scatter(
        x=[float(xy[0])],
        y=[float(xy[1])],
        mode="markers",
        marker=dict(
            symbol=symbol,
            size=size,
            color=color,
            line=dict(
                width=3 if symbol.endswith("open") else 1,
                color=color if symbol.endswith("open") else "white",
            ),
        ),
        name=name,
        hovertemplate=f"{name} = (%{{x:.4g}}, %{{y:.4g}})<extra></extra>",
    )


def plane_figure(
    view: InspectorView, objective: str = "default", equal_scales: bool = False
) -> go.Figure:
    """The plane through θ_old (module docstring). ``objective``: "surrogate" (unclipped ΔL),
    "clipped" (PPO's ΔL^CLIP) or "default" (clipped for PPO, else ΔL). The window fits the
    ellipse, the exact ball, the arrows and the trials along each axis separately: the Fisher
    metric of a network is so uneven that equal scales (``equal_scales``) often show the ball
    as a sliver."""
    clipped = view.clipped is not None and objective in ("default", "clipped")
    values, title = (view.clipped, TRACE_CLIPPED) if clipped else (view.surrogate, TRACE_SURROGATE)
    custom = np.stack([view.kl, values], -1)
    fig = go.Figure(
        go.Contour(
            x=view.a,
            y=view.b,
            z=values,
            colorscale=CONTOUR_SCALE,
            ncontours=18,
            contours=dict(showlabels=True, labelfont=dict(size=FONT - 6, color="#333")),
            line=dict(width=1, color="rgba(60,60,60,0.35)"),
            showscale=False,
            customdata=custom,
            hovertemplate="a = %{x:.4g}, b = %{y:.4g}<br>"
            + title
            + " = %{customdata[1]:.4g}<br>exact KL = %{customdata[0]:.4g}<extra></extra>",
            name=title,
        )
    )
    top = max(float(np.nanmax(view.kl)), view.level * 1.01)
    fig.add_trace(
        go.Contour(
            x=view.a,
            y=view.b,
            z=view.kl,
            contours=dict(coloring="lines", start=view.level / 4, end=top, size=view.level / 2),
            colorscale=[[0, "#9ca3af"], [1, "#9ca3af"]],
            line=dict(width=1, dash="dot"),
            showscale=False,
            hoverinfo="skip",
            name=TRACE_KL_LINES,
            visible="legendonly",
            showlegend=True,
        )
    )
    fig.add_trace(
        go.Contour(
            x=view.a,
            y=view.b,
            z=view.kl,
            contours=dict(start=view.level, end=view.level, size=1.0, coloring="lines"),
            colorscale=[[0, COLORS["kl"]], [1, COLORS["kl"]]],
            line=dict(width=4),
            showscale=False,
            showlegend=True,
            hoverinfo="skip",
            name=TRACE_LEVEL.format(name=view.level_name),
        )
    )
    if len(view.ellipse):
        fig.add_trace(
            go.Scatter(
                x=view.ellipse[:, 0],
                y=view.ellipse[:, 1],
                mode="lines",
                line=dict(color=COLORS["quadratic"], width=4, dash="dash"),
                name=TRACE_ELLIPSE.format(name=view.level_name),
                hoverinfo="skip",
            )
        )
    fig.add_trace(_arrow(view.g_arrow, COLORS["vanilla"], TRACE_G))
    fig.add_trace(_arrow(view.natural_arrow, COLORS["npg"], TRACE_NATURAL))
    if len(view.cg):
        _cg_trace(fig, view.cg)
    fig.add_trace(_point(view.theta_new, TRACE_NEW, "diamond-open", COLORS["trpo"], 26))
    for accepted, name in ((False, TRACE_REJECTED), (True, TRACE_ACCEPTED)):
        rows = view.trials[view.trials[:, 5] == float(accepted)] if len(view.trials) else []
        if len(rows):
            fig.add_trace(_trials_trace(rows, name, accepted))
    fig.add_trace(_point(np.zeros(2), TRACE_OLD, "star", COLORS["start"], 22))
    fig.update_xaxes(title_text="a: along g (parameter units)", range=[view.a[0], view.a[-1]])
    equal = dict(scaleanchor="x", scaleratio=1, constrain="domain") if equal_scales else {}
    fig.update_yaxes(
        title_text="b: along the step's part ⊥ g", range=[view.b[0], view.b[-1]], **equal
    )
    fig.update_layout(
        title=dict(text=f"Update {view.update}: the plane through θ_old", font=dict(size=FONT)),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
        hovermode="closest",
    )
    return _layout(fig, height=760)


def _cg_trace(fig: go.Figure, cg: np.ndarray) -> None:
    points = np.vstack([np.zeros((1, 3)), cg])
    fig.add_trace(
        go.Scatter(
            x=points[:, 0],
            y=points[:, 1],
            customdata=np.column_stack([np.arange(len(points)), points[:, 2]]),
            mode="lines+markers",
            line=dict(color=COLORS["cg"], width=2, dash="dot"),
            marker=dict(symbol="diamond", size=10, color=COLORS["cg"]),
            name=TRACE_CG,
            hovertemplate="CG iterate x%{customdata[0]:.0f}, scaled like s"
            "<br>off the plane by %{customdata[1]:.3g}<extra></extra>",
        )
    )


def _trials_trace(rows: np.ndarray, name: str, accepted: bool) -> go.Scatter:
    return go.Scatter(
        x=rows[:, 0],
        y=rows[:, 1],
        customdata=rows[:, 2:5],
        mode="markers",
        marker=dict(
            symbol="circle" if accepted else "x",
            size=16,
            color=COLORS["accepted" if accepted else "rejected"],
            line=dict(width=2, color="white"),
        ),
        name=name,
        hovertemplate="αʲ = %{customdata[0]:.4g}<br>exact KL = %{customdata[1]:.5f}"
        "<br>ΔL = %{customdata[2]:.5f}"
        f"<br><b>{'accepted' if accepted else 'rejected'}</b><extra></extra>",
    )


def slice_figure(view: InspectorView) -> go.Figure:
    """Along θ(t) = θ_old + t·d: top, ΔL(t) (and ΔL^CLIP(t) for PPO) against the linear model
    t·gᵀd; bottom, the exact KL against ½t²dᵀFd and the level δ. Trials sit at t = αʲ, θ_new at
    t = α."""
    cut = view.slice
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("improvement along the step", "KL along the step"),
    )
    lines = [
        (1, "surrogate", "ΔL (surrogate)", COLORS["trpo"], "solid"),
        (1, "clipped", "ΔL^CLIP (clipped)", COLORS["npg"], "solid"),
        (1, "linear", "linear model t·gᵀd", "#555555", "dash"),
        (2, "kl", "exact KL", COLORS["kl"], "solid"),
        (2, "kl_quadratic", "quadratic ½t²dᵀFd", COLORS["quadratic"], "dash"),
    ]
    for row, key, name, color, dash in lines:
        if key not in cut:
            continue
        fig.add_trace(
            go.Scatter(
                x=cut["t"],
                y=cut[key],
                mode="lines",
                line=dict(color=color, width=3, dash=dash),
                name=name,
                hovertemplate=f"{name}<br>t = %{{x:.3f}}<br>%{{y:.5g}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    fig.add_hline(
        y=view.level,
        row=2,
        col=1,
        line=dict(color=COLORS["rejected"], width=2, dash="dashdot"),
        annotation_text=view.level_name,
        annotation_font_size=FONT - 2,
    )
    for accepted in (False, True):
        rows = view.trials[view.trials[:, 5] == float(accepted)] if len(view.trials) else []
        if not len(rows):
            continue
        color = COLORS["accepted" if accepted else "rejected"]
        for row, y in ((1, rows[:, 4]), (2, rows[:, 3])):
            fig.add_trace(
                go.Scatter(
                    x=rows[:, 2],
                    y=y,
                    mode="markers",
                    marker=dict(symbol="circle" if accepted else "x", size=12, color=color),
                    showlegend=False,
                    hovertemplate="αʲ = %{x:.4g}<br>%{y:.5g}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    if not len(view.trials):  # PPO, or no trial: θ_new at t = α
        alpha = view.numbers["alpha"]
        for row, key in ((1, "clipped" if "clipped" in cut else "surrogate"), (2, "kl")):
            y = float(np.interp(alpha, cut["t"], cut[key]))
            fig.add_trace(
                go.Scatter(
                    x=[alpha],
                    y=[y],
                    mode="markers",
                    marker=dict(symbol="star-diamond", size=14, color=COLORS["trpo"]),
                    showlegend=False,
                    hovertemplate="θ_new (t = %{x:.3g})<br>%{y:.5g}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_xaxes(title_text="step fraction t (θ = θ_old + t·d)", row=2, col=1)
    fig.update_yaxes(title_text="change", row=1, col=1)
    fig.update_yaxes(title_text="KL", row=2, col=1)
    fig.update_annotations(font_size=FONT - 2)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.14, x=0))
    return _layout(fig, height=560)

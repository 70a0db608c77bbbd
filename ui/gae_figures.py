"""Pure Plotly builders for the GAE Lab (no Streamlit): exact curves, heatmap, bars, λ sweeps.

Inputs are the frames of :mod:`core.labs.gae_lab` (``lambda_curve``, ``gamma_lambda_grid``,
``pair_table``) and of the run store (``runs``, ``episodes``) for the empirical λ sweep.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.charts.style import COLORS, REFERENCE, finish

BIAS = "#dc2626"
CENTRED = "#ea580c"
VARIANCE = "#2563eb"
MSE = REFERENCE
TRUE_A = "#9ca3af"
# The best-λ path on the γ×λ heatmap: a dark line with white-filled, dark-rimmed dots, visible on
# every Viridis colour and as a legend swatch on the white legend (a white line is not).
BEST_PATH = "#111827"


def _readable(fig: go.Figure, hovermode: str = "closest") -> go.Figure:
    """Legend in rows under the x axis, so long entries never run into the title; tick labels as
    large as the text (readable from the back of a lecture hall in presentation mode)."""
    size = fig.layout.font.size
    fig.update_xaxes(tickfont={"size": size}, title_font={"size": size + 1})
    fig.update_yaxes(tickfont={"size": size}, title_font={"size": size + 1})
    fig.update_traces(selector={"type": "heatmap"}, colorbar={"tickfont": {"size": size}})
    fig.update_layout(
        hovermode=hovermode,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "yref": "paper"},
        margin={"b": 40},
    )
    fig.update_xaxes(automargin=True)
    return fig


MSE_LABELS = {
    "mse_centred": "MSE (centred bias² + Var/N)",
    "mse": "MSE (raw bias² + Var/N)",
}


# ---------------------------------------------------------------------------------------------
# Exact lab
# ---------------------------------------------------------------------------------------------


def lambda_curves_figure(
    curve: pd.DataFrame,
    *,
    batch: int,
    lam: float,
    mse_column: str = "mse_centred",
    log_y: bool = False,
    large: bool = False,
) -> go.Figure:
    """bias², centred bias², Var/N and MSE against λ; the best λ (min MSE) and the chosen λ marked.

    ``curve`` has the columns of ``core.labs.gae_lab.scores``.
    """
    fig = go.Figure()
    series = [
        ("bias2", "bias² (raw)", BIAS, "dot", 2.5),
        ("bias2_centred", "centred bias² (biases the gradient)", CENTRED, "solid", 3),
        ("variance_n", f"variance / N  (N = {batch})", VARIANCE, "solid", 3),
        (mse_column, MSE_LABELS[mse_column], MSE, "solid", 4.5),
    ]
    for column, name, color, dash, width in series:
        fig.add_trace(
            go.Scatter(
                x=curve["lam"],
                y=curve[column],
                mode="lines",
                name=name,
                line={"color": color, "dash": dash, "width": width},
                hovertemplate=f"{name}: %{{y:.3g}}<extra></extra>",
            )
        )
    i_best = int(np.argmin(curve[mse_column].to_numpy()))
    best_lam, best_mse = float(curve["lam"].iloc[i_best]), float(curve[mse_column].iloc[i_best])
    fig.add_trace(
        go.Scatter(
            x=[best_lam],
            y=[best_mse],
            mode="markers",
            name=f"best λ = {best_lam:.2f}",
            marker={"symbol": "star", "size": 20, "color": "#facc15", "line": {"width": 1.5}},
            hovertemplate="best λ %{x:.2f}: MSE %{y:.3g}<extra></extra>",
        )
    )
    fig.add_vline(x=best_lam, line={"color": "#a16207", "dash": "dash", "width": 1.5})
    fig.add_vline(
        x=lam,
        line={"color": "#6b7280", "dash": "dot", "width": 2},
        annotation_text=f"chosen λ = {lam:.2f}",
        annotation_position="top left" if lam > 0.5 else "top right",
    )
    fig.update_xaxes(title_text="λ", range=[-0.02, 1.02], dtick=0.1)
    fig.update_yaxes(title_text="visitation-weighted error", exponentformat="e")
    if log_y:
        fig.update_yaxes(type="log", range=_log_range(curve, [c for c, *_ in series]))
    finish(fig, title="Bias and variance of GAE against λ", large=large, height=500)
    return _readable(fig, "x unified")


def for_screen(fig: go.Figure) -> go.Figure:
    """The main chart in presentation mode, as tall as the screen below its top
    (``ui/presentation.py``): the legend at the bottom of the figure instead of a fraction of the
    plot's height under it, so a short chart never draws it over the x-axis title, and the room
    it needs (three rows of entries at 1280 px) is kept under the axis."""
    return fig.update_layout(
        legend={"yref": "container", "y": 0, "yanchor": "bottom"},
        margin={"t": 60, "b": 150},
    )


def _log_range(curve: pd.DataFrame, columns: list[str], decades: float = 5.0) -> list[float]:
    """A log-axis range spanning at most ``decades`` below the largest value, so a curve that
    reaches exactly zero (centred bias² at λ = 1) drops off the bottom instead of squashing the
    others."""
    data = curve[columns].to_numpy()
    top = np.log10(data.max())
    positive = data[data > 10 ** (top - decades)]
    return [float(np.log10(positive.min())) - 0.2, float(top) + 0.2]


def gamma_lambda_heatmap(
    grid: pd.DataFrame,
    *,
    gamma: float,
    lam: float,
    gamma_true: float,
    mse_column: str = "mse_centred",
    large: bool = False,
) -> go.Figure:
    """log₁₀ MSE over (λ, γ_est) with the best λ of each γ (dark line, white dots), the overall
    best (star) and the chosen (γ, λ) (ring). ``grid`` is indexed by γ with one column per λ."""
    lams = np.array(grid.columns, dtype=float)
    gammas = np.array(grid.index, dtype=float)
    z = grid.to_numpy()
    fig = go.Figure(
        go.Heatmap(
            x=lams,
            y=gammas,
            z=np.log10(np.maximum(z, 1e-12)),
            customdata=z,
            colorscale="Viridis",
            reversescale=True,
            colorbar={"title": {"text": "log₁₀ MSE", "side": "right"}},
            hovertemplate="γ = %{y:.3f}, λ = %{x:.3f}<br>MSE %{customdata:.3g}<extra></extra>",
        )
    )
    best_per_row = lams[np.argmin(z, axis=1)]
    fig.add_trace(
        go.Scatter(
            x=best_per_row,
            y=gammas,
            mode="lines+markers",
            name="best λ for each γ",
            line={"color": BEST_PATH, "width": 3},
            marker={"size": 8, "color": "white", "line": {"color": BEST_PATH, "width": 2}},
            hovertemplate="γ = %{y:.3f}: best λ %{x:.3f}<extra></extra>",
        )
    )
    r, c = np.unravel_index(int(np.argmin(z)), z.shape)
    fig.add_trace(
        go.Scatter(
            x=[lams[c]],
            y=[gammas[r]],
            mode="markers",
            name=f"best (γ = {gammas[r]:.2f}, λ = {lams[c]:.2f})",
            marker={"symbol": "star", "size": 20, "color": "#facc15", "line": {"width": 1.5}},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[lam],
            y=[gamma],
            mode="markers",
            name="chosen (γ, λ)",
            marker={"symbol": "circle-open", "size": 18, "color": "#ef4444", "line": {"width": 3}},
        )
    )
    fig.update_xaxes(title_text="λ", range=[lams.min(), lams.max()])
    fig.update_yaxes(title_text="estimator's γ")
    title = (
        f"{MSE_LABELS[mse_column].split(' (')[0]} over γ × λ (target: A at γ_true = {gamma_true:g})"
    )
    finish(fig, title=title, large=large, height=500)
    return _readable(fig)


def pair_bars_figure(table: pd.DataFrame, *, lam: float, large: bool = False) -> go.Figure:
    """Per (s, a): the true advantage A and E[Â] ± one standard deviation of one sample at λ."""
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=table["pair"],
            y=table["A_true"],
            name="true A(s, a)",
            marker={"color": TRUE_A},
            hovertemplate="%{x}: A = %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=table["pair"],
            y=table["mean"],
            name=f"E[Â] ± 1 sd at λ = {lam:.2f}",
            marker={"color": VARIANCE},
            error_y={"type": "data", "array": table["sd"], "thickness": 1.5, "width": 3},
            customdata=np.stack([table["sd"], table["bias"], table["bias_centred"]], axis=1),
            hovertemplate=(
                "%{x}: E[Â] = %{y:.3f}, sd %{customdata[0]:.3f}<br>"
                "bias %{customdata[1]:.3f}, centred bias %{customdata[2]:.3f}<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(title_text="state, action", tickangle=-45 if len(table) > 12 else 0)
    fig.update_yaxes(title_text="advantage", zeroline=True, zerolinecolor="#9ca3af")
    finish(fig, title=f"True A vs the estimator at λ = {lam:.2f}", large=large, height=500)
    fig.update_layout(barmode="group", bargap=0.25)
    return _readable(fig)


def critic_figure(
    labels: list[str], V: np.ndarray, V_hat: np.ndarray, *, large: bool = False
) -> go.Figure:
    """The true V and the critic V̂ = V + e over the non-terminal states."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=V,
            mode="lines+markers",
            name="true V",
            line={"color": REFERENCE, "width": 3},
            marker={"size": 9},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=V_hat,
            mode="lines+markers",
            name="critic V̂ = V + e",
            line={"color": BIAS, "width": 3, "dash": "dash"},
            marker={"size": 9, "symbol": "diamond"},
        )
    )
    fig.update_xaxes(title_text="state")
    fig.update_yaxes(title_text="value")
    finish(fig, title="The critic's error", large=large, height=360)
    return _readable(fig, "x unified")


# ---------------------------------------------------------------------------------------------
# Empirical λ sweep (from the run store)
# ---------------------------------------------------------------------------------------------


def sweep_table(
    runs: pd.DataFrame, episodes: pd.DataFrame, *, threshold: float, last: int = 10, bins: int = 20
) -> pd.DataFrame:
    """One row per run: λ, seed, status, final return, normalised area under the curve, steps to
    threshold.

    final return = mean of the last ``last`` episode returns; AUC = mean over ``bins`` equal slices
    of the budget of the mean episode return finishing in that slice (an empty slice repeats the
    previous one), i.e. ≈ (1/T)∫ return dt; steps to threshold = first env step where the moving
    average of ``last`` returns reaches ``threshold`` (NaN if never).
    """
    rows = []
    for run in runs.itertuples():
        config = json.loads(run.config)
        ep = episodes[episodes["run_id"] == run.run_id].sort_values("env_step")
        rows.append(
            {
                "run_id": run.run_id,
                "lam": float(config["gae_lambda"]),
                "seed": int(config["seed"]),
                "status": run.status,
                "env_steps": run.env_steps,
                "episodes": len(ep),
                **_learning_scores(ep, float(run.total_steps), threshold, last, bins),
            }
        )
    columns = ["run_id", "lam", "seed", "status", "env_steps", "episodes", "final_return", "auc"]
    return pd.DataFrame(rows, columns=[*columns, "steps_to_threshold"])


def _learning_scores(
    ep: pd.DataFrame, budget: float, threshold: float, last: int, bins: int
) -> dict[str, float]:
    if ep.empty:
        return {"final_return": np.nan, "auc": np.nan, "steps_to_threshold": np.nan}
    slices = np.minimum((ep["env_step"].to_numpy() / budget * bins).astype(int), bins - 1)
    per_slice = pd.Series(ep["ret"].to_numpy()).groupby(slices).mean()
    filled = per_slice.reindex(range(int(slices.max()) + 1)).ffill().fillna(0.0)
    smoothed = ep["ret"].rolling(last, min_periods=last).mean().to_numpy()
    reached = np.flatnonzero(smoothed >= threshold)
    return {
        "final_return": float(ep["ret"].tail(last).mean()),
        "auc": float(filled.mean()),
        "steps_to_threshold": float(ep["env_step"].iloc[reached[0]]) if reached.size else np.nan,
    }


def sweep_scatter_figure(
    table: pd.DataFrame, column: str, *, title: str, y_title: str, large: bool = False
) -> go.Figure:
    """``column`` against λ: one dot per seed, the mean over seeds as a line."""
    fig = go.Figure()
    done = table.dropna(subset=[column])
    for i, (seed, group) in enumerate(done.groupby("seed")):
        fig.add_trace(
            go.Scatter(
                x=group["lam"],
                y=group[column],
                mode="markers",
                name=f"seed {seed}",
                marker={"size": 12, "color": COLORS[(i + 1) % len(COLORS)], "opacity": 0.75},
                hovertemplate=f"seed {seed}, λ = %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    if not done.empty:
        mean = done.groupby("lam")[column].mean().reset_index()
        fig.add_trace(
            go.Scatter(
                x=mean["lam"],
                y=mean[column],
                mode="lines+markers",
                name="mean over seeds",
                line={"color": REFERENCE, "width": 3.5},
                marker={"size": 9},
                hovertemplate="λ = %{x}: mean %{y:.4g}<extra></extra>",
            )
        )
    else:
        fig.add_annotation(
            text="no finished episodes yet",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
        )
    fig.update_xaxes(title_text="λ", range=[-0.05, 1.05])
    fig.update_yaxes(title_text=y_title)
    finish(fig, title=title, large=large, height=400)
    return _readable(fig)


def sweep_curves_figure(
    table: pd.DataFrame, episodes: pd.DataFrame, *, smooth: int = 10, large: bool = False
) -> go.Figure:
    """Learning curves (moving average of ``smooth`` returns) of every run, one colour per λ."""
    fig = go.Figure()
    lams = sorted(table["lam"].unique())
    shown_legend: set[float] = set()
    for row in table.sort_values(["lam", "seed"]).itertuples():
        ep = episodes[episodes["run_id"] == row.run_id].sort_values("env_step")
        if ep.empty:
            continue
        color = COLORS[lams.index(row.lam) % len(COLORS)]
        fig.add_trace(
            go.Scatter(
                x=ep["env_step"],
                y=ep["ret"].rolling(smooth, min_periods=1).mean(),
                mode="lines",
                name=f"λ = {row.lam:g}",
                legendgroup=f"{row.lam:g}",
                showlegend=row.lam not in shown_legend,
                line={"color": color, "width": 2.5},
                hovertemplate=f"λ = {row.lam:g}, seed {row.seed}: %{{y:.1f}}<extra></extra>",
            )
        )
        shown_legend.add(row.lam)
    fig.update_xaxes(title_text="env steps")
    fig.update_yaxes(title_text=f"return (moving average of {smooth})")
    finish(fig, title="Learning curves by λ", large=large, height=400)
    return _readable(fig)

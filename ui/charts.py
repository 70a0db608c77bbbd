"""Pure Plotly figure builders: DataFrames from the store → ``go.Figure``. No Streamlit here.

Inputs are the store's frames (``RunStore.metrics``/``episodes``/``events``): one row per update
with ``env_steps``, ``update``, ``wall_time`` and the metric names of DESIGN.md §3; one row per
finished episode (``env_step``, ``ret``); one row per event (``kind``, ``env_step``, ``payload``).
Every x axis of a run's charts is env steps, so a live hyperparameter change (an event at an env
step) is the same vertical marker on every chart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.downsample import downsample

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


def finish(
    fig: go.Figure,
    *,
    title: str = "",
    large: bool = False,
    revision: str | None = None,
    height: int = 360,
    legend_y: float = 1.02,
) -> go.Figure:
    """House style; ``large`` is the projector mode; ``revision`` keeps zoom across refreshes.

    No Plotly template is applied (it costs ~10 ms per figure on every refresh): in the page,
    Streamlit's theme styles the charts; exports add ``EXPORT_TEMPLATE``.

    Plotly keeps the user's zoom and legend clicks while ``layout.uirevision`` stays the same, so a
    live chart that is redrawn every second with the same revision does not jump back.
    """
    base = 18 if large else 13
    fig.update_layout(
        title={"text": title, "font": {"size": base + 4}, "x": 0.01, "y": 0.98, "yanchor": "top"},
        font={"size": base},
        height=int(height * (1.25 if large else 1.0)),
        margin={"l": 60, "r": 20, "t": 110 if legend_y > 1.05 else 90, "b": 50},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": legend_y,
            "x": 0,
            "font": {"size": base - 1},
        },
        hovermode="x unified",
        uirevision=revision or "static",
    )
    if large:
        fig.update_traces(selector={"mode": "lines"}, line={"width": 3})
    return fig


def hyperparameter_changes(events: pd.DataFrame | None) -> list[tuple[float, str]]:
    """(env step, "δ 0.01→0.02, λ 0.95→0.9") for each recorded live change."""
    if events is None or events.empty:
        return []
    out = []
    for _, ev in events[events["kind"] == "hyperparams"].iterrows():
        payload = ev["payload"] or {}
        text = ", ".join(f"{k} {_fmt(old)}→{_fmt(new)}" for k, (old, new) in payload.items())
        out.append((float(ev["env_step"]), text))
    return out


def add_event_markers(fig: go.Figure, events: pd.DataFrame | None, subplots: bool = False) -> None:
    """A dashed vertical line at each hyperparameter change (on every subplot), with its text."""
    changes = hyperparameter_changes(events)
    for i, (x, text) in enumerate(changes):
        kwargs = {"row": "all", "col": "all"} if subplots else {}
        fig.add_vline(x=x, line={"color": EVENT, "width": 2, "dash": "dash"}, **kwargs)
        fig.add_annotation(
            x=x,
            y=1.0,
            xref="x",
            yref="paper",
            text=text,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            yshift=-4 - 16 * (i % 3),
            font={"size": 11, "color": "#92400e"},
            bgcolor="rgba(255,251,235,0.85)",
        )
    if changes:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name="hyperparameter change",
                line={"color": EVENT, "dash": "dash"},
            )
        )


def parameter_history(
    initial: float | None, events: pd.DataFrame | None, key: str, x_end: float
) -> pd.DataFrame:
    """The value of hyperparameter ``key`` over env steps, as a step function ending at ``x_end``.

    Starts at ``initial`` (the run's config) and changes at each ``hyperparams`` event naming it.
    Rows with a None value (the option switched off) are kept as NaN so the line breaks there.
    """
    xs, ys = [0.0], [initial]
    if events is not None and not events.empty:
        for _, ev in events[events["kind"] == "hyperparams"].iterrows():
            payload = ev["payload"] or {}
            if key in payload:
                xs.append(float(ev["env_step"]))
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


def _series(metrics: pd.DataFrame, key: str) -> pd.DataFrame:
    return downsample(metrics.loc[metrics[key].notna(), ["env_steps", "update", key]])


def _line(df: pd.DataFrame, key: str, name: str, color: str, **kw: object) -> go.Scatter:
    return go.Scatter(
        x=df["env_steps"],
        y=df[key],
        customdata=df["update"],
        mode=kw.pop("mode", "lines"),
        name=name,
        line={"color": color, **kw.pop("line", {})},
        hovertemplate=f"{name}: %{{y:.4g}}<br>update %{{customdata:.0f}}<extra></extra>",
        **kw,
    )


def _empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14}
    )


# ---------------------------------------------------------------------------------------------
# One run
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
) -> go.Figure:
    """Episode return vs env steps: every episode (dots), a moving average, evaluation returns."""
    fig = go.Figure()
    if not episodes.empty:
        ep = episodes.sort_values("env_step").reset_index(drop=True)
        ep = ep.assign(smoothed=smoothed_returns(ep, smooth))
        shown = downsample(ep)
        fig.add_trace(
            go.Scattergl(
                x=shown["env_step"],
                y=shown["ret"],
                mode="markers",
                name="episode return",
                marker={"color": COLORS[0], "size": 4, "opacity": 0.3},
                hovertemplate="return %{y:.4g}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=shown["env_step"],
                y=shown["smoothed"],
                mode="lines",
                name=f"moving average ({smooth} episodes)",
                line={"color": COLORS[0], "width": 2.5},
                hovertemplate="smoothed %{y:.4g}<extra></extra>",
            )
        )
    elif _has(metrics, "episode_return_mean"):
        fig.add_trace(
            _line(
                _series(metrics, "episode_return_mean"),
                "episode_return_mean",
                "mean return",
                COLORS[0],
            )
        )
    if _has(metrics, "eval_return_mean"):
        fig.add_trace(
            _line(
                _series(metrics, "eval_return_mean"),
                "eval_return_mean",
                "evaluation return",
                COLORS[2],
                mode="lines+markers",
                marker={"symbol": "diamond", "size": 8},
            )
        )
    if not fig.data:
        _empty_note(fig, "waiting for the first finished episode…")
    add_event_markers(fig, events)
    fig.update_xaxes(title_text="env steps")
    fig.update_yaxes(title_text="return")
    return finish(fig, title="Episode return", large=large, revision=revision)


def kl_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    reference: pd.DataFrame | None = None,
    reference_label: str = "δ",
    large: bool = False,
    revision: str | None = None,
) -> go.Figure:
    """KL per update vs env steps, against the trust-region bound (a step line, live-changeable).

    Shows the exact mean KL(π_old‖π_new) on the batch, the quadratic model ½ sᵀFs that TRPO's step
    was scaled to (= δ before the line search shrinks it) and PPO's k3 estimate if reported; the max
    KL over states is in the legend, off by default (it dwarfs the mean).
    """
    fig = go.Figure()
    for key, color, extra in (
        ("kl_mean", COLORS[0], {"mode": "lines+markers", "marker": {"size": 5}}),
        ("kl_quadratic", COLORS[3], {"line": {"dash": "dot"}}),
        ("approx_kl", COLORS[4], {}),
        ("kl_max", "#94a3b8", {"line": {"width": 1}, "visible": "legendonly"}),
    ):
        if _has(metrics, key):
            fig.add_trace(_line(_series(metrics, key), key, KL_NAMES[key], color, **extra))
    if reference is not None and reference["value"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=reference["env_step"],
                y=reference["value"],
                mode="lines",
                line={"color": REFERENCE, "width": 2, "shape": "hv"},
                name=reference_label,
                hovertemplate=f"{reference_label} = %{{y:.4g}}<extra></extra>",
            )
        )
    if not fig.data:
        _empty_note(fig, "no KL reported yet")
    add_event_markers(fig, events)
    fig.update_xaxes(title_text="env steps")
    fig.update_yaxes(title_text="KL (nats)", rangemode="tozero")
    return finish(fig, title="KL per update", large=large, revision=revision)


def line_search_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    large: bool = False,
    revision: str | None = None,
) -> go.Figure:
    """TRPO's backtracking line search per update.

    Row 1: accepted step fraction αⁱ (green) or rejected (red ×, the update kept θ_old).
    Row 2: number of backtracks i. Row 3: predicted surrogate improvement gᵀs (for the full step)
    against the actual change L(θ_new) − L(θ_old).
    """
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.4, 0.2, 0.4],
        subplot_titles=("accepted step fraction αⁱ", "backtracks", "surrogate improvement"),
    )
    if _has(metrics, "ls_accepted"):
        df = _series(metrics, "ls_accepted")
        df = df.assign(
            frac=metrics.loc[df.index, "ls_step_frac"] if "ls_step_frac" in metrics else 1.0
        )
        for ok, name, color, symbol in (
            (True, "accepted", ACCEPTED, "circle"),
            (False, "rejected (kept θ_old)", REJECTED, "x"),
        ):
            part = df[(df["ls_accepted"] > 0.5) == ok]
            fig.add_trace(
                go.Scatter(
                    x=part["env_steps"],
                    y=part["frac"] if ok else np.zeros(len(part)),
                    customdata=part["update"],
                    mode="markers",
                    name=name,
                    marker={"color": color, "symbol": symbol, "size": 8 if ok else 10},
                    hovertemplate=f"{name}: αⁱ=%{{y:.3g}}<br>update %{{customdata:.0f}}"
                    "<extra></extra>",
                ),
                row=1,
                col=1,
            )
    if _has(metrics, "ls_backtracks"):
        df = _series(metrics, "ls_backtracks")
        fig.add_trace(
            go.Bar(
                x=df["env_steps"], y=df["ls_backtracks"], name="backtracks", marker_color="#94a3b8"
            ),
            row=2,
            col=1,
        )
    for key, color, dash in (
        ("surrogate_predicted", COLORS[3], "dot"),
        ("surrogate_actual", COLORS[0], None),
    ):
        if _has(metrics, key):
            label = "predicted gᵀs" if key == "surrogate_predicted" else "actual ΔL"
            fig.add_trace(
                _line(_series(metrics, key), key, label, color, line={"dash": dash}), row=3, col=1
            )
    add_event_markers(fig, events, subplots=True)
    fig.update_yaxes(range=[-0.05, 1.05], row=1, col=1)
    fig.update_yaxes(rangemode="nonnegative", row=2, col=1)
    fig.update_xaxes(title_text="env steps", row=3, col=1)
    return finish(
        fig, title="Line search", large=large, revision=revision, height=540, legend_y=1.08
    )


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
) -> go.Figure:
    """Small multiples (two per row) of losses, entropy, explained variance, β, ε… vs env steps."""
    keys = list(keys) if keys is not None else available_diagnostics(metrics)
    keys = [k for k in keys if _has(metrics, k)]
    if not keys:
        fig = go.Figure()
        _empty_note(fig, "no diagnostics reported yet")
        return finish(fig, title="Diagnostics", large=large, revision=revision)
    rows = math.ceil(len(keys) / 2)
    fig = make_subplots(
        rows=rows,
        cols=2,
        shared_xaxes=True,
        vertical_spacing=min(0.12, 0.5 / rows),
        subplot_titles=[METRIC_LABELS.get(k, k) for k in keys],
    )
    for i, key in enumerate(keys):
        color = COLORS[i % len(COLORS)]
        trace = _line(_series(metrics, key), key, METRIC_LABELS.get(key, key), color)
        trace.showlegend = False
        fig.add_trace(trace, row=i // 2 + 1, col=i % 2 + 1)
    add_event_markers(fig, events, subplots=True)
    fig.update_xaxes(title_text="env steps", row=rows)
    return finish(fig, title="Diagnostics", large=large, revision=revision, height=120 + 200 * rows)


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
    """Every chart that applies to a run, by name: return, kl, line_search, diagnostics."""
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


# ---------------------------------------------------------------------------------------------
# Several runs
# ---------------------------------------------------------------------------------------------


def seed_group(name: str | None, algo: str) -> str:
    """A run's name without its seed (``… · seed 3`` or ``… seed=3``): what its seeds share."""
    return re.sub(r"\s*·?\s*seed[ =]-?\d+$", "", name or "") or algo


def point_labels(points: pd.DataFrame, fallback: Mapping[str, str]) -> dict[str, str]:
    """The curve of each run: its grid point, so that the seeds of one point share a label.

    ``points`` is ``core.sweep.sweep_points(runs)`` (run_id, the hyperparameters that differ,
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
        _empty_note(fig, "no returns yet")
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

"""Several runs side by side: a label per grid point, mean ± std bands across seeds, summaries.

Inputs are the metrics frames of the runs concatenated (a ``run_id`` column tells them apart).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.metrics import ENV_STEPS, EPISODE_RETURN_MEAN, WALL_TIME
from ui.charts.style import COLORS, REFERENCE, finish
from ui.charts.traces import empty_note


def seed_group(name: str | None, algo: str) -> str:
    """A run's name without its seed (``… · seed 3`` or ``… seed=3``): what its seeds share."""
    return re.sub(r"\s*·?\s*seed[ =]-?\d+$", "", name or "") or algo


def point_labels(points: pd.DataFrame, fallback: Mapping[str, str]) -> dict[str, str]:
    """The curve of each run: its grid point, so that the seeds of one point share a label.

    ``points`` is ``core.sweep.progress.sweep_points(runs)`` (run_id, the hyperparameters that
    differ, seed). A label names the algorithm when there are several, then every hyperparameter
    that takes more than one value among the runs of one algorithm (``delta=0.01 gae_lambda=0.9``);
    a key another algorithm lacks, or one that differs only because the algorithms differ, is left
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
    x: str = ENV_STEPS.name,
    y: str = EPISODE_RETURN_MEAN.name,
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
    x_title: str = ENV_STEPS.axis_title,
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
        fig.add_annotation(empty_note("no returns yet"))
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
    ret_key, steps_key, time_key = EPISODE_RETURN_MEAN.name, ENV_STEPS.name, WALL_TIME.name
    rows = []
    for run_id, label in labels.items():
        run = metrics[metrics["run_id"] == run_id].sort_values(steps_key)
        ret = run.dropna(subset=[ret_key]) if not run.empty else run
        reached = ret[ret[ret_key] >= threshold] if not ret.empty else ret
        last = run.iloc[-1] if not run.empty else None
        rows.append(
            {
                "run_id": run_id,
                "label": label,
                steps_key: float(last[steps_key]) if last is not None else 0.0,
                "final_return": float(ret[ret_key].iloc[-1]) if not ret.empty else np.nan,
                "steps_to_threshold": float(reached[steps_key].iloc[0])
                if not reached.empty
                else np.nan,
                "env_steps_per_s": float(last[steps_key] / last[time_key])
                if last is not None and last[time_key] > 0
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

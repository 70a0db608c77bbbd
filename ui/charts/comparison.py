"""Several runs side by side: a label per grid point, mean ± std bands across seeds with the
number of seeds behind every point, summaries (readable where a run never reached the threshold).

Inputs are the metrics frames of the runs concatenated (a ``run_id`` column tells them apart).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)")


def group_order_key(label: str) -> list[tuple[int, float | str]]:
    """Sort key of a group label that reads its numbers as numbers (``delta=0.001`` before
    ``delta=0.01``, ``n_steps=64`` before ``n_steps=128``): every comparison lists, colours and
    tabulates its groups in this order, so the same groups keep the same colours whichever runs
    (random ids, created when) make them up."""
    parts = _NUMBER.split(label)
    return [(0, float(p)) if i % 2 else (1, p) for i, p in enumerate(parts) if p]


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
    """Mean and standard deviation across the runs of each group, and how many runs give them.

    Each run's curve is linearly interpolated onto its group's grid, x_k = k·x_max/(K−1) plus
    the first and last x of every run of the group (so the grid holds the exact points where a
    run starts or ends), inside the run's own x range (NaN outside it: no run is
    extrapolated). Then, per group and grid point, over the n runs that reached x_k:
    mean = (1/n) Σ y_r(x_k), std = √((1/n) Σ (y_r − mean)²). ``runs`` is the number of runs the
    group has in ``labels`` (a run without a point yet counts too), so ``n < runs`` marks the
    points where fewer than all of its seeds remain; points with n = 0 are left out.
    Groups come in :func:`group_order_key` order. Returns columns: label, x, mean, std, n, runs.
    """
    cols = ["label", "x", "mean", "std", "n", "runs"]
    data = metrics[metrics["run_id"].isin(labels)].dropna(subset=[x, y])
    if data.empty:
        return pd.DataFrame(columns=cols)
    runs_of = Counter(labels.values())
    grid = np.linspace(0.0, float(data[x].max()), grid_points)
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run_id, run in data.groupby("run_id"):
        run = run.sort_values(x)
        curves.setdefault(labels[run_id], []).append(
            (run[x].to_numpy(float), run[y].to_numpy(float))
        )
    frames = []
    for label in sorted(curves, key=group_order_key):
        runs = curves[label]
        xs_g = np.unique(np.concatenate([grid, *([r[0][0], r[0][-1]] for r in runs)]))
        stack = np.vstack(
            [
                np.where((xs_g >= xs[0]) & (xs_g <= xs[-1]), np.interp(xs_g, xs, ys), np.nan)
                for xs, ys in runs
            ]
        )
        n = np.sum(~np.isnan(stack), axis=0)
        keep = n > 0
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(stack[:, keep], axis=0)
            std = np.nanstd(stack[:, keep], axis=0)
        frames.append(
            pd.DataFrame(
                {
                    "label": label,
                    "x": xs_g[keep],
                    "mean": mean,
                    "std": std,
                    "n": n[keep],
                    "runs": runs_of[label],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _segments(mask: np.ndarray) -> list[slice]:
    """The maximal runs of consecutive True entries of ``mask``, as slices."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2])]


def _band_outline(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One closed outline (upper edge forward, lower edge back) per stretch where ``mask``
    holds, separated by NaN, for a ``fill="toself"`` trace (Plotly closes each piece)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for seg in _segments(mask):
        xs += [x[seg], x[seg][::-1], np.array([np.nan])]
        ys += [upper[seg], lower[seg][::-1], np.array([np.nan])]
    if not xs:
        return np.array([]), np.array([])
    return np.concatenate(xs), np.concatenate(ys)


def compare_figure(
    band: pd.DataFrame,
    *,
    x_title: str = ENV_STEPS.axis_title,
    y_title: str = "return",
    threshold: float | None = None,
    large: bool = False,
    revision: str | None = None,
) -> go.Figure:
    """Mean ± one standard deviation across seeds, one colour per group (from :func:`seed_band`),
    and under it a thin strip with the number of seeds n behind each point (the lines of
    several groups lifted a little apart, by less than ¼ seed, so that equal counts stay visible).

    Where every seed of a group contributes (n = runs) the mean is a solid line over its band;
    where fewer remain (a seed ended, or has not started) the mean is a faint dotted line over a
    fainter band, so a change of the mean caused by a seed ending is not read as learning.
    The hover names n of runs at every point.
    """
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.8, 0.2], vertical_spacing=0.06
    )
    most = 1
    groups = band["label"].nunique()
    # the count lines of several groups, lifted a little apart so that equal counts stay visible
    lift = (np.arange(groups) - (groups - 1) / 2) * min(0.08, 0.5 / max(groups, 1))
    for i, (label, g) in enumerate(band.groupby("label", sort=False)):
        color = COLORS[i % len(COLORS)]
        x, mean, std = (g[c].to_numpy(float) for c in ("x", "mean", "std"))
        n = g["n"].to_numpy(int)
        runs = int(g["runs"].max()) if "runs" in g else int(n.max())
        most = max(most, runs)
        full = n >= runs
        fewer = ~full
        fewer[1:] |= fewer[:-1] & full[1:]  # the faint line meets the solid one on both sides
        fewer[:-1] |= fewer[1:] & full[:-1]
        for mask, alpha, part in ((full, 0.18, "± std"), (fewer, 0.07, "± std, fewer seeds")):
            bx, by = _band_outline(x, mean - std, mean + std, mask)
            if len(bx):
                fig.add_trace(
                    go.Scatter(
                        x=bx,
                        y=by,
                        fill="toself",
                        fillcolor=_rgba(color, alpha),
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=label,
                        name=f"{label} {part}",
                    ),
                    row=1,
                    col=1,
                )
        custom = np.stack([std, n, np.full(len(n), runs)], axis=-1)
        hover = (
            f"{label}: %{{y:.4g}} ± %{{customdata[0]:.3g}} "
            "(n = %{customdata[1]} of %{customdata[2]} seeds)<extra></extra>"
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.where(full, mean, np.nan),
                customdata=custom,
                mode="lines",
                name=label,
                legendgroup=label,
                line={"color": color, "width": 2.5},
                hovertemplate=hover,
            ),
            row=1,
            col=1,
        )
        if fewer.any():
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=np.where(fewer, mean, np.nan),
                    customdata=custom,
                    mode="lines",
                    name=f"{label} (fewer seeds)",
                    legendgroup=label,
                    showlegend=False,
                    opacity=0.55,
                    line={"color": color, "width": 1.5, "dash": "dot"},
                    hovertemplate=hover,
                    meta="fewer seeds",
                ),
                row=1,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=n + lift[i],
                customdata=n,
                mode="lines",
                name=f"{label} seeds",
                legendgroup=label,
                showlegend=False,
                opacity=0.6,
                line={"color": color, "width": 1, "shape": "hv"},
                hovertemplate=f"{label}: %{{customdata}} of {runs} seeds<extra></extra>",
                meta="seeds",
            ),
            row=2,
            col=1,
        )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line={"color": REFERENCE, "dash": "dot"},
            annotation_text=f"threshold {threshold:g}",
            row=1,
            col=1,
        )
    if not fig.data:
        fig.add_annotation(empty_note("no returns yet"))
    fig.update_xaxes(hoverformat=".4~s")
    fig.update_xaxes(title_text=x_title, row=2, col=1)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_yaxes(
        title_text="seeds",
        range=[0, most + 0.5],
        dtick=max(1, math.ceil(most / 3)),
        showgrid=False,
        row=2,
        col=1,
    )
    finish(
        fig,
        title=f"{y_title.capitalize()} vs {x_title} (mean ± std across seeds)",
        large=large,
        revision=revision,
        height=480,
    )
    thin = {"fewer seeds": 2.0 if large else 1.5, "seeds": 1.5 if large else 1.0}
    for trace in fig.data:
        if trace.meta in thin:
            trace.line.width = thin[trace.meta]
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` as a CSS ``rgba(r,g,b,alpha)`` colour."""
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
    """Per group (in :func:`group_order_key` order): runs, final return mean/std, median steps to
    threshold, runs that reached it.

    The median counts a run that never reached the threshold as later than any that did, so it
    is NaN (not reached) unless more than half of the group's runs reached it.
    """
    if summary.empty:
        return summary
    grouped = summary.groupby("label", sort=False)
    steps = summary["steps_to_threshold"].astype(float).fillna(np.inf)
    late = steps.groupby(summary["label"], sort=False)
    table = pd.DataFrame(
        {
            "runs": grouped.size(),
            "final return (mean)": grouped["final_return"].mean(),
            "final return (std)": grouped["final_return"].std(ddof=0),
            "steps to threshold (median)": late.median().replace(np.inf, np.nan),
            "reached threshold": grouped["steps_to_threshold"].count(),
            "env steps / s": grouped["env_steps_per_s"].mean(),
        }
    )
    order = sorted(table.index, key=group_order_key)
    return table.loc[order].reset_index(names="group")


STEPS_COLUMNS = ("steps_to_threshold", "steps to threshold (median)")
"""The steps-to-threshold columns of :func:`run_summary` and :func:`group_summary`."""


def steps_text(steps: float, threshold: float) -> str:
    """Env steps to the threshold as a person reads them: ``12,000``, or
    ``not reached (threshold 475)`` for NaN (never reached)."""
    if steps is None or not math.isfinite(float(steps)):
        return f"not reached (threshold {threshold:g})"
    return f"{float(steps):,.0f}"


def readable_summary(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``table`` (from :func:`run_summary` or :func:`group_summary`) for a page: its
    steps-to-threshold column as text (:func:`steps_text`). Exports keep the numeric table,
    where a run that never reached the threshold is an empty cell."""
    out = table.copy()
    for col in STEPS_COLUMNS:
        if col in out:
            out[col] = [steps_text(v, threshold) for v in out[col]]
    return out

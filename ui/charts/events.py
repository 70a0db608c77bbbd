"""Live hyperparameter changes on a run's charts: their texts, their markers, and the value of a
hyperparameter over env steps.

A change is a ``hyperparams`` event in the store: ``{key: [old, new]}`` at the env step where the
update that first used it began.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.config import ALGO_PARAMS, RunConfig
from ui.charts.style import EVENT, base_font

# The symbol a widget label ends with ("KL bound δ", "KL target d_targ", "CG damping c").
_SYMBOL = re.compile(r" ((?:log )?(?:[^\W\d_A-Za-z]+|[a-z]|[a-z]+_[a-z]+))$")


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


def event_layers(
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
        "yshift": -4 - (base_font(large) + 3) * (i % 3),
        "font": {"size": base_font(large) - 2, "color": "#92400e"},
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

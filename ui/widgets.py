"""Hyperparameter widgets generated from the ``RunConfig`` field specs.

Every field's :class:`~core.config.Spec` (label, range, log scale, live flag, choices) picks its
widget, so every algorithm, DQN's flags included, appears without page code. Values go through the
one validation path, ``RunConfig.with_changes``; a :class:`ConfigError` is shown naming the field.
Widget values survive reruns and page changes, on every page through one helper
(:func:`kept_widget`, built on :func:`kept` and :func:`remember`): each value is kept in
``session_state["_kept"]`` and written back into the widget's key before the widget is drawn.
The presentation switch (:func:`presentation_on`, :func:`presentation_toggle`, and
:func:`with_flag` / :func:`page_query` for pages that write their whole URL) lives in
``ui.presentation`` and is re-exported here.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.config import ConfigError, RunConfig, Spec, allowed_text, field_type
from ui.presentation import (  # noqa: F401 (for the pages)
    page_query,
    presentation_on,
    presentation_toggle,
    with_flag,
)
from ui.text import plain

KEPT = "_kept"
# Shown by the page itself, never as a generic hyperparameter.
PAGE_KEYS = ("algo", "env_id", "name")
SHARED_GROUPS = {
    "Budget and rollout": ("total_steps", "seed", "n_envs", "n_steps"),
    "Returns and advantages": ("gamma", "gae_lambda", "normalize_advantage", "lr"),
    "Normalization": ("normalize_obs", "normalize_reward", "clip_obs", "clip_reward"),
    "Networks": ("hidden_sizes", "activation"),
    "Evaluation": ("eval_every", "eval_episodes"),
}


# ---------------------------------------------------------------------------------------------
# Persistence across pages
# ---------------------------------------------------------------------------------------------


def kept(key: str, default: Any) -> Any:
    """The remembered value of widget ``key`` (``default`` the first time), written into the widget
    state so the widget shows it even after the user visited another page."""
    store = st.session_state.setdefault(KEPT, {})
    if key not in store:
        store[key] = default
    if key not in st.session_state or st.session_state[key] != store[key]:
        st.session_state[key] = store[key]
    return store[key]


def remember(key: str) -> None:
    """``on_change`` callback: keep the widget's new value."""
    st.session_state.setdefault(KEPT, {})[key] = st.session_state[key]


def kept_widget(
    widget: Callable[..., Any], label: str, key: str, default: Any, *args: Any, **kwargs: Any
) -> Any:
    """Draw ``widget(label, *args, key=key, **kwargs)`` (``st.slider``, ``col.selectbox``, …)
    showing its remembered value, ``default`` the first time; a change is remembered by the
    widget's ``on_change`` (:func:`remember`). Returns what the widget returns."""
    kept(key, default)
    return widget(label, *args, key=key, on_change=remember, args=(key,), **kwargs)


def is_kept(key: str) -> bool:
    """Whether widget ``key`` has a remembered value (it was shown or set in this session)."""
    return key in st.session_state.get(KEPT, {})


def set_kept(key: str, value: Any) -> None:
    """Set a widget's remembered value (from a callback, e.g. applying a preset)."""
    st.session_state.setdefault(KEPT, {})[key] = value
    st.session_state[key] = value


def forget(prefix: str) -> None:
    """Drop every remembered value whose key starts with ``prefix``."""
    store = st.session_state.setdefault(KEPT, {})
    for key in [k for k in store if k.startswith(prefix)]:
        del store[key]
        st.session_state.pop(key, None)


# ---------------------------------------------------------------------------------------------
# One widget per field
# ---------------------------------------------------------------------------------------------


def log_grid(spec: Spec, current: float) -> list[float]:
    """1-2-5 values per decade inside the spec's range, plus the current value.

    The lower end is the spec's ``low`` when positive, else 10⁻⁵·high, and never above current/10.
    """
    high = spec.high if spec.high is not None else max(1.0, current * 100)
    low = spec.low if spec.low and spec.low > 0 else high * 1e-5
    if current > 0:
        low = min(low, current / 10)
    values = {float(current)}
    for exp in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in (1, 2, 5):
            v = float(f"{m}e{exp}")
            if low <= v <= high and spec.contains(v):
                values.add(v)
    if spec.low == 0 and not spec.low_open:
        values.add(0.0)
    return sorted(values)


def slider_step(low: float, high: float) -> float:
    """A step giving about a thousand positions: 10^(⌊log₁₀(high − low)⌋ − 3)."""
    return 10.0 ** (math.floor(math.log10(high - low)) - 3)


def _help(cfg: RunConfig, key: str) -> str:
    """The field's help text, what it accepts (not for a checkbox: it has two states) and
    whether it is live."""
    spec = cfg.spec(key)
    owner = cfg.owner_of(key)
    allowed = "" if field_type(owner, key) is bool else f" Allowed: {allowed_text(owner, key)}."
    live = " Can be changed while the run trains." if spec.live else ""
    return f"{spec.help}{allowed}{live}".strip()


def field_widget(cfg: RunConfig, key: str, wkey: str, *, disabled: bool = False) -> Any:
    """Draw the widget that fits field ``key`` of ``cfg`` (initial value from ``cfg``)."""
    spec = cfg.spec(key)
    kind = field_type(cfg.owner_of(key), key)
    value = cfg.get(key)
    label = spec.label + (" ⚡" if spec.live else "")
    common = {"key": wkey, "help": _help(cfg, key), "disabled": disabled, "on_change": remember}
    common["args"] = (wkey,)
    if kind is bool:
        kept(wkey, bool(value))
        return st.checkbox(label, **common)
    if spec.choices is not None:
        kept(wkey, value)
        return st.selectbox(label, spec.choices, **common)
    if typing.get_origin(kind) is tuple:
        kept(wkey, widget_value(cfg, key, value))
        return st.text_input(label, placeholder="e.g. 64, 64", **common)
    if kind is str:
        kept(wkey, value)
        return st.text_input(label, **common)
    if spec.optional:
        kept(wkey, value)
        return st.number_input(
            label,
            min_value=float(spec.low or 0.0),
            max_value=spec.high,
            placeholder="off",
            format="%.4g",
            **common,
        )
    if kind is float and spec.log:
        current = kept(wkey, float(value))
        grid = log_grid(spec, current)
        return st.select_slider(label, options=grid, format_func=lambda v: f"{v:g}", **common)
    bounded = spec.low is not None and spec.high is not None
    if kind is int and bounded and spec.high - spec.low <= 256:
        kept(wkey, int(value))
        return st.slider(label, int(spec.low), int(spec.high), step=1, **common)
    if _is_count(cfg, key):
        kept(wkey, widget_value(cfg, key, value))
        return st.text_input(label, placeholder="e.g. 100_000, 1e6 or 250k", **common)
    if kind is int:
        kept(wkey, int(value))
        return st.number_input(
            label, min_value=int(spec.low or 0), max_value=int(spec.high or 2**31), step=1, **common
        )
    kept(wkey, float(value))
    if bounded:
        step = slider_step(spec.low, spec.high)
        return st.slider(label, float(spec.low), float(spec.high), step=step, **common)
    return st.number_input(label, format="%.4g", **common)


# Integer fields allowed to reach this are counts (budget, buffer, minibatch) typed as text: a
# number box would silently turn "2.5" into 2 and "1e12" into its maximum; the config's own
# validation names the field and the range instead (and reads 1e6, 250k, 2.5M, 100_000).
COUNT_FIELD_MIN = 10**6


def _is_count(cfg: RunConfig, key: str) -> bool:
    spec = cfg.spec(key)
    return field_type(cfg.owner_of(key), key) is int and (spec.high or 0) >= COUNT_FIELD_MIN


def widget_value(cfg: RunConfig, key: str, value: Any) -> Any:
    """A config value as its widget holds it: text for lists and counts, else the value."""
    if typing.get_origin(field_type(cfg.owner_of(key), key)) is tuple:
        return ", ".join(str(v) for v in value)
    if _is_count(cfg, key):
        return f"{int(value):_}"
    return value


def widget_key(prefix: str, algo: str, key: str) -> str:
    """Session key of a field's widget; per algorithm, so each algorithm keeps its own values."""
    return f"{prefix}.{algo}.{key}"


def hyperparameter_inputs(
    cfg: RunConfig, keys: list[str], prefix: str, *, columns: int = 2, disabled: bool = False
) -> dict[str, Any]:
    """Widgets for ``keys`` in ``columns`` columns; returns {field: raw widget value}."""
    cols = st.columns(columns)
    return {
        key: field_widget_in(cols[i % columns], cfg, key, prefix, disabled)
        for i, key in enumerate(keys)
    }


def field_widget_in(col: Any, cfg: RunConfig, key: str, prefix: str, disabled: bool) -> Any:
    with col:
        return field_widget(cfg, key, widget_key(prefix, cfg.algo, key), disabled=disabled)


def shared_groups(cfg: RunConfig) -> dict[str, list[str]]:
    """The shared fields by group, plus the algorithm's own fields under its name."""
    shared = set(cfg.keys()) - set(vars(cfg.params)) - cfg.unused_keys()
    groups = {title: [k for k in keys if k in shared] for title, keys in SHARED_GROUPS.items()}
    listed = {k for keys in groups.values() for k in keys} | set(PAGE_KEYS)
    names = cfg.keys()
    rest = [k for k in names if k in shared and k not in listed]
    if rest:
        groups["Other"] = rest
    return groups


def algorithm_keys(cfg: RunConfig) -> list[str]:
    """The algorithm's own fields that its variant uses."""
    names, unused = cfg.keys(), cfg.unused_keys()
    return [k for k in names if k in vars(cfg.params) and k not in unused]


def validated(base: RunConfig, values: dict[str, Any]) -> tuple[RunConfig | None, str | None]:
    """``base.with_changes(**values)``, or (None, a readable message naming the bad field)."""
    try:
        return base.with_changes(**values), None
    except ConfigError as err:
        label = _label_of(base, err.field)
        return None, f"**{label}** (`{err.field}`): {plain(err.message)}"


def _label_of(cfg: RunConfig, key: str) -> str:
    try:
        return cfg.spec(key).label
    except ConfigError:
        return key


def changed(cfg: RunConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``values`` that differs from ``cfg`` (after coercion by validation)."""
    new, _ = validated(cfg, values)
    if new is None:
        return dict(values)
    return {k: new.get(k) for k in values if new.get(k) != cfg.get(k)}

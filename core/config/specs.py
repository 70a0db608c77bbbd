"""Field specs: what each configuration field means and which values it accepts.

Every dataclass field built with :func:`param` carries a :class:`Spec` (label, allowed range,
choices, whether a running run may change it). The functions here read it: :func:`coerce` turns a
CLI or widget string into the field's type, :func:`check_value` checks type and range, and
:func:`allowed_text` says in words what the field accepts. They are the one validation path for
the CLI, the pages and the sweeps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is not allowed. ``field`` names it; ``str()`` is one readable line."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Spec:
    """What a field means and which values it accepts.

    ``low``/``high`` bound numbers (``*_open`` excludes the bound); ``choices`` lists the allowed
    strings; ``live`` marks hyperparameters a running run may change; ``log`` asks widgets for a
    log-scale control; ``optional`` allows ``None`` (meaning "off").
    """

    label: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    live: bool = False
    log: bool = False
    optional: bool = False

    def range_text(self) -> str:
        """The allowed range in interval notation, e.g. ``(0, 1]``."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        lo = "-∞" if self.low is None else _fmt(self.low)
        hi = "∞" if self.high is None else _fmt(self.high)
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{left}{lo}, {hi}{right}"

    def contains(self, value: float) -> bool:
        """Whether a number lies in the allowed range."""
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _fmt(x: float) -> str:
    return f"{x:g}"


def param(default: Any, label: str, **spec: Any) -> Any:
    """A dataclass field with its :class:`Spec` in the metadata."""
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are not allowed")
    return field(default=default, metadata={"spec": Spec(label=label, **spec)})


# ---------------------------------------------------------------------------------------------
# Looking fields up
# ---------------------------------------------------------------------------------------------


def field_names(obj: Any) -> tuple[str, ...]:
    """The dataclass fields of ``obj`` (an instance or a class), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(obj))


def field_spec(owner: Any, key: str) -> Spec:
    """The :class:`Spec` of field ``key`` of ``owner``; :class:`ConfigError` if there is none."""
    for f in dataclasses.fields(owner):
        if f.name == key:
            return f.metadata["spec"]
    raise ConfigError(key, "unknown field")


def field_type(owner: Any, key: str) -> Any:
    """The declared type of a field, with ``X | None`` reduced to ``X``."""
    return _type_hints(type(owner))[key]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Each field's declared type, resolved once per class (``get_type_hints`` evaluates the
    annotation strings: ~0.4 ms a call, and validation asks for every field)."""
    return {key: _without_none(hint) for key, hint in typing.get_type_hints(cls).items()}


def _without_none(hint: Any) -> Any:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in args if a is not type(None))
    return hint


# ---------------------------------------------------------------------------------------------
# Coercion: CLI and widget text to the field's type
# ---------------------------------------------------------------------------------------------


def coerce(owner: Any, key: str, raw: Any) -> Any:
    """Convert ``raw`` (a value or a CLI/widget string) to the field's type, or raise."""
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if spec.optional and (raw is None or (isinstance(raw, str) and raw.lower() in ("", "none"))):
        return None
    try:
        if kind is bool:
            return _to_bool(raw)
        if kind is int:
            return _to_int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind is str:
            if not isinstance(raw, str):
                raise ValueError
            return raw
        if typing.get_origin(kind) is tuple:
            if isinstance(raw, str):
                raw = [p for p in raw.replace("[", "").replace("]", "").replace(",", " ").split()]
            return tuple(_to_int(x) for x in raw)
    except (TypeError, ValueError):
        raise ConfigError(
            key, f"{raw!r} is not a valid {_type_name(kind)}; allowed {allowed_text(owner, key)}"
        ) from None
    raise ConfigError(key, f"unsupported field type {kind}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "list of integers"
    return {bool: "boolean", int: "integer", float: "number", str: "text"}.get(kind, str(kind))


MAX_TEXT = 200  # characters in a free-text field (run name, env id)
MAX_LAYERS = 4  # hidden layers
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def allowed_text(owner: Any, key: str) -> str:
    """The values field ``key`` accepts, in words that fit its type.

    Numbers give their interval (``(0, 1]``, plus ``or none (off)`` when optional), choices list
    themselves, booleans their spellings, text its length and layer sizes their count and range.
    """
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if spec.choices is not None:
        return spec.range_text()
    if kind is bool:
        return "true or false (also " + ", ".join(map("/".join, zip(_TRUE[1:], _FALSE[1:]))) + ")"
    if kind is str:
        return f"text of at most {MAX_TEXT} characters"
    if typing.get_origin(kind) is tuple:
        return f"1 to {MAX_LAYERS} layer sizes, each in {spec.range_text()}, e.g. 64, 64"
    if spec.optional:
        return f"{spec.range_text()} or none (off)"
    return spec.range_text()


def _to_bool(raw: Any) -> bool:
    """A bool, or a spelling in ``_TRUE``/``_FALSE`` (any case); anything else: ValueError."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE:
        return True
    if isinstance(raw, str) and raw.lower() in _FALSE:
        return False
    raise ValueError


_COUNT_SUFFIXES = {"k": 10**3, "m": 10**6}


def _to_int(raw: Any) -> int:
    """An integer from an int, a whole float, or text such as ``100000``, ``1e6``, ``100k``,
    ``2.5M`` or ``100,000`` (anything that is not a whole number raises ValueError)."""
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace(",", "").replace("_", "")
        scale = _COUNT_SUFFIXES.get(text[-1:].lower(), 1)
        value = float(text[:-1] if scale > 1 else text) * scale
        if not value.is_integer():
            raise ValueError
        return int(value)
    return int(raw)


# ---------------------------------------------------------------------------------------------
# Checking: type and range
# ---------------------------------------------------------------------------------------------


def check_value(owner: Any, key: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` has the field's type and lies in its range;
    the message says what is wrong, then the values the field accepts (:func:`allowed_text`)."""
    problem = _problem(owner, key, value)
    if problem is not None:
        raise ConfigError(key, f"{problem}; allowed {allowed_text(owner, key)}")


def check_at_most(owner: Any, key: str, limit: int, what: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` when its value exceeds ``limit`` (``what`` says
    what the limit is); the allowed range is the field's own with ``limit`` as the top. An
    ``owner`` without the field passes."""
    if key not in field_names(owner):
        return
    value = getattr(owner, key)
    if value > limit:
        allowed = dataclasses.replace(field_spec(owner, key), high=limit, high_open=False)
        raise ConfigError(
            key, f"{value} is larger than {what} = {limit}; allowed {allowed.range_text()}"
        )


def _problem(owner: Any, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``key``, or ``None`` when it is allowed."""
    spec = field_spec(owner, key)
    kind = field_type(owner, key)
    if value is None:
        return None if spec.optional else "a value is required"
    if spec.choices is not None:
        return None if value in spec.choices else f"{value!r} is not allowed"
    if kind is bool:
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind is str:
        return _text_problem(value)
    if typing.get_origin(kind) is tuple:
        return _layers_problem(value, spec)
    return _number_problem(value, spec, kind)


def _text_problem(value: Any) -> str | None:
    """Text must be a ``str`` of at most ``MAX_TEXT`` characters."""
    if not isinstance(value, str):
        return f"{value!r} is not text"
    if len(value) > MAX_TEXT:
        return f"{len(value)} characters is too long"
    return None


def _layers_problem(value: Any, spec: Spec) -> str | None:
    """Layer sizes must be a sequence of 1 to ``MAX_LAYERS`` integers inside the spec's range."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        return f"{value!r} is not a list of layer sizes"
    if not 1 <= len(value) <= MAX_LAYERS:
        return f"{list(value)} has {len(value)} layers"
    problems = (_number_problem(v, spec, int) for v in value)
    return next((f"layer size {p}" for p in problems if p is not None), None)


def _number_problem(value: Any, spec: Spec, kind: type) -> str | None:
    """A number must be finite (whole for ``int``) and inside the spec's interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if kind is int and not float(value).is_integer():
        return f"{value!r} is not an integer"
    if not math.isfinite(value):
        return f"{value!r} is not finite"
    if not spec.contains(value):
        return f"{value:g} is out of range"
    return None


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (command-line text) → ``{KEY: VALUE}``, values still raw text for
    :func:`coerce`; a malformed item is a ConfigError naming the option."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(option, f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs

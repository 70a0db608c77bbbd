"""The GAE Lab's URL: which query parameters hold its state, their widgets, defaults and ranges.

A link reproduces the lab: a parameter that parses and is allowed becomes its widget's first value
(:func:`url_value`); anything else falls back to the default, and :func:`url_notes` says so (the
field, the value given, what is allowed and the value used) for the page to show. The scenario's
defaults are those of ``core.labs.gae_lab.Scenario``; λ, γ_true and the display choices are the
page's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.labs.gae_lab import ERROR_KINDS, MDPS, Scenario
from ui.text import link_note

BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
MSE_CHOICES = {"mse_centred": "centred bias² (policy gradient)", "mse": "raw bias² (advantage)"}


def _flag(text: str) -> bool:
    return text in ("1", "true", "True")


def _anything(value: Any) -> bool:
    return True


@dataclass(frozen=True)
class UrlField:
    """One query parameter: its widget's session key, default, parser and allowed values (and
    those values in words, for a warning)."""

    key: str
    default: Any
    parse: Callable[[str], Any]
    allowed: Callable[[Any], bool] = _anything
    allowed_text: str = ""
    label: str = ""


_SCENARIO = Scenario()


def _one_of(values: Any) -> str:
    return "one of " + ", ".join(str(v) for v in values)


def _within(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low <= v <= high


FIELDS: dict[str, UrlField] = {
    "mdp": UrlField("gae.mdp", _SCENARIO.mdp, str, lambda v: v in MDPS, _one_of(MDPS), "MDP"),
    "err": UrlField(
        "gae.err",
        _SCENARIO.error,
        str,
        lambda v: v in ERROR_KINDS,
        _one_of(ERROR_KINDS),
        "critic error",
    ),
    "size": UrlField(
        "gae.size", _SCENARIO.error_size, float, _within(0, 1), "[0, 1]", "error size"
    ),
    "seed": UrlField(
        "gae.seed", _SCENARIO.seed, int, _within(0, 9999), "an integer in [0, 9999]", "seed"
    ),
    "gamma": UrlField("gae.gamma", _SCENARIO.gamma, float, _within(0.8, 1), "[0.8, 1]", "γ"),
    "gtrue": UrlField("gae.gtrue", 1.0, float, _within(0.8, 1), "[0.8, 1]", "γ_true"),
    "longer": UrlField("gae.longer", False, _flag),
    "lam": UrlField("gae.lam", 0.95, float, _within(0, 1), "[0, 1]", "λ"),
    "n": UrlField(
        "gae.n", _SCENARIO.batch, int, lambda v: v in BATCHES, _one_of(BATCHES), "batch size N"
    ),
    "log": UrlField("gae.log", False, _flag),
    "mse": UrlField(
        "gae.mse", "mse_centred", str, lambda v: v in MSE_CHOICES, _one_of(MSE_CHOICES), "MSE"
    ),
}


def url_value(query: Mapping[str, str], name: str) -> Any:
    """Parameter ``name`` of ``query`` if it parses and is allowed, else its default."""
    spec = FIELDS[name]
    raw = query.get(name)
    if raw is None:
        return spec.default
    try:
        value = spec.parse(raw)
    except ValueError:
        return spec.default
    return value if spec.allowed(value) else spec.default


def url_notes(query: Mapping[str, str], names: list[str] | None = None) -> list[str]:
    """One sentence for each parameter of ``query`` (among ``names``, default all) that
    :func:`url_value` could not use: the field, the value given, what is allowed, the value used."""
    notes = []
    for name in names if names is not None else list(FIELDS):
        spec, raw = FIELDS[name], query.get(name)
        if raw is None or not spec.allowed_text:
            continue
        try:
            ok = spec.allowed(spec.parse(raw))
        except ValueError:
            ok = False
        if not ok:
            used = f"the default `{spec.default}`"
            notes.append(link_note(name, raw, spec.allowed_text, used, spec.label, "the lab"))
    return notes


def to_query(values: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters (all strings) of the lab's ``values``, keyed as :data:`FIELDS`;
    γ_true only when ``longer`` is on, ``log`` only when on. :func:`url_value` reads them back."""
    query = {
        "mdp": values["mdp"],
        "err": values["err"],
        "size": f"{values['size']:g}",
        "seed": str(int(values["seed"])),
        "gamma": f"{values['gamma']:g}",
        "lam": f"{values['lam']:g}",
        "n": str(values["n"]),
        "mse": values["mse"],
    }
    if values["longer"]:
        query |= {"longer": "1", "gtrue": f"{values['gtrue']:g}"}
    if values["log"]:
        query["log"] = "1"
    return query

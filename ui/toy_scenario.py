"""The Trust Region Lab's scenario: the page's state as plain values and as URL parameters.

A :class:`Scenario` names the problem and its rewards, the start θ₀, the solver's knobs and what
the page shows; :meth:`Scenario.to_query` / :meth:`Scenario.from_query` make it a bookmarkable
link (any URL gives a valid lab: unknown values fall back to the defaults, numbers are clipped,
and :meth:`Scenario.read_query` lists each correction as a :class:`UrlNote` for the page to show).
The step-through stage (``stage``, a step's stage or an update's index) is part of the scenario.
Each default has one source: the problem's own dataclass for its rewards, ``StepSettings`` for
the solver's knobs, :class:`Scenario` for what the page shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.labs.toy_problems import (
    GaussianBandit,
    SoftmaxBandit,
    Tensor,
    ToyProblem,
    TwoStateMDP,
    as_theta,
)
from core.labs.toy_step import StepSettings
from ui.text import link_note


@dataclass(frozen=True)
class ParamSpec:
    """One numeric knob of a scenario: URL name, label, default and allowed range [low, high]."""

    name: str
    label: str
    default: float
    low: float
    high: float
    integer: bool = False

    def clip(self, value: float) -> float:
        value = min(max(float(value), self.low), self.high)
        return float(round(value)) if self.integer else value

    def allowed(self) -> str:
        """The allowed range as text: "[1e-04, 1]" or "an integer in [1, 20]"."""
        text = f"[{self.low:g}, {self.high:g}]"
        return f"an integer in {text}" if self.integer else text


@dataclass(frozen=True)
class UrlNote:
    """A value of the URL that the lab could not use as given: the parameter, the value given,
    what is allowed and the value used instead."""

    field: str
    given: str
    allowed: str
    used: str
    label: str = ""

    def message(self) -> str:
        return link_note(
            self.field, self.given, self.allowed, f"`{self.used}`", self.label, where="the lab"
        )


# The problems as the dataclasses build them: their fields are the knobs' defaults.
_SOFTMAX, _GAUSSIAN, _KAKADE = SoftmaxBandit(), GaussianBandit(), TwoStateMDP()
PROBLEM_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "softmax": (
        ParamSpec("r1", "reward r₁", _SOFTMAX.rewards[0], -10.0, 10.0),
        ParamSpec("r2", "reward r₂", _SOFTMAX.rewards[1], -10.0, 10.0),
        ParamSpec("r3", "reward r₃", _SOFTMAX.rewards[2], -10.0, 10.0),
    ),
    "gaussian": (
        ParamSpec("target", "best action a*", _GAUSSIAN.target, -5.0, 5.0),
        ParamSpec("alpha", "entropy bonus α", _GAUSSIAN.entropy_coef, 0.0, 5.0),
    ),
    "kakade": (
        ParamSpec("r1", "reward for staying in s₁", _KAKADE.rewards[0], 0.0, 10.0),
        ParamSpec("r2", "reward for staying in s₂", _KAKADE.rewards[1], 0.0, 10.0),
        ParamSpec("gamma", "discount γ", _KAKADE.gamma, 0.0, 0.99),
    ),
}
START_LIMIT = 50.0
# What the page shows; the first of each is the default (see ``_choice``).
VIEWS = ("surrogate", "objective")
MODES = ("step", "updates")
VANILLA_STEPS = ("lr", "kl")  # a fixed η shows the crawl across a plateau


def build_problem(key: str, values: dict[str, float]) -> ToyProblem:
    """The problem ``key`` with the knob values of :data:`PROBLEM_PARAMS` (defaults if absent)."""
    v = {p.name: values.get(p.name, p.default) for p in PROBLEM_PARAMS[key]}
    if key == "softmax":
        return SoftmaxBandit(rewards=(v["r1"], v["r2"], v["r3"]))
    if key == "gaussian":
        return GaussianBandit(target=v["target"], entropy_coef=v["alpha"])
    return TwoStateMDP(rewards=(v["r1"], v["r2"]), gamma=v["gamma"])


_SOLVER = StepSettings()


@dataclass(frozen=True)
class Scenario:
    """A bookmarkable lab state: problem and its rewards, θ₀, solver knobs and what to show.

    The solver's defaults are :class:`StepSettings`'s; the fields after ``scale`` are the page's.
    """

    problem: str = "softmax"
    params: tuple[tuple[str, float], ...] = ()
    start: tuple[float, float] | None = None
    delta: float = _SOLVER.delta
    damping: float = _SOLVER.damping
    cg_iters: int = _SOLVER.cg_iters
    backtrack_coef: float = _SOLVER.backtrack_coef
    scale: float = _SOLVER.scale
    view: str = VIEWS[0]
    mode: str = MODES[0]
    n_updates: int = 30
    vanilla: str = VANILLA_STEPS[0]
    lr: float = 5.0
    stage: int | None = None  # the step-through stage; None: the whole picture

    def values(self) -> dict[str, float]:
        """The problem's knob values, defaults filled in."""
        given = dict(self.params)
        return {p.name: given.get(p.name, p.default) for p in PROBLEM_PARAMS[self.problem]}

    def build(self) -> ToyProblem:
        return build_problem(self.problem, self.values())

    def theta0(self) -> Tensor:
        return as_theta(self.start if self.start is not None else self.build().start)

    def settings(self) -> StepSettings:
        return StepSettings(
            delta=self.delta,
            damping=self.damping,
            cg_iters=self.cg_iters,
            backtrack_coef=self.backtrack_coef,
            scale=self.scale,
        )

    def to_query(self) -> dict[str, str]:
        """URL query parameters (all strings) that :meth:`from_query` reads back."""
        query = {"problem": self.problem}
        query.update({k: f"{v:g}" for k, v in self.values().items()})
        theta0 = self.theta0().tolist()
        query["start"] = f"{theta0[0]:g},{theta0[1]:g}"
        for p in SOLVER_PARAMS:
            query[p.name] = f"{getattr(self, p.name):g}"
        query.update(view=self.view, mode=self.mode, vanilla=self.vanilla)
        if self.stage is not None:
            query["stage"] = str(self.stage)
        return query

    @classmethod
    def from_query(cls, query: dict[str, str]) -> Scenario:
        """Read a scenario from URL parameters; unknown or malformed values fall back to the
        defaults and numbers are clipped to their allowed ranges, so any URL gives a valid lab."""
        return cls.read_query(query)[0]

    @classmethod
    def read_query(cls, query: dict[str, str]) -> tuple[Scenario, list[UrlNote]]:
        """:meth:`from_query`, and a :class:`UrlNote` for every value that was not used as
        given (out of range, malformed, unknown)."""
        notes: list[UrlNote] = []
        problem = _choice(query.get("problem"), tuple(PROBLEM_PARAMS), "problem", notes)
        params = tuple(
            (p.name, _number(query.get(p.name), p, notes)) for p in PROBLEM_PARAMS[problem]
        )
        solver = {p.name: _number(query.get(p.name), p, notes) for p in SOLVER_PARAMS}
        solver["cg_iters"], solver["n_updates"] = int(solver["cg_iters"]), int(solver["n_updates"])
        return cls(
            problem=problem,
            params=params,
            start=_start(query.get("start"), notes),
            view=_choice(query.get("view"), VIEWS, "view", notes),
            mode=_choice(query.get("mode"), MODES, "mode", notes),
            vanilla=_choice(query.get("vanilla"), VANILLA_STEPS, "vanilla", notes),
            stage=_stage(query.get("stage"), notes),
            **solver,
        ), notes


DEFAULT = Scenario()
# The solver's and the page's numeric knobs: label and range here, default from :class:`Scenario`.
SOLVER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("delta", "KL bound δ", DEFAULT.delta, 1e-4, 1.0),
    ParamSpec("damping", "damping c", DEFAULT.damping, 0.0, 1.0),
    ParamSpec("cg_iters", "CG iterations", DEFAULT.cg_iters, 1, 20, integer=True),
    ParamSpec("backtrack_coef", "backtrack coefficient α", DEFAULT.backtrack_coef, 0.05, 0.95),
    ParamSpec("scale", "coordinate scaling k (θ₁ = k·φ₁)", DEFAULT.scale, 0.1, 10.0),
    ParamSpec("n_updates", "number of updates N", DEFAULT.n_updates, 1, 100, integer=True),
    ParamSpec("lr", "vanilla learning rate η", DEFAULT.lr, 1e-3, 100.0),
)


def _number(text: str | None, spec: ParamSpec, notes: list[UrlNote] | None = None) -> float:
    """The knob's value in ``text``: clipped to its range, the default if malformed (each
    correction noted)."""
    if text is None:
        return spec.default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    used = spec.clip(value) if math.isfinite(value) else spec.default
    if notes is not None and used != value:
        notes.append(UrlNote(spec.name, text, spec.allowed(), f"{used:g}", spec.label))
    return used


def _start(text: str | None, notes: list[UrlNote] | None = None) -> tuple[float, float] | None:
    """θ₀ from "a,b", each clipped to ±START_LIMIT; None (the problem's start) if malformed."""
    if text is None:
        return None
    allowed = f"two numbers in [{-START_LIMIT:g}, {START_LIMIT:g}], e.g. 1.5,-2"
    try:
        a, b = (float(part) for part in text.split(","))
    except ValueError:
        a = b = math.nan
    if not (math.isfinite(a) and math.isfinite(b)):
        if notes is not None:
            notes.append(UrlNote("start", text, allowed, "the problem's own start"))
        return None
    used = (min(max(a, -START_LIMIT), START_LIMIT), min(max(b, -START_LIMIT), START_LIMIT))
    if notes is not None and used != (a, b):
        notes.append(UrlNote("start", text, allowed, f"{used[0]:g},{used[1]:g}"))
    return used


def _choice(
    text: str | None,
    choices: tuple[str, ...],
    name: str = "",
    notes: list[UrlNote] | None = None,
) -> str:
    """``text`` if it is one of ``choices``, else the first choice (noted)."""
    if text is None or text in choices:
        return text or choices[0]
    if notes is not None:
        notes.append(UrlNote(name, text, "one of " + ", ".join(choices), choices[0]))
    return choices[0]


def _stage(text: str | None, notes: list[UrlNote] | None = None) -> int | None:
    """A step-through stage: an integer ≥ 0 (its upper end depends on the step: the page checks
    it); anything else is the whole picture (noted)."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value >= 0:
        return value
    if notes is not None:
        notes.append(UrlNote("stage", text, "an integer ≥ 0", "the whole picture"))
    return None


PRESETS: dict[str, Scenario] = {
    "Rejected full step": Scenario(
        problem="softmax",
        params=(("r1", 1.0), ("r2", 0.2), ("r3", 0.0)),
        start=(-2.0, 2.0),
        delta=0.01,
        backtrack_coef=0.5,
    ),
    "Kakade's plateau": Scenario(
        problem="kakade",
        params=(("r1", 1.0), ("r2", 2.0), ("gamma", 0.9)),
        start=(3.0, -3.0),
        delta=0.01,
        mode="updates",
        view="objective",
        n_updates=30,
    ),
    "Kakade: surrogate ≠ J": Scenario(
        problem="kakade",
        params=(("r1", 1.0), ("r2", 2.0), ("gamma", 0.9)),
        start=(2.0, -1.0),
        delta=0.2,
    ),
    "Gaussian, small σ": Scenario(
        problem="gaussian",
        params=(("target", 2.0), ("alpha", 0.5)),
        start=(-1.0, -1.5),
        delta=0.05,
    ),
    "Gaussian, rejected step": Scenario(
        problem="gaussian",
        params=(("target", 2.0), ("alpha", 0.5)),
        start=(-1.0, 0.0),
        delta=0.2,
    ),
    "Coordinate scaling k = 3": Scenario(
        problem="softmax",
        params=(("r1", 1.0), ("r2", 0.2), ("r3", 0.0)),
        start=(-2.0, 2.0),
        delta=0.01,
        scale=3.0,
    ),
}

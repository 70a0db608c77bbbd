"""Shared by the learning benchmarks (bench_ppo, bench_trpo, bench_dqn, bench_mujoco).

A training run's record (wall and CPU seconds, env steps, steps to the CartPole threshold), a
wall + CPU clock, the first env step at which a return curve reaches the threshold, the
Stable-Baselines3 callback that records the same curve for their runs, best-of-N timing, raw
Gymnasium stepping as the ceiling, the machine line, Markdown tables, the command line's shared
options and the report file.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.engine.envs import make_vec_env
from core.engine.trainer import Trainer

SOLVED = 475.0
WINDOW = 20

Curve = list[tuple[int, float]]


@dataclass
class Run:
    """One training run: wall and CPU seconds, steps, steps to a 20-episode mean of 475."""

    wall: float
    cpu: float
    steps: int
    steps_to_solve: int | None
    final_mean: float

    @property
    def fps(self) -> float:
        return self.steps / self.wall

    @property
    def cpu_fps(self) -> float:
        return self.steps / self.cpu


class Clock:
    """Wall and CPU (process) time since construction, with evaluation time taken out."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.eval_wall = self.eval_cpu = 0.0

    def timed_eval(self, fn: Callable[[], list[float]]) -> float:
        """Mean of ``fn()``; its wall and CPU time are excluded from :meth:`totals`."""
        w, c = time.perf_counter(), time.process_time()
        value = float(np.mean(fn()))
        self.eval_wall += time.perf_counter() - w
        self.eval_cpu += time.process_time() - c
        return value

    def totals(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) so far, evaluations excluded."""
        wall = time.perf_counter() - self.wall0 - self.eval_wall
        cpu = time.process_time() - self.cpu0 - self.eval_cpu
        return wall, cpu


def steps_to_threshold(curve: Iterable[tuple[int, float]], threshold: float = SOLVED) -> int | None:
    """First env step of ``(env step, return)`` points whose return is ≥ ``threshold``."""
    return next((step for step, ret in curve if ret >= threshold), None)


def train_ours(config: RunConfig) -> Run:
    """Train our trainer for ``config.total_steps``; the curve is the 20-episode training mean."""
    trainer = make_trainer(config)
    curve: Curve = []
    clock = Clock()
    while not trainer.done:
        mean = trainer.update().metrics["episode_return_mean"]
        curve.append((trainer.book.env_steps, mean))
    wall, cpu = clock.totals()
    final = curve[-1][1] if curve else float("nan")
    return Run(wall, cpu, trainer.book.env_steps, steps_to_threshold(curve), final)


def at_marks(trainer: Trainer, every: int) -> Iterator[dict[str, float]]:
    """Train to the end; yield the update's metrics whenever the env steps pass the next multiple
    of ``every``, and after the last update."""
    next_mark = every
    while not trainer.done:
        metrics = trainer.update().metrics
        if trainer.book.env_steps >= next_mark or trainer.done:
            yield metrics
            next_mark += every


def train_sb3(model: Any, steps: int) -> Run:
    """``model.learn(steps)``; the curve is SB3's mean over the last 20 episodes per rollout."""
    from stable_baselines3.common.callbacks import BaseCallback

    class TrainingCurve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: Curve = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            infos = list(self.model.ep_info_buffer)[-WINDOW:]
            if infos:
                self.curve.append((self.num_timesteps, float(np.mean([e["r"] for e in infos]))))

    callback = TrainingCurve()
    clock = Clock()
    model.learn(steps, callback=callback)
    wall, cpu = clock.totals()
    final = callback.curve[-1][1] if callback.curve else float("nan")
    return Run(wall, cpu, model.num_timesteps, steps_to_threshold(callback.curve), final)


def best_time(fn: Callable[[], None], repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls (robust to a busy machine)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def raw_env_fps(
    n_envs: int = 8,
    vector_steps: int = 5000,
    env_id: str = "CartPole-v1",
    random_actions: bool = False,
) -> float:
    """Env steps per second of bare stepping in our vector env (same-step autoreset): the
    ceiling. Action 0 in every sub-env, or with ``random_actions`` uniform random actions drawn
    (seeded) before the clock starts, so that sampling them is not timed."""
    env = make_vec_env(env_id, n_envs, 0)
    space = env.action_space
    if random_actions:
        pool = [space.sample() for _ in range(min(vector_steps, 1000))]
    else:
        pool = [np.zeros(space.shape, dtype=space.dtype)]
    env.step(pool[0])
    t0 = time.perf_counter()
    for i in range(vector_steps):
        env.step(pool[i % len(pool)])
    fps = n_envs * vector_steps / (time.perf_counter() - t0)
    env.close()
    return fps


def machine() -> str:
    """Processor and torch version, for the report."""
    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}"


def md_row(cells: Sequence[str]) -> str:
    """One Markdown table row; an empty cell is written as a single space."""
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Header row, ``|---|`` separator and rows of a Markdown table, one line each."""
    return [md_row(header), "|" + "---|" * len(header), *(md_row(r) for r in rows)]


def comparison_intro(steps: int, seeds: Sequence[int]) -> str:
    """The machine and run-protocol paragraph of the ours-vs-theirs CartPole reports."""
    return (
        f"Machine: {machine()}, {torch.get_num_threads()} torch thread; {steps:,} env steps per "
        f"run; seeds {', '.join(map(str, seeds))}. Wall-clock figures depend on the load of a "
        "shared machine; CPU-time figures (process time) less so. Ours and theirs alternate per "
        "seed, so both see the same conditions."
    )


def _steps_text(runs: list[Run]) -> str:
    solved = [r.steps_to_solve for r in runs if r.steps_to_solve is not None]
    parts = [f"{r.steps_to_solve:,}" if r.steps_to_solve else "not reached" for r in runs]
    median = f" (median {statistics.median(solved):,.0f})" if solved else ""
    return ", ".join(parts) + median


def comparison_table(rows: dict[str, list[Run]], ours: str, theirs: str, raw: float) -> list[str]:
    """Speed and learning per library (mean over seeds), ours/theirs ratio, raw-env ceiling."""
    body = []
    for name, runs in rows.items():
        if runs:
            fps = statistics.mean(r.fps for r in runs)
            cpu = statistics.mean(r.cpu_fps for r in runs)
            final = ", ".join(f"{r.final_mean:.0f}" for r in runs)
            body.append([name, f"{fps:,.0f}", f"{cpu:,.0f}", _steps_text(runs), final])
    if rows.get(ours) and rows.get(theirs):
        a, b = rows[ours], rows[theirs]
        wall = statistics.mean(r.fps for r in a) / statistics.mean(r.fps for r in b)
        cpu = statistics.mean(r.cpu_fps for r in a) / statistics.mean(r.cpu_fps for r in b)
        body.append(["ratio ours/theirs", f"{wall:.2f}×", f"{cpu:.2f}×", "", ""])
    ceiling = "raw Gymnasium CartPole, 8 SyncVectorEnv envs (ceiling)"
    body.append([ceiling, f"{raw:,.0f}", "", "", ""])
    header = ["", "env-steps/s (wall)", "env-steps/s (CPU)", "steps to 20-episode mean ≥ 475"]
    return md_table([*header, "final 20-episode mean"], body)


def argument_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--seeds`` (0 1 2) and ``--steps``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=steps)
    return parser


def write_report(path: Path, text: str) -> None:
    """Write the Markdown report to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)

"""MuJoCo and Box2D: ours against Stable-Baselines3 / sb3-contrib at RL-Zoo settings (issue 15).

Three parts, each selectable with ``--parts``; every run uses one torch thread, both libraries run
the same RL-Zoo hyperparameters (ours: the "zoo" presets; theirs: the zoo's yml entries, with
``VecNormalize(gamma=γ)`` where the zoo says ``normalize: true``):

- ``speed``: env-steps/s of PPO and TRPO on Hopper-v5 and HalfCheetah-v5, in this process:
  ``--warmup`` env steps first (not timed), then ``--steps`` timed (wall clock and CPU time) in
  ``--rounds`` alternating chunks, ours, theirs, the raw env, ours, ... so that the slow and fast
  moments of a shared machine fall on all three alike. The ceiling is the raw env in our vector
  env with the same number of sub-envs, stepping with random actions drawn beforehand. Prints
  ours/SB3 (target ≥ 3×) and ours/raw (target ≥ 60 %).
- ``learn``: Hopper-v5 for ``--learn-steps`` env steps, PPO and TRPO, ours and theirs on the
  seeds ``--seeds``; per run the wall time and env-steps/s of training (construction and
  evaluation excluded), the mean of the last 20 training episodes, and the final evaluation.
- ``dqn``: DQN on LunarLander-v3 at the zoo budget (our preset's ``total_steps``, 100k; or
  ``--dqn-steps``) against SB3 DQN, seeds ``--dqn-seeds``, measured like ``learn``.

Evaluation, the same for both libraries: ``--eval-episodes`` (20) episodes of the deterministic
policy (mean action clipped to the bounds; greedy for DQN), observation statistics frozen, on the
same start states: our convention (``core.engine.trainer.eval_seed``), a separate vector env
reset with seed ``seed + 100000``, episode i in sub-env i (seed ``seed + 100000 + i``). Ours is
``trainer.evaluate``; SB3's policy runs through ``evaluate_policy`` with its ``VecNormalize``'s
``normalize_obs`` and ``model.predict(deterministic=True)``. The returns are the raw ones.

The runs of ``learn`` and ``dqn`` are independent processes' worth of work: ``--jobs N`` runs N of
them at a time in spawned worker processes (wall-clock speeds then depend on how many share the
cores; CPU-time speeds much less). The report, rewritten after each finished run so that partial
results survive an interrupt, goes to ``--out``. Each finished run is also appended to ``--log``
(JSON lines with its settings); a later invocation with the same settings reads the log, skips the
runs it holds and reports them with the new ones, so the full benchmark can be run in pieces.

    .venv/bin/pip install -r requirements-bench.txt
    nice -n 10 .venv/bin/python -m benchmarks.bench_mujoco --jobs 2

The full run (defaults: 4k warm-up + 60k timed steps in 12 rounds per speed run; 3 seeds × 1M
Hopper steps × PPO/TRPO × ours/SB3; 3 seeds × 100k LunarLander DQN steps × ours/SB3) takes about
4½ h with ``--jobs 2`` on the 2-core development machine (8½ h with ``--jobs 1``), estimated from
the CPU-time speeds of short runs on a busy machine (less on an idle one); SB3's PPO is half of it.
``--parts speed`` alone takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    WINDOW,
    Clock,
    Run,
    argument_parser,
    machine,
    md_table,
    raw_env_fps,
    write_report,
)
from core.engine.algos import make_trainer, preset_config
from core.engine.trainer import EVAL_SEED_OFFSET, evaluate_policy

SPEED_ENVS = ("Hopper-v5", "HalfCheetah-v5")
LEARN_ENV = "Hopper-v5"
DQN_ENV = "LunarLander-v3"
ON_POLICY = ("ppo", "trpo")
PARTS = ("speed", "learn", "dqn")
SPEED_TARGET = 3.0  # ours / SB3
CEILING_TARGET = 0.6  # ours / raw env
THEIRS = {"ppo": "SB3 PPO", "trpo": "sb3-contrib TRPO", "dqn": "SB3 DQN"}

# ---------------------------------------------------------------------------------------------
# Their side: rl-baselines3-zoo's hyperparams (ppo.yml Hopper-v3/v4, HalfCheetah-v3/v4; trpo.yml
# the mujoco-defaults anchor, target_kl 0.04 for HalfCheetah; dqn.yml LunarLander-v2), with the
# zoo's own additions: ``normalize: true`` is VecNormalize(gamma=γ) around make_vec_env.
# ---------------------------------------------------------------------------------------------

_ZOO_PPO_POLICY = "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=256-256)"
_ZOO_PPO_MUJOCO = {"normalize": True, "n_envs": 1, "n_steps": 512}
_ZOO_TRPO_MUJOCO = {
    "normalize": True,
    "n_envs": 2,
    "n_steps": 1024,
    "batch_size": 128,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "sub_sampling_factor": 1,
    "cg_max_steps": 25,
    "cg_damping": 0.1,
    "n_critic_updates": 20,
    "learning_rate": 1e-3,
}
SB3_ZOO: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "Hopper-v5": {
            **_ZOO_PPO_MUJOCO,
            "batch_size": 32,
            "gamma": 0.999,
            "learning_rate": 9.80828e-05,
            "ent_coef": 0.00229519,
            "clip_range": 0.2,
            "n_epochs": 5,
            "gae_lambda": 0.99,
            "max_grad_norm": 0.7,
            "vf_coef": 0.835671,
        },
        "HalfCheetah-v5": {
            **_ZOO_PPO_MUJOCO,
            "batch_size": 64,
            "gamma": 0.98,
            "learning_rate": 2.0633e-05,
            "ent_coef": 0.000401762,
            "clip_range": 0.1,
            "n_epochs": 20,
            "gae_lambda": 0.92,
            "max_grad_norm": 0.8,
            "vf_coef": 0.58096,
        },
    },
    "trpo": {
        "Hopper-v5": dict(_ZOO_TRPO_MUJOCO),
        "HalfCheetah-v5": {**_ZOO_TRPO_MUJOCO, "target_kl": 0.04},
    },
    "dqn": {
        "LunarLander-v3": {
            "normalize": False,
            "n_envs": 1,
            "learning_rate": 6.3e-4,
            "batch_size": 128,
            "buffer_size": 50_000,
            "learning_starts": 0,
            "gamma": 0.99,
            "target_update_interval": 250,
            "train_freq": 4,
            "gradient_steps": -1,
            "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1,
        },
    },
}


def _policy_kwargs(algo: str) -> dict[str, Any]:
    """The zoo's policy_kwargs: PPO's MuJoCo entries and DQN's LunarLander entry (TRPO: none)."""
    if algo == "ppo":
        return {
            "log_std_init": -2,
            "ortho_init": False,
            "activation_fn": torch.nn.ReLU,
            "net_arch": {"pi": [256, 256], "vf": [256, 256]},
        }
    if algo == "dqn":
        return {"net_arch": [256, 256]}
    return {}


def _check_same(algo: str, env_id: str, zoo: dict[str, Any]) -> None:
    """Refuse to compare if our preset and the SB3 settings disagree on the shared basics."""
    ours = preset_config(algo, env_id, "zoo")
    pairs = {"n_envs": ours.n_envs, "gamma": ours.gamma}
    if algo != "dqn":
        pairs |= {"n_steps": ours.n_steps, "gae_lambda": ours.gae_lambda}
    pairs["normalize"] = ours.normalize_obs
    wrong = {k: (v, zoo[k]) for k, v in pairs.items() if zoo[k] != v}
    if wrong:
        raise ValueError(f"{algo} on {env_id}: our preset and SB3's settings differ: {wrong}")


def sb3_model(algo: str, env_id: str, seed: int) -> Any:
    """A fresh SB3 / sb3-contrib model with the zoo's settings for (algo, env), on the CPU."""
    from sb3_contrib import TRPO
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    kwargs = dict(SB3_ZOO[algo][env_id])
    _check_same(algo, env_id, kwargs)
    normalize, n_envs = kwargs.pop("normalize"), kwargs.pop("n_envs")
    env = sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=kwargs["gamma"])
    cls = {"ppo": PPO, "trpo": TRPO, "dqn": DQN}[algo]
    return cls(
        "MlpPolicy",
        env,
        policy_kwargs=_policy_kwargs(algo),
        stats_window_size=WINDOW,
        seed=seed,
        device="cpu",
        **kwargs,
    )


def sb3_evaluate(model: Any, env_id: str, seed: int, episodes: int) -> list[float]:
    """SB3's deterministic policy on our evaluation episodes, its VecNormalize statistics frozen
    (``normalize_obs`` reads them; nothing here steps the training env)."""
    from stable_baselines3.common.vec_env import VecNormalize

    venv = model.get_env()
    norm = venv if isinstance(venv, VecNormalize) else None

    def act(obs: torch.Tensor) -> torch.Tensor:
        x = obs.numpy()
        if norm is not None:
            x = norm.normalize_obs(x)
        actions, _ = model.predict(x, deterministic=True)
        return torch.as_tensor(actions)

    return evaluate_policy(env_id, act, episodes, seed + EVAL_SEED_OFFSET)


def _sb3_training_mean(model: Any) -> float:
    returns = [ep["r"] for ep in list(model.ep_info_buffer)[-WINDOW:]]
    return float(np.mean(returns)) if returns else float("nan")


# ---------------------------------------------------------------------------------------------
# Part 1: speed
# ---------------------------------------------------------------------------------------------


class Timed:
    """Wall and CPU seconds and env steps summed over the timed chunks of one side."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.steps = 0

    def chunk(self, advance: Callable[[], int]) -> None:
        """Time ``advance()``, which returns the env steps it took."""
        clock = Clock()
        self.steps += advance()
        wall, cpu = clock.totals()
        self.wall += wall
        self.cpu += cpu

    def run(self, final_mean: float) -> Run:
        return Run(self.wall, self.cpu, self.steps, None, final_mean)


class OursSpeed:
    """Our trainer at the zoo preset, advanced to a given env step a whole update at a time.

    ``seconds`` sums wall seconds of two parts of its updates: "rollout" (env steps, acting,
    normalization, GAE; the rest of an update is the learning step) and, within it, "env" (the
    vector env's ``step`` calls)."""

    def __init__(self, algo: str, env_id: str) -> None:
        config = preset_config(algo, env_id, "zoo", seed=0, eval_every=0)
        self.trainer = make_trainer(config)
        self.final = float("nan")
        self.seconds = {"rollout": 0.0, "env": 0.0}
        self._time(self.trainer, "start_update", "rollout")
        self._time(self.trainer.env, "step", "env")

    def _time(self, owner: Any, method: str, part: str) -> None:
        """Make ``owner.method`` add its wall seconds to ``seconds[part]``."""
        call = getattr(owner, method)

        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            out = call(*args)
            self.seconds[part] += time.perf_counter() - start
            return out

        setattr(owner, method, timed)

    def advance_to(self, target: int) -> int:
        """Updates until ``target`` env steps (at least one); returns the env steps taken."""
        start = self.trainer.book.env_steps
        target = max(target, start + 1)
        while self.trainer.book.env_steps < target:
            self.final = self.trainer.update().metrics["episode_return_mean"]
        return self.trainer.book.env_steps - start


class TheirSpeed:
    """The SB3 model, advanced by ``learn`` (whole rollouts) without resetting its counters."""

    def __init__(self, algo: str, env_id: str) -> None:
        self.model = sb3_model(algo, env_id, 0)

    def advance_to(self, target: int) -> int:
        """Rollouts until ``target`` env steps (at least one); returns the env steps taken."""
        start = self.model.num_timesteps
        self.model.learn(max(target - start, 1), reset_num_timesteps=False)
        return self.model.num_timesteps - start

    @property
    def final(self) -> float:
        return _sb3_training_mean(self.model)


def interleaved_speed(
    algo: str, env_id: str, n_envs: int, args: argparse.Namespace
) -> tuple[Run, Run | None, float, dict[str, float]]:
    """Ours, SB3 and the raw env, timed in ``args.rounds`` alternating chunks (a shared machine's
    slow and fast moments fall on all three alike): both learners warm up to ``args.warmup`` env
    steps untimed, then each round moves each learner ``args.steps / rounds`` env steps further
    (whole rollouts: a learner can run a little past a chunk's end) and steps the raw env
    ``args.raw_steps / rounds`` env steps. Returns (ours, SB3, raw env-steps/s, ours' timed
    ``OursSpeed.seconds``)."""
    sides = [OursSpeed(algo, env_id)]
    if not args.no_sb3:
        sides.append(TheirSpeed(algo, env_id))
    clocks = [Timed() for _ in sides]
    raw_chunk = max(1, args.raw_steps // args.rounds // n_envs)
    raw_seconds = 0.0
    for side in sides:
        side.advance_to(args.warmup)
    sides[0].seconds = dict.fromkeys(sides[0].seconds, 0.0)
    for k in range(1, args.rounds + 1):
        target = args.warmup + args.steps * k // args.rounds
        for side, clock in zip(sides, clocks):
            clock.chunk(functools.partial(side.advance_to, target))
        fps = raw_env_fps(n_envs, raw_chunk, env_id, random_actions=True)
        raw_seconds += n_envs * raw_chunk / fps
    runs = [clock.run(side.final) for side, clock in zip(sides, clocks)]
    ours, theirs = runs[0], (runs[1] if len(runs) > 1 else None)
    return ours, theirs, args.rounds * n_envs * raw_chunk / raw_seconds, sides[0].seconds


@dataclass
class SpeedRow:
    env_id: str
    algo: str
    n_envs: int
    ours: Run
    theirs: Run | None
    raw: float
    ours_seconds: dict[str, float]  # ``OursSpeed.seconds`` within ``ours.wall``

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeedRow:
        theirs = Run(**d["theirs"]) if d["theirs"] else None
        ours = Run(**d["ours"])
        return cls(d["env_id"], d["algo"], d["n_envs"], ours, theirs, d["raw"], d["ours_seconds"])

    def per_step_us(self) -> dict[str, float]:
        """µs per env step (wall): ours' "total", its rollout's "env" steps and "rest", its
        "learning" step, and the "raw" env."""
        us = {k: v / self.ours.steps * 1e6 for k, v in self.ours_seconds.items()}
        total = self.ours.wall / self.ours.steps * 1e6
        return {
            "total": total,
            "env": us["env"],
            "rest": us["rollout"] - us["env"],
            "learning": total - us["rollout"],
            "raw": 1e6 / self.raw,
        }


def speed_part(
    args: argparse.Namespace, done: Callable[[SpeedRow], None], have: set[tuple[str, str]]
) -> None:
    """Every (env, algorithm) speed row not in ``have``."""
    for env_id in SPEED_ENVS:
        for algo in ON_POLICY:
            if (env_id, algo) in have:
                continue
            n_envs = preset_config(algo, env_id, "zoo").n_envs
            ours, theirs, raw, seconds = interleaved_speed(algo, env_id, n_envs, args)
            print(f"speed {env_id} {algo} ours: {ours.fps:,.0f} env-steps/s", flush=True)
            if theirs is not None:
                print(f"speed {env_id} {algo} SB3:  {theirs.fps:,.0f} env-steps/s", flush=True)
            print(f"speed {env_id} {algo} raw:  {raw:,.0f} env-steps/s", flush=True)
            done(SpeedRow(env_id, algo, n_envs, ours, theirs, raw, seconds))


# ---------------------------------------------------------------------------------------------
# Parts 2 and 3: learning runs (one job each, optionally in worker processes)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    part: str  # "learn" or "dqn"
    lib: str  # "ours" or "sb3"
    algo: str
    env_id: str
    seed: int
    steps: int
    eval_episodes: int


@dataclass
class EvalRun(Run):
    """A training run (times without construction and evaluation; ``final_mean``: the last 20
    training episodes) and the returns of its final evaluation."""

    returns: list[float] = field(default_factory=list)

    @property
    def eval_mean(self) -> float:
        return float(np.mean(self.returns))


def run_job(job: Job) -> EvalRun:
    """Train one (library, algorithm, seed) to ``job.steps`` env steps, then evaluate."""
    torch.set_num_threads(1)
    if job.lib == "ours":
        config = preset_config(
            job.algo, job.env_id, "zoo", seed=job.seed, total_steps=job.steps, eval_every=0
        )
        trainer = make_trainer(config)
        final = float("nan")
        clock = Clock()
        while not trainer.done:
            final = trainer.update().metrics["episode_return_mean"]
        wall, cpu = clock.totals()
        steps, returns = trainer.book.env_steps, trainer.evaluate(job.eval_episodes)
    else:
        model = sb3_model(job.algo, job.env_id, job.seed)
        clock = Clock()
        model.learn(job.steps)
        wall, cpu = clock.totals()
        final, steps = _sb3_training_mean(model), model.num_timesteps
        returns = sb3_evaluate(model, job.env_id, job.seed, job.eval_episodes)
    return EvalRun(wall, cpu, steps, None, final, returns)


def run_jobs(jobs: Sequence[Job], n_jobs: int, done: Callable[[Job, EvalRun], None]) -> None:
    """Run ``jobs`` in order here (``n_jobs`` 1) or ``n_jobs`` at a time in spawned processes."""
    if n_jobs <= 1:
        for job in jobs:
            done(job, run_job(job))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            done(futures[future], future.result())


def learning_jobs(args: argparse.Namespace) -> list[Job]:
    """DQN's short runs first, then per seed, per algorithm: ours, then theirs (so both see the
    same load)."""
    libs = ("ours",) if args.no_sb3 else ("ours", "sb3")
    jobs: list[Job] = []
    if "dqn" in args.parts:
        steps = args.dqn_steps or preset_config("dqn", DQN_ENV, "zoo").total_steps
        for seed in args.dqn_seeds:
            for lib in libs:
                jobs.append(Job("dqn", lib, "dqn", DQN_ENV, seed, steps, args.eval_episodes))
    if "learn" in args.parts:
        for seed in args.seeds:
            for algo in ON_POLICY:
                for lib in libs:
                    jobs.append(
                        Job(
                            "learn",
                            lib,
                            algo,
                            LEARN_ENV,
                            seed,
                            args.learn_steps,
                            args.eval_episodes,
                        )
                    )
    return jobs


# ---------------------------------------------------------------------------------------------
# Run log: finished runs with their settings, so that the benchmark can be run in pieces
# ---------------------------------------------------------------------------------------------


def _speed_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "warmup": args.warmup,
        "steps": args.steps,
        "raw_steps": args.raw_steps,
        "rounds": args.rounds,
    }


def read_log(path: Path, args: argparse.Namespace) -> tuple[list[SpeedRow], dict[Job, EvalRun]]:
    """The speed rows measured with this invocation's speed settings, and every logged job."""
    speed: list[SpeedRow] = []
    jobs: dict[Job, EvalRun] = {}
    if not path.exists():
        return speed, jobs
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] == "speed" and entry["settings"] == _speed_settings(args):
            speed.append(SpeedRow.from_dict(entry["row"]))
        elif entry["kind"] == "job":
            jobs[Job(**entry["job"])] = EvalRun(**entry["run"])
    return speed, jobs


def append_log(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.write(json.dumps(entry) + "\n")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _mean_sd(xs: Sequence[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.0f}"
    return f"{statistics.mean(xs):.0f} ± {statistics.stdev(xs):.0f}"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def speed_section(args: argparse.Namespace, rows: list[SpeedRow]) -> list[str]:
    body = []
    for r in rows:
        cells = [r.env_id, r.algo.upper(), str(r.n_envs), f"{r.ours.fps:,.0f}"]
        if r.theirs is not None:
            ratio = r.ours.fps / r.theirs.fps
            cpu_ratio = r.ours.cpu_fps / r.theirs.cpu_fps
            cells += [
                f"{r.theirs.fps:,.0f}",
                f"{ratio:.2f}× {_mark(ratio >= SPEED_TARGET)}",
                f"{cpu_ratio:.2f}×",
            ]
        else:
            cells += ["", "", ""]
        share = r.ours.fps / r.raw
        cells += [f"{r.raw:,.0f}", f"{share:.0%} {_mark(share >= CEILING_TARGET)}"]
        body.append(cells)
    header = ["env", "algo", "envs", "ours (wall)", "SB3 (wall)", "ours/SB3 (wall)"]
    header += ["ours/SB3 (CPU)", "raw env (ceiling)", "ours/raw"]
    return [
        "## Speed: env-steps/s at the zoo settings",
        "",
        f"{args.warmup:,} env steps of warm-up (not timed), then {args.steps:,} timed env steps "
        f"(whole rollouts: a side can run a little past them), seed 0, in one process, timed in "
        f"{args.rounds} alternating chunks (ours, SB3, raw env, ours, ...) so that a shared "
        "machine's slow and fast moments fall on all three alike. SB3 is SB3 PPO / sb3-contrib "
        "TRPO. The ceiling is the raw "
        "Gymnasium env in our vector env (SyncVectorEnv, same-step autoreset) with the preset's "
        "number of sub-envs, stepping with random actions drawn beforehand "
        f"({args.raw_steps:,} env steps). Targets: ours/SB3 ≥ {SPEED_TARGET:.0f}× and ours/raw ≥ "
        f"{CEILING_TARGET:.0%} (✓ met, ✗ not).",
        "",
        *md_table(header, body),
        "",
        *time_split_section(rows),
    ]


def time_split_section(rows: list[SpeedRow]) -> list[str]:
    """Where ours' time per env step goes, and what that implies for the ceiling target."""
    body = []
    for r in rows:
        us = r.per_step_us()
        cells = [us[k] for k in ("total", "env", "rest", "learning", "raw")]
        bound = us["raw"] / (us["raw"] + us["learning"])
        body.append([r.env_id, r.algo.upper(), *(f"{c:.0f}" for c in cells), f"{bound:.0%}"])
    header = ["env", "algo", "ours: total", "env steps in our rollout", "rest of the rollout"]
    header += ["learning step", "raw env step", "ours/raw with a free rollout"]
    return [
        "Where ours' time goes, µs per env step (wall, the same timed chunks): the rollout's env "
        "steps (the vector env's `step`, under the policy being learned), the rest of the rollout "
        "(acting, normalization, bookkeeping, GAE) and the learning step (minibatch epochs or the "
        "trust-region step and critic regression); the raw env step for comparison. The last "
        "column is the share of the raw env's speed that ours would reach if the rollout cost no "
        "more than the raw env: raw / (raw + learning step), an upper bound on ours/raw at these "
        "settings while the learning step keeps its cost.",
        "",
        *md_table(header, body),
    ]


def _cells(runs: list[EvalRun]) -> list[str]:
    """Eval return, last-20 training return, wall time, env-steps/s (wall / CPU) of one run, or
    of several: returns as mean ± sd, times and speeds as means; blanks for none."""
    if not runs:
        return ["", "", "", ""]
    fps = statistics.mean(r.fps for r in runs)
    cpu_fps = statistics.mean(r.cpu_fps for r in runs)
    return [
        _mean_sd([r.eval_mean for r in runs]),
        _mean_sd([r.final_mean for r in runs]),
        _duration(statistics.mean(r.wall for r in runs)),
        f"{fps:,.0f} / {cpu_fps:,.0f}",
    ]


def _runs_table(results: dict[tuple[str, str, int], EvalRun], algo: str, seeds) -> list[str]:
    """Per seed (and the mean over seeds): ours and theirs side by side, column by column."""
    theirs = THEIRS[algo]
    header = ["seed"]
    for column in ("eval return", "last 20 training", "wall", "env-steps/s (wall / CPU)"):
        header += [f"ours: {column}", f"{theirs}: {column}"]
    body, columns = [], {"ours": [], "sb3": []}
    for seed in seeds:
        runs = {lib: results.get((algo, lib, seed)) for lib in columns}
        if not any(runs.values()):
            continue
        ours, sb3 = (_cells([r] if r else []) for r in runs.values())
        body.append([str(seed), *(cell for pair in zip(ours, sb3) for cell in pair)])
        for lib, run in runs.items():
            if run:
                columns[lib].append(run)
    if len(body) > 1:
        ours, sb3 = _cells(columns["ours"]), _cells(columns["sb3"])
        body.append(["mean", *(cell for pair in zip(ours, sb3) for cell in pair)])
    return md_table(header, body)


def learning_section(args: argparse.Namespace, results, part: str) -> list[str]:
    if part == "learn":
        lines = [
            f"## Learning: {LEARN_ENV}, {args.learn_steps:,} env steps",
            "",
            f"Seeds {' '.join(map(str, args.seeds))}; ours at the zoo presets against SB3 PPO and "
            "sb3-contrib TRPO at the zoo's settings.",
        ]
        algos = ON_POLICY
    else:
        steps = args.dqn_steps or preset_config("dqn", DQN_ENV, "zoo").total_steps
        lines = [
            f"## DQN: {DQN_ENV}, {steps:,} env steps (the zoo budget unless --dqn-steps)",
            "",
            f"Seeds {' '.join(map(str, args.dqn_seeds))}; ours at the zoo preset against SB3 DQN "
            "at the zoo's settings (lr 6.3e-4, batch 128, buffer 50k, learning_starts 0, γ 0.99, "
            "target update every 250 steps, train_freq 4 with 4 gradient steps, ε 1 → 0.1 over "
            "12 %, 256-256 ReLU).",
        ]
        algos = ("dqn",)
    lines += [
        "",
        f"Eval return: mean of {args.eval_episodes} episodes of the deterministic policy after "
        "training, observation statistics frozen, the same start states for both libraries "
        f"(our convention: sub-env i of a vector env reset with seed + {EVAL_SEED_OFFSET:,}). "
        "Last 20 training: the mean raw return of the last 20 training episodes. Wall time and "
        "env-steps/s are training only (construction and evaluation excluded)"
        + (f"; {args.jobs} runs at a time." if args.jobs > 1 else "; one run at a time."),
    ]
    seeds = args.seeds if part == "learn" else args.dqn_seeds
    for algo in algos:
        table = _runs_table(results, algo, seeds)
        if len(table) > 2:  # more than the header and the separator
            lines += ["", f"### {algo.upper()}"] if part == "learn" else []
            lines += ["", *table]
    return lines


SETTINGS = [
    "## Settings",
    "",
    '- Ours: `preset_config(algo, env_id, "zoo")` (`core/engine/algos/ppo.py`, `trpo.py`, '
    "`dqn.py`), normalization by `core/engine/normalize.py` (VecNormalize's rule).",
    "- Theirs: SB3 / sb3-contrib "
    "with rl-baselines3-zoo's hyperparams (ppo.yml Hopper / HalfCheetah: 1 env × 512 steps, "
    f"{_ZOO_PPO_POLICY}; trpo.yml mujoco-defaults: 2 envs × 1024 steps, batch 128, γ 0.99, "
    "λ 0.95, 25 CG steps, damping 0.1, 20 critic updates, lr 1e-3, target_kl 0.01 (0.04 for "
    "HalfCheetah), 64-64 tanh; dqn.yml LunarLander), `make_vec_env` + `VecNormalize(gamma=γ)` "
    "where the zoo normalizes, as the zoo's ExperimentManager does.",
    "- Known differences: our PPO initialises orthogonally (the zoo's `ortho_init=False` for "
    "Hopper and HalfCheetah is not reproduced); SB3 wraps each env in a Monitor and a "
    "DummyVecEnv, ours uses Gymnasium's SyncVectorEnv.",
]


def report(args: argparse.Namespace, speed: list[SpeedRow], results: dict) -> str:
    lines = [
        "# MuJoCo and Box2D benchmark: ours vs Stable-Baselines3 / sb3-contrib (RL-Zoo settings)",
        "",
        f"Machine: {machine()}, one torch thread per run. "
        "Wall-clock figures depend on the load of a shared machine; CPU-time figures (process "
        "time) less so.",
    ]
    if speed:
        lines += ["", *speed_section(args, speed)]
    for part in ("learn", "dqn"):
        if results.get(part):
            lines += ["", *learning_section(args, results[part], part)]
    lines += ["", *SETTINGS]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argument_parser(__doc__, steps=60_000)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--warmup", type=int, default=4096, help="untimed env steps (speed)")
    parser.add_argument("--raw-steps", type=int, default=20_000, help="raw env steps (ceiling)")
    parser.add_argument("--rounds", type=int, default=12, help="alternating timed chunks (speed)")
    parser.add_argument("--learn-steps", type=int, default=1_000_000)
    parser.add_argument("--dqn-steps", type=int, default=None, help="default: the zoo budget")
    parser.add_argument("--dqn-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="learning runs at a time")
    parser.add_argument("--no-sb3", action="store_true", help="skip SB3 / sb3-contrib")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mujoco.md"))
    parser.add_argument("--log", type=Path, default=Path("benchmarks/results/mujoco_runs.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    speed, logged = read_log(args.log, args)
    jobs = learning_jobs(args)
    results: dict[str, dict[tuple[str, str, int], EvalRun]] = {"learn": {}, "dqn": {}}
    for job in jobs:
        if job in logged:
            results[job.part][job.algo, job.lib, job.seed] = logged[job]
    print(f"from {args.log}: {len(speed)} speed rows, {sum(map(len, results.values()))} runs")

    def speed_done(row: SpeedRow) -> None:
        speed.append(row)
        append_log(
            args.log, {"kind": "speed", "settings": _speed_settings(args), "row": asdict(row)}
        )
        write_report(args.out, report(args, speed, results))

    def job_done(job: Job, run: EvalRun) -> None:
        results[job.part][job.algo, job.lib, job.seed] = run
        append_log(args.log, {"kind": "job", "job": asdict(job), "run": asdict(run)})
        print(
            f"{job.part} {job.algo} {job.lib:4s} seed {job.seed}: eval {run.eval_mean:.0f}, "
            f"last 20 training {run.final_mean:.0f}, {_duration(run.wall)}, "
            f"{run.fps:,.0f} env-steps/s ({run.cpu_fps:,.0f} per CPU-s)",
            flush=True,
        )
        write_report(args.out, report(args, speed, results))

    if "speed" in args.parts:
        speed_part(args, speed_done, {(row.env_id, row.algo) for row in speed})
    run_jobs([job for job in jobs if job not in logged], args.jobs, job_done)
    text = report(args, speed, results)
    print(text)
    write_report(args.out, text)


if __name__ == "__main__":
    main()

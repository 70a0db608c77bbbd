"""TRPO speed and learning: ours against sb3-contrib TRPO at RL-Zoo CartPole settings.

In one process, on one torch thread, for each seed in turn (ours, then sb3-contrib, so both see the
same machine load): train CartPole-v1 for ``--steps`` env steps and record env-steps/s (wall clock
and CPU time) and the first env step at which the mean return of the last 20 training episodes
reaches 475. Then: the time of TRPO's policy step (g, CG, line search) against one plain gradient of
the surrogate on the same batch, raw Gymnasium stepping (8 vector envs) as the ceiling, and a
Pendulum-v1 learning curve of ours. Prints a Markdown report and writes it to ``--out``.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python -m benchmarks.bench_trpo --seeds 0 1 2 --steps 100000
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.algos import make_trainer, preset_config
from core.algos.trpo import TRPO, dist_params, log_prob
from core.envs import make_vec_env

SOLVED = 475.0
WINDOW = 20


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


def run_ours(seed: int, steps: int) -> Run:
    config = preset_config("trpo", "CartPole-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    solved_at, mean = None, float("nan")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while not trainer.done:
        metrics = trainer.update().metrics
        mean = metrics["episode_return_mean"]
        if solved_at is None and mean >= SOLVED:
            solved_at = trainer.book.env_steps
    return Run(
        time.perf_counter() - wall0,
        time.process_time() - cpu0,
        trainer.book.env_steps,
        solved_at,
        mean,
    )


def run_sb3(seed: int, steps: int) -> Run:
    """sb3-contrib TRPO with rl-baselines3-zoo's hyperparams/trpo.yml CartPole-v1 entry."""
    from sb3_contrib import TRPO as SB3TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    class Solved(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.solved_at: int | None = None
            self.mean = float("nan")

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            infos = list(self.model.ep_info_buffer)[-WINDOW:]
            if infos:
                self.mean = float(np.mean([e["r"] for e in infos]))
                if self.solved_at is None and self.mean >= SOLVED:
                    self.solved_at = self.num_timesteps

    env = sb3_make_vec_env("CartPole-v1", n_envs=2, seed=seed)
    model = SB3TRPO(
        "MlpPolicy",
        env,
        n_steps=512,
        batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        learning_rate=1e-3,
        n_critic_updates=20,
        stats_window_size=WINDOW,
        seed=seed,
        device="cpu",
    )
    callback = Solved()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.learn(steps, callback=callback)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Run(wall, cpu, model.num_timesteps, callback.solved_at, callback.mean)


def _best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls (robust to a busy machine)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_policy_step(fvp_subsample: float, repeats: int = 30) -> dict[str, float]:
    """Seconds for one plain surrogate gradient and for TRPO's policy step on one zoo batch."""
    config = preset_config("trpo", "CartPole-v1", "zoo", seed=0, fvp_subsample=fvp_subsample)
    trainer: TRPO = make_trainer(config)
    for _ in range(3):
        trainer.update()
    batch = trainer.buffer.batch(config.gamma, config.gae_lambda)
    adv = (batch.advantages - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)
    params = list(trainer.actor.parameters())
    state = {k: v.clone() for k, v in trainer.actor.state_dict().items()}

    def plain_gradient() -> None:
        logp = log_prob(dist_params(trainer.actor, batch.obs), batch.actions)
        surrogate = (torch.exp(logp - logp.detach()) * adv).mean()
        torch.autograd.grad(surrogate, params)

    def policy_step() -> None:
        trainer._policy_step(batch.obs, batch.actions, adv)
        trainer.actor.load_state_dict(state)

    def critic_step() -> None:
        trainer._critic_step(batch)

    grad = _best_time(plain_gradient, repeats)
    step = _best_time(policy_step, repeats)
    critic = _best_time(critic_step, max(3, repeats // 5))
    return {
        "batch": len(batch),
        "plain_gradient": grad,
        "policy_step": step,
        "cg_and_line_search": step - grad,
        "critic": critic,
        "cg_iters": trainer.config.params.cg_iters,
    }


def raw_env_fps(n_envs: int = 8, vector_steps: int = 5000) -> float:
    env = make_vec_env("CartPole-v1", n_envs, 0)
    actions = np.zeros(n_envs, dtype=np.int64)
    env.step(actions)
    t0 = time.perf_counter()
    for _ in range(vector_steps):
        env.step(actions)
    return n_envs * vector_steps / (time.perf_counter() - t0)


def pendulum_curve(steps: int, seed: int = 0, every: int = 10_240) -> list[tuple[int, float]]:
    config = preset_config("trpo", "Pendulum-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    curve, next_mark = [], every
    while not trainer.done:
        metrics = trainer.update().metrics
        if trainer.book.env_steps >= next_mark or trainer.done:
            curve.append((trainer.book.env_steps, metrics["episode_return_mean"]))
            next_mark += every
    return curve


def _steps_text(runs: list[Run]) -> str:
    solved = [r.steps_to_solve for r in runs if r.steps_to_solve is not None]
    parts = [f"{r.steps_to_solve:,}" if r.steps_to_solve else "not reached" for r in runs]
    median = f" (median {statistics.median(solved):,.0f})" if solved else ""
    return ", ".join(parts) + median


def report(args, ours: list[Run], theirs: list[Run], timings, raw: float, curve) -> str:
    lines = [
        "# TRPO benchmark: ours vs sb3-contrib TRPO (CartPole-v1, RL-Zoo settings)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread; {args.steps:,} env steps per run; "
        f"seeds {', '.join(map(str, args.seeds))}. Wall-clock figures depend on the load of a "
        "shared machine; CPU-time figures (process time) less so. Ours and theirs alternate per "
        "seed, so both see the same conditions.",
        "",
        "Settings (both): 2 envs, n_steps 512, γ 0.99, λ 0.98, δ 0.01, damping 1e-3, 15 CG "
        "iterations, line search 0.8 × 10, critic Adam lr 1e-3, 20 epochs of minibatch 512, "
        "64-64 tanh actor and critic.",
        "",
        "| | env-steps/s (wall) | env-steps/s (CPU) | steps to 20-episode mean ≥ 475 | "
        "final 20-episode mean |",
        "|---|---|---|---|---|",
    ]
    for name, runs in (("ours", ours), ("sb3-contrib TRPO", theirs)):
        if not runs:
            continue
        fps = statistics.mean(r.fps for r in runs)
        cpu = statistics.mean(r.cpu_fps for r in runs)
        final = ", ".join(f"{r.final_mean:.0f}" for r in runs)
        lines.append(f"| {name} | {fps:,.0f} | {cpu:,.0f} | {_steps_text(runs)} | {final} |")
    if ours and theirs:
        wall_ratio = statistics.mean(r.fps for r in ours) / statistics.mean(r.fps for r in theirs)
        cpu_ratio = statistics.mean(r.cpu_fps for r in ours) / statistics.mean(
            r.cpu_fps for r in theirs
        )
        lines.append(f"| ratio ours/theirs | {wall_ratio:.2f}× | {cpu_ratio:.2f}× | | |")
    lines += [
        f"| raw Gymnasium CartPole, 8 SyncVectorEnv envs (ceiling) | {raw:,.0f} | | | |",
        "",
        "Policy update on one zoo batch (best of repeated calls, wall clock): the policy step is "
        "g = ∇L, CG, the max step and the line search; one plain gradient is ∇L alone.",
        "",
        "| FVP batch | batch | one plain gradient | whole policy step | CG + line search | "
        "(CG + line search) / gradient | critic (20 epochs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, t in timings:
        lines.append(
            f"| {label} | {t['batch']} | {t['plain_gradient'] * 1e3:.2f} ms | "
            f"{t['policy_step'] * 1e3:.2f} ms | {t['cg_and_line_search'] * 1e3:.2f} ms | "
            f"{t['cg_and_line_search'] / t['plain_gradient']:.1f}× | {t['critic'] * 1e3:.1f} ms |"
        )
    if curve:
        lines += [
            "",
            "Pendulum-v1, ours, zoo preset (2 envs × 1024 steps, γ 0.9, no gSDE), seed 0: mean "
            "return of the last 20 training episodes.",
            "",
            "| env steps | " + " | ".join(f"{s // 1000}k" for s, _ in curve) + " |",
            "|---|" + "---|" * len(curve),
            "| return | " + " | ".join(f"{r:.0f}" for _, r in curve) + " |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--pendulum-steps", type=int, default=100_000)
    parser.add_argument("--no-sb3", action="store_true", help="skip sb3-contrib")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/trpo.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    ours, theirs = [], []
    for seed in args.seeds:
        ours.append(run_ours(seed, args.steps))
        print(f"ours seed {seed}: {ours[-1]}", flush=True)
        if not args.no_sb3:
            theirs.append(run_sb3(seed, args.steps))
            print(f"sb3  seed {seed}: {theirs[-1]}", flush=True)
    timings = [("full batch", time_policy_step(1.0)), ("10 % subsample", time_policy_step(0.1))]
    raw = raw_env_fps()
    curve = pendulum_curve(args.pendulum_steps) if args.pendulum_steps > 0 else []
    text = report(args, ours, theirs, timings, raw, curve)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()

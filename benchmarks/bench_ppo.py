"""PPO speed and learning: ours against Stable-Baselines3 PPO at RL-Zoo CartPole settings.

In one process, on one torch thread, for each seed in turn (ours, then SB3, so both see the same
machine load): train CartPole-v1 for ``--steps`` env steps and record env-steps/s (wall clock and
CPU time) and the first env step at which the mean return of the last 20 training episodes reaches
475. Optionally the same for our adaptive-KL PPO (``--kl``). Then: one PPO gradient step on a zoo
minibatch, ours (hand-derived gradients, flat Adam) against the same step with autograd, raw
Gymnasium stepping (8 vector envs) as the ceiling, and a Pendulum-v1 learning curve of ours.
Prints a Markdown report and writes it to ``--out``.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python -m benchmarks.bench_ppo --seeds 0 1 2 --steps 100000
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
from core.envs import make_vec_env
from core.nets import CategoricalActor, Critic

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


def run_ours(seed: int, steps: int, algo: str = "ppo") -> Run:
    config = preset_config(algo, "CartPole-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    solved_at, mean = None, float("nan")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while not trainer.done:
        mean = trainer.update().metrics["episode_return_mean"]
        if solved_at is None and mean >= SOLVED:
            solved_at = trainer.book.env_steps
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Run(wall, cpu, trainer.book.env_steps, solved_at, mean)


def run_sb3(seed: int, steps: int) -> Run:
    """SB3 PPO with rl-baselines3-zoo's hyperparams/ppo.yml CartPole-v1 entry."""
    from stable_baselines3 import PPO as SB3PPO
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

    env = sb3_make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = SB3PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=lambda progress: 1e-3 * progress,  # lin_0.001
        clip_range=lambda progress: 0.2 * progress,  # lin_0.2
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


def time_gradient_step(repeats: int = 200) -> dict[str, float]:
    """Seconds per PPO minibatch step (256 samples): ours vs the same loss through autograd."""
    config = preset_config("ppo", "CartPole-v1", "zoo", seed=0, eval_every=0)
    trainer = make_trainer(config)
    trainer.update()
    batch = trainer.buffer.batch(config.gamma, config.gae_lambda)
    actions = batch.actions.long()
    adv = (batch.advantages - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)
    with torch.no_grad():
        old = trainer.ac.old_policy(batch.obs)

    def ours() -> None:
        trainer.ac.loss_grad(batch.obs, actions, batch.logp, adv, batch.returns, old,
                             objective="clip", clip_eps=0.2, vf_coef=0.5)  # fmt: skip
        trainer.ac.clip_grad_norm(0.5)
        trainer.optimizer.step(trainer.ac.grad)

    actor, critic = CategoricalActor(4, 2, (64, 64), "tanh"), Critic(4, (64, 64), "tanh")
    params = [*actor.parameters(), *critic.parameters()]
    adam = torch.optim.Adam(params, lr=1e-3, eps=1e-5)

    def autograd() -> None:
        logp, _ = actor.log_prob_entropy(batch.obs, actions)
        ratio = torch.exp(logp - batch.logp)
        policy_loss = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
        loss = policy_loss + 0.5 * (critic(batch.obs) - batch.returns).pow(2).mean()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        adam.step()

    return {"ours": _best_time(ours, repeats), "autograd": _best_time(autograd, repeats)}


def raw_env_fps(n_envs: int = 8, vector_steps: int = 5000) -> float:
    env = make_vec_env("CartPole-v1", n_envs, 0)
    actions = np.zeros(n_envs, dtype=np.int64)
    env.step(actions)
    t0 = time.perf_counter()
    for _ in range(vector_steps):
        env.step(actions)
    return n_envs * vector_steps / (time.perf_counter() - t0)


def pendulum_curve(steps: int, seed: int, every: int = 8192) -> list[tuple[int, float, float]]:
    """(env steps, 20-episode training mean, deterministic eval mean over 10 episodes)."""
    config = preset_config("ppo", "Pendulum-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    curve, next_mark = [], every
    while not trainer.done:
        metrics = trainer.update().metrics
        if trainer.book.env_steps >= next_mark or trainer.done:
            evaluation = float(np.mean(trainer.evaluate(10)))
            curve.append((trainer.book.env_steps, metrics["episode_return_mean"], evaluation))
            next_mark += every
    return curve


def _steps_text(runs: list[Run]) -> str:
    solved = [r.steps_to_solve for r in runs if r.steps_to_solve is not None]
    parts = [f"{r.steps_to_solve:,}" if r.steps_to_solve else "not reached" for r in runs]
    median = f" (median {statistics.median(solved):,.0f})" if solved else ""
    return ", ".join(parts) + median


def report(args, rows: dict[str, list[Run]], step: dict[str, float], raw: float, curves) -> str:
    lines = [
        "# PPO benchmark: ours vs Stable-Baselines3 PPO (CartPole-v1, RL-Zoo settings)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread; {args.steps:,} env steps per run; "
        f"seeds {', '.join(map(str, args.seeds))}. Wall-clock figures depend on the load of a "
        "shared machine; CPU-time figures (process time) less so. Ours and theirs alternate per "
        "seed, so both see the same conditions.",
        "",
        "Settings (both): 8 envs × n_steps 32, minibatch 256, 20 epochs, γ 0.98, λ 0.8, lr 1e-3 "
        "and clip ε 0.2 both decayed linearly to 0, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5, "
        "Adam ε 1e-5, 64-64 tanh actor and critic, advantages normalized per minibatch.",
        "",
        "| | env-steps/s (wall) | env-steps/s (CPU) | steps to 20-episode mean ≥ 475 | "
        "final 20-episode mean |",
        "|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        if not runs:
            continue
        fps = statistics.mean(r.fps for r in runs)
        cpu = statistics.mean(r.cpu_fps for r in runs)
        final = ", ".join(f"{r.final_mean:.0f}" for r in runs)
        lines.append(f"| {name} | {fps:,.0f} | {cpu:,.0f} | {_steps_text(runs)} | {final} |")
    ours, theirs = rows.get("ours (ppo)"), rows.get("Stable-Baselines3 PPO")
    if ours and theirs:
        wall = statistics.mean(r.fps for r in ours) / statistics.mean(r.fps for r in theirs)
        cpu = statistics.mean(r.cpu_fps for r in ours) / statistics.mean(r.cpu_fps for r in theirs)
        lines.append(f"| ratio ours/theirs | {wall:.2f}× | {cpu:.2f}× | | |")
    lines += [
        f"| raw Gymnasium CartPole, 8 SyncVectorEnv envs (ceiling) | {raw:,.0f} | | | |",
        "",
        "One PPO gradient step on a zoo minibatch of 256 (loss, gradient, clip, Adam; best of "
        f"repeated calls): ours (hand-derived gradients, flat Adam) {step['ours'] * 1e3:.2f} ms, "
        f"the same step through autograd + torch.optim.Adam {step['autograd'] * 1e3:.2f} ms "
        f"({step['autograd'] / step['ours']:.1f}×).",
    ]
    for seed, curve in curves:
        lines += [
            "",
            f"Pendulum-v1, ours, zoo preset (4 envs × 1024 steps, γ 0.9, λ 0.95, 10 epochs of "
            f"minibatch 64, lr 1e-3, no gSDE: Gaussian with log σ₀ = −0.5), seed {seed}: mean "
            "return of the last 20 training episodes, and of 10 deterministic evaluation episodes.",
            "",
            "| env steps | " + " | ".join(f"{s / 1000:.0f}k" for s, _, _ in curve) + " |",
            "|---|" + "---|" * len(curve),
            "| training | " + " | ".join(f"{r:.0f}" for _, r, _ in curve) + " |",
            "| evaluation | " + " | ".join(f"{e:.0f}" for _, _, e in curve) + " |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--kl", action="store_true", help="also run our adaptive-KL PPO")
    parser.add_argument("--pendulum-steps", type=int, default=100_000)
    parser.add_argument("--pendulum-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ppo.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    names = ("ours (ppo)", "Stable-Baselines3 PPO", "ours (ppo-kl)")
    rows: dict[str, list[Run]] = {name: [] for name in names}
    for seed in args.seeds:
        rows["ours (ppo)"].append(run_ours(seed, args.steps))
        print(f"ours seed {seed}: {rows['ours (ppo)'][-1]}", flush=True)
        if not args.no_sb3:
            rows["Stable-Baselines3 PPO"].append(run_sb3(seed, args.steps))
            print(f"sb3  seed {seed}: {rows['Stable-Baselines3 PPO'][-1]}", flush=True)
        if args.kl:
            rows["ours (ppo-kl)"].append(run_ours(seed, args.steps, "ppo-kl"))
            print(f"ppo-kl seed {seed}: {rows['ours (ppo-kl)'][-1]}", flush=True)
    step = time_gradient_step()
    raw = raw_env_fps()
    curves = []
    if args.pendulum_steps > 0:
        for seed in args.pendulum_seeds:
            curves.append((seed, pendulum_curve(args.pendulum_steps, seed)))
            print(f"pendulum seed {seed}: {curves[-1][1]}", flush=True)
    text = report(args, rows, step, raw, curves)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()

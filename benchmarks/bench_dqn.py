"""DQN speed and learning: ours (DQN, Double, Dueling, PER) against Stable-Baselines3 DQN.

Both run the RL-Zoo CartPole-v1 settings (hyperparams/dqn.yml: lr 2.3e-3, batch 64, buffer 1e5,
learning_starts 1000, target_update_interval 10 env steps, train_freq 256, gradient_steps 128,
ε → 0.04 over 16 % of the budget, [256, 256] ReLU net, one env) in one process on one torch thread,
seed by seed and library after library, so all see the same machine load. Per run:

- env-steps/s on the wall clock and per CPU second (CPU time is robust to a busy machine), both
  without the evaluation time;
- the first env step at which the greedy evaluation (``--eval-episodes`` episodes with fixed seeds,
  every ``--eval-every`` env steps, the same code for both libraries) reaches 475;
- the training-episode return at the end (ε-greedy; mean of the last 20 episodes).

Prints a Markdown report and writes it to ``--out``.

    .venv/bin/pip install -r requirements-bench.txt
    nice -n 10 .venv/bin/python -m benchmarks.bench_dqn --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    WINDOW,
    Clock,
    Run,
    argument_parser,
    machine,
    md_table,
    steps_to_threshold,
    write_report,
)
from core.engine.algos import make_trainer, preset_config
from core.engine.trainer import evaluate_policy

ENV_ID = "CartPole-v1"
VARIANTS: dict[str, dict[str, bool]] = {
    "dqn": {},
    "double": {"double": True},
    "dueling": {"dueling": True},
    "per": {"prioritized": True},
}


@dataclass
class GreedyRun(Run):
    """A training run with its greedy evaluation curve; times exclude the evaluations, and
    ``steps_to_solve`` is the first evaluation at 475."""

    evals: list[tuple[int, float]] = field(default_factory=list)


def run_ours(variant: str, seed: int, steps: int, eval_every: int, eval_episodes: int) -> GreedyRun:
    config = preset_config(
        "dqn", ENV_ID, "zoo", seed=seed, total_steps=steps, eval_every=0, **VARIANTS[variant]
    )
    trainer = make_trainer(config)
    clock = Clock()
    evals: list[tuple[int, float]] = []
    next_eval, final = eval_every, float("nan")
    while not trainer.done:
        final = trainer.update().metrics["episode_return_mean"]
        if trainer.book.env_steps >= next_eval:
            next_eval += eval_every
            ret = clock.timed_eval(lambda: _greedy_eval(trainer.q, seed, eval_episodes))
            evals.append((trainer.book.env_steps, ret))
    wall, cpu = clock.totals()
    return GreedyRun(wall, cpu, trainer.book.env_steps, steps_to_threshold(evals), final, evals)


def run_sb3(seed: int, steps: int, eval_every: int, eval_episodes: int) -> GreedyRun:
    """SB3 DQN with rl-baselines3-zoo's hyperparams/dqn.yml CartPole-v1 entry."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    clock = Clock()
    evals: list[tuple[int, float]] = []

    class GreedyEval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                q_net = self.model.policy.q_net
                ret = clock.timed_eval(lambda: _greedy_eval(q_net, seed, eval_episodes))
                evals.append((self.num_timesteps, ret))
            return True

    env = sb3_make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = SB3DQN(
        "MlpPolicy",
        env,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        device="cpu",
    )
    clock = Clock()  # construction excluded, as for ours
    model.learn(total_timesteps=steps, callback=GreedyEval())
    wall, cpu = clock.totals()
    returns = [ep["r"] for ep in list(model.ep_info_buffer)[-WINDOW:]]
    final = float(np.mean(returns)) if returns else float("nan")
    return GreedyRun(wall, cpu, model.num_timesteps, steps_to_threshold(evals), final, evals)


def _greedy_eval(q_net: torch.nn.Module, seed: int, episodes: int) -> list[float]:
    """argmax_a q(s, a) over ``episodes`` CartPole episodes with fixed seeds (same for both)."""
    return evaluate_policy(ENV_ID, lambda obs: q_net(obs).argmax(-1), episodes, seed + 10_000)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _mean_sd(xs: list[float], fmt: str = "{:.0f}") -> str:
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(statistics.mean(xs))} ± {fmt.format(statistics.stdev(xs))}"


def _speed_row(name: str, runs: list[GreedyRun], sb3: list[GreedyRun] | None) -> list[str]:
    wall, cpu = [r.fps for r in runs], [r.cpu_fps for r in runs]
    ratio = "1.0 / 1.0"
    if sb3 and name != "sb3":
        ratio_wall = statistics.mean(wall) / statistics.mean(r.fps for r in sb3)
        ratio_cpu = statistics.mean(cpu) / statistics.mean(r.cpu_fps for r in sb3)
        ratio = f"{ratio_wall:.1f} / {ratio_cpu:.1f}"
    solved = ", ".join("—" if r.steps_to_solve is None else str(r.steps_to_solve) for r in runs)
    finals = ", ".join(f"{r.final_mean:.0f}" for r in runs)
    label = "SB3 DQN" if name == "sb3" else f"ours: {name}"
    return [label, _mean_sd(wall), _mean_sd(cpu), ratio, solved, finals]


def report(results: dict[str, list[GreedyRun]], args: argparse.Namespace) -> str:
    header = ["variant", "env-steps/s (wall)", "env-steps per CPU-s", "×SB3 (wall / CPU)"]
    header += ["steps to greedy 475 (per seed)", "training return at end (per seed)"]
    rows = [_speed_row(name, runs, results.get("sb3")) for name, runs in results.items() if runs]
    lines = [
        f"## DQN on {ENV_ID}: ours vs Stable-Baselines3 (RL-Zoo settings)",
        "",
        f"{args.steps} env steps, seeds {' '.join(map(str, args.seeds))} (runs done so far "
        "listed per seed), one torch thread, "
        f"greedy evaluation of {args.eval_episodes} episodes every {args.eval_every} env steps "
        f"(evaluation time excluded from the speeds). {machine()}.",
        "",
        *md_table(header, rows),
    ]
    lines += ["", "Greedy evaluation curves (env step: mean return):", ""]
    for name, runs in results.items():
        for seed, r in zip(args.seeds, runs):
            curve = " ".join(f"{s // 1000}k:{ret:.0f}" for s, ret in r.evals)
            lines.append(f"- {name} seed {seed}: {curve}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argument_parser(__doc__, steps=50_000)
    parser.add_argument(
        "--variants", nargs="+", default=["sb3", *VARIANTS], choices=["sb3", *VARIANTS]
    )
    parser.add_argument("--eval-every", type=int, default=2560)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dqn.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[GreedyRun]] = {v: [] for v in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            if variant == "sb3":
                run = run_sb3(seed, args.steps, args.eval_every, args.eval_episodes)
            else:
                run = run_ours(variant, seed, args.steps, args.eval_every, args.eval_episodes)
            results[variant].append(run)
            print(
                f"{variant:8s} seed {seed}: {run.fps:6.0f} steps/s wall, {run.cpu_fps:6.0f} per "
                f"CPU-s, greedy 475 at {run.steps_to_solve}, final training return "
                f"{run.final_mean:.0f}",
                flush=True,
            )
            write_report(args.out, report(results, args))  # partial results survive an interrupt
    print(report(results, args))


if __name__ == "__main__":
    main()

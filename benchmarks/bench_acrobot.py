"""Learning on Acrobot-v1: our DQN, TRPO and PPO at their zoo presets (a second environment).

For each algorithm and seed, train Acrobot-v1 for ``--steps`` env steps from the ``zoo`` preset and
record, every ``--every`` env steps, the mean return of the last 20 training episodes and (where the
preset evaluates) the deterministic policy's evaluation return. Acrobot gives −1 per step until
the arm swings above the line (500 steps at most); −100 counts as solved. Prints a Markdown report
and writes it to ``--out``.

    .venv/bin/python -m benchmarks.bench_acrobot --seeds 0 1
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch

from benchmarks.common import argument_parser, at_marks, machine, md_table, write_report
from core.engine.algos import make_trainer, preset_config

ENV_ID = "Acrobot-v1"
ALGOS = ("dqn", "trpo", "ppo")


def curve(algo: str, seed: int, steps: int, every: int) -> list[tuple[int, float, float]]:
    """(env steps, 20-episode training mean, last evaluation return or NaN) at each mark."""
    config = preset_config(algo, ENV_ID, "zoo", seed=seed, total_steps=steps, eval_every=every)
    trainer = make_trainer(config)
    points = [
        (trainer.book.env_steps, m["episode_return_mean"], m.get("eval_return_mean", math.nan))
        for m in at_marks(trainer, every)
    ]
    steps, train_return, eval_return = points[-1]
    if math.isnan(eval_return):  # the budget ended between two evaluations: evaluate the result
        points[-1] = (steps, train_return, statistics.mean(trainer.evaluate(config.eval_episodes)))
    return points


def report(args, curves: dict[tuple[str, int], list[tuple[int, float, float]]]) -> str:
    lines = [
        f"# Acrobot-v1: ours at the zoo presets ({args.steps:,} env steps)",
        "",
        f"{machine()}. Each row: one algorithm and seed; 'train' is the mean return of the last 20 "
        "training episodes, 'eval' the deterministic policy's mean over the evaluation episodes.",
        "Presets as in `core/engine/algos` (the zoo's: TRPO and PPO normalize observations and "
        "rewards as its VecNormalize does, `core/engine/normalize.py`).",
        "",
    ]
    for (algo, seed), points in curves.items():
        header = ["", *(f"{s // 1000}k" for s, _, _ in points)]
        rows = [
            [f"{algo} seed {seed}: train", *(f"{r:.0f}" for _, r, _ in points)],
            [f"{algo} seed {seed}: eval", *(f"{e:.0f}" for _, _, e in points)],
        ]
        lines += [*md_table(header, rows), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argument_parser(__doc__, steps=100_000)
    parser.set_defaults(seeds=[0])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--every", type=int, default=10_240)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/acrobot.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    curves = {}
    for algo in args.algos:
        for seed in args.seeds:
            curves[algo, seed] = curve(algo, seed, args.steps, args.every)
            print(f"{algo} seed {seed}: {curves[algo, seed][-1]}", flush=True)
    text = report(args, curves)
    print(text)
    write_report(args.out, text)


if __name__ == "__main__":
    main()

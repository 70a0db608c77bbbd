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

from pathlib import Path

import torch

from benchmarks.common import (
    WINDOW,
    Run,
    argument_parser,
    at_marks,
    best_time,
    comparison_intro,
    comparison_table,
    md_table,
    raw_env_fps,
    train_ours,
    train_sb3,
    write_report,
)
from core.engine.algos import make_trainer, preset_config
from core.engine.algos.trpo import TRPO, dist_params
from core.engine.fast.heads import log_prob


def run_ours(seed: int, steps: int) -> Run:
    config = preset_config("trpo", "CartPole-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    return train_ours(config)


def run_sb3(seed: int, steps: int) -> Run:
    """sb3-contrib TRPO with rl-baselines3-zoo's hyperparams/trpo.yml CartPole-v1 entry."""
    from sb3_contrib import TRPO as SB3TRPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

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
    return train_sb3(model, steps)


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

    grad = best_time(plain_gradient, repeats)
    step = best_time(policy_step, repeats)
    critic = best_time(critic_step, max(3, repeats // 5))
    return {
        "batch": len(batch),
        "plain_gradient": grad,
        "policy_step": step,
        "cg_and_line_search": step - grad,
        "critic": critic,
        "cg_iters": trainer.config.params.cg_iters,
    }


def pendulum_curve(steps: int, seed: int = 0, every: int = 10_240) -> list[tuple[int, float]]:
    config = preset_config("trpo", "Pendulum-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    return [(trainer.book.env_steps, m["episode_return_mean"]) for m in at_marks(trainer, every)]


TIMING_HEADER = [
    "FVP batch",
    "batch",
    "one plain gradient",
    "whole policy step",
    "CG + line search",
    "(CG + line search) / gradient",
    "critic (20 epochs)",
]


def _timing_row(label: str, t: dict[str, float]) -> list[str]:
    return [
        label,
        f"{t['batch']}",
        f"{t['plain_gradient'] * 1e3:.2f} ms",
        f"{t['policy_step'] * 1e3:.2f} ms",
        f"{t['cg_and_line_search'] * 1e3:.2f} ms",
        f"{t['cg_and_line_search'] / t['plain_gradient']:.1f}×",
        f"{t['critic'] * 1e3:.1f} ms",
    ]


def report(args, ours: list[Run], theirs: list[Run], timings, raw: float, curve) -> str:
    lines = [
        "# TRPO benchmark: ours vs sb3-contrib TRPO (CartPole-v1, RL-Zoo settings)",
        "",
        comparison_intro(args.steps, args.seeds),
        "",
        "Settings (both): 2 envs, n_steps 512, γ 0.99, λ 0.98, δ 0.01, damping 1e-3, 15 CG "
        "iterations, line search 0.8 × 10, critic Adam lr 1e-3, 20 epochs of minibatch 512, "
        "64-64 tanh actor and critic.",
        "",
        *comparison_table(
            {"ours": ours, "sb3-contrib TRPO": theirs}, "ours", "sb3-contrib TRPO", raw
        ),
        "",
        "Policy update on one zoo batch (best of repeated calls, wall clock): the policy step is "
        "g = ∇L, CG, the max step and the line search; one plain gradient is ∇L alone.",
        "",
        *md_table(TIMING_HEADER, [_timing_row(label, t) for label, t in timings]),
    ]
    if curve:
        lines += [
            "",
            "Pendulum-v1, ours, zoo preset (2 envs × 1024 steps, γ 0.9, no gSDE), seed 0: mean "
            "return of the last 20 training episodes.",
            "",
            *md_table(
                ["env steps", *(f"{s // 1000}k" for s, _ in curve)],
                [["return", *(f"{r:.0f}" for _, r in curve)]],
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argument_parser(__doc__, steps=100_000)
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
    write_report(args.out, text)


if __name__ == "__main__":
    main()

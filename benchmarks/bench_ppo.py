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

from pathlib import Path

import numpy as np
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
from core.engine.nets import CategoricalActor, Critic


def run_ours(seed: int, steps: int, algo: str = "ppo") -> Run:
    config = preset_config(algo, "CartPole-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    return train_ours(config)


def run_sb3(seed: int, steps: int) -> Run:
    """SB3 PPO with rl-baselines3-zoo's hyperparams/ppo.yml CartPole-v1 entry."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

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
    return train_sb3(model, steps)


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

    return {"ours": best_time(ours, repeats), "autograd": best_time(autograd, repeats)}


def pendulum_curve(steps: int, seed: int, every: int = 8192) -> list[tuple[int, float, float]]:
    """(env steps, 20-episode training mean, deterministic eval mean over 10 episodes)."""
    config = preset_config("ppo", "Pendulum-v1", "zoo", seed=seed, total_steps=steps, eval_every=0)
    trainer = make_trainer(config)
    return [
        (trainer.book.env_steps, m["episode_return_mean"], float(np.mean(trainer.evaluate(10))))
        for m in at_marks(trainer, every)
    ]


def report(args, rows: dict[str, list[Run]], step: dict[str, float], raw: float, curves) -> str:
    lines = [
        "# PPO benchmark: ours vs Stable-Baselines3 PPO (CartPole-v1, RL-Zoo settings)",
        "",
        comparison_intro(args.steps, args.seeds),
        "",
        "Settings (both): 8 envs × n_steps 32, minibatch 256, 20 epochs, γ 0.98, λ 0.8, lr 1e-3 "
        "and clip ε 0.2 both decayed linearly to 0, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5, "
        "Adam ε 1e-5, 64-64 tanh actor and critic, advantages normalized per minibatch.",
        "",
        *comparison_table(rows, "ours (ppo)", "Stable-Baselines3 PPO", raw),
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
            *md_table(
                ["env steps", *(f"{s / 1000:.0f}k" for s, _, _ in curve)],
                [
                    ["training", *(f"{r:.0f}" for _, r, _ in curve)],
                    ["evaluation", *(f"{e:.0f}" for _, _, e in curve)],
                ],
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argument_parser(__doc__, steps=100_000)
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
    write_report(args.out, text)


if __name__ == "__main__":
    main()

"""Seeded runs of every algorithm, recorded once and compared after any change to the engine.

``python -m tests.seeded_reference`` writes ``tests/data/seeded_reference.json``: for each case
(algorithm, environment, a few changes) the episode returns and the per-update metrics of a short
seeded run, a live change applied between two updates, and a seeded evaluation.
``tests/test_seeded_reference.py`` reruns the cases and compares: a refactor that claims "behaviour
unchanged" must reproduce these numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from core.config import RunConfig
from core.engine.algos import make_trainer
from core.engine.trainer import set_hyperparams

PATH = Path(__file__).resolve().parent / "data" / "seeded_reference.json"
TIMING = {"wall_time", "fps"}  # measured, not computed: never compared

CASES: dict[str, dict[str, Any]] = {
    "trpo-cartpole": dict(algo="trpo", n_envs=4, n_steps=128, live={"delta": 0.02}),
    "npg-cartpole": dict(algo="npg", n_envs=4, n_steps=128),
    "trpo-pendulum": dict(algo="trpo", env_id="Pendulum-v1", n_envs=2, n_steps=200),
    "ppo-cartpole": dict(algo="ppo", n_envs=4, n_steps=128, live={"clip_eps": 0.1}),
    "ppokl-cartpole": dict(algo="ppo-kl", n_envs=4, n_steps=128),
    "ppo-pendulum": dict(algo="ppo", env_id="Pendulum-v1", n_envs=2, n_steps=200),
    "a2c-cartpole": dict(algo="a2c", n_envs=4, n_steps=8, updates=12, live={"lr": 1e-3}),
    "trpo-acrobot-relu": dict(algo="trpo", env_id="Acrobot-v1", n_steps=64, activation="relu"),
    "ppo-relu-adam": dict(algo="ppo", n_envs=2, n_steps=128, activation="relu"),
    "dqn-cartpole": dict(
        algo="dqn", n_envs=1, n_steps=256, learning_starts=200, live={"exploration_final_eps": 0.1}
    ),
    "dqn-double-dueling-per": dict(
        algo="dqn",
        n_envs=2,
        n_steps=128,
        learning_starts=200,
        double=True,
        dueling=True,
        prioritized=True,
    ),
}
UPDATES = 4


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one seeded run: metrics and episode returns per update, and evaluation."""
    torch.set_num_threads(1)
    case = dict(case)
    live = case.pop("live", {})
    n_updates = case.pop("updates", UPDATES)
    config = RunConfig(algo=case.pop("algo"), env_id=case.pop("env_id", "CartPole-v1"))
    config = config.with_changes(seed=3, total_steps=100_000, **case).validate()
    trainer = make_trainer(config)
    updates = []
    for k in range(n_updates):
        if k == n_updates // 2 and live:
            set_hyperparams(trainer, **live)
        report = trainer.update()
        metrics = {n: v for n, v in report.metrics.items() if n not in TIMING}
        updates.append({"metrics": metrics, "returns": [e.ret for e in report.episodes]})
    return {"updates": updates, "evaluation": trainer.evaluate(2)}


def main() -> None:
    PATH.parent.mkdir(parents=True, exist_ok=True)
    record = {name: run_case(case) for name, case in CASES.items()}
    PATH.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH} ({len(record)} cases)")


if __name__ == "__main__":
    main()

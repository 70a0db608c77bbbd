"""Sweeps: grid expansion and validation, the CLI parsing, and the local executor end to end."""

from __future__ import annotations

import itertools
import sys
import threading
import time

import pytest

from core.cli import main as cli_main
from core.config import ConfigError, RunConfig
from core.engine.algos import make_trainer
from core.runtime.runner import RunManager
from core.runtime.store import RunStore
from core.sweep.cli import parse_grid, parse_seeds, progress_line
from core.sweep.control import load_ray_backend, resume_sweep, stop_sweep
from core.sweep.local import launch_local
from core.sweep.progress import sweep_points, sweep_progress, sweep_runs, sweeps, wait_sweep
from core.sweep.spec import SweepError, SweepSpec
from tests.sweep_helpers import UPDATES, is_failing_trial, one_trial_fails, short_sweep

# ---------------------------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------------------------


def test_expansion_is_the_product_of_grid_values_and_seeds():
    spec = SweepSpec(
        RunConfig(algo="trpo"),
        grid={"delta": [0.001, 0.01, 0.05], "gae_lambda": [0.9, 0.97]},
        seeds=3,
    )
    configs = spec.expand()
    assert len(configs) == 3 * 2 * 3
    points = {(c.params.delta, c.gae_lambda, c.seed) for c in configs}
    assert points == set(itertools.product([0.001, 0.01, 0.05], [0.9, 0.97], [0, 1, 2]))


def test_seeds_are_distinct_within_each_grid_point_and_start_at_the_base_seed():
    spec = SweepSpec(RunConfig(algo="ppo", seed=7), grid={"clip_eps": [0.1, 0.2]}, seeds=4)
    for clip in (0.1, 0.2):
        seeds = [c.seed for c in spec.expand() if c.params.clip_eps == clip]
        assert seeds == [7, 8, 9, 10]


def test_explicit_seed_list_is_used_and_repeats_are_rejected():
    spec = SweepSpec(RunConfig(), seeds=[3, 42])
    assert [c.seed for c in spec.expand()] == [3, 42]
    with pytest.raises(ConfigError) as err:
        SweepSpec(RunConfig(), seeds=[1, 2, 1]).expand()
    assert err.value.field == "seeds"


def test_string_values_from_a_cli_are_coerced_to_the_field_type():
    spec = SweepSpec(RunConfig(algo="ppo"), grid={"epochs": ["3", "5"], "gamma": ["0.9"]})
    configs = spec.expand()
    assert [c.params.epochs for c in configs] == [3, 5]
    assert all(c.gamma == 0.9 for c in configs)


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"delta": [0.01, 5.0]}, "delta"),  # out of range (0, 1]
        ({"gae_lambda": [0.9, "lots"]}, "gae_lambda"),  # not a number
        ({"cg_iters": [2.5]}, "cg_iters"),  # not an integer
        ({"not_a_field": [1]}, "not_a_field"),
        ({"delta": []}, "delta"),  # no values
        ({"delta": [0.01, "0.01"]}, "delta"),  # listed twice
        ({"seed": [1, 2]}, "seed"),  # seeds go in `seeds`
    ],
)
def test_invalid_grid_value_is_rejected_naming_the_field(grid, field):
    with pytest.raises(ConfigError) as err:
        SweepSpec(RunConfig(algo="trpo"), grid=grid).expand()
    assert err.value.field == field


def test_invalid_value_is_rejected_before_anything_starts():
    class Recorder:
        started: list = []

        def start(self, *args, **kwargs):  # pragma: no cover - must never be called
            self.started.append(args)

    manager = Recorder()
    spec = SweepSpec(RunConfig(algo="trpo"), grid={"delta": [0.01, 0.02, 2.0]}, seeds=2)
    with pytest.raises(ConfigError, match="delta"):
        launch_local(manager, spec)
    assert manager.started == []


def test_grid_point_checked_together_with_the_base_config():
    # minibatch 512 is valid alone but larger than the batch n_envs·n_steps = 2·64
    spec = SweepSpec(
        RunConfig(algo="ppo", n_envs=2, n_steps=64), grid={"minibatch_size": [64, 512]}
    )
    with pytest.raises(ConfigError) as err:
        spec.expand()
    assert err.value.field == "minibatch_size"


def test_algorithms_multiply_the_grid_and_keys_apply_where_they_exist():
    spec = SweepSpec(
        RunConfig(algo="ppo"),
        grid={"delta": [0.01, 0.02], "gamma": [0.95, 0.99]},
        seeds=2,
        algos=["trpo", "ppo"],
    )
    trials = spec.trials()
    trpo = [t for t in trials if t.config.algo == "trpo"]
    ppo = [t for t in trials if t.config.algo == "ppo"]
    assert len(trpo) == 2 * 2 * 2
    assert len(ppo) == 2 * 2  # delta is not a PPO hyperparameter: no duplicate PPO runs
    assert "delta" not in ppo[0].label and ppo[0].label.startswith("ppo ")
    assert {t.config.to_json() for t in trials}.__len__() == len(trials)


def test_key_unknown_to_every_algorithm_is_rejected():
    spec = SweepSpec(RunConfig(), grid={"delta": [0.01]}, algos=["ppo", "a2c"])
    with pytest.raises(ConfigError) as err:
        spec.expand()
    assert err.value.field == "delta"


def test_trial_labels_name_the_grid_point_and_seed():
    spec = SweepSpec(RunConfig(algo="trpo"), grid={"delta": [0.01]}, seeds=[5])
    assert spec.trials()[0].label == "delta=0.01 seed=5"


# ---------------------------------------------------------------------------------------------
# CLI parsing
# ---------------------------------------------------------------------------------------------


def test_parse_grid_splits_values_on_commas_or_semicolons():
    grid = parse_grid(["delta=0.001,0.01", "hidden_sizes=64,64;32,32"])
    assert grid == {"delta": ["0.001", "0.01"], "hidden_sizes": ["64,64", "32,32"]}
    configs = SweepSpec(RunConfig(algo="trpo"), grid=grid).expand()
    assert {c.hidden_sizes for c in configs} == {(64, 64), (32, 32)}


def test_parse_grid_rejects_an_item_without_equals():
    with pytest.raises(ConfigError) as err:
        parse_grid(["delta"])
    assert err.value.field == "grid"


def test_parse_seeds_reads_a_count_or_a_list():
    assert parse_seeds("3") == 3
    assert parse_seeds("0,7,42") == [0, 7, 42]
    with pytest.raises(ConfigError):
        parse_seeds("three")


def test_selecting_ray_without_ray_installed_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(SweepError, match="requirements-ray.txt") as err:
        load_ray_backend("ray")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# Local executor: real short runs on the run manager's threads
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def manager():
    m = RunManager(RunStore(), max_concurrent=2)
    yield m
    m.shutdown()


def wait_until(condition, timeout: float, poll: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(poll)
    return True


def test_local_sweep_runs_every_trial_into_the_store(manager):
    spec = short_sweep()
    sweep_id = launch_local(manager, spec)
    progress = wait_sweep(manager.store, sweep_id, timeout=240, poll=0.1)
    assert progress.status == "finished"
    assert progress.counts == {"finished": 8}
    runs = manager.store.runs()
    assert len(runs) == 8 and (runs["sweep_id"] == sweep_id).all()
    configs = [RunConfig.from_json(c) for c in runs["config"]]
    points = {(c.gamma, c.gae_lambda, c.seed) for c in configs}
    assert points == set(itertools.product([0.95, 0.99], [0.9, 0.97], [0, 1]))
    metrics = manager.store.metrics(runs["run_id"].tolist())
    assert metrics.groupby("run_id")["update"].max().tolist() == [UPDATES] * 8
    assert progress_line(progress).startswith("[" + "█" * 30 + "] 8/8 trials")
    points = sweep_points(progress.runs)
    assert list(points.columns) == ["run_id", "gamma", "gae_lambda", "seed", "point"]
    assert points.groupby("point")["seed"].apply(sorted).tolist() == [[0, 1]] * 4
    assert "gamma=0.95 gae_lambda=0.9" in set(points["point"])


@pytest.fixture
def thread_manager():
    """Trials in threads of this process, so a factory can look at the manager as it builds."""
    m = RunManager(RunStore(), max_concurrent=2, workers="thread")
    yield m
    m.shutdown()


def test_local_sweep_never_trains_more_runs_at_once_than_the_cap(thread_manager):
    manager = thread_manager
    seen: list[int] = []

    def factory(config):
        seen.append(len([r for r in manager.active() if manager.status(r) == "running"]))
        return make_trainer(config)

    sweep_id = launch_local(manager, short_sweep(total_updates=1), trainer_factory=factory)
    wait_sweep(manager.store, sweep_id, timeout=240, poll=0.1)
    assert len(seen) == 8 and max(seen) < manager.max_concurrent


def test_failing_trial_is_marked_failed_and_the_others_finish(manager):
    sweep_id = launch_local(manager, short_sweep(), trainer_factory=one_trial_fails)
    progress = wait_sweep(manager.store, sweep_id, timeout=240, poll=0.1)
    assert progress.counts == {"finished": 7, "failed": 1}
    failed = progress.runs[progress.runs["status"] == "failed"].iloc[0]
    assert is_failing_trial(RunConfig.from_json(failed["config"]))
    assert "injected failure" in failed["error"]


def test_stopped_sweep_stops_all_its_runs_and_resume_continues_them(manager):
    spec = short_sweep(total_updates=400)
    sweep_id = launch_local(manager, spec)
    store = manager.store
    assert wait_until(lambda: sweep_progress(store, sweep_id).counts.get("running") == 2, 60)
    stopped = stop_sweep(manager, sweep_id)
    assert len(stopped) == 8  # 2 running + 6 queued
    progress = wait_sweep(store, sweep_id, timeout=60, poll=0.1)
    assert progress.status == "stopped" and progress.counts == {"stopped": 8}
    old = set(progress.runs["run_id"])

    relaunched = resume_sweep(manager, sweep_id)
    assert set(relaunched) == old
    progress = sweep_progress(store, sweep_id)
    assert progress.total == 8  # still 8 trials: each old run is replaced by its new run
    assert set(progress.runs["parent_id"]) == old
    assert progress.status == "running"
    stop_sweep(manager, sweep_id)
    assert wait_sweep(store, sweep_id, timeout=60, poll=0.1).status == "stopped"


def test_resume_is_refused_while_the_sweep_is_active(manager):
    sweep_id = launch_local(manager, short_sweep(total_updates=400))
    with pytest.raises(SweepError, match="stop it first"):
        resume_sweep(manager, sweep_id)
    stop_sweep(manager, sweep_id)
    wait_sweep(manager.store, sweep_id, timeout=60, poll=0.1)


def test_interrupted_trial_resumes_from_its_checkpoint(tmp_path):
    store = RunStore(tmp_path / "d")
    first = RunManager(store, max_concurrent=2, checkpoint_every=1)
    sweep_id = launch_local(first, short_sweep(total_updates=400, seeds=1))
    assert wait_until(
        lambda: (
            not store.metrics(sweep_runs(store, sweep_id)["run_id"].tolist())
            .query("update >= 2")
            .empty
        ),
        60,
    )
    first.shutdown()  # the driver goes away: its runs are interrupted, checkpointed
    progress = sweep_progress(store, sweep_id)
    assert progress.status == "interrupted"

    second = RunManager(store, max_concurrent=2)
    try:
        resume_sweep(second, sweep_id)
        new = sweep_progress(store, sweep_id).runs
        resumed = new[new["parent_id"].notna()]
        assert len(resumed) == 4
        ids = resumed["run_id"].tolist()

        def continued_from_checkpoint() -> bool:
            first_steps = store.metrics(ids).groupby("run_id")["env_steps"].min()
            return bool((first_steps > 2 * 64).any())  # from scratch, it would be 2·64

        assert wait_until(continued_from_checkpoint, 60)
        stop_sweep(second, sweep_id)
        wait_sweep(store, sweep_id, timeout=60, poll=0.1)
    finally:
        second.shutdown()


def test_sweeps_lists_each_sweep_once_with_its_counts(manager):
    sweep_id = launch_local(manager, short_sweep(total_updates=1, seeds=1))
    wait_sweep(manager.store, sweep_id, timeout=120, poll=0.1)
    table = sweeps(manager.store)
    assert table["sweep_id"].tolist() == [sweep_id]
    assert table.iloc[0][["trials", "finished", "status"]].tolist() == [4, 4, "finished"]


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

CLI_SHORT = ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "eval_every=0", "--steps", "256"]


def test_cli_sweep_runs_the_grid_and_prints_the_sweep_id(tmp_path, capsys):
    code = cli_main(
        ["sweep", "--algo", "trpo", "--grid", "delta=0.01,0.05", "--grid", "gae_lambda=0.9,0.97"]
        + ["--seeds", "2", "--data-dir", str(tmp_path), *CLI_SHORT]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    sweep_id = out.splitlines()[0]
    store = RunStore(tmp_path)
    try:
        progress = sweep_progress(store, sweep_id)
        assert progress.counts == {"finished": 8}
        deltas = {RunConfig.from_json(c).params.delta for c in progress.runs["config"]}
        assert deltas == {0.01, 0.05}
    finally:
        store.close()
    assert "8/8 trials" in err
    assert out.count("finished") == 8


def test_cli_sweep_rejects_a_bad_grid_value_before_creating_any_run(tmp_path, capsys):
    code = cli_main(
        ["sweep", "--algo", "trpo", "--grid", "delta=0.01,7", "--data-dir", str(tmp_path)]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: delta:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs.sqlite").exists()


def test_stop_from_a_manager_that_does_not_own_the_runs_says_where_to_stop_it(manager):
    sweep_id = launch_local(manager, short_sweep(total_updates=400, seeds=1))
    other = RunManager(manager.store, max_concurrent=1)
    try:
        with pytest.raises(SweepError, match="another process"):
            stop_sweep(other, sweep_id)
    finally:
        other.shutdown()
    assert sweep_progress(manager.store, sweep_id).status == "running"
    stop_sweep(manager, sweep_id)
    assert wait_sweep(manager.store, sweep_id, timeout=60, poll=0.1).status == "stopped"


def test_gae_lab_lambda_sweep_is_the_preset_over_sorted_lambdas_and_seeds():
    from core.engine.algos import presets
    from core.sweep.build import lambda_sweep

    spec = lambda_sweep("ppo", "CartPole-v1", 20_000, 2, [0.9, 0.5, 1.0])
    preset = next(iter(presets("ppo", "CartPole-v1").values()))
    trials = spec.trials()
    assert len(trials) == 3 * 2
    assert sorted({t.config.gae_lambda for t in trials}) == [0.5, 0.9, 1.0]
    assert spec.grid == {"gae_lambda": [0.5, 0.9, 1.0]}
    for t in trials:
        assert t.config.total_steps == 20_000 and t.config.eval_every == 0
        assert t.config.n_steps == preset["n_steps"]

"""The Ray executor on a local Ray runtime with 2 CPUs: live streaming, failure isolation, stop;
the runtime listens on loopback only and ends with its driver."""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
import torch

from core.cli import main as cli_main
from core.config import RunConfig
from core.engine.algos import make_trainer
from core.runtime.runner import RunManager
from core.runtime.snapshots import list_snapshots, load_snapshot, snapshot_dir
from core.runtime.store import RunStore
from core.sweep.control import resume_sweep, stop_sweep
from core.sweep.progress import sweep_progress
from core.sweep.ray_backend import launch_ray
from core.sweep.ray_runtime import DASHBOARD_ENV, connect
from core.sweep.spec import SweepSpec
from tests.fake_trainer import ProcessGate
from tests.sweep_helpers import UPDATES, held_one_trial_fails, is_failing_trial, short_sweep

psutil = pytest.importorskip("psutil")  # Ray ships a copy, importable once ray is imported


@pytest.fixture(scope="module")
def ray_runtime():
    """``ray.init(num_cpus=2)``, started as the app starts it: from a thread that then ends (a
    Streamlit script run). Ray's processes must outlive that thread, or every test below fails."""
    script_run = threading.Thread(target=connect, args=(2,))
    script_run.start()
    script_run.join()
    assert ray.cluster_resources().get("CPU") == 2
    yield
    ray.shutdown()


@pytest.fixture
def manager(ray_runtime):
    m = RunManager(RunStore(), max_concurrent=2)
    yield m
    m.shutdown()


def test_ray_sweep_streams_metrics_while_running_and_a_failing_trial_fails_alone(manager):
    store = manager.store
    gate = ProcessGate()  # holds every trial before its last update, so the sweep is running
    factory = functools.partial(held_one_trial_fails, gate.client)
    sweep = launch_ray(manager, short_sweep(), trainer_factory=factory)
    assert gate.wait_entered(1, timeout=120), "no trial reached its last update"
    assert wait_until(lambda: len(store.metrics(sweep.run_ids)) > 0, 60), (
        "no per-update metrics reached the store while the sweep ran"
    )
    assert sweep_progress(store, sweep.sweep_id).status == "running"
    gate.open()  # the rest pass straight through
    assert sweep.wait(timeout=300), "the Ray sweep did not finish in time"
    gate.close()

    progress = sweep_progress(store, sweep.sweep_id)
    assert progress.status == "finished"
    assert progress.counts == {"finished": 7, "failed": 1}
    runs = progress.runs.set_index("run_id")
    failed = runs[runs["status"] == "failed"]
    assert is_failing_trial(RunConfig.from_json(failed["config"].iloc[0]))
    assert "injected failure" in failed["error"].iloc[0]

    updates = store.metrics(sweep.run_ids).groupby("run_id")["update"].agg(["min", "max", "count"])
    for run_id, row in updates.iterrows():
        expected = 1 if runs.loc[run_id, "status"] == "failed" else UPDATES
        assert (row["min"], row["max"], row["count"]) == (1, expected, expected)
    assert len(updates) == 8
    finished = runs[runs["status"] == "finished"].index
    assert all(not store.checkpoints(r).empty for r in finished)
    assert store.episodes(list(finished))["ret"].gt(0).all()


def test_stopped_ray_sweep_stops_every_trial_and_resumes_from_checkpoints(manager):
    store = manager.store
    sweep = launch_ray(manager, short_sweep(total_updates=2000))
    assert wait_until(lambda: len(store.metrics(sweep.run_ids)) >= 2, 120)
    assert len(stop_sweep(manager, sweep.sweep_id)) == 8
    assert sweep.wait(timeout=120)
    progress = sweep_progress(store, sweep.sweep_id)
    assert progress.status == "stopped"
    assert progress.counts == {"stopped": 8}
    trained = store.metrics(sweep.run_ids).groupby("run_id")["env_steps"].max()
    assert trained.max() < 2000 * 2 * 64
    assert all(not store.checkpoints(r).empty for r in trained.index)  # saved on stop

    relaunched = resume_sweep(manager, sweep.sweep_id, backend="ray")
    assert set(relaunched) == set(sweep.run_ids)
    new = sweep_progress(store, sweep.sweep_id).runs.set_index("parent_id")["run_id"]
    first, parent = new[trained.idxmax()], trained.idxmax()

    def continued() -> bool:
        steps = store.metrics(first)["env_steps"]
        return not steps.empty and steps.min() > trained[parent]

    assert wait_until(continued, 120)  # its first update goes on from the checkpoint
    stop_sweep(manager, sweep.sweep_id)
    assert wait_until(lambda: sweep_progress(store, sweep.sweep_id).is_done, 120)
    assert sweep_progress(store, sweep.sweep_id).total == 8


def test_ray_trials_keep_the_same_update_snapshots_a_local_run_takes(manager):
    """The Update Inspector works on Ray sweep runs: every update's snapshot is on disk beside the
    run's checkpoints, equal to what the same trainer captures in this process."""
    base = RunConfig(algo="trpo", n_envs=2, n_steps=64, total_steps=3 * 128, eval_every=0)
    sweep = launch_ray(manager, SweepSpec(base, {"gamma": [0.99]}, 1, name="snapshots"))
    assert sweep.wait(timeout=300), "the Ray sweep did not finish in time"
    (run_id,) = sweep.run_ids
    files = list_snapshots(snapshot_dir(manager.store.checkpoint_dir(run_id)))
    assert list(files) == [1, 2, 3]

    config = RunConfig.from_json(sweep_progress(manager.store, sweep.sweep_id).runs["config"][0])
    local = make_trainer(config)
    local.capture_snapshots = True
    for update in (1, 2, 3):
        local.update()
        expected = local.last_snapshot.arrays()
        got = load_snapshot(files[update])[1]
        for name, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(getattr(got, name).to(value.dtype), value), (update, name)
            elif isinstance(value, float) and math.isnan(value):
                assert math.isnan(getattr(got, name)), (update, name)
            else:
                assert getattr(got, name) == value, (update, name)


def wait_until(condition, timeout: float) -> bool:
    """Poll ``condition`` every 0.1 s until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.1)
    return True


def test_cli_sweep_on_ray_stores_every_trial(ray_runtime, tmp_path, capsys):
    code = cli_main(
        ["sweep", "--algo", "a2c", "--grid", "gamma=0.9,0.99", "--backend", "ray"]
        + ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "eval_every=0", "--steps", "256"]
        + ["--data-dir", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    store = RunStore(tmp_path)
    try:
        progress = sweep_progress(store, out.splitlines()[0])
        assert progress.counts == {"finished": 2}
        assert store.metrics(progress.runs["run_id"].tolist())["update"].max() == 2
        assert _start_backends(store, progress.runs["run_id"]) == ["ray", "ray"]
    finally:
        store.close()


def _start_backends(store: RunStore, run_ids) -> list[str]:
    events = store.events(list(run_ids))
    return [p["backend"] for p in events.loc[events["kind"] == "started", "payload"]]


def test_ray_sweep_keeps_no_more_trials_in_flight_than_allowed(manager):
    sweep = launch_ray(manager, short_sweep(total_updates=1, seeds=1), max_in_flight=1)
    assert sweep.wait(timeout=120)
    events = manager.store.events(sweep.run_ids)
    spans = events[events["kind"].isin(["started", "finished"])].pivot(
        index="run_id", columns="kind", values="time"
    )
    spans = spans.sort_values("started")
    assert len(spans) == 4
    assert (spans["started"].to_numpy()[1:] >= spans["finished"].to_numpy()[:-1]).all()


def _listening(processes) -> list[tuple[str, str, int]]:
    """``(process name, address, port)`` of every TCP socket the processes listen on."""
    found = []
    for p in processes:
        try:
            name = p.name()
            found += [
                (name, c.laddr.ip, c.laddr.port)
                for c in p.net_connections("inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.Error:  # a worker that just ended
            pass
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def test_local_ray_runtime_listens_on_loopback_only(ray_runtime):
    """GCS, raylet, agents, workers and this driver: no socket open to the network."""
    me = psutil.Process()
    sockets = _listening([me, *me.children(recursive=True)])
    gcs_port = int(ray._private.worker._global_node.address_info["gcs_address"].rsplit(":", 1)[1])
    names = {name for name, _, _ in sockets}
    assert gcs_port in {port for _, _, port in sockets} and "raylet" in names, sockets
    assert [s for s in sockets if not _is_loopback(s[1])] == []


def test_killed_driver_takes_its_local_ray_runtime_along_and_started_no_dashboard():
    """SIGKILL a driver that started a local runtime: every process of that runtime is gone
    within seconds (the raylet's two agents took a minute before the watchdog, now 0.1–0.6 s),
    and it served no dashboard."""
    code = (
        "import sys, ray\n"
        "from core.sweep.ray_runtime import connect\n"
        "connect(2)\n"
        "print('ready', repr(ray._private.worker._global_node.webui_url), flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", DASHBOARD_ENV)}
    driver = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in driver.stdout:
            lines.put(line)
        lines.put("exited")

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert lines.get(timeout=120).split() == ["ready", "''"]  # no dashboard URL
        processes = psutil.Process(driver.pid).children(recursive=True)
        names = {p.name() for p in processes}
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names
        # Ray's head process runs headless (no web UI, no HTTP server) when the dashboard is off
        heads = [p for p in processes if any(a.endswith("dashboard.py") for a in p.cmdline())]
        assert all("--disable-frontend" in p.cmdline() for p in heads)
        assert _listening(heads) == []
    finally:
        driver.kill()
        driver.wait()
    killed = time.monotonic()
    assert wait_until(lambda: not [p for p in processes if _alive(p)], 30), [
        p.name() for p in processes if _alive(p)
    ]
    print(f"local Ray runtime gone {time.monotonic() - killed:.1f} s after its driver's SIGKILL")


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

"""The Ray runtime a sweep runs on: join a cluster, or start a local runtime that ends with us.

Connects to ``RAY_ADDRESS`` when set (``ray://head:10001``, or ``auto`` on a node of a cluster
started with ``ray start``), shipping this repository as the workers' working directory;
otherwise starts a local Ray runtime with ``ray.init(num_cpus=2)``: listening on 127.0.0.1 only,
without the dashboard (``PLAYGROUND_RAY_DASHBOARD=1`` asks for it), and gone within a second or
so of its driver, however the driver ends (see :func:`connect`). Used by the Ray executor
(``core/sweep/ray_backend.py``); imported only when the ``ray`` backend is asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

LOCAL_CPUS = 2
REPO_ROOT = Path(__file__).resolve().parents[2]  # core/sweep/ray_runtime.py → the repository
UPLOAD_EXCLUDES = [".venv", ".git", "data", "node_modules", "**/__pycache__"]
DASHBOARD_ENV = "PLAYGROUND_RAY_DASHBOARD"  # "1": the local runtime serves Ray's dashboard
SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's loopback-only single node


_CONNECT_LOCK = threading.Lock()


def connect(num_cpus: int = LOCAL_CPUS) -> None:
    """Join ``RAY_ADDRESS`` (shipping this repository as the workers' working dir) or start a
    local runtime with ``num_cpus`` CPUs; a no-op when Ray is already initialised.

    A local runtime listens on 127.0.0.1 only and starts no dashboard unless
    ``PLAYGROUND_RAY_DASHBOARD=1`` (then on 127.0.0.1, and it needs ``ray[default]``). It ends
    with its driver: a normal exit runs ``ray.shutdown()`` (Ray's ``atexit`` hook); when the
    driver is killed, the kernel kills the processes it started (Ray's parent-death signal) and
    a watchdog (:data:`_WATCHDOG`) kills what the raylet started, whose own check would keep
    them alive for a minute.

    A local runtime's processes get the parent-death signal of the *thread* that started them,
    so off the main thread (a Streamlit script run ends with its thread) Ray is started from a
    thread that lives as long as the process.
    """
    with _CONNECT_LOCK:
        if ray.is_initialized():
            return
        if threading.current_thread() is threading.main_thread():
            _init(num_cpus)
            return
        started = threading.Event()
        errors: list[BaseException] = []

        def own_ray() -> None:
            try:
                _init(num_cpus)
            except BaseException as e:
                errors.append(e)
            finally:
                started.set()
            threading.Event().wait()  # keep this thread, and so the Ray processes, alive

        threading.Thread(target=own_ray, name="ray-owner", daemon=True).start()
        started.wait()
        if errors:
            raise errors[0]


def _init(num_cpus: int) -> None:
    if os.environ.get("RAY_ADDRESS"):
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": UPLOAD_EXCLUDES}
        ray.init(runtime_env=runtime_env, log_to_driver=False)
        return
    with _loopback_only():
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=os.environ.get(DASHBOARD_ENV) == "1",
            dashboard_host="127.0.0.1",
            log_to_driver=False,
        )
    _start_watchdog()


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Start Ray as a single node at 127.0.0.1 (its default on macOS and Windows), so GCS, raylet,
    workers and agents listen on loopback only; on Linux Ray takes the machine's network address,
    and its gRPC servers then listen on every interface.

    Ray reads the setting into ``ray_constants`` when first imported, so it is set there for the
    driver and in the environment for the processes ``ray.init`` starts; both are restored after,
    so nothing else this process starts (a driver joining a cluster) inherits it.
    """
    from ray._private import ray_constants

    saved_env = os.environ.get(SINGLE_NODE_ENV)
    saved = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_NODE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(SINGLE_NODE_ENV, None)
        else:
            os.environ[SINGLE_NODE_ENV] = saved_env


# Run as ``python -I -S -c _WATCHDOG DRIVER_PID RAYLET_PID OTHER_NODE_PIDS...`` (standard library
# only, Linux /proc). Ray's processes get SIGKILL when the driver dies, but the raylet's
# DashboardAgent and RuntimeEnvAgent (about 80 MB each) see their parent die, find no
# "SIGTERM" in raylet.out and spend ray.publish_error_to_driver's fixed 60 s timeout trying to
# tell the (dead) GCS before they exit. The watchdog notes the raylet's descendants (at start,
# then every 5 s), checks twice a second whether the driver (its parent) is still there, and once
# it is gone SIGKILLs what it noted (and the node's processes, which should be gone already);
# it exits quietly when the raylet ends while the driver lives on (``ray.shutdown()``). Start
# times guard against reused pids. It costs about 9 MB and 0.1 % of a core.
_WATCHDOG = r"""# Trust Region Playground: Ray watchdog
import os, signal, sys, time

def stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[19])  # state, start time
    except (OSError, IndexError, ValueError):
        return None, None

def descendants(pid):
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                kids = []
            found += kids
            todo += kids
    return found

signal.signal(signal.SIGINT, signal.SIG_IGN)
driver, raylet, *node = (int(a) for a in sys.argv[1:])
tracked = {p: stat(p)[1] for p in [raylet, *node]}
seen = {p: stat(p)[1] for p in descendants(raylet)}
print("watching", flush=True)  # the driver waits for this first look

def driver_gone():
    return os.getppid() != driver or stat(driver)[0] in (None, b"Z")

tick = 1
while not driver_gone():
    state, started = stat(raylet)
    if state in (None, b"Z") or started != tracked[raylet]:
        # ray.shutdown(), or the driver is dying: its threads end one by one, and the raylet's
        # parent-death signal comes with the thread that started it, maybe not the last one
        deadline = time.monotonic() + 2
        while not driver_gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not driver_gone():
            sys.exit(0)  # ray.shutdown(): Ray cleaned up itself
        break
    if tick % 10 == 0:  # every 5 s: agents live as long as the raylet, workers end by themselves
        seen = {p: stat(p)[1] for p in descendants(raylet)}
    tick += 1
    time.sleep(0.5)
for pid, started in {**tracked, **seen}.items():
    if started is not None and stat(pid)[1] == started:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _start_watchdog() -> None:
    """Start :data:`_WATCHDOG` for the local runtime just started (Linux only)."""
    node = ray._private.worker._global_node
    processes = {} if node is None else node.all_processes
    raylet = [info.process.pid for info in processes.get("raylet", [])]
    if not sys.platform.startswith("linux") or len(raylet) != 1:
        return
    others = [
        info.process.pid for kind, infos in processes.items() if kind != "raylet" for info in infos
    ]
    watchdog = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(os.getpid()), *map(str, raylet + others)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # no Ctrl-C or hangup from the driver's terminal
    )
    with watchdog.stdout:  # its first look at the raylet's children (a driver killed sooner
        watchdog.stdout.readline()  # would leave the agents unknown to it)
    threading.Thread(target=watchdog.wait, name="ray-watchdog", daemon=True).start()

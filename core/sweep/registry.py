"""The sweeps this process drives on another engine (Ray), by sweep id.

A local sweep is just runs of the process's run manager, which stops them itself. A remote
sweep's trials run elsewhere and only its driver here can stop them: the executor registers its
driver while the sweep runs (``core/sweep/ray_backend.py``), and stopping or watching a sweep
(``core/sweep/control.py``, ``core/sweep/cli.py``) asks here first.
"""

from __future__ import annotations

import threading
from typing import Protocol


class RemoteSweep(Protocol):
    """A sweep driven by another engine from this process (Ray)."""

    sweep_id: str

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


_REMOTE: dict[str, RemoteSweep] = {}
_REMOTE_LOCK = threading.Lock()


def register_remote(sweep: RemoteSweep) -> None:
    """Record the driver of a remote sweep that has started."""
    with _REMOTE_LOCK:
        _REMOTE[sweep.sweep_id] = sweep


def unregister_remote(sweep_id: str) -> None:
    """Forget the driver of a remote sweep that has ended."""
    with _REMOTE_LOCK:
        _REMOTE.pop(sweep_id, None)


def remote_sweep(sweep_id: str) -> RemoteSweep | None:
    """The executor driving ``sweep_id`` from this process, if one does."""
    with _REMOTE_LOCK:
        return _REMOTE.get(sweep_id)

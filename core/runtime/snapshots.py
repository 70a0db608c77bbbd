"""Update snapshots on disk: one file per update, beside the run's checkpoints.

The trainer captures a snapshot of each policy step (``core/engine/snapshot.py``); the run loop
(``core/runtime/run_loop.py``, in the worker process) writes it here right after the update as
``<data_dir>/checkpoints/<run_id>/snapshots/update_<k>.snapshot``, written to a temporary name
and renamed. Deleting the run deletes its checkpoint folder and so its snapshots
(``RunStore.delete``); the checkpoint reconciliation only removes plain files of that folder,
never this sub-folder.

The file: the line ``trust-region-playground/snapshot``, one JSON line (the numbers, and each
array's name, dtype and shape), then the arrays' raw little-endian bytes in that order: float32,
integer actions as int8. It is read with ``numpy.frombuffer`` (no pickle). Not ``np.savez``:
its zip members cost about 1 ms more per update than the arithmetic of a PPO update on CartPole
can spare under the 3 % budget; zlib would save under 10 % of these float arrays for 6× the time.

The worker writes them on a thread of its own (:class:`SnapshotWriter`): the next update starts
while the file is written (the snapshot's tensors are copies), so a short update does not wait
for the disk.

Retention (:class:`SnapshotPolicy`): after update n is written, update k is kept when
k > n − ``keep_latest`` or k is a multiple of ``keep_every``: every update of the latest 200 and
every 10th before, by default. Each write drops the one update that leaves the window.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.engine.snapshot import FORMAT_VERSION, UpdateSnapshot

SUBDIR = "snapshots"
MAGIC = b"trust-region-playground/snapshot\n"
_NAME = re.compile(r"update_(\d{7,})\.snapshot")
_TENSORS = ("theta_old", "obs", "actions", "logp_old", "advantages", "step")
_OPTIONAL = ("grad", "trials", "cg_coords", "cg_residuals")
_NUMBERS = ("accepted_frac", "delta", "damping", "beta", "clip_eps")


class SnapshotError(RuntimeError):
    """A snapshot cannot be read; ``str()`` is one user-readable line."""


@dataclass(frozen=True)
class SnapshotPolicy:
    """Whether the run loop writes snapshots, and which it keeps (module docstring)."""

    enabled: bool = True
    keep_latest: int = 200
    keep_every: int = 10

    def keeps(self, update: int, newest: int) -> bool:
        """Whether update ``update`` stays once ``newest`` is written."""
        return update > newest - self.keep_latest or update % self.keep_every == 0


def snapshot_dir(checkpoint_dir: str | Path) -> Path:
    """Where a run's snapshots live: the ``snapshots`` folder of its checkpoint folder."""
    return Path(checkpoint_dir) / SUBDIR


def snapshot_path(directory: str | Path, update: int) -> Path:
    return Path(directory) / f"update_{int(update):07d}.snapshot"


def save_snapshot(directory: str | Path, update: int, snap: UpdateSnapshot) -> Path:
    """Write ``snap`` as update ``update`` (atomically) and return its path."""
    path = snapshot_path(directory, update)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        name: _array(getattr(snap, name))
        for name in (*_TENSORS, *_OPTIONAL)
        if getattr(snap, name) is not None
    }
    header = {
        "version": FORMAT_VERSION,
        "update": int(update),
        "algo": snap.algo,
        "discrete": snap.discrete,
        "sizes": list(snap.sizes),
        "activation": snap.activation,
        **{name: _number(getattr(snap, name)) for name in _NUMBERS},
        "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()],
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        parts = [MAGIC, json.dumps(header).encode(), b"\n", *(a.data for a in arrays.values())]
        with open(tmp, "wb") as f:
            f.write(b"".join(parts))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_snapshot(path: str | Path) -> tuple[int, UpdateSnapshot]:
    """(update, snapshot) from a file :func:`save_snapshot` wrote; SnapshotError otherwise."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise SnapshotError(f"snapshot {path.name} cannot be read ({e.strerror or e})") from None
    end = blob.find(b"\n", len(MAGIC))
    if not blob.startswith(MAGIC) or end < 0:
        raise SnapshotError(f"{path.name} is not a playground update snapshot")
    try:
        meta = json.loads(blob[len(MAGIC) : end])
        arrays, offset = {}, end + 1
        for name, dtype, shape in meta["arrays"]:
            count = int(np.prod(shape))
            a = np.frombuffer(blob, np.dtype(dtype), count, offset).reshape(shape)
            arrays[name] = torch.from_numpy(a.copy())
            offset += a.nbytes
        if offset != len(blob):
            raise ValueError("its length does not match its arrays")
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotError(f"snapshot {path.name} is damaged ({e})") from None
    if meta.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"snapshot {path.name} has format {meta.get('version')}")
    numbers = {k: math.nan if meta[k] is None else float(meta[k]) for k in _NUMBERS}
    snap = UpdateSnapshot(
        algo=meta["algo"],
        discrete=bool(meta["discrete"]),
        sizes=tuple(int(n) for n in meta["sizes"]),
        activation=meta["activation"],
        **{k: arrays[k] for k in _TENSORS},
        **numbers,
        **{k: arrays.get(k) for k in _OPTIONAL},
    )
    return int(meta["update"]), snap


def list_snapshots(directory: str | Path) -> dict[int, Path]:
    """update → file of the snapshots in ``directory``, oldest first (empty if none)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    found = {int(m.group(1)): p for p in directory.iterdir() if (m := _NAME.fullmatch(p.name))}
    return dict(sorted(found.items()))


def prune(directory: str | Path, newest: int, policy: SnapshotPolicy) -> int | None:
    """Delete the one snapshot that leaves the kept window once ``newest`` is written (update
    newest − keep_latest, unless it is a multiple of keep_every); return it, or None. Called
    after every write, this keeps exactly what :meth:`SnapshotPolicy.keeps` keeps."""
    update = newest - policy.keep_latest
    if update < 1 or policy.keeps(update, newest):
        return None
    snapshot_path(directory, update).unlink(missing_ok=True)
    return update


def _array(t: torch.Tensor) -> np.ndarray:
    """float tensors as float32, integer actions as int8 when they fit, little-endian."""
    t = t.detach().cpu()
    if t.is_floating_point():
        a = t.to(torch.float32).numpy()
    else:
        a = t.numpy()
        if a.size and a.min() >= -128 and a.max() < 128:
            a = a.astype(np.int8)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def _number(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


class SnapshotWriter:
    """Writes snapshots (and prunes) in order on one background thread; any failure (a full or
    read-only disk) costs the inspector its picture, never the run. :meth:`close` waits until
    everything handed over is on disk."""

    def __init__(self, directory: str | Path, policy: SnapshotPolicy) -> None:
        self.directory, self.policy = Path(directory), policy
        self._queue: queue.SimpleQueue[tuple[int, UpdateSnapshot] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="snapshot-writer", daemon=True)
        self._thread.start()

    def put(self, update: int, snap: UpdateSnapshot) -> None:
        self._queue.put((update, snap))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            update, snap = item
            with contextlib.suppress(Exception):
                save_snapshot(self.directory, update, snap)
                prune(self.directory, update, self.policy)

"""Update snapshots on disk, beside the run's checkpoints: appended to a log file per 10 updates
while they are recent, one file per kept update once they are old.

The trainer captures a snapshot of each policy step (``core/engine/snapshot.py``); the run loop
(``core/runtime/run_loop.py``, in the worker process) hands it to :class:`SnapshotWriter`, which
appends it to ``<data_dir>/checkpoints/<run_id>/snapshots/updates_<c>.snapshots``, the log of
updates c … c + keep_every − 1 (c = the first). Deleting the run deletes its checkpoint folder and
so its snapshots (``RunStore.delete``); the checkpoint reconciliation only removes plain files of
that folder, never this sub-folder.

A record: the line ``trust-region-playground/snapshot``, one JSON line (the update, the numbers,
and each array's name, dtype and shape), then the arrays' raw little-endian bytes in that order:
float32, integer actions as int8. It is read with ``numpy.frombuffer`` (no pickle); its length
follows from its header, so a reader walks a log record by record and stops at a record cut short
(a write in progress, or a crash: the writer truncates the log to its last whole record before it
appends again). A later record of the same update (a run resumed from an earlier checkpoint)
replaces the earlier one. Why a log: creating and renaming one file per update cost ~0.3 ms of
system time, 3 % of a 12 ms PPO update on CartPole, the whole budget; appending costs ~0.1 ms.
Not ``np.savez`` (its zip members cost about 1 ms more); zlib would save under 10 % of these float
arrays for 6× the time.

The writer is a thread of the worker's own: the next update starts while the record is written
(the snapshot's tensors are copies), so a short update does not wait for the disk.

Retention (:class:`SnapshotPolicy`): after update n is written, update k is kept when
k > n − ``keep_latest`` or k is a multiple of ``keep_every``: every update of the latest 200 and
every 10th before, by default. A log leaves the window whole: once its last update is older than
the window, its kept update is written to a file of its own, ``update_<k>.snapshot`` (one record,
written to a temporary name and renamed), and the log is deleted; until then the log's older
updates stay readable (at most ``keep_every − 1`` more than the rule,
:meth:`SnapshotPolicy.on_disk`). Runs written before the logs have one such file per update;
they read the same way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import queue
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from core.engine.snapshot import FORMAT_VERSION, UpdateSnapshot

SUBDIR = "snapshots"
MAGIC = b"trust-region-playground/snapshot\n"
_FILE = re.compile(r"update_(\d{7,})\.snapshot")
_LOG = re.compile(r"updates_(\d{7,})\.snapshots")
_TENSORS = ("theta_old", "obs", "actions", "logp_old", "advantages", "step")
_OPTIONAL = ("grad", "trials", "cg_coords", "cg_residuals")
_NUMBERS = ("accepted_frac", "delta", "damping", "beta", "clip_eps")
_HEADER_LIMIT = 1 << 16  # bytes: a header line longer than this is not ours


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

    def log_start(self, update: int) -> int:
        """The first update of the log that holds ``update``: c = ⌊(k − 1) / keep_every⌋ ·
        keep_every + 1."""
        return (update - 1) // self.keep_every * self.keep_every + 1

    def on_disk(self, update: int, newest: int) -> bool:
        """Whether update ``update`` can be read once ``newest`` is written: kept, or in a log
        whose last update is still inside the window."""
        last = self.log_start(update) + self.keep_every - 1
        return self.keeps(update, newest) or last > newest - self.keep_latest


@dataclass(frozen=True)
class SnapshotRef:
    """Where one update's record lies: a file, and the record's byte offset in it."""

    path: Path
    offset: int = 0


def snapshot_dir(checkpoint_dir: str | Path) -> Path:
    """Where a run's snapshots live: the ``snapshots`` folder of its checkpoint folder."""
    return Path(checkpoint_dir) / SUBDIR


def snapshot_path(directory: str | Path, update: int) -> Path:
    """The file of one kept update."""
    return Path(directory) / f"update_{int(update):07d}.snapshot"


def log_path(directory: str | Path, start: int) -> Path:
    """The log of the updates from ``start`` on (:meth:`SnapshotPolicy.log_start`)."""
    return Path(directory) / f"updates_{int(start):07d}.snapshots"


def encode(update: int, snap: UpdateSnapshot) -> bytes:
    """One record (module docstring)."""
    return b"".join(_record_parts(update, snap))


def _record_parts(update: int, snap: UpdateSnapshot) -> list[bytes | memoryview]:
    """A record as its pieces: the magic line, the header line, each array's bytes."""
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
    return [MAGIC, json.dumps(header).encode() + b"\n", *(a.data for a in arrays.values())]


def save_snapshot(directory: str | Path, update: int, snap: UpdateSnapshot) -> Path:
    """Write ``snap`` as the file of update ``update`` (atomically) and return its path."""
    path = snapshot_path(directory, update)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, encode(update, snap))
    return path


def load_snapshot(where: SnapshotRef | str | Path) -> tuple[int, UpdateSnapshot]:
    """(update, snapshot) of the record at ``where`` (a file: its first record); SnapshotError
    when it cannot be read, is not ours, is cut short or (a file of one update) has bytes after
    its record."""
    ref = where if isinstance(where, SnapshotRef) else SnapshotRef(Path(where))
    try:
        with open(ref.path, "rb") as f:
            f.seek(ref.offset)
            meta, size = _read_header(f, ref.path.name)
            blob = f.read(size + (1 if _FILE.fullmatch(ref.path.name) else 0))
    except OSError as e:
        raise SnapshotError(
            f"snapshot {ref.path.name} cannot be read ({e.strerror or e})"
        ) from None
    if len(blob) != size:
        raise SnapshotError(f"snapshot {ref.path.name} is damaged (its length does not match)")
    return int(meta["update"]), _decode(meta, blob)


def list_snapshots(directory: str | Path) -> dict[int, SnapshotRef]:
    """update → record of the snapshots in ``directory``, oldest first (empty if none)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    found: dict[int, SnapshotRef] = {}
    for path in sorted(directory.iterdir()):
        if m := _FILE.fullmatch(path.name):
            found[int(m.group(1))] = SnapshotRef(path)
        elif _LOG.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):  # compacted meanwhile
                stat = path.stat()
                records = _records(str(path), stat.st_size, stat.st_mtime_ns)
                found.update((update, SnapshotRef(path, offset)) for update, offset, _ in records)
    return dict(sorted(found.items()))


@functools.lru_cache(maxsize=1024)
def _records(path: str, size: int, mtime_ns: int) -> tuple[tuple[int, int, int], ...]:
    """:func:`_walk` of a log as it is at this size and time: a page that lists a run's updates
    on every rerun reads the headers of a log once, and again only after it grew."""
    return tuple(_walk(Path(path)))


def prune(directory: str | Path, newest: int, policy: SnapshotPolicy) -> None:
    """After ``newest`` is written: delete the file of the update that leaves the window (runs
    written one file per update), and when the window has left a whole log behind, write its
    kept update to a file of its own and delete the log."""
    left = newest - policy.keep_latest
    if left < 1:
        return
    if not policy.keeps(left, newest):
        snapshot_path(directory, left).unlink(missing_ok=True)
    log = log_path(directory, policy.log_start(left))
    if left % policy.keep_every == 0 and log.exists():
        with open(log, "rb") as f:
            for update, offset, size in _walk(log):
                if policy.keeps(update, newest):
                    f.seek(offset)
                    _write_atomically(snapshot_path(directory, update), f.read(size))
        log.unlink()


class SnapshotLog:
    """Appends records to the current log and prunes (module docstring); one writer per run.

    A record goes out in one ``writev`` (no copy into one buffer); a write cut short (a full
    disk) is taken back, so the log always ends with a whole record."""

    def __init__(self, directory: str | Path, policy: SnapshotPolicy) -> None:
        self.directory, self.policy = Path(directory), policy
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._start = self._end = 0

    def write(self, update: int, snap: UpdateSnapshot) -> None:
        start = self.policy.log_start(update)
        if self._fd is None or start != self._start:
            self.close()
            self._fd, self._end = _open_log(log_path(self.directory, start))
            self._start = start
        parts = _record_parts(update, snap)
        size = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
        written = os.writev(self._fd, parts)
        if written != size:
            os.ftruncate(self._fd, self._end)
            raise OSError(f"snapshot of update {update}: {written} of {size} bytes written")
        self._end += size
        prune(self.directory, update, self.policy)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SnapshotWriter:
    """A :class:`SnapshotLog` on one background thread; any failure (a full or read-only disk)
    costs the inspector its picture, never the run. :meth:`close` waits until everything handed
    over is on disk."""

    def __init__(self, directory: str | Path, policy: SnapshotPolicy) -> None:
        self._log = SnapshotLog(directory, policy)
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
            with contextlib.suppress(Exception):
                self._log.write(*item)
        with contextlib.suppress(Exception):
            self._log.close()


# -- records ----------------------------------------------------------------------------------


def _read_header(f: BinaryIO, name: str) -> tuple[dict, int]:
    """The header of the record at ``f``'s position and the length of its arrays in bytes."""
    if f.read(len(MAGIC)) != MAGIC:
        raise SnapshotError(f"{name} is not a playground update snapshot")
    line = f.readline(_HEADER_LIMIT)
    try:
        meta = json.loads(line)
        size = sum(np.dtype(dt).itemsize * math.prod(shape) for _, dt, shape in meta["arrays"])
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotError(f"snapshot {name} is damaged ({e})") from None
    if meta.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"snapshot {name} has format {meta.get('version')}")
    return meta, size


def _decode(meta: dict, blob: bytes) -> UpdateSnapshot:
    arrays, offset = {}, 0
    for name, dtype, shape in meta["arrays"]:
        a = np.frombuffer(blob, np.dtype(dtype), math.prod(shape), offset).reshape(shape)
        arrays[name] = torch.from_numpy(a.copy())
        offset += a.nbytes
    numbers = {k: math.nan if meta[k] is None else float(meta[k]) for k in _NUMBERS}
    return UpdateSnapshot(
        algo=meta["algo"],
        discrete=bool(meta["discrete"]),
        sizes=tuple(int(n) for n in meta["sizes"]),
        activation=meta["activation"],
        **{k: arrays[k] for k in _TENSORS},
        **numbers,
        **{k: arrays.get(k) for k in _OPTIONAL},
    )


def _walk(path: Path) -> Iterator[tuple[int, int, int]]:
    """(update, offset, length) of each whole record of a log, in order; stops at the first
    record that is cut short or damaged."""
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < end:
            try:
                meta, size = _read_header(f, path.name)
            except SnapshotError:
                return
            record_end = f.tell() + size
            if record_end > end:
                return
            yield int(meta["update"]), offset, record_end - offset
            f.seek(record_end)
            offset = record_end


def _open_log(path: Path) -> tuple[int, int]:
    """A descriptor of ``path`` for appending, and its length once cut back to its last whole
    record (a crash may have left half a record that the next one would otherwise follow)."""
    whole = 0
    if path.exists():
        for _, offset, size in _walk(path):
            whole = offset + size
        if whole != path.stat().st_size:
            os.truncate(path, whole)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), whole


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _array(t: torch.Tensor) -> np.ndarray:
    """float tensors as float32, integer actions as int8 when they fit, little-endian and
    contiguous (a float32 tensor's own memory where it already is)."""
    t = t.detach().cpu()
    if t.is_floating_point():
        a = (t if t.dtype == torch.float32 else t.to(torch.float32)).numpy()
    else:
        a = t.numpy()
        if a.size and a.min() >= -128 and a.max() < 128:
            a = a.astype(np.int8)
    if a.flags.c_contiguous and a.dtype.byteorder in "<=|" and sys.byteorder == "little":
        return a
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def _number(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x

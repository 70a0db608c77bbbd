"""Which process owns a run, and whether it is still alive (Linux ``/proc``).

A run's row names the process that trains it: an owner tag, JSON with the host, the pid and the
process's start time (from ``/proc/<pid>/stat``), so a pid reused by another process is not
mistaken for the owner, plus, for runs of a run manager, the manager's token. The store marks a
run whose owner process is gone as ``interrupted`` (``core/runtime/store.py``); the run manager
also treats runs of its own process whose manager has shut down as gone
(``core/runtime/runner.py``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Collection
from pathlib import Path


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from ``/proc`` (Linux), or None where unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def process_owner(manager: str | None = None) -> str:
    """The owner tag of this process (host, pid, start time; optionally a manager token)."""
    stat = _proc_stat(os.getpid())
    tag = {"host": socket.gethostname(), "pid": os.getpid(), "start": stat[1] if stat else None}
    if manager is not None:
        tag["manager"] = manager
    return json.dumps(tag)


def parse_owner(owner: str | None) -> dict | None:
    """An owner tag as a dict with an int ``pid``, or None if missing or malformed."""
    try:
        tag = json.loads(owner) if owner else None
        tag["pid"] = int(tag["pid"])
    except (ValueError, TypeError, KeyError):
        return None
    return tag


def process_alive(tag: dict) -> bool:
    """Whether the process of an owner tag may still be running (another host: assume yes)."""
    if tag.get("host") != socket.gethostname():
        return True
    try:
        os.kill(tag["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(tag["pid"])
    if stat is None:
        return not os.path.isdir("/proc")  # without /proc the signal test is all we have
    state, start = stat
    return state not in ("Z", "X") and tag.get("start") in (None, start)


def owner_process_alive(owner: str | None) -> bool:
    """Whether the process an owner tag names may still be running (a malformed tag: no)."""
    tag = parse_owner(owner)
    return tag is not None and process_alive(tag)


def owner_alive(owner: str | None, live_managers: Collection[str]) -> bool:
    """Whether the process (and, in this process, the manager) owning a run may still train it.

    ``live_managers`` holds the tokens of this process's run managers that are not shut down.
    Runs created through the store alone (no manager token) belong to their process.
    """
    tag = parse_owner(owner)
    if tag is None:
        return False
    if tag["pid"] == os.getpid() and tag.get("host") == socket.gethostname():
        return "manager" not in tag or tag["manager"] in live_managers
    return process_alive(tag)

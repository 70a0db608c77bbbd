"""Shared by the test modules: the repository root, running one of its modules as a process, and
the metrics every trainer's report carries (added by ``Bookkeeper.finish``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BOOKKEEPER_METRICS = (
    "env_steps",
    "update",
    "wall_time",
    "fps",
    "episode_return_mean",
    "episode_length_mean",
)


def run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m *args`` from the repository root, stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )

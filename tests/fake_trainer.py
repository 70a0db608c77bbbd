"""A small trainer obeying the contract of ``core.engine.trainer.Trainer`` for runtime tests (no
env, no nets).

Each update "collects" ``n_envs × n_steps`` env steps with reward 1 per step and episodes of
``episode_length`` steps, moves a weight vector by ``lr``, and reports ``loss`` and ``lr``.
Hooks let a test hold an update (``gate``: a :class:`Gate` in a thread, a
:class:`ProcessGate`'s client in a worker process), fail on a given update (``fail_on``) or
watch how many updates run at once (``Concurrency``).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import RunConfig
from core.engine.trainer import Bookkeeper, UpdateReport


def fake_config(total_steps: int = 80, **changes: Any) -> RunConfig:
    """An A2C CartPole config with 2 envs × 4 steps per update (8 env steps)."""
    return RunConfig(algo="a2c").with_changes(
        n_envs=2, n_steps=4, total_steps=total_steps, eval_every=0, **changes
    )


class Gate:
    """Holds every update at its start until ``open()``; ``entered`` counts arrivals."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._cond = threading.Condition()
        self.entered = 0

    def __call__(self) -> None:
        with self._cond:
            self.entered += 1
            self._cond.notify_all()
        self._open.wait()

    @property
    def hook(self) -> Gate:
        """What the trainer calls at each update's start."""
        return self

    def open(self) -> None:
        self._open.set()

    def wait_entered(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.entered >= n, timeout)


@dataclass(frozen=True)
class GateClient:
    """The picklable half of a :class:`ProcessGate`: connects, then waits for the gate to open."""

    path: str

    def __call__(self) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.path)
            s.recv(1)


class ProcessGate:
    """A :class:`Gate` that holds updates running in other processes (over a Unix socket).

    Every update connects to the socket; the test side counts the connections (``entered``) and
    answers them all on ``open()``. Pass ``gate.client`` to the trainer.
    """

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="gate-")  # short: Unix socket paths are ≤ 107 bytes
        self.client = GateClient(str(Path(self._dir) / "s"))
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(self.client.path)
        self._server.listen(64)
        self._cond = threading.Condition()
        self._waiting: list[socket.socket] = []
        self._open = False
        self.entered = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._cond:
                self.entered += 1
                if self._open:
                    conn.sendall(b"g")
                    conn.close()
                else:
                    self._waiting.append(conn)
                self._cond.notify_all()

    @property
    def hook(self) -> GateClient:
        """What the trainer calls at each update's start (it pickles)."""
        return self.client

    def open(self) -> None:
        with self._cond:
            self._open = True
            for conn in self._waiting:
                with contextlib.suppress(OSError):  # its process may be gone (killed)
                    conn.sendall(b"g")
                conn.close()
            self._waiting.clear()

    def wait_entered(self, n: int, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.entered >= n, timeout)

    def close(self) -> None:
        self.open()
        self._server.close()


def exploding_trainer(config: RunConfig) -> FakeTrainer:
    """A factory whose trainer cannot even be built (module-level: a worker can import it)."""
    raise RuntimeError("the environment exploded")


def _refuse(reason: str) -> None:
    raise RuntimeError(reason)


class Unbuildable:
    """Pickles fine, but unpickling it raises: a factory that cannot be rebuilt in a worker."""

    def __reduce__(self) -> tuple:
        return (_refuse, ("this factory cannot be rebuilt in the worker",))


class Concurrency:
    """Counts updates in progress and remembers the maximum."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.max = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class FakeTrainer:
    """Contract-abiding trainer; see the module docstring."""

    episode_length = 3

    def __init__(
        self,
        config: RunConfig,
        *,
        fail_on: int | None = None,
        gate: Gate | GateClient | None = None,
        concurrency: Concurrency | None = None,
    ) -> None:
        self.config = config
        self.book = Bookkeeper(config)
        self.weight = torch.zeros(4)
        self.fail_on = fail_on
        self.gate = gate
        self.concurrency = concurrency
        self._t = np.zeros(config.n_envs, dtype=np.int64)

    @property
    def done(self) -> bool:
        return self.book.env_steps >= self.config.total_steps

    def update(self) -> UpdateReport:
        self.book.start()
        if self.concurrency is not None:
            with self.concurrency:
                return self._update()
        return self._update()

    def _update(self) -> UpdateReport:
        if self.gate is not None:
            self.gate()
        if self.fail_on == self.book.update + 1:
            raise RuntimeError(f"boom on update {self.fail_on}")
        rewards = np.ones(self.config.n_envs)
        for _ in range(self.config.n_steps):
            self._t += 1
            dones = self._t % self.episode_length == 0
            self.book.on_step(rewards, dones)
        self.weight += self.config.lr
        return self.book.finish({"loss": float(self.weight.sum()), "lr": self.config.lr})

    def reconfigure(self, config: RunConfig) -> None:
        self.config = config

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(obs), dtype=torch.long)

    def evaluate(self, n_episodes: int) -> list[float]:
        return [float(self.episode_length)] * n_episodes

    def state_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.clone(),
            "book": self.book.state_dict(),
            "config": self.config.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reconfigure(RunConfig.from_json(state["config"]))
        self.weight = state["weight"].clone()
        self.book.load_state_dict(state["book"])

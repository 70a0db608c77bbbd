"""Checkpoint files: ``torch.save`` of a trainer's state dict, read back with ``weights_only=True``.

A checkpoint is a dict ``{"format", "version", "run_id", "update", "env_steps", "config", "state"}``
where ``state`` is ``trainer.state_dict()`` (tensors, numbers, strings, lists, dicts) and ``config``
the JSON of the trainer's config at save time (live hyperparameter changes included). Files are
written to a temporary name and renamed, so a crash never leaves half a checkpoint behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FORMAT = "trust-region-playground/checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; ``str()`` is one user-readable line."""


def save_checkpoint(
    path: str | Path, *, run_id: str, update: int, env_steps: int, config_json: str, state: dict
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename) and return its path."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "run_id": run_id,
        "update": int(update),
        "env_steps": int(env_steps),
        "config": config_json,
        "state": state,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else → CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or foreign files
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a playground checkpoint ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a playground checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload.get('version')}; expected {VERSION}"
        )
    return payload


def restore(
    path: str | Path, *, run_id: str, algo: str, factory: Callable[[Any], Any]
) -> tuple[Any, dict[str, Any]]:
    """A fresh trainer (from ``factory(config)``) loaded with checkpoint ``path`` of run
    ``run_id``, and the checkpoint; CheckpointError (one line) if the file is unreadable, belongs
    to another run or algorithm, or its state does not load into the trainer."""
    from core.config import ConfigError, RunConfig

    name = Path(path).name
    payload = load_checkpoint(path)
    if payload.get("run_id") != run_id:
        raise CheckpointError(
            f"checkpoint {name} belongs to run {payload.get('run_id')!r}, not to run {run_id}"
        )
    try:
        config = RunConfig.from_json(payload["config"])
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {name} has no valid config ({e})") from None
    if config.algo != algo:
        raise CheckpointError(
            f"checkpoint {name} is a {config.algo} checkpoint; run {run_id} is {algo}"
        )
    try:
        trainer = factory(config)
        trainer.load_state_dict(payload["state"])
    except Exception as e:  # a state of another shape fails in many ways (KeyError, size, ...)
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
        raise CheckpointError(
            f"checkpoint {name} does not load into the {algo} trainer ({reason})"
        ) from None
    return trainer, payload


def newest_restorable(
    paths: list[str], *, run_id: str, algo: str, factory: Callable[[Any], Any]
) -> tuple[str, Any, dict[str, Any]]:
    """The newest of ``paths`` (oldest first) that :func:`restore` accepts: (path, trainer,
    checkpoint). Older ones are tried when newer ones fail; CheckpointError if none loads."""
    if not paths:
        raise CheckpointError(f"run {run_id} has no checkpoint to continue from")
    errors = []
    for path in reversed(paths):
        try:
            trainer, payload = restore(path, run_id=run_id, algo=algo, factory=factory)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        return path, trainer, payload
    more = f" (and {len(errors) - 1} older ones)" if len(errors) > 1 else ""
    raise CheckpointError(f"run {run_id} has no usable checkpoint: {errors[0]}{more}")

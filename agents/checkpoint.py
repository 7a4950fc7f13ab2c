"""Checkpoints as plain state dicts plus config, readable with ``torch.load(path, weights_only=True)``.

A run directory keeps ``checkpoints/latest.pt`` (saved periodically, at the end, and on Ctrl-C
or SIGTERM) and ``checkpoints/best.pt`` (saved when the success rate on the in-distribution
held-out split ``id`` improves). Each file holds::

    format, shiftgrid_version, algo, config (the resolved TrainConfig as a dict),
    policy (state dict), optimizer (state dict), counters (num_timesteps, n_updates,
    episode_num, n_calls), best_success, eval (split -> success at the last evaluation),
    elapsed_s (seconds trained so far), target (the training-success target as met, or None)

What is not saved: the environments' state (a resumed run starts fresh episodes), the
random-number generators, RecurrentPPO's LSTM state between rollouts (it restarts from zeros),
and DQN's replay buffer (a resumed DQN run refills ``learning_starts`` transitions before its
next update; its exploration rate follows the schedule from the restored ``num_timesteps``).

Example:
    >>> import tempfile, torch
    >>> from shiftgrid.agents.config import TrainConfig
    >>> from shiftgrid.agents.algos import build_model, make_vec
    >>> config = TrainConfig(algo="ppo", n_envs=1, device="cpu", hyperparams={"n_steps": 64, "batch_size": 64})
    >>> model = build_model(config, make_vec(config))
    >>> path = save_checkpoint(model, config, tempfile.mkdtemp() + "/latest.pt")
    >>> sorted(torch.load(path, weights_only=True))[:3]
    ['algo', 'best_success', 'config']
    >>> agent, cfg = load_agent(path, device="cpu")
    >>> cfg["algo"], agent.num_timesteps
    ('ppo', 0)
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from shiftgrid.agents.algos import build_model, make_vec
from shiftgrid.agents.config import TrainConfig, shiftgrid_version

#: Layout version of the checkpoint dict; bump it when the keys change meaning.
FORMAT = 1
CHECKPOINT_DIR = "checkpoints"
LATEST, BEST = "latest.pt", "best.pt"
_KEYS = ("format", "shiftgrid_version", "algo", "config", "policy", "optimizer", "counters")


class CheckpointError(ValueError):
    """A missing, unreadable or incompatible checkpoint (or run directory)."""


def release_series(version: str) -> tuple[int, ...]:
    """The part of a version that must match to load: ``(major, minor)`` before 1.0, ``(major,)`` after.

    Example:
        >>> release_series("0.3.2"), release_series("2.1.0")
        ((0, 3), (2,))
    """
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        raise CheckpointError(f"unparseable shiftgrid version {version!r} in checkpoint") from None
    return (major, minor) if major == 0 else (major,)


def check_compatible(version: str, where: str) -> None:
    """Raise :class:`CheckpointError` if ``where`` was written by an incompatible shiftgrid release."""
    current = shiftgrid_version()
    if release_series(version) != release_series(current):
        series = ".".join(map(str, release_series(version)))
        raise CheckpointError(
            f"{where} was written by shiftgrid {version}, which this shiftgrid {current} cannot load; "
            f"use shiftgrid {series}.x or train again"
        )


def checkpoint_state(model: BaseAlgorithm, config: TrainConfig, **extra: Any) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` writes (``extra``: ``best_success``, ``eval``, ``elapsed_s``, ``target``)."""
    return {
        "format": FORMAT,
        "shiftgrid_version": shiftgrid_version(),
        "algo": config.algo,
        "config": config.to_dict(),
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "counters": {
            "num_timesteps": int(model.num_timesteps),
            "n_updates": int(getattr(model, "_n_updates", 0)),
            "episode_num": int(model._episode_num),
            "n_calls": int(getattr(model, "_n_calls", 0)),
        },
        "best_success": extra.get("best_success"),
        "eval": dict(extra.get("eval") or {}),
        "elapsed_s": float(extra.get("elapsed_s") or 0.0),
        "target": extra.get("target"),
    }


def save_checkpoint(model: BaseAlgorithm, config: TrainConfig, path: str | Path, **extra: Any) -> Path:
    """Write a checkpoint atomically (a reader never sees a half-written file); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint_state(model, config, **extra), tmp)
    os.replace(tmp, path)
    return path


def find_checkpoint(path: str | Path) -> Path:
    """A ``.pt`` file as given, or a run directory's ``checkpoints/best.pt``, else ``checkpoints/latest.pt``."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for folder in (path / CHECKPOINT_DIR, path):
            for name in (BEST, LATEST):
                if (folder / name).is_file():
                    return folder / name
        raise CheckpointError(f"no checkpoint in {path} (looked for {CHECKPOINT_DIR}/{BEST} and {CHECKPOINT_DIR}/{LATEST})")
    raise CheckpointError(f"checkpoint {path} does not exist")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint file (``weights_only``: no code runs while loading).

    Raises:
        CheckpointError: the file is missing, corrupt, not a shiftgrid checkpoint, or from an
            incompatible shiftgrid release.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError:  # torch's message here suggests weights_only=False: not for a checkpoint
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or not a checkpoint): not a weights-only torch file") from None
    except Exception as e:  # torch reports other corrupt files as RuntimeError, EOFError, ...
        reason = "the file is empty" if path.stat().st_size == 0 else (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or not a checkpoint): {reason}") from None
    if not isinstance(state, dict) or any(k not in state for k in _KEYS):
        raise CheckpointError(f"{path} is not a shiftgrid checkpoint (expected keys {', '.join(_KEYS)})")
    if state["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state['format']}; this shiftgrid reads format {FORMAT}")
    check_compatible(str(state["shiftgrid_version"]), str(path))
    return state


def restore(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Load weights, optimizer state and step counters from a checkpoint dict into ``model``."""
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    counters = state["counters"]
    model.num_timesteps = counters["num_timesteps"]
    model._episode_num = counters["episode_num"]
    if hasattr(model, "_n_updates"):
        model._n_updates = counters["n_updates"]
    if hasattr(model, "_n_calls"):
        model._n_calls = counters["n_calls"]


def load_agent(path: str | Path, device: str = "auto") -> tuple[BaseAlgorithm, dict[str, Any]]:
    """Rebuild a trained agent from a run directory (``best.pt``, else ``latest.pt``) or a ``.pt`` file.

    The agent is the SB3 model, so it answers ``predict(obs, state, episode_start, deterministic)``.

    Args:
        path: run directory or checkpoint file.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...

    Returns:
        (agent, config dict as saved with the checkpoint).

    Raises:
        CheckpointError: no checkpoint, a corrupt one, or one from an incompatible release.

    Example:
        >>> agent, config = load_agent("runs/goto")  # doctest: +SKIP
        >>> actions, state = agent.predict(obs, deterministic=True)  # doctest: +SKIP
    """
    state = read_checkpoint(find_checkpoint(path))
    config = TrainConfig.from_dict({**state["config"], "device": device, "vec_env": "dummy"})
    overrides = {"buffer_size": 1} if config.algo == "dqn" else {}  # no replay buffer to evaluate
    model = build_model(config, make_vec(config), **overrides)
    restore(model, state)
    return model, state["config"]

"""The checkpoint envelope: generic run fields around an opaque learner state, ``weights_only``-readable.

Every learner's checkpoint is one dict, readable with ``torch.load(path, weights_only=True)``::

    format, shiftgrid_version, learner, config (the resolved config as a dict),
    counters (num_timesteps), best (how best.pt was chosen: split, success, step, seeds),
    history (every evaluation during training: step and split -> success), eval (the last one),
    elapsed_s (seconds trained so far), target (the met training-success target, or None),
    episodes (the run's record of its training episodes: how many ended, the last 100 of them,
    the training-success target's window, and the step of the last evaluation; see
    :class:`~shiftgrid.agents.run.services.RunServices`), state (the learner's own state dict, opaque here)

Files of format 2 written before ``episodes`` existed read as a run with no episodes recorded.

Files of format 1 (shiftgrid 0.1.0: SB3 keys at the top level) are read into the same envelope.
What a learner leaves out of its state is its business (see :mod:`shiftgrid.agents.sb3.learner`).

Example:
    >>> import tempfile, torch
    >>> ckpt = Checkpoint("ppo", {"algo": "ppo"}, {"w": torch.zeros(2)}, num_timesteps=64)
    >>> path = save_checkpoint(ckpt, tempfile.mkdtemp() + "/latest.pt")
    >>> sorted(torch.load(path, weights_only=True))[:4]
    ['best', 'config', 'counters', 'elapsed_s']
    >>> read_checkpoint(path).num_timesteps
    64
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shiftgrid.agents.run.config import TrainConfig, shiftgrid_version
from shiftgrid.agents.run.rundir import BEST, CHECKPOINT_DIR, LATEST
from shiftgrid.envs.errors import UserInputError

#: Layout version of the envelope; bump it when the keys change meaning.
FORMAT = 2
_KEYS = ("format", "shiftgrid_version", "learner", "config", "counters", "state")
_KEYS_V1 = ("format", "shiftgrid_version", "algo", "config", "policy", "optimizer", "counters")


class CheckpointError(UserInputError, ValueError):
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


@dataclass
class Checkpoint:
    """The envelope (see the module docstring); ``state`` is the learner's own."""

    learner: str
    config: dict[str, Any]
    state: dict[str, Any]
    num_timesteps: int = 0
    best: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    target: dict[str, Any] | None = None
    shiftgrid_version: str = field(default_factory=shiftgrid_version)
    format: int = FORMAT
    episodes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "shiftgrid_version": self.shiftgrid_version, "learner": self.learner,
            "config": self.config, "counters": {"num_timesteps": int(self.num_timesteps)}, "best": self.best,
            "history": list(self.history), "eval": dict(self.eval), "elapsed_s": float(self.elapsed_s),
            "target": self.target, "episodes": self.episodes, "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "Checkpoint":
        """The envelope of a checked file's dict, format 1 or 2."""
        if data.get("format") == 1:
            best = None if data.get("best_success") is None else {"split": "id", "success": data["best_success"],
                                                                   "seeds": _format1_selection_seeds(data["config"])}
            state = {"policy": data["policy"], "optimizer": data["optimizer"], "counters": data["counters"]}
            return cls(data["algo"], data["config"], state, int(data["counters"]["num_timesteps"]), best, [],
                       dict(data.get("eval") or {}), float(data.get("elapsed_s") or 0.0), data.get("target"),
                       str(data["shiftgrid_version"]), FORMAT)
        return cls(data["learner"], data["config"], data["state"], int(data["counters"]["num_timesteps"]),
                   data.get("best"), list(data.get("history") or []), dict(data.get("eval") or {}),
                   float(data.get("elapsed_s") or 0.0), data.get("target"), str(data["shiftgrid_version"]), FORMAT,
                   data.get("episodes"))


def _format1_selection_seeds(config: dict[str, Any]) -> list[int]:
    """The reset seeds a format-1 ``best.pt`` was chosen on (its evaluations started at ``eval.seed``, default 0)."""
    from shiftgrid.agents.evaluation.episodes import first_reset_seed

    ev = config.get("eval") or {}
    first = first_reset_seed(config["env"], int(ev.get("seed", 0)))
    return [first, first + int(ev.get("episodes", 20)) - 1]


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write a checkpoint atomically (a reader never sees a half-written file); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint.to_dict(), tmp)
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


def checkpoint_file(run_dir: str | Path, checkpoint: str = "latest") -> Path:
    """The checkpoint file a run (directory or file) names: itself if a file, else its ``latest``/``best`` (or a path).

    Raises:
        CheckpointError: the directory has no such checkpoint.
    """
    path = Path(run_dir)
    if path.is_file():
        return path
    if checkpoint in ("latest", "best"):
        file = path / CHECKPOINT_DIR / (LATEST if checkpoint == "latest" else BEST)
        if not file.is_file():
            raise CheckpointError(f"no {CHECKPOINT_DIR}/{file.name} in {run_dir}")
        return file
    return find_checkpoint(checkpoint)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and check a checkpoint file (``weights_only``: no code runs while loading).

    Raises:
        CheckpointError: the file is missing, corrupt, not a shiftgrid checkpoint, or from an
            incompatible shiftgrid release (one line, naming the file).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # torch reports foreign and corrupt files as UnpicklingError, RuntimeError, EOFError...
        reason = "the file is empty" if path.stat().st_size == 0 else (
            "not a weights-only torch file" if isinstance(e, pickle.UnpicklingError) else "not a readable torch file")
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or not a checkpoint): {reason}") from None
    keys = _KEYS_V1 if isinstance(data, dict) and data.get("format") == 1 else _KEYS
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise CheckpointError(f"{path} is not a shiftgrid checkpoint (expected keys {', '.join(_KEYS)})")
    if data["format"] not in (1, FORMAT):
        raise CheckpointError(f"{path} has checkpoint format {data['format']}; this shiftgrid reads formats 1 and {FORMAT}")
    check_compatible(str(data["shiftgrid_version"]), str(path))
    return Checkpoint.from_dict(data, str(path))


def build_learner(checkpoint: Checkpoint, device: str = "auto", *, training: bool = False, config: TrainConfig | None = None,
                  load_state: bool = True) -> Any:
    """The registered learner of ``checkpoint``, built from its config and loaded with its state (unless not ``load_state``).

    Raises:
        CheckpointError: the checkpoint's learner is not registered (the message says how to register it).
    """
    from shiftgrid.agents.run.config import ConfigError
    from shiftgrid.agents.run.registry import get_learner, learner_names

    if checkpoint.learner not in learner_names():
        raise CheckpointError(f"the checkpoint is for learner {checkpoint.learner!r}, which is not registered "
                              f"(registered: {', '.join(learner_names())}); register it with register_learner")
    if config is None:
        config = TrainConfig.from_dict({**checkpoint.config, "device": device, "vec_env": "dummy"})
    try:
        learner = get_learner(checkpoint.learner)(config, training=training)
    except ConfigError as e:
        raise CheckpointError(f"cannot rebuild the {checkpoint.learner} learner of this checkpoint: {e}") from None
    if load_state:
        learner.load_state_dict(checkpoint.state)
    return learner


def load_agent(path: str | Path, device: str = "auto") -> tuple[Any, dict[str, Any]]:
    """Rebuild a trained agent from a run directory (``best.pt``, else ``latest.pt``) or a ``.pt`` file.

    Works for every registered learner and builds no training environments. The agent answers
    SB3's ``predict(obs, state, episode_start, deterministic)``.

    Args:
        path: run directory or checkpoint file.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...

    Returns:
        (agent, config dict as saved with the checkpoint).

    Raises:
        CheckpointError: no checkpoint, a corrupt one, one from an incompatible release, or one
            of an unregistered learner.

    Example:
        >>> agent, config = load_agent("runs/goto")  # doctest: +SKIP
        >>> actions, state = agent.predict(obs, deterministic=True)  # doctest: +SKIP
    """
    checkpoint = read_checkpoint(find_checkpoint(path))
    return build_learner(checkpoint, device), checkpoint.config

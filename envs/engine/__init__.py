"""shiftgrid.envs.engine: every family's levels, and minigrid's own, stepped as batched torch tensors.

Levels become fixed-shape arrays (:mod:`.levels`), filled once into level banks per split
(:mod:`.bank`); one pure batched step applies the game's one rule set (:mod:`shiftgrid.envs.rules`,
:mod:`.core`) on the CPU or CUDA; :mod:`.vector` puts it behind gymnasium's ``VectorEnv``.
The minigrid env is held to it step by step (:mod:`.parity`), and the oracle plans with its rules.

Importing this package needs no torch; :func:`make_tensor_vec` does.

Example:
    >>> from shiftgrid.envs import make_tensor_vec
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
    >>> envs = make_tensor_vec("shiftgrid/GoTo-v1", 16, bank=bank)
    >>> obs, info = envs.reset(seed=0)
    >>> tuple(obs["image"].shape), envs.metadata["autoreset_mode"].value
    ((16, 7, 7, 3), 'NextStep')
"""

from __future__ import annotations

from typing import Any

from shiftgrid.envs.engine.errors import BankError, EngineError

__all__ = ["make_tensor_vec", "shiftgrid_vector_env", "EngineError", "BankError"]

_NO_TORCH = "the tensor engine needs torch (no module 'torch'): pip install 'shiftgrid[agents]', or vectorization_mode='sync'"


def _vector() -> Any:
    try:
        from shiftgrid.envs.engine import vector
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "torch":
            raise EngineError(_NO_TORCH) from None
        raise
    return vector


def make_tensor_vec(env_id: str, num_envs: int, split: str = "train", device: Any = "cpu", **kwargs: Any) -> Any:
    """The tensor engine for a shiftgrid id or a minigrid id it can express (see :func:`.vector.make_tensor_vec`)."""
    return _vector().make_tensor_vec(env_id, num_envs, split=split, device=device, **kwargs)


def shiftgrid_vector_env(num_envs: int = 1, **kwargs: Any) -> Any:
    """``gym.make_vec``'s entry point for shiftgrid ids (see :func:`.vector.shiftgrid_vector_env`)."""
    return _vector().shiftgrid_vector_env(num_envs, **kwargs)

"""The mission space: gymnasium's ``Text`` whose asynchronous shared-memory reads stay current.

gymnasium 1.x reads a ``Text`` space out of an ``AsyncVectorEnv``'s shared memory once, when the
vector env is built, into a tuple of strings; arrays are live views, but that tuple never
changes, so every later observation repeats the first read (all ``'a'``s). ``MissionText`` reads
into :class:`SharedTexts`, a live view decoded on access; a deep copy (what ``AsyncVectorEnv``
returns with ``copy=True``, the default) is a plain tuple of strings, as a sync vector env gives.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> envs = gym.make_vec("shiftgrid/GoTo-v1", num_envs=2, vectorization_mode="async")
    >>> obs, _ = envs.reset(seed=0)
    >>> obs["mission"][0].startswith("go to the")
    True
    >>> envs.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import read_from_shared_memory


class MissionText(spaces.Text):
    """A ``Text`` space that vectorizes asynchronously (see the module docstring)."""


class SharedTexts(Sequence):
    """The strings currently in a ``MissionText`` shared-memory buffer, decoded on access."""

    def __init__(self, space: MissionText, shared_memory: Any, n: int):
        self.space, self.n = space, n
        self.data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape((n, space.max_length))

    def _decode(self, row: np.ndarray) -> str:
        chars, size = self.space.character_list, len(self.space.character_set)
        return "".join(chars[v] for v in row if v < size)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._decode(r) for r in self.data[i])
        return self._decode(self.data[i])

    def __len__(self) -> int:
        return self.n

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, list, SharedTexts)) else other)

    def __repr__(self) -> str:
        return repr(tuple(self))


@read_from_shared_memory.register(MissionText)
def _read_mission_text(space: MissionText, shared_memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)

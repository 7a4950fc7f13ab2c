"""Learner-facing observation wrappers: missions (and later advice) as fixed-length token ids.

Works on shiftgrid, minigrid and BabyAI environments, in gymnasium's sync and async vector
envs and in stable-baselines3 vec envs (every output space is a ``Box``).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = MissionTokens(gym.make("shiftgrid/GoTo-v0"))
    >>> obs, _ = env.reset(seed=0)
    >>> obs["mission"].shape, obs["mission"].dtype
    ((32,), dtype('int64'))
    >>> decode(obs["mission"])[:2]
    ['go', 'to']
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from shiftgrid.envs.language import UNK, VOCAB, tokenize

_INDEX = {w: i for i, w in enumerate(VOCAB)}


def encode(text: str, max_len: int, vocab_index: dict[str, int] = _INDEX) -> np.ndarray:
    """Token ids of ``text``, padded with 0 (``<pad>``) or cut to ``max_len``; unknown words map to 1."""
    ids = [vocab_index.get(w, vocab_index[UNK]) for w in tokenize(text.lower())][:max_len]
    out = np.zeros(max_len, dtype=np.int64)
    out[: len(ids)] = ids
    return out


def decode(ids: Sequence[int], vocab: Sequence[str] = VOCAB) -> list[str]:
    """Words of a token-id array, padding dropped."""
    return [vocab[int(i)] for i in ids if int(i) != 0]


class MissionTokens(gym.ObservationWrapper):
    """Replace text observation keys (``mission``, and ``advice`` when present) by token-id arrays.

    Args:
        env: an environment with a Dict observation space holding text under ``keys``.
        max_len: tokens kept per text (missions longer than this are cut; 32 covers the built-in grammar).
        keys: which observation keys hold text.
    """

    def __init__(self, env: gym.Env, max_len: int = 32, keys: Sequence[str] = ("mission", "advice")):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(f"MissionTokens needs a Dict observation space, got {env.observation_space}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.max_len = max_len
        self.keys = tuple(k for k in keys if k in env.observation_space.spaces)
        if not self.keys:
            raise ValueError(f"none of {list(keys)} in the observation space {list(env.observation_space.spaces)}")
        token_space = spaces.Box(0, len(VOCAB) - 1, shape=(max_len,), dtype=np.int64)
        self.observation_space = spaces.Dict(
            {k: (token_space if k in self.keys else s) for k, s in env.observation_space.spaces.items()}
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        out = dict(observation)
        for k in self.keys:
            out[k] = encode(str(observation[k]), self.max_len)
        return out


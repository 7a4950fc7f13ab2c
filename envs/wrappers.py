"""Learner-facing observation wrappers: missions and a teacher's advice as fixed-length token ids.

Works on shiftgrid, minigrid and BabyAI environments, in gymnasium's sync and async vector
envs and in stable-baselines3 vec envs (every output space is a ``Box``).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = MissionTokens(gym.make("shiftgrid/GoTo-v1"))
    >>> obs, _ = env.reset(seed=0)
    >>> obs["mission"].shape, obs["mission"].dtype
    ((40,), dtype('int64'))
    >>> decode(obs["mission"])[:2]
    ['go', 'to']
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from shiftgrid.envs.errors import UserInputError
from shiftgrid.envs.families.goto import PHRASES
from shiftgrid.envs.families.sequence import SequenceFactors
from shiftgrid.envs.language import MISSION_VOCAB_SIZE, UNK, VOCAB, describe, tokenize

_INDEX = {w: i for i, w in enumerate(VOCAB)}


def grammar_max_tokens() -> int:
    """Tokens in the longest mission a built-in family can say: Sequence's longest.

    Sequence's missions have up to ``num_clauses`` (its declared maximum) clauses, each a verb
    phrase of at most two words ("pick up") and a description ("the purple ball"), each joined
    to the next by ", then" (two tokens; " and " is one). Every other family's mission is one
    clause (PutNext's "put the red ball next to the blue key", 9 tokens) or "open the red door,
    then get to the goal" (10).

    Example:
        >>> grammar_max_tokens()
        40
    """
    clauses = SequenceFactors.field_of("num_clauses").metadata["high"]
    clause = max(len(tokenize(p)) for p in PHRASES.values()) + len(tokenize(describe("red", "ball")))
    return clauses * clause + (clauses - 1) * len(tokenize(", then"))


#: Default token length of :class:`MissionTokens`: every built-in mission fits.
DEFAULT_MAX_LEN = grammar_max_tokens()


class MissionTooLong(UserInputError, ValueError):
    """A text with more tokens than the encoding keeps."""


def encode(text: str, max_len: int, vocab_index: dict[str, int] = _INDEX) -> np.ndarray:
    """Token ids of ``text``, padded with 0 (``<pad>``); unknown words map to 1.

    Raises :class:`MissionTooLong` when ``text`` has more than ``max_len`` tokens (never cuts).
    """
    words = tokenize(text.lower())
    if len(words) > max_len:
        raise MissionTooLong(
            f"{text!r} has {len(words)} tokens but the encoding keeps {max_len}; pass a larger max_len "
            f"(MissionTokens(env, max_len=...); the built-in missions need {DEFAULT_MAX_LEN})")
    ids = [vocab_index.get(w, vocab_index[UNK]) for w in words]
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
        max_len: tokens per text; default :data:`DEFAULT_MAX_LEN` (the longest built-in mission).
            A longer text raises :class:`MissionTooLong` (texts are never cut).
        keys: which observation keys hold text.
    """

    def __init__(self, env: gym.Env, max_len: int = DEFAULT_MAX_LEN, keys: Sequence[str] = ("mission", "advice")):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(f"MissionTokens needs a Dict observation space, got {env.observation_space}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.max_len = max_len
        self.keys = tuple(k for k in keys if k in env.observation_space.spaces)
        if not self.keys:
            raise ValueError(f"none of {list(keys)} in the observation space {list(env.observation_space.spaces)}")
        # Advice words get ids only where advice is spoken; a missions-only space keeps the grammar's ids.
        self.vocab_size = len(VOCAB) if "advice" in self.keys else MISSION_VOCAB_SIZE
        token_space = spaces.Box(0, self.vocab_size - 1, shape=(max_len,), dtype=np.int64)
        self.observation_space = spaces.Dict(
            {k: (token_space if k in self.keys else s) for k, s in env.observation_space.spaces.items()}
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        out = dict(observation)
        for k in self.keys:
            ids = encode(str(observation[k]), self.max_len)
            ids[ids >= self.vocab_size] = _INDEX[UNK]  # an advice word in a missions-only space is unknown
            out[k] = ids
        return out


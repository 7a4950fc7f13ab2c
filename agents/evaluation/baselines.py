"""Reference agents with the SB3 ``predict`` signature, to check the evaluation pipeline and to bound results.

There is deliberately no "oracle agent" here: following the optimal plan needs the true
environment state, which ``predict(obs, ...)`` does not receive. The oracle's figures are in
every episode's ``info`` instead (``optimal_return``, ``optimal_steps``), so evaluation reports
optimality ratio and exact regret against it. The references here are honest lower bounds:

- :class:`RandomAgent` — uniform random actions (the usual chance level).
- :class:`ScriptedAgent` — a fixed action sequence replayed from each episode start, open loop.
  Given the oracle's plan of a known level it reaches the goal optimally, which makes it a
  check that an evaluator passes ``state`` and ``episode_start`` correctly.

Example:
    >>> from gymnasium import spaces
    >>> agent = RandomAgent(spaces.Discrete(7), seed=0)
    >>> actions, state = agent.predict({"image": np.zeros((4, 7, 7, 3))})
    >>> actions.shape, state
    ((4,), None)
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces


def batch_size(observation: np.ndarray | dict[str, np.ndarray]) -> int:
    """Number of environments in a batched observation (an array, or a dict of arrays)."""
    first = next(iter(observation.values())) if isinstance(observation, dict) else observation
    return len(first)


class RandomAgent:
    """Uniform random actions: the chance-level reference.

    Args:
        action_space: the environment's action space (any gymnasium space).
        seed: seed of the agent's own random generator (it ignores ``deterministic``:
            a random policy has no mode to act on).

    Example:
        >>> agent = RandomAgent(spaces.Discrete(3), seed=1)
        >>> a, _ = agent.predict(np.zeros((5, 2)))
        >>> a.shape, bool(((a >= 0) & (a < 3)).all())
        ((5,), True)
    """

    def __init__(self, action_space: spaces.Space, seed: int | None = None):
        self.action_space = copy.deepcopy(action_space)  # seeding must not touch the env's own space
        self.action_space.seed(seed)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """One uniformly random action per environment in the batch; no state."""
        n = batch_size(observation)
        return np.array([self.action_space.sample() for _ in range(n)]), None


class ScriptedAgent:
    """Replay ``actions`` from every episode start, ignoring observations (open loop).

    Its recurrent state is the per-environment position in the script, reset where
    ``episode_start`` is true, exactly as a recurrent SB3 policy resets its memory. Past the
    end of the script it repeats ``fallback``.

    Args:
        actions: the action sequence (e.g. ``env.unwrapped.optimal_actions`` of a known level).
        fallback: action taken once the script is exhausted (6 = minigrid's ``done``).

    Example:
        >>> agent = ScriptedAgent([2, 1, 0])
        >>> obs = np.zeros((2, 1))
        >>> a, s = agent.predict(obs, None, np.array([True, True]))
        >>> a, s = agent.predict(obs, s, np.array([False, True]))
        >>> a.tolist(), s.tolist()
        ([1, 2], [2, 1])
    """

    def __init__(self, actions: Sequence[int], fallback: int = 6):
        self.actions = np.asarray(list(actions), dtype=np.int64)
        self.fallback = int(fallback)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next scripted action per environment, and the advanced script positions."""
        n = batch_size(observation)
        t = np.zeros(n, dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).copy()
        if episode_start is not None:
            t[np.asarray(episode_start, dtype=bool)] = 0
        padded = np.append(self.actions, self.fallback)
        return padded[np.minimum(t, len(self.actions))], t + 1

"""Episode returns and lengths of a batch of environments, whatever their auto-reset convention.

Every loop that steps several environments side by side and reports finished episodes (training
collection, evaluation, recording) counts them with :class:`EpisodeCounter`, so the rule for
where an episode ends, and which steps belong to it, is written once. Under gymnasium's
``next_step`` auto-reset the step after an episode's end only resets that environment: its action
is ignored and it belongs to no episode. Under ``same_step`` auto-reset (SB3's ``VecEnv``, or
environments reset by hand) every step belongs to an episode.

Example:
    >>> import numpy as np
    >>> counter = EpisodeCounter(2, next_step_reset=True)
    >>> counter.step(np.array([0.0, 0.0]), np.array([False, False]), np.array([False, False])).tolist()
    []
    >>> ended = counter.step(np.array([0.9, 0.0]), np.array([True, False]), np.array([False, False]))
    >>> ended.tolist(), counter.ended_returns[ended].tolist(), counter.ended_lengths[ended].tolist()
    ([0], [0.9], [2])
    >>> counter.step(np.array([0.0, 0.0]), np.array([False, False]), np.array([False, False])).tolist(), counter.lengths.tolist()
    ([], [0, 3])
"""

from __future__ import annotations

import numpy as np


class EpisodeCounter:
    """Return and length of the episode each of ``n`` environments is in, and of the ones that just ended.

    Args:
        n: environments stepped side by side.
        next_step_reset: gymnasium's ``next_step`` auto-reset (the step after an end is a reset, in no episode).
    """

    def __init__(self, n: int, *, next_step_reset: bool = False):
        self.next_step_reset = next_step_reset
        self.returns = np.zeros(n)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.ended_returns = np.zeros(n)
        self.ended_lengths = np.zeros(n, dtype=np.int64)
        self._resetting = np.zeros(n, dtype=bool)

    def step(self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
             active: np.ndarray | None = None) -> np.ndarray:
        """Count one step of every (``active``) environment; the indices of those whose episode ended at it.

        The ended episodes' return and length are in :attr:`ended_returns` and :attr:`ended_lengths`
        at those indices; their counters restart at 0.
        """
        live = ~self._resetting if self.next_step_reset else np.ones_like(self._resetting)
        if active is not None:
            live = live & active
        self.returns[live] += reward[live]
        self.lengths[live] += 1
        done = live & (np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        ended = np.flatnonzero(done)
        self.ended_returns[ended], self.ended_lengths[ended] = self.returns[ended], self.lengths[ended]
        self.returns[ended], self.lengths[ended] = 0.0, 0
        self._resetting = done
        return ended

"""The sub-environment side of a curriculum: every reset plays the level its teacher assigned, or fails.

A :class:`CurriculumEnv` holds a queue of level choices that its teacher (in the main process)
assigns ahead of time with :meth:`CurriculumEnv.assign_levels`, a mapping of sub-env index to
choice, broadcast to every sub-env (each takes its own: this works through ``env_method`` of
SB3's vector envs and ``call`` of gymnasium's, in this process or in a subprocess). Each
``reset`` pops one choice and passes its seed as ``options={"level_seed": ...}``; a reset with an
empty queue raises :class:`~shiftgrid.envs.teacher.curriculum.levels.CurriculumError`. So no
reset, auto-resets included, can play a level the teacher did not choose: it either plays the
teacher's level or stops the run.

``info`` of every step and reset carries ``curriculum_choice`` (the index of the choice being
played, counted per sub-env from 0), ``curriculum_requested`` (the level seed it asked for),
``curriculum_replayed`` and ``curriculum_reset`` (True in a
reset's info); the step that ends an episode adds ``curriculum_return`` and ``curriculum_length``.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = CurriculumEnv(gym.make("shiftgrid/GoTo-v1"), index=0)
    >>> env.assign_levels({0: (12345, True)})
    >>> _, info = env.reset()
    >>> info["level_seed"] >= 12345, info["curriculum_replayed"], info["curriculum_choice"]
    (True, True, 0)
    >>> try:
    ...     env.reset()
    ... except CurriculumError as e:
    ...     print(str(e)[:42])
    sub-env 0 was reset with no level assigned
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping, SupportsFloat

import gymnasium as gym

from shiftgrid.envs.teacher.curriculum.levels import CurriculumError


class CurriculumEnv(gym.Wrapper):
    """Play the teacher's levels, in order (see the module docstring); ``index``: this sub-env's place in its vector env."""

    def __init__(self, env: gym.Env, index: int):
        super().__init__(env)
        self.index = int(index)
        self.pending: deque[tuple[int, bool]] = deque()
        self.resets = 0
        self._requested, self._replayed, self._ret, self._len = -1, False, 0.0, 0

    def assign_levels(self, choices: Mapping[int, tuple[int, bool]]) -> None:
        """Queue ``choices[self.index]`` (a ``(level_seed, replayed)`` pair), if there is one for this sub-env."""
        if self.index in choices:
            seed, replayed = choices[self.index]
            self.pending.append((int(seed), bool(replayed)))

    def pending_levels(self) -> int:
        """Choices queued and not yet played."""
        return len(self.pending)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if not self.pending:
            raise CurriculumError(f"sub-env {self.index} was reset with no level assigned by its teacher (after "
                                  f"{self.resets} resets): every reset must play a level the curriculum chose")
        self._requested, self._replayed = self.pending.popleft()
        obs, info = self.env.reset(seed=seed, options={**(options or {}), "level_seed": self._requested})
        self.resets += 1
        self._ret, self._len = 0.0, 0
        return obs, {**info, **self._tags(), "curriculum_reset": True}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        info = {**info, **self._tags(), "curriculum_reset": False}
        if terminated or truncated:
            info["curriculum_return"], info["curriculum_length"] = self._ret, self._len
        return obs, reward, terminated, truncated, info

    def _tags(self) -> dict[str, Any]:
        return {"curriculum_choice": self.resets - 1, "curriculum_requested": self._requested,
                "curriculum_replayed": self._replayed}

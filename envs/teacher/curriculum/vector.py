"""Curricula on gymnasium's vector envs (``SyncVectorEnv``, ``AsyncVectorEnv``; next-step auto-reset).

:func:`curriculum_vector_env` builds the vector env from a maker of one env, each sub-env a
:class:`~shiftgrid.envs.teacher.curriculum.wrapper.CurriculumEnv` that knows its index, and wraps
it in :class:`CurriculumVectorEnv`, which drives the teacher (:class:`~shiftgrid.envs.teacher.curriculum.driver.CurriculumDriver`)
from every ``reset`` and ``step``. (SB3's vector envs have their own wrapper in
``shiftgrid.agents.training.curriculum``, around the same driver.)

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.teacher.curriculum import LevelSpace, make_curriculum
    >>> teacher = make_curriculum("uniform", LevelSpace.of_env(gym.make("shiftgrid/GoTo-v1")), seed=0)
    >>> envs = curriculum_vector_env(lambda: gym.make("shiftgrid/GoTo-v1"), 2, teacher)
    >>> _, infos = envs.reset(seed=0)
    >>> envs.driver.choices, bool(infos["curriculum_reset"].all())
    (4, True)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorWrapper

from shiftgrid.envs.teacher.curriculum.base import Curriculum
from shiftgrid.envs.teacher.curriculum.driver import CurriculumDriver
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError
from shiftgrid.envs.teacher.curriculum.log import LevelLog
from shiftgrid.envs.teacher.curriculum.wrapper import CurriculumEnv

KINDS = ("sync", "async")


def sub_info(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s entries of a gymnasium vector info (those its ``_key`` mask marks present).

    Example:
        >>> sub_info({"a": np.array([1, 2]), "_a": np.array([False, True])}, 1)
        {'a': 2}
    """
    out = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not mask[i]:
            continue
        v = sub_info(value, i) if isinstance(value, Mapping) else value[i]
        out[key] = v.item() if isinstance(v, np.generic) else v
    return out


def _indexed(make: Callable[[], gym.Env], index: int) -> CurriculumEnv:
    return CurriculumEnv(make(), index)


class CurriculumVectorEnv(VectorWrapper):
    """A gymnasium vector env of :class:`CurriculumEnv` sub-envs whose every reset plays its teacher's level."""

    def __init__(self, env: gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv, teacher: Curriculum,
                 log: LevelLog | None = None):
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise CurriculumError(f"curricula support gymnasium's next-step auto-reset; this vector env uses {mode}")
        self.driver = CurriculumDriver(teacher, env.num_envs, lambda batch: env.call("assign_levels", batch), log)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        out: dict[str, Any] = {}

        def reset() -> tuple[Any, list[dict[str, Any]]]:
            out["obs"], out["infos"] = self.env.reset(seed=seed, options=options)
            return out["obs"], [sub_info(out["infos"], i) for i in range(self.num_envs)]

        self.driver.reset_all(reset)
        return out["obs"], out["infos"]

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        events = []
        for i in range(self.num_envs):  # next-step auto-reset: a reset shows in the step after an episode's end
            info = sub_info(infos, i)
            if info.get("curriculum_reset"):
                events.append((i, info, True))
            elif terminated[i] or truncated[i]:
                events.append((i, info, False))
        self.driver.after_step(events)
        return obs, rewards, terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        self.driver.close()
        super().close(**kwargs)


def curriculum_vector_env(make: Callable[[], gym.Env], n_envs: int, teacher: Curriculum, kind: str = "sync",
                          log: LevelLog | None = None) -> CurriculumVectorEnv:
    """``n_envs`` copies of ``make()`` in a gymnasium ``kind`` (``sync`` or ``async``) vector env, driven by ``teacher``."""
    if kind not in KINDS:
        raise CurriculumError(f"unknown vector env kind {kind!r}; valid: {', '.join(KINDS)}")
    fns = [functools.partial(_indexed, make, i) for i in range(n_envs)]
    vec = gym.vector.SyncVectorEnv(fns) if kind == "sync" else gym.vector.AsyncVectorEnv(fns)
    return CurriculumVectorEnv(vec, teacher, log)

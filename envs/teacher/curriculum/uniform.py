"""``uniform``: domain randomisation over the training split (the baseline every curriculum is measured against).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.teacher.curriculum.levels import LevelSpace
    >>> teacher = Uniform(LevelSpace.of_env(gym.make("shiftgrid/GoTo-v1")), seed=0)
    >>> teacher.tier.label, teacher.choose(0).replayed
    ('outcomes', False)
"""

from __future__ import annotations

from shiftgrid.envs.teacher.curriculum.base import Curriculum, LevelChoice
from shiftgrid.envs.teacher.knowledge import Tier


class Uniform(Curriculum):
    """Every reset plays a new level drawn uniformly from the training split's seed range."""

    tier = Tier.OUTCOMES

    def next_level(self, sub_env: int) -> LevelChoice:
        return self.new_level()

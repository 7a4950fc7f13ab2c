"""A learner whose every training episode is a function of the global step: it proves what a resume keeps.

Episodes last :data:`LENGTH` steps, counted from the run's first step, and whether episode ``k``
succeeds follows a fixed pseudo-random ramp (rarely at first, mostly later), so one run and the
same run interrupted anywhere and resumed report exactly the same episodes. It acts by always
moving forward (evaluation then plays real, identical episodes). Its state is its step count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shiftgrid.agents.run.services import Episode, RunServices

LENGTH = 7  # steps per training episode
UPDATE_EVERY = 50  # steps between updates (and TensorBoard writes)


def succeeds(k: int) -> bool:
    """Whether episode ``k`` succeeds: about ``k / 200`` of them around episode ``k``."""
    return (k * 37) % 100 < k / 2


class ScriptedLearner:
    def __init__(self, config: Any, *, training: bool):
        self.num_timesteps = 0

    def learn(self, steps: int, run: RunServices) -> None:
        for _ in range(steps):
            self.num_timesteps += 1
            episodes = []
            if self.num_timesteps % LENGTH == 0:
                k = self.num_timesteps // LENGTH
                episodes = [Episode(succeeds(k), float(succeeds(k)), LENGTH, advised=k % 10 == 3)]
            if not run.on_step(self.num_timesteps, episodes):
                return
            if self.num_timesteps % UPDATE_EVERY == 0 and not run.on_update(self.num_timesteps, {"train/step": float(self.num_timesteps)}):
                return

    def state_dict(self) -> dict[str, Any]:
        return {"num_timesteps": self.num_timesteps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_timesteps = int(state["num_timesteps"])

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return np.full(len(observation["direction"]), 2), None

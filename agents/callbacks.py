"""The SB3 side of the run services: one thin callback that reports to :class:`~shiftgrid.agents.services.RunServices`.

SB3 calls ``_on_rollout_start`` right after a model update, so that is where the services may
checkpoint and evaluate (a saved or evaluated model has consumed every step it has counted);
each ``_on_step`` passes the finished episodes of the vector env on, and stops ``learn`` when
the services say so.

Example:
    >>> from stable_baselines3.common.callbacks import BaseCallback
    >>> issubclass(ServicesCallback, BaseCallback)
    True
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from shiftgrid.agents.services import Episode, RunServices


def finished_episodes(infos: list[dict[str, Any]], dones: Any) -> list[Episode]:
    """The episodes that ended at this step of an SB3 vector env (``Monitor`` puts return and length in ``info``)."""
    out = []
    for info, done in zip(infos, dones):
        if done:
            ep = info.get("episode") or {}
            out.append(Episode(bool(info.get("is_success", False)), float(ep.get("r", 0.0)), int(ep.get("l", 0))))
    return out


class ServicesCallback(BaseCallback):
    """Report an SB3 ``learn`` to the run services; ``rollout_start`` is the step count of the last update."""

    def __init__(self, run: RunServices):
        super().__init__()
        self.run = run
        self.rollout_start = 0

    def _on_training_start(self) -> None:
        self.rollout_start = self.num_timesteps

    def _on_rollout_start(self) -> None:
        self.rollout_start = self.num_timesteps
        metrics = {k: v for k, v in self.logger.name_to_value.items() if k.startswith("train/") and isinstance(v, (int, float))}
        self.run.on_update(self.num_timesteps, metrics, log=False)

    def _on_step(self) -> bool:
        return self.run.on_step(self.num_timesteps, finished_episodes(self.locals["infos"], self.locals["dones"]))

    def _on_rollout_end(self) -> None:
        self.logger.record("time/sps", int(self.run.sps()))

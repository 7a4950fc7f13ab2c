"""The SB3 side of the run services: one thin callback that reports to :class:`~shiftgrid.agents.run.services.RunServices`.

SB3 calls ``_on_rollout_start`` right after a model update, so that is where the services may
checkpoint and evaluate (a saved or evaluated model has consumed every step it has counted);
each ``_on_step`` passes the finished episodes of the vector env on, and stops ``learn`` when
the services say so.

Teachers inside the environments (advice) are served generically: the per-step costs they
put in ``info["teacher_cost"]`` are summed into running totals for
:meth:`~shiftgrid.agents.run.services.RunServices.teacher_cost` (continued from ``teacher/cost.json``
on resume), and sub-environments that fade their teacher out (``set_training_step``) are told
the global step at every rollout. A vector env that counts the distinct levels it drew (the
tensor engine's ``distinct_levels``) has the count logged as ``rollout/distinct_levels``. The run's extensions' scalars are recorded before each write.

Example:
    >>> from stable_baselines3.common.callbacks import BaseCallback
    >>> issubclass(ServicesCallback, BaseCallback)
    True
"""

from __future__ import annotations

import copy
import json
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from shiftgrid.agents.run.services import TEACHER_COST_FILE, Episode, RunServices
from shiftgrid.envs.teacher.cost import COST_KEY, add_costs


def finished_episodes(infos: list[dict[str, Any]], dones: Any) -> list[Episode]:
    """The episodes that ended at this step of an SB3 vector env (``Monitor`` puts return and length in ``info``).

    An episode in which the teacher spoke (``info["advice_utterances"]``) is marked ``advised``.
    """
    out = []
    for info, done in zip(infos, dones):
        if done:
            ep = info.get("episode") or {}
            out.append(Episode(bool(info.get("is_success", False)), float(ep.get("r", 0.0)), int(ep.get("l", 0)),
                               advised=info.get("advice_utterances", 0) > 0))
    return out


class ServicesCallback(BaseCallback):
    """Report an SB3 ``learn`` to the run services.

    ``rollout_start`` is the step count of the last update and ``buffers_at_start`` SB3's episode
    buffers then (what a rollout cut short goes back to).
    """

    def __init__(self, run: RunServices):
        super().__init__()
        self.run = run
        self.rollout_start = 0
        self.buffers_at_start: tuple[Any, Any] | None = None

    def _on_training_start(self) -> None:
        self.rollout_start = self.num_timesteps
        self.cost = dict(self.run.state.teacher)
        saved = self.run.run_dir.teacher / TEACHER_COST_FILE
        if self.num_timesteps and saved.is_file():  # a resumed run continues its totals
            self.cost = {**{k: float(v) for k, v in json.loads(saved.read_text()).items()}, **self.cost}
            self.run.teacher_cost(**self.cost)  # reported once: a total that no longer grows is kept all the same
        self.clock = self.training_env.has_attr("set_training_step")
        self.levels = self.training_env.has_attr("distinct_levels")  # the tensor engine counts the levels it drew

    def _on_rollout_start(self) -> None:
        if self.clock:
            self.training_env.env_method("set_training_step", self.num_timesteps)
        metrics = {k: v for k, v in self.logger.name_to_value.items() if k.startswith("train/") and isinstance(v, (int, float))}
        self.run.on_update(self.num_timesteps, metrics, log=False)
        self.rollout_start = self.model.num_timesteps  # after the services: steps an extension took there are counted
        self.buffers_at_start = (copy.copy(self.model.ep_info_buffer), copy.copy(self.model.ep_success_buffer))

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        if any(COST_KEY in info for info in infos):
            cost = add_costs(self.cost, infos)
            self.run.teacher_cost(**{k: v for k, v in cost.items() if v != self.cost.get(k)})  # others are others' to report
            self.cost = cost
        return self.run.on_step(self.num_timesteps, finished_episodes(infos, self.locals["dones"]))

    def _on_rollout_end(self) -> None:
        self.logger.record("time/sps", int(self.run.sps()))
        self.logger.record("rollout/episodes", self.run.episodes)
        if self.levels:
            self.logger.record("rollout/distinct_levels", self.training_env.env_method("distinct_levels", indices=[0])[0])
        self.run.record_extensions()

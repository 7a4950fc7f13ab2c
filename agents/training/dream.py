"""Dreams as training envs: ``shiftgrid train --dream RUN`` trains a learner inside a run's world model.

Example:
    >>> env = dream_vec_env("runs/wm-rssm-goto/seed=0", "shiftgrid/GoTo-v1", "train", 8)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Mapping

from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from shiftgrid.agents.run.world_model import load_run_world_model
from shiftgrid.world_models.dream_env import DreamSB3VecEnv, DreamVecEnv, RealStarts
from shiftgrid.world_models.interface import ObsSpec


def dream_vec_env(run_dir: str, env_id: str, split: str | None, num_envs: int, *, seed: int = 0,
                  device: str = "auto", env_kwargs: Mapping[str, Any] | None = None, sample: bool = True) -> VecEnv:
    """The SB3 training env of ``shiftgrid train --dream RUN``: the world model of run ``run_dir`` (a
    ``shiftgrid wm train`` run or a Dreamer run, its ``latest`` checkpoint) dreaming ``num_envs``
    episodes from real starts of ``env_id`` / ``split``, monitored (episode returns, success).

    Raises:
        CheckpointError: ``run_dir`` holds no world model, or one of another environment or observation spec.
    """
    starts = RealStarts(env_id, split, env_kwargs, seed=seed)
    spec = ObsSpec.from_spaces(starts.observation_space, starts.action_space)
    model = load_run_world_model(run_dir, device, env=env_id, spec=spec).model
    return VecMonitor(DreamSB3VecEnv(DreamVecEnv(model, starts, num_envs, sample=sample, seed=seed)))

"""The training vector env of a config: real levels, levels a curriculum teacher chooses, or a dream.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> env = make_vec(TrainConfig(algo="ppo", n_envs=2, device="cpu"))
    >>> env.num_envs
    2
"""

from __future__ import annotations

import functools

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.training.curriculum import curriculum_vec
from shiftgrid.agents.training.dream import dream_vec_env
from shiftgrid.agents.training.tensor_vec import tensor_vec
from shiftgrid.envs.learner_env import make_env


def make_vec(config: TrainConfig, n_envs: int | None = None, seed: int | None = None) -> VecEnv:
    """The training vector env: ``n_envs`` (default ``config.n_envs``) monitored copies of ``config.env``.

    Environment ``i`` is first reset with ``seed + i`` (default ``config.seed``). With ``config.dream``
    they are dreams of that run's world model (:mod:`shiftgrid.agents.training.dream`); with
    ``config.teacher.name`` a curriculum teacher chooses every level (:mod:`shiftgrid.agents.training.curriculum`);
    with ``config.vec_env == "tensor"`` the envs are one batch of the tensor engine (:mod:`shiftgrid.agents.training.tensor_vec`).
    """
    if config.dream is not None:
        return dream_vec_env(config.dream, config.env, config.split, n_envs or config.n_envs,
                             seed=config.seed if seed is None else seed, device=config.device, env_kwargs=config.env_kwargs)
    if config.vec_env == "tensor":
        return tensor_vec(config, n_envs, seed)
    if config.teacher.name is not None:
        return curriculum_vec(config, n_envs, seed)
    env_fn = functools.partial(make_env, config.env, config.split, advice=config.advice, **config.env_kwargs)
    env_fn().close()  # raise unknown id / split / factor errors here, not inside a subprocess
    vec_cls = SubprocVecEnv if config.vec_env == "subproc" else DummyVecEnv
    return make_vec_env(env_fn, n_envs=n_envs or config.n_envs, seed=config.seed if seed is None else seed, vec_env_cls=vec_cls)

"""The tensor engine as an SB3 ``VecEnv`` (NumPy in and out), so every SB3 learner can train on it.

:class:`TensorVecEnv` wraps a :class:`~shiftgrid.envs.engine.vector.TensorVectorEnv` (the whole batch
is one engine step, on the CPU or CUDA) in stable-baselines3's conventions: observations are the
``make_env`` observations of the same id (``image``, ``direction``, ``mission`` token ids; the
same spaces, so a policy trained here is evaluated in the minigrid env); an env whose episode
ended is reset in the same step, its last observation in ``info["terminal_observation"]`` and
``info["TimeLimit.truncated"]`` set on truncation; ``info["is_success"]`` (and ``success``,
``level_seed``, ``level_hash``, ``optimal_return``) at the end of each episode. ``seed(s)`` then
``reset()`` starts env ``i`` on the level ``gym.make(id, split=...).reset(seed=s + i)`` starts,
as SB3's ``DummyVecEnv`` of ``make_env`` does. :func:`tensor_vec` builds the monitored training
env of a config (``vec_env: tensor``, ``shiftgrid train --vec-env tensor``).

Example:
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> from shiftgrid.envs import make_tensor_vec
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
    >>> venv = TensorVecEnv(make_tensor_vec("shiftgrid/GoTo-v1", 4, bank=bank))
    >>> _ = venv.seed(0); obs = venv.reset()
    >>> obs["image"].shape, obs["mission"].dtype
    ((4, 7, 7, 3), dtype('int64'))
    >>> obs, rewards, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.errors import ConfigError
from shiftgrid.envs import make_tensor_vec
from shiftgrid.envs.engine.levels import int_to_hash
from shiftgrid.envs.engine.errors import EngineError
from shiftgrid.envs.engine.vector import TensorVectorEnv, fit_tokens
from shiftgrid.envs.learner_env import env_spaces

#: The engine's options a config may set (``engine:``): bank size, bank-building processes, device, ``torch.compile``.
ENGINE_OPTIONS = ("bank_size", "workers", "device", "compile")
#: Per-episode figures copied into the info of an env whose episode ended.
END_INFO = ("level_seed", "optimal_steps", "optimal_return", "optimal_exact")


class TensorVecEnv(VecEnv):
    """An engine batch as an SB3 ``VecEnv`` (see the module docstring).

    Args:
        venv: the engine's gymnasium vector env.
        observation_space: the per-env space to produce (default: the engine's; :func:`tensor_vec`
            passes ``make_env``'s, which it checks the engine's matches).
    """

    def __init__(self, venv: TensorVectorEnv, observation_space: gym.spaces.Dict | None = None):
        space = observation_space or venv.single_observation_space
        assert isinstance(space, gym.spaces.Dict)
        self.venv, self.engine = venv, venv.engine
        super().__init__(venv.num_envs, space, venv.single_action_space)
        mission = space.spaces.get("mission")
        self.tokens = int(mission.shape[0]) if mission is not None and mission.shape else 0
        self._actions: torch.Tensor | None = None

    # -- observations ---------------------------------------------------------------------------
    def _numpy(self, obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        out = {"image": obs["image"].cpu().numpy(), "direction": obs["direction"].cpu().numpy().astype(np.int64)}
        if self.tokens:
            try:
                out["mission"] = fit_tokens(obs["mission"].cpu().numpy().astype(np.int64), self.tokens, self.venv.env_id)
            except EngineError as e:
                raise ConfigError(str(e)) from None
        return out

    # -- VecEnv ---------------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        """Start every env: on ``reset(seed=s + i)``'s level after ``seed(s)``, else on levels drawn from the bank."""
        seeds = [int(s) for s in self._seeds if s is not None]
        if len(seeds) == self.num_envs:
            rows = self.venv.rows_for_seeds(seeds)
            obs, _ = self.venv.reset(seed=seeds[0], options={"levels": torch.tensor(rows, device=self.venv.device)})
        else:
            obs, _ = self.venv.reset()
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self.engine.check_actions(np.asarray(actions).reshape(self.num_envs))

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        obs, reward, terminated, truncated, info = self.engine.step(self._actions, autoreset=False, check=False)
        self._actions = None
        ended = terminated | truncated
        dones = ended.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            last = self._numpy(obs)
            cut = (truncated & ~terminated).cpu().numpy()
            success = info["success"].cpu().numpy()
            figures = {k: info[k].cpu().numpy() for k in END_INFO}
            hashes = info["level_hash"].cpu().numpy()
            for i in np.flatnonzero(dones):
                infos[i] = {"terminal_observation": {k: v[i] for k, v in last.items()}, "TimeLimit.truncated": bool(cut[i]),
                            "success": bool(success[i]), "is_success": bool(success[i]),
                            "level_hash": int_to_hash(int(hashes[i])), **{k: v[i].item() for k, v in figures.items()}}
            obs = self.engine.reset_where(ended)
        return self._numpy(obs), reward.cpu().numpy().astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self.venv.frame(i) for i in range(self.num_envs)]

    # attributes and methods are the engine's, one object for the whole batch
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)  # AttributeError when absent (SB3's has_attr reads it so)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        method = getattr(self.venv, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]


def check_tensor_config(config: TrainConfig) -> None:
    """Refuse, in one line, what the engine cannot train with: advice, a curriculum teacher, a dream."""
    for what, on in (("advice", config.advice.enabled), ("a curriculum teacher", config.teacher.name is not None),
                     ("dream", config.dream is not None)):
        if on:
            raise ConfigError(f"vec_env='tensor' trains on the tensor engine, which has no {what} yet; "
                              "use vec_env='dummy' or 'subproc' for it")


def tensor_vec(config: TrainConfig, n_envs: int | None = None, seed: int | None = None) -> VecEnv:
    """The monitored training vector env of ``config`` on the tensor engine (``vec_env: tensor``).

    ``config.env_kwargs`` are factor values, as for ``make_env``; ``config.engine`` the engine's
    options (:data:`ENGINE_OPTIONS`): the bank of the split is built (and cached) on first use.
    """
    check_tensor_config(config)
    unknown = sorted(set(config.engine) - set(ENGINE_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown engine options {unknown}; valid: {', '.join(ENGINE_OPTIONS)}")
    space, _ = env_spaces(config.env, config.split, **config.env_kwargs)
    venv = make_tensor_vec(config.env, n_envs or config.n_envs, split=config.split or "train", **config.env_kwargs,
                           **config.engine)
    engine_space = venv.single_observation_space
    assert isinstance(space, gym.spaces.Dict)
    for key, sub in space.spaces.items():
        if key not in engine_space.spaces or (key != "mission" and sub != engine_space[key]):
            raise ConfigError(f"the learner's observation {key!r} is {sub}; the tensor engine gives "
                              f"{engine_space.spaces.get(key)}; use vec_env='dummy'")
    env = TensorVecEnv(venv, space)
    env.seed(config.seed if seed is None else seed)
    return VecMonitor(env)

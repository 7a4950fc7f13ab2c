"""A trained world model as a batched vector environment ("dream") that any learner can train in.

:class:`DreamVecEnv` is a gymnasium :class:`~gymnasium.vector.VectorEnv` on the model's device.
A sub-env's episode starts from a **real first observation** (from a :class:`RealStarts`, which
resets the real environment, or a :class:`ReplayStarts`, which draws first steps kept in a
replay): the model filters it into its state and the learner sees that real observation. Each
``step`` rolls the model one step under the batch of actions
(:meth:`~shiftgrid.world_models.interface.WorldModel.imagine`) and reads its heads: the next
observation is decoded (``sample=True``: drawn from the per-cell categoricals; else the most
likely frame of the state; the model's latents are drawn either way, all from the env's seeded
generator, so a seeded reset repeats exactly), mission (and advice) tokens are carried from the real reset, the reward is
the reward head's mean, the episode terminates where the continuation probability falls below
0.5, and is truncated after the start's ``max_steps``. ``info["success"]`` is BabyAI's rule
(terminated with a positive reward). Auto-reset is gymnasium's default next-step mode: the step
after a done one returns a fresh start and ignores its action. :class:`DreamSB3VecEnv` adapts it
to stable-baselines3's ``VecEnv`` (same-step reset, ``terminal_observation`` in ``info``).

Example:
    >>> from shiftgrid.world_models.models import build_model
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> starts = RealStarts("MiniGrid-Empty-5x5-v0", seed=0)
    >>> model = build_model("rssm", "tiny", ObsSpec.from_spaces(starts.observation_space, starts.action_space))
    >>> env = DreamVecEnv(model, starts, num_envs=3, seed=0)
    >>> obs, info = env.reset(seed=0)
    >>> obs["image"].shape, env.observation_space.contains(obs)
    ((3, 7, 7, 3), True)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> reward.shape, terminated.dtype, env.observation_space.contains(obs)
    ((3,), dtype('bool'), True)
"""

from __future__ import annotations

from typing import Any, Mapping, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env import VecEnv

from shiftgrid.envs.errors import UserInputError
from shiftgrid.world_models.interface import LatentState, WorldModel
from shiftgrid.world_models.replay import TOKEN_KEYS, SequenceReplay


class DreamError(UserInputError, ValueError):
    """A dream asked for what only the real environment has (e.g. sub-environments for a teacher)."""


class RealStarts:
    """First observations from resets of the real environment (``make_env(env_id, split, **env_kwargs)``).

    The first reset uses ``seed``, later ones continue its random stream; ``max_steps`` of each
    start is the real level's episode limit.
    """

    def __init__(self, env_id: str, split: str | None = None, env_kwargs: Mapping[str, Any] | None = None,
                 seed: int = 0):
        from shiftgrid.envs.learner_env import make_env

        self.env = make_env(env_id, split, **dict(env_kwargs or {}))
        self.observation_space = cast(gym.spaces.Dict, self.env.observation_space)  # make_env's are Dicts
        self.action_space = self.env.action_space
        self._seed: int | None = seed

    def reseed(self, seed: int | None) -> None:
        """Restart the stream of levels at ``seed`` (None: keep it)."""
        if seed is not None:
            self._seed = seed

    def draw(self) -> tuple[dict[str, np.ndarray], int]:
        """One real first observation and its episode limit."""
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        limit = getattr(self.env.unwrapped, "max_steps", None) or (self.env.spec.max_episode_steps if self.env.spec else None)
        return obs, int(limit or 1000)


class ReplayStarts:
    """First observations drawn uniformly from the episode starts (``is_first`` steps) kept in a replay."""

    def __init__(self, replay: SequenceReplay, observation_space: gym.spaces.Dict, action_space: gym.Space,
                 max_steps: int, seed: int = 0):
        self.replay, self.max_steps = replay, max_steps
        self.observation_space, self.action_space = observation_space, action_space
        self.rng = np.random.default_rng(seed)
        firsts = [(env, i) for env in range(replay.num_envs) for i in torch.nonzero(replay.stream(env)["is_first"]).flatten().tolist()]
        if not firsts:
            raise ValueError("the replay holds no episode start (is_first) to dream from")
        self.firsts = firsts

    def reseed(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def draw(self) -> tuple[dict[str, np.ndarray], int]:
        env, i = self.firsts[int(self.rng.integers(len(self.firsts)))]
        step = self.replay.stream(env)
        keys = ["image", "direction", *(k for k in TOKEN_KEYS if k in step)]
        obs = {k: step[k][i].cpu().numpy() for k in keys}
        for k in keys:
            obs[k] = obs[k].astype(self.observation_space[k].dtype)
        return obs, self.max_steps


class DreamVecEnv(VectorEnv):
    """``num_envs`` dreams of ``model`` started from ``starts``; see the module docstring."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, model: WorldModel, starts: RealStarts | ReplayStarts, num_envs: int, *, sample: bool = True,
                 seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.model, self.starts, self.num_envs, self.sample = model.eval(), starts, num_envs, sample
        self.render_mode = None
        self.device = next(model.parameters()).device
        self.single_observation_space, self.single_action_space = starts.observation_space, starts.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.token_keys = [k for k in TOKEN_KEYS if k in self.single_observation_space.spaces]
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(0 if seed is None else seed)
        self.state: LatentState | None = None
        self.obs: dict[str, np.ndarray] = {}
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.limit = np.zeros(num_envs, dtype=np.int64)
        self.done = np.zeros(num_envs, dtype=bool)

    # ---- starting episodes ----------------------------------------------------------------

    def _tensor(self, obs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.asarray(v)).to(self.device) for k, v in obs.items()}

    @torch.no_grad()
    def _start(self, envs: np.ndarray) -> None:
        """Fresh real starts in sub-envs ``envs``: their observations, limits and filtered model states."""
        drawn = [self.starts.draw() for _ in envs]
        first = {k: np.stack([np.asarray(o[k]) for o, _ in drawn]) for k in drawn[0][0]}
        for k, v in first.items():
            self.obs[k][envs] = v
        self.limit[envs] = [limit for _, limit in drawn]
        self.t[envs] = 0
        n = len(envs)
        state, _ = self.model.obs_step(self.model.initial(n), torch.zeros(n, dtype=torch.long, device=self.device),
                                       self.model.encoder(self._tensor(first)), torch.ones(n, dtype=torch.bool, device=self.device),
                                       self.generator)
        if self.state is None:
            self.state = state
        else:
            idx = torch.as_tensor(envs, device=self.device)
            for name in ("deter", "stoch", "logits", "context", "context_mask"):
                mine, new = getattr(self.state, name), getattr(state, name)
                if mine is not None:
                    mine[idx] = new.to(mine.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """Start every sub-env from a real first observation; ``seed`` seeds the starts and the decoder's samples."""
        if seed is not None:
            self.starts.reseed(seed)
            self.generator.manual_seed(seed)
        batched = cast(Mapping[str, gym.spaces.Box | gym.spaces.MultiDiscrete],  # image, direction, tokens
                       cast(gym.spaces.Dict, self.observation_space).spaces)
        self.obs = {k: np.zeros(s.shape, s.dtype) for k, s in batched.items()}
        self.state = None
        self._start(np.arange(self.num_envs))
        self.done[:] = False
        return {k: v.copy() for k, v in self.obs.items()}, {}

    # ---- stepping -------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict]:
        """One imagined step of every sub-env (a sub-env done at the last step starts afresh instead)."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions).reshape(self.num_envs)
        if not all(self.single_action_space.contains(int(a)) for a in actions):
            raise ValueError(f"actions {actions.tolist()} are not all in {self.single_action_space}")
        imagined = self.model.imagine(self.state, torch.as_tensor(actions, device=self.device).long()[:, None],
                                      decode=True, generator=self.generator)
        self.state = imagined.states[:, 0]
        preds = imagined.predictions
        frame = preds.decoded.sample(self.generator) if self.sample else preds.decoded.mode()
        self.obs["image"] = frame["image"][:, 0].cpu().numpy().astype(self.obs["image"].dtype)
        self.obs["direction"] = frame["direction"][:, 0].cpu().numpy().astype(self.obs["direction"].dtype)
        reward = preds.reward[:, 0].float().cpu().numpy().astype(np.float64)
        terminated = preds.cont_prob[:, 0].cpu().numpy() < 0.5
        self.t += 1
        truncated = ~terminated & (self.t >= self.limit)
        restart = np.nonzero(self.done)[0]
        if len(restart):  # next-step auto-reset: these sub-envs were done; this step starts them afresh
            self._start(restart)
            reward[restart], terminated[restart], truncated[restart] = 0.0, False, False
        self.done = terminated | truncated
        success = terminated & (reward > 0)
        info = {"success": success, "_success": self.done.copy()}
        return {k: v.copy() for k, v in self.obs.items()}, reward, terminated, truncated, info


class DreamSB3VecEnv(VecEnv):
    """:class:`DreamVecEnv` as stable-baselines3's ``VecEnv``: same-step reset, ``terminal_observation`` in ``info``.

    Infos carry ``is_success`` (and ``TimeLimit.truncated``); wrap it in SB3's ``VecMonitor``
    for episode returns and lengths.
    """

    def __init__(self, dream: DreamVecEnv):
        self.dream = dream
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        super().__init__(dream.num_envs, dream.single_observation_space, dream.single_action_space)

    def reset(self) -> dict[str, np.ndarray]:
        obs, _ = self.dream.reset(seed=self._seed)
        self._seed = None
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        obs, reward, terminated, truncated, info = self.dream.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{"is_success": bool(info["success"][i]), "success": bool(info["success"][i]),
                                        "TimeLimit.truncated": bool(truncated[i])} for i in range(self.num_envs)]
        ended = np.nonzero(done)[0]
        if len(ended):  # SB3 resets in the same step: hand back the last observation and a fresh start
            for i in ended:
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in obs.items()}
            self.dream.done[:] = False
            self.dream._start(ended)
            for k in obs:
                obs[k][ended] = self.dream.obs[k][ended]
        return obs, reward.astype(np.float32), done, infos

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.dream, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.dream, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        # Per-env methods are what advice (set_training_step) and curricula (assign_levels) call; a
        # dream has no sub-environments to run them in, so those teachers cannot train in a dream.
        raise DreamError(f"a dream environment has no sub-environments to call {method_name!r} on; "
                          "advice and curriculum teachers need the real environment (drop --dream or --advice/--teacher)")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

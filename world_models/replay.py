"""Sequence replay on the model's device: one ring per vector-env stream, uniform B x T sampling.

A stored step ``t`` of a stream holds the observation ``o_t`` (grid codes, direction, token ids),
``is_first`` (``o_t`` starts an episode), ``reward`` / ``terminated`` / ``truncated`` (of the
transition INTO ``o_t``: the terminal step keeps its reward and its real last observation) and
``action`` (taken FROM ``o_t``; 0 on the last step of an episode, where none is taken). This is
DreamerV3's layout: a model filters step ``t`` from ``(state_{t-1}, action_{t-1})`` and resets
at ``is_first``.

Bytes per step (:attr:`SequenceReplay.bytes_per_step`): image ``H*W*3`` (147 for a 7x7 view) +
direction 1 + action 1 + reward 4 + three flags 3 + one byte per token (40 for the default
mission length): 156 B without tokens, 196 B with 40 mission tokens; 1M steps is about 200 MB.

Feeding it, one call per vector step (``mode`` says which auto-reset convention the env uses):

- ``"next_step"`` (gymnasium 1.x default): after a done step, the NEXT ``step`` returns the
  reset observation and ignores its action.
- ``"same_step"`` (gymnasium ``AutoresetMode.SAME_STEP``): a done step returns the reset
  observation; the real last one is ``info["final_obs"][i]``.
- ``"sb3"`` (stable-baselines3 ``VecEnv``): ``step`` returns ``(obs, reward, done, infos)``; the
  real last observation is ``infos[i]["terminal_observation"]``, truncation is
  ``infos[i]["TimeLimit.truncated"]``.

Example:
    >>> import gymnasium as gym, numpy as np
    >>> from shiftgrid.envs.learner_env import make_env
    >>> envs = gym.vector.SyncVectorEnv([lambda: make_env("MiniGrid-Empty-5x5-v0", max_steps=3)] * 2)
    >>> replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=2, capacity=64)
    >>> obs, _ = envs.reset(seed=0)
    >>> replay.reset(obs)
    >>> for _ in range(10):
    ...     actions = np.array([2, 1])
    ...     replay.add(actions, *envs.step(actions))
    >>> len(replay), replay.bytes_per_step
    (20, 196)
    >>> batch = replay.sample(4, 5, generator=torch.Generator().manual_seed(0))
    >>> batch["image"].shape, batch["is_first"].dtype
    (torch.Size([4, 5, 7, 7, 3]), torch.bool)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, cast

import numpy as np
import torch
from gymnasium import spaces

MODES = ("next_step", "same_step", "sb3")
TOKEN_KEYS = ("mission", "advice")
_STEP_KEYS = ("action", "reward", "terminated", "truncated", "is_first")


class SequenceReplay:
    """Bounded replay of ``num_envs`` streams of ``capacity // num_envs`` steps each, on ``device``.

    Args:
        num_envs: vector-env width (one ring per sub-env, so a sequence is always one stream's).
        capacity: total steps kept (each stream keeps ``capacity // num_envs``, oldest overwritten).
        image_shape: grid-code view shape, e.g. ``(7, 7, 3)``.
        token_lengths: token-id keys and their lengths, e.g. ``{"mission": 40}`` (ids < 256).
        mode: auto-reset convention of the env feeding :meth:`add` (see the module docstring).
        device: where the tensors live (the model's device).
    """

    def __init__(self, num_envs: int, capacity: int, image_shape: Sequence[int] = (7, 7, 3),
                 token_lengths: Mapping[str, int] | None = None, mode: str = "next_step",
                 device: str | torch.device = "cpu"):
        if mode not in MODES:
            raise ValueError(f"unknown auto-reset mode {mode!r}; valid: {', '.join(MODES)}")
        if num_envs < 1 or capacity < num_envs:
            raise ValueError(f"need num_envs >= 1 and capacity >= num_envs, got num_envs={num_envs}, capacity={capacity}")
        self.num_envs, self.mode, self.device = num_envs, mode, torch.device(device)
        self.stream_capacity = capacity // num_envs
        self.image_shape = tuple(int(s) for s in image_shape)
        self.token_lengths = dict(token_lengths or {})
        n, c = num_envs, self.stream_capacity
        z = lambda *shape, dtype: torch.zeros(n, c, *shape, dtype=dtype, device=self.device)  # noqa: E731
        self.data: dict[str, torch.Tensor] = {
            "image": z(*self.image_shape, dtype=torch.uint8), "direction": z(dtype=torch.uint8),
            **{k: z(length, dtype=torch.uint8) for k, length in self.token_lengths.items()},
            "action": z(dtype=torch.uint8), "reward": z(dtype=torch.float32),
            "terminated": z(dtype=torch.bool), "truncated": z(dtype=torch.bool), "is_first": z(dtype=torch.bool),
        }
        self.ptr = torch.zeros(n, dtype=torch.long)   # next write position per stream (host side)
        self.size = torch.zeros(n, dtype=torch.long)  # valid steps per stream
        self._pending: dict[str, torch.Tensor] | None = None  # newest observation per stream, awaiting its action

    @classmethod
    def for_space(cls, observation_space: spaces.Space, num_envs: int, capacity: int, **kwargs: Any) -> "SequenceReplay":
        """A replay for a (single-env) Dict observation space as :func:`shiftgrid.envs.learner_env.make_env` makes."""
        if not isinstance(observation_space, spaces.Dict) or "image" not in observation_space.spaces:
            raise TypeError(f"need a Dict observation space with an 'image' key, got {observation_space}")
        boxes = cast(Mapping[str, spaces.Box], observation_space.spaces)  # the image and the token keys are Boxes
        tokens = {k: int(boxes[k].shape[0]) for k in TOKEN_KEYS if k in boxes}
        return cls(num_envs, capacity, boxes["image"].shape, tokens, **kwargs)

    @property
    def bytes_per_step(self) -> int:
        """Bytes one stored step takes (all tensors, per step)."""
        return sum(t[0, 0].numel() * t.element_size() for t in self.data.values())

    def __len__(self) -> int:
        return int(self.size.sum())

    # ---- feeding -------------------------------------------------------------------------------

    def _obs(self, obs: Mapping[str, Any], rows: Any = slice(None)) -> dict[str, torch.Tensor]:
        out = {"image": torch.as_tensor(np.asarray(obs["image"])[rows], dtype=torch.uint8),
               "direction": torch.as_tensor(np.asarray(obs["direction"])[rows], dtype=torch.uint8)}
        for k in self.token_lengths:
            ids = np.asarray(obs[k])[rows]
            if ids.size and (ids.min() < 0 or ids.max() > 255):
                raise ValueError(f"token ids of {k!r} must be in [0, 255] to be stored, got [{ids.min()}, {ids.max()}]")
            out[k] = torch.as_tensor(ids.astype(np.uint8))
        return out

    def reset(self, obs: Mapping[str, Any]) -> None:
        """Start every stream at the vector env's reset observation (marked first)."""
        n = self.num_envs
        self._pending = {**self._obs(obs), "reward": torch.zeros(n), "terminated": torch.zeros(n, dtype=torch.bool),
                         "truncated": torch.zeros(n, dtype=torch.bool), "is_first": torch.ones(n, dtype=torch.bool)}

    def _write(self, envs: torch.Tensor, step: Mapping[str, torch.Tensor]) -> None:
        if len(envs) == 0:
            return
        pos = self.ptr[envs]
        dev_envs, dev_pos = envs.to(self.device), pos.to(self.device)
        for k, t in self.data.items():
            t[dev_envs, dev_pos] = step[k].to(self.device, t.dtype)
        self.ptr[envs] = (pos + 1) % self.stream_capacity
        self.size[envs] = torch.clamp(self.size[envs] + 1, max=self.stream_capacity)

    def add(self, actions: Any, obs: Mapping[str, Any], reward: Any, terminated: Any, truncated: Any = None,
            info: Any = None) -> None:
        """Store one vector step: ``add(actions, *envs.step(actions))``.

        For ``mode="sb3"`` pass ``add(actions, *venv.step(actions))`` too: SB3's
        ``(obs, reward, done, infos)`` land in ``obs, reward, terminated, truncated``.
        """
        if self._pending is None:
            raise RuntimeError("call reset(obs) with the vector env's reset observation before add()")
        n = self.num_envs
        if self.mode == "sb3":
            done, infos = np.asarray(terminated, dtype=bool), truncated
            trunc = np.array([bool(infos[i].get("TimeLimit.truncated", False)) for i in range(n)])
            term, trunc = done & ~trunc, done & trunc
            finals = [infos[i]["terminal_observation"] if done[i] else None for i in range(n)]
        else:
            term, trunc = np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool)
            done = term | trunc
            finals = None
            if self.mode == "same_step" and done.any():
                if info is None or "final_obs" not in info:
                    raise ValueError("same_step mode: a done step needs info['final_obs'] (is the env in SAME_STEP mode?)")
                finals = list(info["final_obs"])
        action = torch.as_tensor(np.asarray(actions).reshape(n).astype(np.int64))
        pending = self._pending
        was_done = pending["terminated"] | pending["truncated"]
        all_envs = torch.arange(n)
        if self.mode == "next_step":
            # a stream whose pending step ended its episode: this step is the reset, its action ignored
            self._write(all_envs, {**pending, "action": torch.where(was_done, 0, action)})
            new = {**self._obs(obs), "reward": torch.as_tensor(np.asarray(reward), dtype=torch.float32),
                   "terminated": torch.as_tensor(term), "truncated": torch.as_tensor(trunc),
                   "is_first": was_done.clone()}
            new["reward"][was_done] = 0.0
            self._pending = new
            return
        self._write(all_envs, {**pending, "action": action})
        done_t = torch.as_tensor(done)
        rew, term_t, trunc_t = (torch.as_tensor(np.asarray(reward), dtype=torch.float32),
                                torch.as_tensor(term), torch.as_tensor(trunc))
        ended = torch.nonzero(done_t).flatten()
        if len(ended):  # the real last observation, with its reward and flags, as its own step
            assert finals is not None, "a done step in same_step mode read info['final_obs'] above"
            idx = ended.tolist()
            last = {k: np.stack([np.asarray(finals[i][k]) for i in idx]) for k in ("image", "direction", *self.token_lengths)}
            self._write(ended, {**self._obs(last), "reward": rew[ended], "terminated": term_t[ended],
                                "truncated": trunc_t[ended], "is_first": torch.zeros(len(idx), dtype=torch.bool),
                                "action": torch.zeros(len(idx), dtype=torch.long)})
        self._pending = {**self._obs(obs), "reward": torch.where(done_t, 0.0, rew),
                         "terminated": torch.zeros(n, dtype=torch.bool), "truncated": torch.zeros(n, dtype=torch.bool),
                         "is_first": done_t.clone()}

    # ---- reading -------------------------------------------------------------------------------

    def stream(self, env: int) -> dict[str, torch.Tensor]:
        """Every stored step of stream ``env``, oldest first."""
        idx = self._order(env)
        return {k: t[env, idx.to(self.device)] for k, t in self.data.items()}

    def _order(self, env: int) -> torch.Tensor:
        size, ptr = int(self.size[env]), int(self.ptr[env])
        return (torch.arange(size) + ptr - size) % self.stream_capacity

    def sample(self, batch: int, length: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``batch`` sequences of ``length`` consecutive steps of one stream, each start uniform over all valid starts.

        A sequence may cross an episode boundary; the new episode's first step has ``is_first``.
        Its own first step begins a fresh filter state whatever its flag. Indices are drawn on
        the CPU with ``generator`` (seeded: repeatable), then gathered on the device.
        """
        starts = torch.clamp(self.size - length + 1, min=0)
        total = int(starts.sum())
        if total == 0:
            raise ValueError(f"no stream holds {length} steps yet (sizes {self.size.tolist()}); add more or sample shorter")
        flat = torch.randint(total, (batch,), generator=generator)
        env = torch.searchsorted(torch.cumsum(starts, 0), flat, right=True)
        offset = flat - (torch.cumsum(starts, 0) - starts)[env]
        oldest = self.ptr[env] - self.size[env]
        pos = (oldest[:, None] + offset[:, None] + torch.arange(length)[None]) % self.stream_capacity
        e, p = env[:, None].expand_as(pos).to(self.device), pos.to(self.device)
        return {k: t[e, p] for k, t in self.data.items()}

    # ---- saving --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loadable with ``torch.load(weights_only=True)``); the pending step included.

        Only the filled part of the rings is saved: a stream that has not wrapped holds its steps
        at positions ``0 .. size - 1``, so the first ``max(size)`` positions of every ring hold all
        there is (the whole ring once one has wrapped).

        Example:
            >>> replay = SequenceReplay(num_envs=2, capacity=1000)
            >>> replay.size[:] = torch.tensor([5, 3])
            >>> replay.state_dict()["data.image"].shape
            torch.Size([2, 5, 7, 7, 3])
        """
        filled = int(self.size.max())  # a slice is cloned: torch.save writes a view's whole storage
        state: dict[str, Any] = {f"data.{k}": (t if filled == self.stream_capacity else t[:, :filled].clone()).cpu()
                                 for k, t in self.data.items()}
        state.update(ptr=self.ptr.clone(), size=self.size.clone(), mode=self.mode, num_envs=self.num_envs,
                     stream_capacity=self.stream_capacity, image_shape=list(self.image_shape),
                     token_lengths=dict(self.token_lengths))
        if self._pending is not None:
            state.update({f"pending.{k}": t.clone() for k, t in self._pending.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises ``ValueError`` when the layout differs from this buffer's."""
        mine = dict(mode=self.mode, num_envs=self.num_envs, stream_capacity=self.stream_capacity,
                    image_shape=list(self.image_shape), token_lengths=dict(self.token_lengths))
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            raise ValueError(f"replay state has layout {theirs}, this buffer has {mine}")
        for k, t in self.data.items():
            saved = state[f"data.{k}"]  # the filled part (the whole ring in files written before it was trimmed)
            t.zero_()
            t[:, :saved.shape[1]].copy_(saved.to(self.device))
        self.ptr, self.size = state["ptr"].clone(), state["size"].clone()
        pend = {k[len("pending."):]: v.clone() for k, v in state.items() if k.startswith("pending.")}
        self._pending = pend or None

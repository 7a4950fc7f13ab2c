"""A batch of envs on a device: level rows to reset from, the state, and the step with masked auto-reset.

:class:`LevelStore` keeps level rows (:mod:`~shiftgrid.envs.engine.levels`) as device arrays,
append-only, with a *pool* of the rows uniform resets draw from (a bank's rows; levels made on
demand for a seeded reset are stored but never drawn). :class:`TensorEngine` holds the state of
``num_envs`` envs and steps them; with ``autoreset`` it follows gymnasium's next-step
convention: an env whose episode ended is reset by the next step, which ignores its action and
returns the new episode's first observation (reward 0, not terminated, not truncated). The
reset is masked (every env's start state is computed and selected), so a step never syncs with
the host.

Example:
    >>> import gymnasium as gym, torch, shiftgrid.envs
    >>> from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack
    >>> env = gym.make("shiftgrid/GoTo-v1"); u = env.unwrapped
    >>> layout = Layout(u.height, u.width, 8, 1)
    >>> rows = []
    >>> for s in range(4):
    ...     _ = env.reset(seed=s); rows.append(row_from_sample(u.sample, u.max_steps, layout))
    >>> store = LevelStore(stack(rows, layout), layout, "cpu")
    >>> engine = TensorEngine(store, num_envs=8)
    >>> obs = engine.reset(seed=0)
    >>> obs["image"].shape, obs["mission"].shape
    (torch.Size([8, 7, 7, 3]), torch.Size([8, 40]))
    >>> obs, reward, terminated, truncated, info = engine.step(torch.zeros(8, dtype=torch.int64))
    >>> sorted(info)[:3]
    ['level_hash', 'level_index', 'level_seed']
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from shiftgrid.envs.engine import core
from shiftgrid.envs.engine.draws import uniform
from shiftgrid.envs.engine.errors import EngineError
from shiftgrid.envs.engine.levels import Layout, stack
from shiftgrid.envs.rules import GOTO_RECORDED, PUTNEXT_RECORDED, reward as success_reward

#: Draw numbers (``k`` of :func:`~shiftgrid.envs.engine.draws.uniform`): the slip's coin and direction, the next level.
SLIP_COIN, SLIP_SIDE, LEVEL_DRAW = 0, 1, 2


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` this torch can use; raises :class:`EngineError` naming the usable ones."""
    usable = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise EngineError(f"device={device!r} is not a device name; valid here: {', '.join(usable)}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise EngineError(f"device={device!r} cannot be used by this torch (CUDA available: {torch.cuda.is_available()}); "
                          f"valid here: {', '.join(usable)}")
    if dev.type not in ("cpu", "cuda"):
        raise EngineError(f"device={device!r} is not supported by the engine; valid here: {', '.join(usable)}")
    return dev


class LevelStore:
    """Level rows on a device, append-only; uniform resets draw from :attr:`pool` (row indices).

    Args:
        rows: stacked rows (numpy), as :func:`~shiftgrid.envs.engine.levels.stack` makes them.
        layout: the layout the engine's shapes follow (rows may use a smaller one).
        device: where the arrays live.
        pool: whether these rows join the pool uniform resets draw from.
    """

    def __init__(self, rows: Mapping[str, np.ndarray], layout: Layout, device: Any, pool: bool = True):
        self.layout, self.device = layout, check_device(device)
        self.tables = core.Tables(layout, self.device)
        self.arrays: dict[str, torch.Tensor] = {}
        self.pool = torch.zeros(0, dtype=torch.int64, device=self.device)
        self.recorded = self.slippery = False
        self.size = 0
        self.append(rows, pool)

    def __len__(self) -> int:
        return self.size

    def append(self, rows: Mapping[str, np.ndarray], pool: bool = True) -> torch.Tensor:
        """Add rows (of this store's layout or a smaller one); return their indices. Rows that need a
        larger layout raise :class:`EngineError` (the engine's shapes are fixed when it is made)."""
        given = Layout(self.layout.height, self.layout.width, rows["obj_cell"].shape[1], rows["verb"].shape[1],
                       rows["tokens"].shape[1])
        if self.layout.union(given) != self.layout:
            raise EngineError(f"these levels need layout {self.layout.union(given)}, larger than the engine's {self.layout}")
        new = core.store_arrays(stack([rows], self.layout), self.tables)
        self.arrays = {k: torch.cat([self.arrays[k], v]) if self.arrays else v for k, v in new.items()}
        start, self.size = self.size, self.size + len(rows["codes"])
        index = torch.arange(start, self.size, device=self.device)
        if pool:
            self.pool = torch.cat([self.pool, index])
        self.recorded |= bool(np.isin(np.asarray(rows["verb"]), (GOTO_RECORDED, PUTNEXT_RECORDED)).any())
        self.slippery |= bool(np.any(np.asarray(rows["slip"]) > 0))
        return index


def info_of(store: LevelStore, level: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-level part of ``info``: index, hash, seed and oracle figures of each env's level."""
    a = store.arrays
    steps = a["optimal_steps"].index_select(0, level)
    max_steps = a["misc"].index_select(0, level) & 0xFFFFFFFF
    return {
        "level_index": level, "level_hash": a["hash"].index_select(0, level), "level_seed": a["seed"].index_select(0, level),
        "optimal_steps": steps, "optimal_return": success_reward(steps, max_steps.to(torch.float64)),
        "optimal_exact": a["optimal_exact"].index_select(0, level),
    }


class TensorEngine:
    """``num_envs`` envs stepped together (see the module docstring).

    Args:
        store: the level rows to reset from.
        num_envs: batch size.
        seed: the run's seed for the draws (slip, next level); :meth:`reset` may set it.
        streams: each env's draw stream (default ``0..num_envs-1``); an env run alone with
            stream ``i`` draws what env ``i`` of a batch draws.
        compile: ``torch.compile`` the step (the first steps compile; later ones are fast).
    """

    def __init__(self, store: LevelStore, num_envs: int, seed: int = 0, streams: Any = None, compile: bool = False):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise EngineError(f"num_envs={num_envs!r} is not valid; valid: an integer >= 1")
        self.store, self.num_envs, self.device = store, int(num_envs), store.device
        self.tables = store.tables
        self.seed = torch.tensor(int(seed), dtype=torch.int64, device=self.device)
        self.streams = (torch.arange(self.num_envs, device=self.device) if streams is None
                        else torch.as_tensor(streams, dtype=torch.int64, device=self.device))
        self.counter = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.next_level = torch.full((self.num_envs,), -1, dtype=torch.int64, device=self.device)
        self.needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.drawn = torch.zeros(len(store) + 1, dtype=torch.bool, device=self.device)
        self.state: core.State = {}
        self._advance: Callable = self._advance_eager
        self.compiled = bool(compile)
        if compile:
            self._advance = torch.compile(self._advance_eager, dynamic=False)

    # -- draws ------------------------------------------------------------------------------------
    def next_draws(self) -> torch.Tensor:
        """The ``[B, 2]`` slip draws (coin, side) of the next step."""
        return torch.stack([uniform(self.seed, self.streams, self.counter, k) for k in (SLIP_COIN, SLIP_SIDE)], 1)

    def _draw_levels(self, counter: torch.Tensor, next_level: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        u = uniform(self.seed, self.streams, counter, LEVEL_DRAW)
        drawn = pool.index_select(0, (u * len(pool)).to(torch.int64).clamp(max=len(pool) - 1))
        return torch.where(next_level >= 0, next_level, drawn)

    # -- reset ------------------------------------------------------------------------------------
    def reset(self, levels: Any = None, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Start every env: on ``levels`` (store indices), else on levels drawn from the pool. Returns the observation."""
        if seed is not None:
            self.seed.fill_(int(seed))
            self.counter.zero_()
        if levels is None:
            if len(self.store.pool) == 0:
                raise EngineError("the engine has no levels to draw from; pass levels")
            levels = self._draw_levels(self.counter, self.next_level, self.store.pool)
        levels = self._check_levels(levels, "levels", 0)
        self.next_level.fill_(-1)
        self.state = core.start(self.store.arrays, levels, self.tables)
        self.needs_reset.zero_()
        self._mark_drawn(levels, torch.ones_like(self.needs_reset))
        return self.observation()

    def restart(self, envs: Any, levels: Any) -> None:
        """Start the envs ``envs`` (indices) afresh on store rows ``levels``; the others carry on (a host-side call)."""
        envs = torch.as_tensor(envs, dtype=torch.int64, device=self.device)
        levels = torch.as_tensor(levels, dtype=torch.int64, device=self.device)
        if levels.shape != envs.shape or (len(envs) and (int(envs.min()) < 0 or int(envs.max()) >= self.num_envs)):
            raise EngineError(f"restart needs env indices in 0..{self.num_envs - 1} and one level each")
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        mask[envs] = True
        chosen = self._check_levels(self.state["level"].index_put((envs,), levels), "levels", 0)
        self.state = core.merge(mask, core.start(self.store.arrays, chosen, self.tables), self.state)
        self.needs_reset[envs] = False
        self._mark_drawn(chosen, mask)

    def keep(self, envs: Any) -> None:
        """Go on with the envs ``envs`` (indices, in that order) only: the batch shrinks to them (a host-side call).

        What an evaluation does with the envs whose episode ended: the next steps cost what the
        episodes still running cost. Each kept env keeps its state, draw stream and counter. An
        engine made with ``compile`` compiles again for the new batch size.
        """
        envs = torch.as_tensor(envs, dtype=torch.int64, device=self.device)
        if envs.dim() != 1 or (len(envs) and (int(envs.min()) < 0 or int(envs.max()) >= self.num_envs)):
            raise EngineError(f"keep needs env indices in 0..{self.num_envs - 1}; got {envs.tolist()[:8]}")
        self.state = {k: v.index_select(0, envs) for k, v in self.state.items()}
        self.streams, self.counter = self.streams.index_select(0, envs), self.counter.index_select(0, envs)
        self.next_level, self.needs_reset = self.next_level.index_select(0, envs), self.needs_reset.index_select(0, envs)
        self.num_envs = len(envs)

    def reset_where(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Start the envs where ``mask`` holds afresh, on the level a teacher named or one drawn (masked: no host sync).

        The same-step auto-reset (SB3's convention): called after a ``step(..., autoreset=False)`` on
        the envs whose episode ended, it draws the levels the next-step convention would draw at the
        next step. Returns every env's observation.
        """
        levels = self._draw_levels(self.counter, self.next_level, self.store.pool)
        self.state = core.merge(mask, core.start(self.store.arrays, levels, self.tables), self.state)
        self._mark_drawn(self.state["level"], mask)
        self.next_level = torch.where(mask, -1, self.next_level)
        self.needs_reset = self.needs_reset & ~mask
        return self.observation()

    def _check_levels(self, levels: Any, what: str, low: int) -> torch.Tensor:
        levels = torch.as_tensor(levels, device=self.device)
        if tuple(levels.shape) != (self.num_envs,) or levels.dtype not in (torch.int64, torch.int32, torch.int16):
            raise EngineError(f"{what} must be an integer tensor of shape ({self.num_envs},); got "
                              f"{tuple(levels.shape)} {levels.dtype}")
        lo, hi = int(levels.min()), int(levels.max())
        if lo < low or hi >= len(self.store):
            valid = f"-1 (drawn uniformly) or 0..{len(self.store) - 1}" if low < 0 else f"0..{len(self.store) - 1}"
            raise EngineError(f"{what} must be in {valid}; got {lo}..{hi}")
        return levels.to(torch.int64)

    def set_next_levels(self, levels: Any) -> None:
        """The store rows the next reset of each env starts on (-1: drawn uniformly); read once per env."""
        self.next_level = self._check_levels(levels, "next levels", -1).clone()

    def _mark_drawn(self, levels: torch.Tensor, mask: torch.Tensor) -> None:
        if len(self.drawn) != len(self.store) + 1:  # the store grew: keep the marks, widen the table
            grown = torch.zeros(len(self.store) + 1, dtype=torch.bool, device=self.device)
            grown[: len(self.drawn) - 1] = self.drawn[:-1]
            self.drawn = grown
        self.drawn[torch.where(mask, levels, len(self.drawn) - 1)] = True

    def distinct_levels(self) -> int:
        """How many distinct pool levels this engine's resets have drawn (a host sync; call it between steps)."""
        return int(self.drawn.index_select(0, self.store.pool).sum())

    # -- step -------------------------------------------------------------------------------------
    def check_actions(self, actions: Any) -> torch.Tensor:
        """``actions`` as an int64 ``[B]`` tensor on the device; raises :class:`EngineError` naming the valid shape and range."""
        given = actions
        if isinstance(actions, (np.ndarray, list, tuple)):
            try:
                actions = torch.as_tensor(np.asarray(actions))
            except (TypeError, ValueError):
                pass
        if not isinstance(actions, torch.Tensor) or actions.dtype.is_floating_point or actions.dtype.is_complex or \
                actions.dtype == torch.bool:
            dtype = getattr(actions, "dtype", None)
            raise EngineError(f"actions must be integers 0..6 of shape ({self.num_envs},); got {type(given).__name__}"
                              f"{' of ' + str(dtype) if dtype is not None else ''}")
        if tuple(actions.shape) != (self.num_envs,):
            raise EngineError(f"actions must have shape ({self.num_envs},); got {tuple(actions.shape)}")
        actions = actions.to(device=self.device, dtype=torch.int64)
        bad = (actions < 0) | (actions > 6)
        if bool(bad.any()):
            raise EngineError(f"actions must be in 0..6 (minigrid's actions); got {actions[bad][:5].tolist()}")
        return actions

    def step(self, actions: Any, draws: torch.Tensor | None = None, autoreset: bool = False,
             check: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step every env: ``(obs, reward, terminated, truncated, info)`` as tensors.

        ``draws``: the slip draws to use (default :meth:`next_draws`, when a level slips).
        ``autoreset``: reset envs whose episode ended at the previous step (next-step
        convention). ``check=False`` skips the actions' check (which syncs with the host once).
        """
        actions = self.check_actions(actions) if check else actions
        if draws is None and self.store.slippery:
            draws = self.next_draws()
        self.state, packed, reward, terminated, truncated, success, reset = self._advance(
            self.state, actions, draws, self.counter, self.next_level, self.needs_reset, self.store.pool, autoreset)
        if autoreset:
            self._mark_drawn(self.state["level"], reset)
            self.next_level = torch.where(reset, -1, self.next_level)
            self.needs_reset = terminated | truncated
        self.counter = self.counter + 1
        info = {"success": success, **info_of(self.store, self.state["level"])}
        return self._obs(packed, self.state), reward, terminated, truncated, info

    def _advance_eager(self, state: core.State, actions: torch.Tensor, draws: torch.Tensor | None, counter: torch.Tensor,
                       next_level: torch.Tensor, reset: torch.Tensor, pool: torch.Tensor, autoreset: bool) -> tuple:
        arrays, t = self.store.arrays, self.tables
        state, reward, terminated, truncated, success = core.step(state, arrays, actions, draws, t, self.store.recorded,
                                                                  inplace=True)
        if autoreset:
            fresh = core.start(arrays, self._draw_levels(counter, next_level, pool), t)
            state = core.merge(reset, fresh, state)
            zero = torch.zeros_like(terminated)
            reward, terminated = torch.where(reset, 0.0, reward), torch.where(reset, zero, terminated)
            truncated, success = torch.where(reset, zero, truncated), torch.where(reset, zero, success)
        return state, core.observe(state, arrays, t), reward, terminated, truncated, success, reset

    def _obs(self, packed: torch.Tensor, state: core.State) -> dict[str, torch.Tensor]:
        return {"image": core.image(packed), "direction": state["dir"],
                "mission": self.store.arrays["tokens"].index_select(0, state["level"])}

    def observation(self) -> dict[str, torch.Tensor]:
        """The current observation of every env."""
        return self._obs(core.observe(self.state, self.store.arrays, self.tables), self.state)

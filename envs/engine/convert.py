"""Between the engine and the minigrid env: an engine env's state as a live minigrid env, and back.

:func:`to_env` sets a minigrid env (reset on the same level) to the state of one engine env:
cells, doors, objects moved, carried or toggled away, the pose, the step count and the mission's
progress. The env then renders it, plans from it (the oracle's ``solve_from``) and steps on from
it exactly as the engine would. :func:`from_env` reads a minigrid env's state mid-episode into an
engine state (the exhaustive search over engine states starts there).

Example:
    >>> import gymnasium as gym, torch, shiftgrid.envs
    >>> from shiftgrid.envs.engine.batch import LevelStore, TensorEngine
    >>> from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack
    >>> env = gym.make("shiftgrid/Pickup-v1"); _ = env.reset(seed=3); u = env.unwrapped
    >>> layout = Layout(u.height, u.width, 8, 1)
    >>> engine = TensorEngine(LevelStore(stack([row_from_sample(u.sample, u.max_steps, layout)], layout), layout, "cpu"), 1)
    >>> _ = engine.reset(levels=torch.zeros(1, dtype=torch.int64))
    >>> for a in (2, 3, 1, 2):
    ...     obs = engine.step(torch.tensor([a]))[0]
    >>> other = gym.make("shiftgrid/Pickup-v1"); _ = other.reset(seed=3)
    >>> to_env(other.unwrapped, engine, 0)
    >>> bool((other.unwrapped.gen_obs()["image"] == obs["image"][0].numpy()).all())
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from minigrid.core.world_object import WorldObj

from shiftgrid.envs.engine import core
from shiftgrid.envs.cell_codes import EMPTY, LOCKED, OPEN, WALL, code_of, decode

_STATIC = ("wall", "floor", "goal", "lava")


def objects_of(env: Any) -> list:
    """The objects whose identity the engine tracks, in its order: a shiftgrid env's level objects."""
    return list(env.objects)


def to_env(env: Any, engine: Any, i: int, objects: Sequence[Any] | None = None) -> None:
    """Set ``env`` (unwrapped, reset on engine env ``i``'s level) to engine env ``i``'s current state."""
    t = engine.tables
    s = {k: v[i].detach().cpu() for k, v in engine.state.items()}
    objects = objects_of(env) if objects is None else list(objects)
    h, w = t.layout.height, t.layout.width
    codes = s["codes"].view(torch.uint8).numpy()[t.interior_np].reshape(h, w)
    ghost, floor = s["ghost"].numpy(), int(s["on_floor"])
    carry_bit, carry = int(s["carry_bit"]), int(s["carry"])
    at = {}
    for k, o in enumerate(objects):
        g = int(ghost[k])
        if (floor >> k) & 1:
            y, x = divmod(int(np.nonzero(t.interior_np == g)[0][0]), w)
            at[(x, y)] = o
            o.cur_pos = (x, y)
        elif (carry_bit >> k) & 1:
            o.cur_pos = np.array([-1, -1])
        elif g != core.NOWHERE:  # a box toggled away keeps its last cell
            y, x = divmod(int(np.nonzero(t.interior_np == g)[0][0]), w)
            o.cur_pos = (x, y)
    grid = env.grid
    for y in range(min(h, grid.height)):
        for x in range(min(w, grid.width)):
            k = int(codes[y, x])
            o = at.get((x, y))
            if o is not None:
                if o.type == "door":
                    state = decode(k)[2]
                    o.is_open, o.is_locked = state == OPEN, state == LOCKED
            elif k == EMPTY:
                o = None
            else:
                current = grid.get(x, y)
                o = current if current is not None and code_of(current) == k and current.type in _STATIC else WorldObj.decode(*decode(k))
            grid.set(x, y, o)
    held = [o for k, o in enumerate(objects) if (carry_bit >> k) & 1]
    env.carrying = held[0] if held else (None if carry == EMPTY else WorldObj.decode(*decode(carry)))
    y, x = divmod(int(np.nonzero(t.interior_np == int(s["pos"]))[0][0]), w)
    env.agent_pos, env.agent_dir = (x, y), int(s["dir"])
    env.step_count = int(s["t"])
    progress = getattr(env, "progress", None)
    if progress is not None:
        progress.step, progress._done = int(s["mstep"]), int(s["mdone"])
    if hasattr(env, "_instrs") and getattr(env, "level", None) is not None:
        from shiftgrid.envs.babyai_compat import babyai_instrs

        env._instrs = babyai_instrs(env)


def from_env(env: Any, tables: core.Tables, level: int = 0, objects: Sequence[Any] | None = None) -> core.State:
    """The engine state (batch of one) of a minigrid env mid-episode; ``level`` is its row in the engine's store."""
    t = tables
    env = env.unwrapped
    objects = objects_of(env) if objects is None else list(objects)
    h, w = t.layout.height, t.layout.width
    codes = np.full(t.cells, WALL, dtype=np.uint8)
    grid = env.grid
    canvas = np.full((h, w), WALL, dtype=np.uint8)
    for y in range(min(h, grid.height)):
        for x in range(min(w, grid.width)):
            canvas[y, x] = code_of(grid.get(x, y))
    codes[t.interior_np] = canvas.reshape(-1)
    ghost = np.full(t.objects, core.NOWHERE, dtype=np.int64)
    floor = carry_bit = 0
    for k, o in enumerate(objects):
        if o is env.carrying:
            carry_bit |= 1 << k
            continue
        if o.cur_pos is None:
            continue
        x, y = (int(v) for v in o.cur_pos)
        if not (0 <= x < w and 0 <= y < h):
            continue
        ghost[k] = t.interior_np[y * w + x]
        if grid.get(x, y) is o:
            floor |= 1 << k
    ax, ay = (int(v) for v in env.agent_pos)
    progress = getattr(env, "progress", None)
    one = lambda v: torch.tensor([v], dtype=torch.int64, device=t.device)
    state = {
        "codes": torch.tensor(codes.view(np.int64)[None], device=t.device),
        "ghost": torch.tensor(ghost[None], device=t.device), "recorded": torch.tensor(ghost[None], device=t.device),
        "on_floor": one(floor), "pos": one(int(t.interior_np[ay * w + ax])), "dir": one(int(env.agent_dir)),
        "carry": one(code_of(env.carrying)), "carry_bit": one(carry_bit),
        "mstep": one(progress.step if progress is not None else 0), "mdone": one(progress._done if progress is not None else 0),
        "t": one(int(env.step_count)), "level": one(level),
    }
    return state

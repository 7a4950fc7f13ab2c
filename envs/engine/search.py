"""Exhaustive breadth-first search over engine states: the shortest action sequence that completes a mission.

Every layer of the search is one batched engine step: each state of the frontier tries all
seven actions, states seen before are dropped (told apart by everything a step reads: cells,
objects, pose, what is carried, the mission's progress), and the first success ends it. It uses
the game's one rule set as the engine steps it, with no heuristic and no model of its own, so it
is what the oracle's exactness is tested against (small levels; no slip).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1", size=5); _, info = env.reset(seed=0)
    >>> len(shortest_plan(env, limit=30)) == info["optimal_steps"]
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shiftgrid.envs import rules
from shiftgrid.envs.engine import core
from shiftgrid.envs.engine.batch import LevelStore
from shiftgrid.envs.engine.convert import from_env
from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack

_KEY_FIELDS = ("codes", "ghost", "on_floor", "pos", "dir", "carry", "carry_bit", "mstep", "mdone")


class SearchTooLarge(RuntimeError):
    """The search passed its state cap."""


def _keys(state: core.State) -> list[bytes]:
    parts = [state[k].reshape(len(state["pos"]), -1).cpu().numpy() for k in _KEY_FIELDS]
    rows = np.concatenate(parts, axis=1)
    return [r.tobytes() for r in rows]


def shortest_plan(env: Any, limit: int, free_drops: bool = True, cap: int = 60_000) -> tuple[int, ...] | None:
    """A shortest action sequence (at most ``limit`` long) completing the mission from a shiftgrid env's current state.

    ``free_drops=False`` allows ``drop`` only as the action that completes the mission. Returns
    None where no sequence of ``limit`` actions or fewer succeeds; raises :class:`SearchTooLarge`
    past ``cap`` states.
    """
    u = env.unwrapped
    layout = Layout(u.height, u.width)
    row = row_from_sample(u.sample, u.max_steps, layout)
    layout = Layout(u.height, u.width, row["obj_cell"].shape[0], row["verb"].shape[0])
    store = LevelStore(stack([row], layout), layout, "cpu")
    t = store.tables
    frontier = from_env(u, t)
    seen = set(_keys(frontier))
    paths: list[tuple[int, ...]] = [()]
    actions7 = torch.arange(rules.NUM_ACTIONS)
    for _ in range(limit):
        n = len(paths)
        index = torch.arange(n).repeat_interleave(rules.NUM_ACTIONS)
        expanded = {k: v.index_select(0, index) for k, v in frontier.items()}
        actions = actions7.repeat(n)
        nxt, _, terminated, _, success = core.step(expanded, store.arrays, actions, None, t, store.recorded)
        hit = torch.nonzero(success).flatten()
        if len(hit):
            j = int(hit[0])
            return paths[j // rules.NUM_ACTIONS] + (j % rules.NUM_ACTIONS,)
        keep = ~terminated
        if not free_drops:
            keep &= actions != rules.DROP
        keys = _keys(nxt)
        chosen = []
        for j in torch.nonzero(keep).flatten().tolist():
            if keys[j] not in seen:
                seen.add(keys[j])
                chosen.append(j)
        if len(seen) > cap:
            raise SearchTooLarge(f"the search passed {cap} states")
        if not chosen:
            return None
        pick = torch.tensor(chosen)
        frontier = {k: v.index_select(0, pick) for k, v in nxt.items()}
        paths = [paths[j // rules.NUM_ACTIONS] + (j % rules.NUM_ACTIONS,) for j in chosen]
    return None

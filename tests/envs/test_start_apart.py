"""No level is solved without moving: the agent never starts beside an object its mission names.

Turning in place, picking up, dropping and toggling reach only the four cells beside the agent,
so an agent that starts beside none of the objects the first step of its mission names must take
a forward step before anything is done. Levels like that made a constant "turn left" policy score
0.13-0.22 on GoTo-v0; the v0 ids (kept for reproducing old results) still serve them, which is
what shows this test can fail.
"""

from __future__ import annotations

import gymnasium as gym
import pytest
from minigrid.core.actions import Actions

import shiftgrid.envs as sg
from shiftgrid.envs.families.common import neighbours
from shiftgrid.envs.level import cell_of

LEVELS = 40


def _named_beside_agent(env) -> bool:
    """Whether an object the mission's first step names is beside the agent at the start.

    Missions that end by reaching a cell (DoorKey, Maze) need a forward step whatever the start;
    for them only the oracle's plan is checked.
    """
    level = env.unwrapped.level
    if any(c.verb == "reach" for step in level.mission.steps for c in step):
        return False
    beside = set(neighbours(tuple(level.agent_pos)))
    named = [i for c in level.mission.steps[0] for i in (c.target, c.other)]
    return any(cell_of(level.objects[i]) in beside for i in named if i is not None and i >= 0)


CASES = [(f.env_id(), s) for f in sg.BUILTIN_FAMILIES for s in sg.splits_for(f.env_id())]


@pytest.mark.levels
@pytest.mark.parametrize("env_id, split", CASES)
def test_no_level_starts_beside_what_its_mission_names(env_id, split):
    env = gym.make(env_id, split=split)
    for seed in range(LEVELS):
        env.reset(seed=seed)
        assert not _named_beside_agent(env), f"{env_id} {split} seed {seed}"
        assert Actions.forward in env.unwrapped.optimal_actions, f"{env_id} {split} seed {seed}: solved without moving"
    env.close()


CURRENT = {f.name: f for f in sg.BUILTIN_FAMILIES}
#: Superseded ids whose generator differs from the current one's (the others changed something else, such as the limit).
REGENERATED = [f for f in sg.SUPERSEDED_FAMILIES if f.generate is not CURRENT[f.name].generate]


@pytest.mark.parametrize("family", REGENERATED, ids=lambda f: f.env_id())
def test_superseded_v0_ids_still_serve_such_levels_and_warn(family):
    with pytest.warns(Warning, match="out of date"):
        env = gym.make(family.env_id())
    hits = 0
    for seed in range(400):
        env.reset(seed=seed)
        hits += _named_beside_agent(env)
    env.close()
    assert hits > 0

"""The oracle is exact: no plan, found by any means, beats ``optimal_steps``.

- An exhaustive breadth-first search over the game's one rule set
  (:func:`shiftgrid.envs.engine.search.shortest_plan`: engine states, all seven actions, drops
  included; no heuristic, no model of the oracle's) finds no shorter plan than the oracle's on
  small levels of every family, and on levels where the optimum moves an object out of the way
  (hand-built ones, and generated ones found by searching for plans with a free drop). The
  oracle's plan replays to success in the minigrid env in exactly its length.
- minigrid's ``BabyAIBot`` never gets a return above ``optimal_return`` on any split of the
  families it plays, on 1,000 levels per split (also ``shiftgrid check --bot 1000``).
- :func:`~shiftgrid.envs.oracle.solve_from` plans from mid-episode states: its plan replays to
  success in exactly its length, is never longer than what remains of a plan on the optimal
  path, and matches the exhaustive search.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.world_object import Ball, Goal, Key, Wall
from minigrid.utils.baby_ai_bot import BabyAIBot

import shiftgrid.envs as sg
from shiftgrid.envs.level import KeyedDoor, LevelBuilder
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.engine.search import shortest_plan
from shiftgrid.envs.oracle import DROP, solve, solve_from

#: The current id of each built-in family.
IDS = {f.name: f.env_id() for f in sg.BUILTIN_FAMILIES}

STATE_CAP = 60_000  # env states the exhaustive search may visit on one level

# Small levels of every family: factor keywords override the train split's values.
SMALL = {
    "GoTo": dict(size=5, num_distractors=3),
    "Pickup": dict(size=5, num_distractors=4),
    "PutNext": dict(size=5, num_distractors=2),
    "DoorKey": dict(size=6, num_distractors=2),
    "Maze": dict(size=9),
    "Sequence": dict(size=7, num_clauses=2, num_distractors=1),
}
LEVELS_PER_FAMILY = 8  # ordinary small levels
DROP_LEVELS_PER_FAMILY = 2  # small levels whose optimum needs a free drop (found by search)
#: Families whose small levels include some that only a free drop solves fastest (about 1 in 10-20
#: seeds: a distractor key in the way, an object put down to carry another). Small Pickup levels
#: keep the floor passable, so there it is the hand-built level above.
BEATEN_FAMILIES = ("PutNext", "DoorKey", "Sequence")
DROP_SEARCH_SEEDS = 150


# -- the exhaustive search over the one rule set, and env snapshots ----------------------------------

def _snapshot(u) -> tuple:
    objs = tuple((o, None if o.cur_pos is None else tuple(int(v) for v in o.cur_pos),
                  getattr(o, "is_open", None), getattr(o, "is_locked", None)) for o in u.objects)
    return (list(u.grid.grid), tuple(u.agent_pos), u.agent_dir, u.carrying, u.step_count,
            u.progress.step, set(u.progress.done), objs)


def _restore(u, snap) -> None:
    cells, pos, d, carrying, steps, pstep, pdone, objs = snap
    u.grid.grid[:] = cells
    for i in range(len(cells)):
        u.grid.refresh(i % u.grid.width, i // u.grid.width)
    u.agent_pos, u.agent_dir, u.carrying, u.step_count = pos, d, carrying, steps
    u.progress.step, u.progress.done = pstep, set(pdone)
    for o, cp, is_open, is_locked in objs:
        o.cur_pos = None if cp is None else np.array(cp)
        if is_open is not None:
            o.is_open, o.is_locked = is_open, is_locked


def env_optimum(env, limit: int, free_drops: bool = True) -> tuple[int, ...] | None:
    """A shortest action sequence (at most ``limit`` long) that succeeds from the env's current state, or None.

    Searched exhaustively over engine states from the env's state (``free_drops=False``: ``drop``
    only as the action that completes the mission).
    """
    return shortest_plan(env, limit, free_drops=free_drops, cap=STATE_CAP)


def _replays(env, actions) -> bool:
    for j, a in enumerate(actions):
        _, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            return bool(info["success"]) and j == len(actions) - 1
    return False


def _assert_exact(env, plan_actions, where: str) -> None:
    best = env_optimum(env, len(plan_actions))
    assert best is not None, f"{where}: the oracle's plan {plan_actions} does not succeed"
    assert len(best) == len(plan_actions), (
        f"{where}: exhaustive search found {best} ({len(best)} steps), oracle {plan_actions} ({len(plan_actions)})"
    )
    assert _replays(env, plan_actions), f"{where}: the oracle's plan does not replay to success in its length"


# -- hand-built levels where the optimum moves an object aside -----------------------------------

def _builder(width, height, agent, direction):
    b = LevelBuilder(width, height, np.random.default_rng(0))
    b.agent_pos, b.agent_dir = agent, direction
    return b


def _walls(b, cells):
    for x, y in cells:
        b.put(Wall(), x, y)


def corridor_pickup_behind_blocker():
    """A ball blocks a corridor to the key; one side pocket at (1, 2) to put it in.

    pickup ball, right (face the pocket), drop, left, forward x2, pickup key = 7.
    """
    b = _builder(7, 4, (1, 1), 0)
    _walls(b, [(2, 2), (3, 2), (4, 2), (5, 2)])
    b.put(Ball("blue"), 2, 1)
    k = b.put(Key("red"), 4, 1)
    return b.build("pick up the red key", Mission(((Clause("pickup", k),),)))


def doorkey_wrong_key_in_hand_way():
    """A distractor key blocks the corridor to the right key; a locked door, then the goal."""
    b = _builder(8, 4, (1, 1), 0)
    _walls(b, [(2, 2), (3, 2), (4, 2), (6, 2)])
    b.put(Key("green"), 2, 1)
    b.put(Key("yellow"), 3, 1)
    d = b.put(KeyedDoor("yellow", is_locked=True), 4, 1)
    b.put(Goal(), 6, 1)
    return b.build("open the yellow door, then get to the goal", Mission(((Clause("open", d),), (Clause("reach"),))))


def goto_by_carrying():
    """Go to a ball that is first carried: pick it up, and drop it in front is enough to 'go to' it."""
    b = _builder(6, 3, (1, 1), 0)
    t = b.put(Ball("red"), 2, 1)
    b.put(Ball("green"), 4, 1)
    steps = ((Clause("goto", 1),), (Clause("goto", t),))
    return b.build("go to the green ball, then go to the red ball", Mission(steps))


HAND_BUILT = {
    "pickup_behind_blocker": (corridor_pickup_behind_blocker, 7),
    "doorkey_distractor_in_the_way": (doorkey_wrong_key_in_hand_way, None),
    "goto_by_carrying": (goto_by_carrying, None),
}


@pytest.mark.parametrize("name", list(HAND_BUILT))
def test_hand_built_levels_that_need_a_drop(name, fixed_level_env):
    build, steps = HAND_BUILT[name]
    plan = solve(build())
    assert plan.exact
    if steps is not None:
        assert len(plan.actions) == steps, plan.actions
    assert DROP in plan.actions[:-1] or name == "goto_by_carrying"
    env = fixed_level_env(build, max_steps=500)
    env.reset(seed=0)
    assert env.optimal_actions == plan.actions
    _assert_exact(env, plan.actions, name)


# -- small generated levels of every family ------------------------------------------------------

def _small_env(name: str):
    return gym.make(IDS[name], max_steps=500, **SMALL[name])


def _free_drop(plan, mission) -> bool:
    last_putnext = mission.steps[-1][-1].verb == "putnext"
    return DROP in (plan.actions[:-1] if last_putnext else plan.actions)


def _beaten_seeds(env, count: int) -> list[int]:
    """Seeds (found by search, never fixed) of small levels that no plan without a free drop solves as fast.

    Candidates are levels whose oracle plan drops an object somewhere free; the exhaustive
    search without free drops confirms that such a plan is longer (what an oracle blind to
    drops would have reported).
    """
    out = []
    for seed in range(DROP_SEARCH_SEEDS):
        env.reset(seed=seed)
        u = env.unwrapped
        plan = u.sample.plan
        if _free_drop(plan, u.level.mission):
            slow = env_optimum(env, len(plan.actions), free_drops=False)
            if slow is None or len(slow) > len(plan.actions):
                out.append(seed)
                if len(out) == count:
                    break
    return out


def test_every_family_has_small_levels_in_this_test():
    assert set(SMALL) == {f.name for f in sg.BUILTIN_FAMILIES}


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.levels
def test_no_plan_beats_the_oracle_on_small_levels(name):
    env = _small_env(name)
    u = env.unwrapped
    for seed in range(LEVELS_PER_FAMILY):
        _, info = env.reset(seed=seed)
        assert info["optimal_exact"]
        _assert_exact(env, u.optimal_actions, f"{name} seed {seed} ({u.mission!r})")
    if name in BEATEN_FAMILIES:
        beaten = _beaten_seeds(env, DROP_LEVELS_PER_FAMILY)
        assert beaten, f"no small {name} level among {DROP_SEARCH_SEEDS} seeds is solved faster with a free drop"
        for seed in beaten:
            env.reset(seed=seed)
            _assert_exact(env, u.optimal_actions, f"{name} seed {seed} ({u.mission!r})")
    env.close()


# -- BabyAI's bot never beats the optimum -------------------------------------------------------

BOT_FAMILIES = ("GoTo", "Pickup", "PutNext", "Sequence")
BOT_LEVELS = 1000  # per split, as the issue asks (also: `shiftgrid check --bot 1000`)


def bot_episode(env, seed: int):
    """Play BabyAIBot on the level of ``seed``: ``(return, optimal_return)``, or None where the bot does not apply or gives up."""
    _, info = env.reset(seed=seed)
    u = env.unwrapped
    if u._instrs is None:
        return None
    bot = BabyAIBot(u)
    ret, done = 0.0, False
    try:
        while not done:
            _, reward, terminated, truncated, _ = env.step(bot.replan())
            ret += reward
            done = terminated or truncated
    except AssertionError:  # the bot's own planner gives up on a few levels (about 1 in 1,000 PutNext ones)
        return None
    return ret, info["optimal_return"]


BOT_CASES = [(f, s) for f in BOT_FAMILIES for s in sg.splits_for(IDS[f]) if not s.endswith("/id")]


@pytest.mark.levels
@pytest.mark.parametrize("family,split", BOT_CASES, ids=[f"{f}/{s}" for f, s in BOT_CASES])
def test_babyai_bot_never_beats_optimal_return(family, split):
    env = gym.make(IDS[family], split=split)
    probe = gym.make(IDS[family], split=split, oracle=False)  # cheap resets to find the bot's levels
    played, beaten = 0, []
    for seed in range(30 * BOT_LEVELS):  # Sequence instructions/far: about 1 mission in 8 is expressible
        if played == BOT_LEVELS:
            break
        probe.reset(seed=seed)
        if probe.unwrapped._instrs is None:
            continue
        out = bot_episode(env, seed)
        if out is None:
            continue
        played += 1
        if out[0] > out[1] + 1e-9:
            beaten.append((seed, out))
    assert played == BOT_LEVELS, f"only {played} levels the bot could play in {30 * BOT_LEVELS} seeds"
    assert not beaten, f"BabyAIBot beat optimal_return on {beaten}"
    env.close()


# -- planning from mid-episode states ------------------------------------------------------------

MID_LEVELS = 5  # levels per family
MID_PREFIXES = 4  # random action prefixes per level
MID_EXHAUSTIVE = {"GoTo", "Pickup", "PutNext", "DoorKey", "Sequence"}  # also checked against the exhaustive search


def _replay_from_reset(env, seed, actions):
    env.reset(seed=seed)
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        assert not (terminated or truncated)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.levels
def test_solve_from_mid_episode_states(name):
    env = _small_env(name)
    u = env.unwrapped
    rng = np.random.default_rng(7)
    for seed in range(MID_LEVELS):
        _, info = env.reset(seed=seed)
        full = u.optimal_actions
        for k in range(1, len(full)):  # on the optimal path: exactly the rest of the plan's length
            _replay_from_reset(env, seed, full[:k])
            plan = solve_from(env)
            assert len(plan.actions) == plan.steps == len(full) - k, (seed, k, plan.actions, full)
        for _ in range(MID_PREFIXES):  # off the path: random prefixes (episode kept running)
            env.reset(seed=seed)
            prefix = []
            for a in rng.integers(7, size=int(rng.integers(1, 12))):
                snap = _snapshot(u)
                _, _, terminated, truncated, _ = env.step(int(a))
                if terminated or truncated:
                    _restore(u, snap)
                    break
                prefix.append(int(a))
            _replay_from_reset(env, seed, prefix)
            try:
                plan = solve_from(env)
            except sg.UnsolvableLevel:  # e.g. a named box toggled away: the exhaustive search agrees
                if name in MID_EXHAUSTIVE:
                    assert env_optimum(env, 30) is None
                continue
            assert plan.exact
            if name in MID_EXHAUSTIVE:
                _assert_exact(env, plan.actions, f"{name} seed {seed} after {prefix}")
            else:
                assert _replays(env, plan.actions)
    env.close()


def test_solve_from_reads_moved_objects_and_progress(fixed_level_env):
    """After the blocker is put in the pocket, the plan from there is the rest of the optimum."""
    env = fixed_level_env(corridor_pickup_behind_blocker, max_steps=500)
    env.reset(seed=0)
    full = env.optimal_actions
    for a in full[:3]:  # pickup, right, drop: the ball now lies in the pocket
        env.step(a)
    assert env.carrying is None and env.grid.get(1, 2).type == "ball"
    assert solve_from(env).actions == full[3:]
    assert env.optimal_plan_from_here().actions == full[3:]
    for a in full[3:]:
        env.step(a)
    with pytest.raises(ValueError, match="already complete"):
        solve_from(env)

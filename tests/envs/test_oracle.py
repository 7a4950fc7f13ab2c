"""The oracle on small hand-built levels whose optimal step counts are worked out by hand.

Coordinates are (x, y); the agent's direction is 0=right, 1=down, 2=left, 3=up. Every
deterministic plan is also replayed in an environment serving that one level.
"""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.core.world_object import Ball, Box, Goal, Key, Wall

from shiftgrid.envs.level import KeyedDoor, LevelBuilder
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.oracle import DROP, FORWARD, LEFT, PICKUP, RIGHT, TOGGLE, UnsolvableLevel, solve


def _builder(width, height, agent, direction):
    b = LevelBuilder(width, height, np.random.default_rng(0))
    b.agent_pos, b.agent_dir = agent, direction
    return b


def _one(verb, target=-1, other=-1) -> Mission:
    return Mission(((Clause(verb, target, other),),))


# -- levels (each call builds a fresh one) -------------------------------------------------------

def corridor_goto():
    """Agent at the left end of a 5-cell corridor facing right, a ball at the right end: 3 forwards."""
    b = _builder(7, 3, (1, 1), 0)
    i = b.put(Ball("red"), 5, 1)
    return b.build("go to the red ball", _one("goto", i))


def corridor_reach(goal_x=5):
    b = _builder(7, 3, (1, 1), 0)
    b.put(Goal(), goal_x, 1)
    return b.build("get to the goal", _one("reach"))


def turn_around():
    """Ball behind the agent: two turns, then two forwards to stand next to it."""
    b = _builder(7, 3, (4, 1), 0)
    i = b.put(Ball("blue"), 1, 1)
    return b.build("go to the blue ball", _one("goto", i))


def door_then_goal(verb="reach"):
    """A closed door across the corridor: forward, toggle, then three forwards onto the goal."""
    b = _builder(7, 3, (1, 1), 0)
    d = b.put(KeyedDoor("blue"), 3, 1)
    b.put(Goal(), 5, 1)
    if verb == "open":
        return b.build("open the blue door", _one("open", d))
    return b.build("get to the goal", _one("reach"))


def locked_door(key_color="yellow", door_key_color=None, with_key=True):
    """Key below the agent, a locked door in a wall column at x=3, the goal behind it.

    pickup, turn left (to face right), forward, toggle (unlock and open), forward x3 = 7.
    """
    b = _builder(7, 4, (1, 1), 1)
    b.put(Wall(), 3, 2)
    b.put(KeyedDoor("yellow", is_locked=True, key_color=door_key_color), 3, 1)
    if with_key:
        b.put(Key(key_color), 1, 2)
    b.put(Goal(), 5, 1)
    return b.build("get to the goal", _one("reach"))


def box_in_corridor():
    """A box blocks the corridor to a key: toggling the box removes it (picking it up would fill the hands)."""
    b = _builder(7, 3, (1, 1), 0)
    b.put(Box("green"), 2, 1)
    k = b.put(Key("red"), 4, 1)
    return b.build("pick up the red key", _one("pickup", k))


def put_next():
    """Pick up the ball in front, step forward, drop it next to the box: 3 actions."""
    b = _builder(7, 3, (1, 1), 0)
    ball = b.put(Ball("purple"), 2, 1)
    box = b.put(Box("grey"), 4, 1)
    return b.build("put the purple ball next to the grey box", _one("putnext", ball, box))


def two_balls(order):
    """Balls at both ends of a 7-cell corridor, the agent in the middle facing right.

    right (A) first: 2 forwards, 2 turns, 4 forwards = 8; left (B) first: 2 + 2 + 2 + 4 = 10.
    """
    b = _builder(9, 3, (4, 1), 0)
    a = b.put(Ball("red"), 7, 1)
    c = b.put(Ball("blue"), 1, 1)
    if order == "a_then_b":
        steps = ((Clause("goto", a),), (Clause("goto", c),))
        text = "go to the red ball, then go to the blue ball"
    elif order == "b_then_a":
        steps = ((Clause("goto", c),), (Clause("goto", a),))
        text = "go to the blue ball, then go to the red ball"
    else:
        steps = ((Clause("goto", a), Clause("goto", c)),)
        text = "go to the red ball and go to the blue ball"
    return b.build(text, Mission(steps))


def walled_in_ball():
    """A ball enclosed by walls on all four sides: nothing can face it."""
    b = _builder(7, 5, (1, 1), 0)
    for x, y in ((3, 2), (5, 2), (4, 1), (4, 3)):
        b.put(Wall(), x, y)
    i = b.put(Ball("red"), 4, 2)
    return b.build("go to the red ball", _one("goto", i))


# -- deterministic optimal plans ------------------------------------------------------------------

CASES = {
    "straight_line_goto": (corridor_goto, 3),
    "straight_line_reach": (corridor_reach, 4),
    "turn_around": (turn_around, 4),
    "door_to_open_then_goal": (door_then_goal, 5),
    "open_the_door": (lambda: door_then_goal("open"), 2),
    "locked_door_needs_key": (locked_door, 7),
    "keyed_door_other_colour": (lambda: locked_door(key_color="red", door_key_color="red"), 7),
    "box_toggle_clears_path": (box_in_corridor, 4),
    "put_next_to": (put_next, 3),
    "ordered_steps_near_first": (lambda: two_balls("a_then_b"), 8),
    "ordered_steps_far_first": (lambda: two_balls("b_then_a"), 10),
    "unordered_clauses": (lambda: two_balls("and"), 8),
}


@pytest.mark.parametrize("name", list(CASES))
def test_optimal_step_count(name):
    build, steps = CASES[name]
    plan = solve(build())
    assert len(plan.actions) == steps, f"plan {plan.actions}"
    assert plan.steps == steps


@pytest.mark.parametrize("name", list(CASES))
def test_plan_replays_in_env(name, fixed_level_env):
    build, steps = CASES[name]
    env = fixed_level_env(build)
    _, info0 = env.reset(seed=0)
    assert info0["optimal_steps"] == steps
    actions = env.optimal_actions
    for j, a in enumerate(actions):
        _, reward, terminated, truncated, info = env.step(a)
        if j < len(actions) - 1:
            assert not (terminated or truncated) and reward == 0, f"episode ended at action {j + 1} of {actions}"
    assert terminated and info["success"]
    assert reward == info0["optimal_return"]


def test_specific_plans():
    assert solve(corridor_goto()).actions == (FORWARD,) * 3
    assert solve(turn_around()).actions in ((LEFT, LEFT, FORWARD, FORWARD), (RIGHT, RIGHT, FORWARD, FORWARD))
    assert solve(door_then_goal()).actions == (FORWARD, TOGGLE, FORWARD, FORWARD, FORWARD)
    assert solve(locked_door()).actions == (PICKUP, LEFT, FORWARD, TOGGLE, FORWARD, FORWARD, FORWARD)
    assert solve(box_in_corridor()).actions == (TOGGLE, FORWARD, FORWARD, PICKUP)
    assert solve(put_next()).actions == (PICKUP, FORWARD, DROP)


@pytest.mark.parametrize(
    "build",
    [
        walled_in_ball,
        lambda: locked_door(with_key=False),
        lambda: locked_door(key_color="red"),  # the door opens with yellow only
        lambda: locked_door(key_color="yellow", door_key_color="red"),  # a yellow door keyed to red
    ],
    ids=["walled_in_target", "locked_door_no_key", "locked_door_wrong_key", "keyed_door_wrong_key"],
)
def test_unsolvable_level(build):
    with pytest.raises(UnsolvableLevel):
        solve(build())
    with pytest.raises(UnsolvableLevel):
        solve(build(), slip=0.2)


# -- slippery floor -------------------------------------------------------------------------------

@pytest.mark.parametrize("slip", [0.1, 0.2, 0.5])
def test_slip_expected_steps_on_corridor(slip):
    """k forwards along a corridor. A slip turns the agent to face a wall, and one turn undoes it,
    so each forward costs E = 1 + slip * (1 + E) steps: E = (1 + slip) / (1 - slip)."""
    k = 3
    plan = solve(corridor_reach(goal_x=1 + k), slip=slip)
    assert plan.actions == (FORWARD,) * k
    assert plan.steps > k
    assert plan.steps == pytest.approx(k * (1 + slip) / (1 - slip), rel=1e-7)


def test_slip_expected_steps_match_env(fixed_level_env):
    """Monte Carlo in the env under the optimal policy agrees with the oracle's expectation."""
    slip, k, episodes = 0.2, 3, 4000
    build = lambda: corridor_reach(goal_x=1 + k)  # noqa: E731
    _, info = fixed_level_env(build, slip=slip).reset(seed=0)
    expected = info["optimal_steps"]
    assert expected == solve(build(), slip=slip).steps
    env = fixed_level_env(build, slip=slip, oracle=False)  # no value iteration at each of the many resets
    env.reset(seed=0)
    lengths = []
    for _ in range(episodes):
        n, done = 0, False
        while not done:
            d = env.agent_dir  # facing right: forward; facing up: right; facing down: left
            action = FORWARD if d == 0 else RIGHT if d == 3 else LEFT
            _, reward, terminated, truncated, info = env.step(action)
            n += 1
            done = terminated or truncated
        assert terminated and info["success"]
        lengths.append(n)
        env.reset()
    lengths = np.array(lengths, dtype=float)
    se = lengths.std(ddof=1) / np.sqrt(episodes)
    assert abs(lengths.mean() - expected) < 5 * se, (lengths.mean(), expected, se)


# -- drops anywhere, exactness flags --------------------------------------------------------------

def blocker_in_pocket_corridor():
    """A ball blocks a corridor to the key, a pocket at (1, 2) beside the agent to put it in:
    pickup, right, drop, left, forward x2, pickup = 7 (no plan without that drop exists)."""
    b = _builder(7, 4, (1, 1), 0)
    for x in range(2, 6):
        b.put(Wall(), x, 2)
    b.put(Ball("blue"), 2, 1)
    k = b.put(Key("red"), 4, 1)
    return b.build("pick up the red key", _one("pickup", k))


def test_drop_to_clear_the_way():
    plan = solve(blocker_in_pocket_corridor())
    assert plan.actions == (PICKUP, RIGHT, DROP, LEFT, FORWARD, FORWARD, PICKUP)
    assert plan.exact


def test_passed_budget_falls_back_and_says_inexact():
    """Past the state budget the plan comes from the drop-free search: valid, and flagged inexact."""
    exact = solve(put_next())
    plan = solve(put_next(), max_states=2)
    assert not plan.exact and exact.exact
    assert plan.steps >= exact.steps == 3


def test_slip_without_objects_to_move_is_exact():
    assert solve(corridor_reach(), slip=0.2).exact


def test_slip_with_objects_inexact_by_default_exact_with_rounds():
    """With slip, free drops are searched only with ``slip_rounds``; the default flags the value inexact."""
    fast = solve(locked_door(), slip=0.2)
    full = solve(locked_door(), slip=0.2, slip_rounds=50)
    assert not fast.exact and full.exact
    assert full.steps <= fast.steps + 1e-9
    assert full.steps >= len(full.actions)


def test_slip_level_only_drops_solve_is_not_unsolvable():
    """The drop-free policies never complete it; the free-drop search then runs whatever the default."""
    plan = solve(blocker_in_pocket_corridor(), slip=0.2)
    assert plan.exact and plan.steps > 7

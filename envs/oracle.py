"""The oracle: an optimal plan for a generated level, by exact search over its state space.

The search state is (agent pose, carried object, objects removed from the floor, unlocked
doors, open doors, mission progress). Actions are turns, ``forward``, ``pickup`` of any object
(which clears its cell), ``toggle`` of doors (unlock with the matching key, open, close) and of
boxes (which removes them, as in minigrid), and ``drop`` where it completes the mission
(``putnext``). Breadth-first search over that space returns a shortest plan.

What is not searched: dropping an object anywhere other than to complete the mission
(relocating a blocker). Such plans are never shorter on the levels shiftgrid generates unless
an object must be moved out of a corridor; the solvability tests replay every plan in the
environment, and :attr:`Plan.steps` is the length of the plan found.

With a slippery floor (``slip > 0``: ``forward`` turns the agent left or right with that
probability) the oracle solves the Markov decision process exactly by value iteration over
the reachable states and reports the *expected* number of steps of the optimal policy.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v0")
    >>> _, info = env.reset(seed=0)
    >>> plan = solve(env.unwrapped.level)
    >>> len(plan.actions) == info["optimal_steps"]
    True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from minigrid.core.actions import Actions

from shiftgrid.envs.level import KeyedDoor, Level

LEFT, RIGHT, FORWARD = int(Actions.left), int(Actions.right), int(Actions.forward)
PICKUP, DROP, TOGGLE = int(Actions.pickup), int(Actions.drop), int(Actions.toggle)
_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


class UnsolvableLevel(RuntimeError):
    """No plan completes the mission (a generator bug, or a split whose levels cannot be solved)."""


@dataclass(frozen=True)
class Plan:
    """An optimal plan: the actions of a shortest deterministic plan and the optimal step count.

    ``steps`` equals ``len(actions)`` without slip; with slip it is the optimal *expected* count.
    """

    actions: tuple[int, ...]
    steps: float


class _Model:
    """Deterministic transition model of a level, over compact tuple states."""

    def __init__(self, level: Level):
        g = level.grid
        self.w, self.h = g.width, g.height
        n = self.w * self.h
        self.blocked = np.zeros(n, dtype=bool)  # walls and lava: never entered by a plan
        self.goal = np.zeros(n, dtype=bool)
        self.obj_at = [-1] * n
        self.objects = level.objects
        for y in range(self.h):
            for x in range(self.w):
                cell, c = g.get(x, y), y * self.w + x
                if cell is None:
                    continue
                if cell.type in ("wall", "lava"):
                    self.blocked[c] = True
                elif cell.type == "goal":
                    self.goal[c] = True
        index = {id(o): i for i, o in enumerate(level.objects)}
        for i, o in enumerate(level.objects):
            x, y = o.cur_pos
            self.obj_at[y * self.w + x] = i
        for y in range(self.h):
            for x in range(self.w):
                cell = g.get(x, y)
                if cell is not None and cell.type in ("door", "box", "ball", "key") and id(cell) not in index:
                    raise ValueError(f"object at {(x, y)} is missing from level.objects")
        self.mission = level.mission
        self.kind = [o.type for o in level.objects]
        self.key_color = [getattr(o, "key_color", None) if isinstance(o, KeyedDoor) else o.color for o in level.objects]
        self.color = [o.color for o in level.objects]
        unlocked = opened = 0
        for i, o in enumerate(level.objects):
            if o.type == "door":
                unlocked |= (not o.is_locked) << i
                opened |= o.is_open << i
        x, y = level.agent_pos
        self.start = ((y * self.w + x) * 4 + level.agent_dir, -1, 0, unlocked, opened, 0, 0)

    def front(self, pose: int) -> int:
        c, d = divmod(pose, 4)
        y, x = divmod(c, self.w)
        fx, fy = x + _DIRS[d][0], y + _DIRS[d][1]
        if 0 <= fx < self.w and 0 <= fy < self.h:
            return fy * self.w + fx
        return -1

    def present(self, c: int, removed: int) -> int:
        """Index of the object on cell ``c`` if still on the floor, else -1."""
        i = self.obj_at[c] if c >= 0 else -1
        return -1 if i < 0 or (removed >> i) & 1 else i

    def _clause_done(self, clause, action, pre_carry, state) -> bool:
        pose, carry, removed = state[0], state[1], state[2]
        verb = clause.verb
        if verb == "reach":
            return bool(self.goal[pose // 4])
        if verb == "goto":
            return self.present(self.front(pose), removed) == clause.target
        if verb == "pickup":
            return action == PICKUP and pre_carry == -1 and carry == clause.target
        if verb == "open":
            t = clause.target
            return action == TOGGLE and self.front(pose) == self.obj_at_cell(t) and bool((state[4] >> t) & 1)
        return False  # putnext is handled by the drop transition

    def obj_at_cell(self, i: int) -> int:
        x, y = self.objects[i].cur_pos
        return y * self.w + x

    def _progress(self, state, action, pre_carry, dropped_next_to: int = -1):
        """Advance (step, done) after ``action``; return (step, done, complete)."""
        step, done = state[5], state[6]
        steps = self.mission.steps
        while step < len(steps):
            clauses = steps[step]
            for i, clause in enumerate(clauses):
                if (done >> i) & 1:
                    continue
                if clause.verb == "putnext":
                    ok = action == DROP and pre_carry == clause.target and dropped_next_to == clause.other
                else:
                    ok = self._clause_done(clause, action, pre_carry, state)
                if ok:
                    done |= 1 << i
            if done != (1 << len(clauses)) - 1:
                return step, done, False
            step, done = step + 1, 0
        return step, done, True

    def _adjacent_objects(self, c: int, removed: int) -> set[int]:
        y, x = divmod(c, self.w)
        out = set()
        for dx, dy in _DIRS:
            nx, ny = x + dx, y + dy
            if 0 <= nx < self.w and 0 <= ny < self.h:
                i = self.present(ny * self.w + nx, removed)
                if i >= 0:
                    out.add(i)
        return out

    def transitions(self, state):
        """Yield ``(action, next_state, complete)`` for every useful action from ``state``."""
        pose, carry, removed, unlocked, opened = state[:5]
        c, d = divmod(pose, 4)
        f = self.front(pose)
        for action, nd in ((LEFT, (d + 3) % 4), (RIGHT, (d + 1) % 4)):
            nxt = (c * 4 + nd, carry, removed, unlocked, opened) + state[5:]
            yield self._finish(action, nxt, carry)
        if f < 0:
            return
        i = self.present(f, removed)
        if not self.blocked[f] and (i < 0 or (self.kind[i] == "door" and (opened >> i) & 1)):
            yield self._finish(FORWARD, (f * 4 + d, carry, removed, unlocked, opened) + state[5:], carry)
        if i < 0:
            if carry >= 0 and not self.blocked[f] and not self.goal[f]:
                step, done, complete = self._progress_drop(state, f)
                if complete:
                    yield DROP, (pose, -1, removed, unlocked, opened, step, done), True
            return
        kind = self.kind[i]
        if kind in ("ball", "key", "box") and carry < 0:
            yield self._finish(PICKUP, (pose, i, removed | (1 << i), unlocked, opened) + state[5:], carry)
        if kind == "box":
            yield self._finish(TOGGLE, (pose, carry, removed | (1 << i), unlocked, opened) + state[5:], carry)
        elif kind == "door":
            if not (unlocked >> i) & 1:
                if carry >= 0 and self.kind[carry] == "key" and self.color[carry] == self.key_color[i]:
                    nxt = (pose, carry, removed, unlocked | (1 << i), opened | (1 << i)) + state[5:]
                    yield self._finish(TOGGLE, nxt, carry)
            else:
                yield self._finish(TOGGLE, (pose, carry, removed, unlocked, opened ^ (1 << i)) + state[5:], carry)

    def _finish(self, action, nxt, pre_carry):
        step, done, complete = self._progress(nxt, action, pre_carry)
        return action, nxt[:5] + (step, done), complete

    def _progress_drop(self, state, cell):
        carry = state[1]
        for other in self._adjacent_objects(cell, state[2]):
            step, done, complete = self._progress(state, DROP, carry, dropped_next_to=other)
            if complete:
                return step, done, True
        return state[5], state[6], False


def _bfs(model: _Model, max_states: int):
    start = model.start
    parent = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for action, nxt, complete in model.transitions(state):
            if complete:
                actions = [action]
                while parent[state] is not None:
                    state, a = parent[state]
                    actions.append(a)
                return tuple(reversed(actions))
            if nxt not in parent:
                parent[nxt] = (state, action)
                if len(parent) > max_states:
                    raise UnsolvableLevel(f"search exceeded {max_states} states")
                queue.append(nxt)
    raise UnsolvableLevel("no sequence of actions completes the mission")


def _expected_steps(model: _Model, slip: float, max_states: int) -> float:
    """Optimal expected steps to complete the mission when ``forward`` slips with prob ``slip``."""
    index = {model.start: 0}
    states = [model.start]
    edges: list[dict[int, int]] = []  # per state: action -> next index (-1 = mission complete)
    k = 0
    while k < len(states):
        out = {}
        for action, nxt, complete in model.transitions(states[k]):
            if complete:
                out[action] = -1
                continue
            if nxt not in index:
                index[nxt] = len(states)
                states.append(nxt)
                if len(states) > max_states:
                    raise UnsolvableLevel(f"value iteration exceeded {max_states} states")
            out[action] = index[nxt]
        edges.append(out)
        k += 1
    n = len(states)
    # States from which the mission can still be completed (dead ends, such as carrying the
    # wrong key with no drop searched, would otherwise grow without bound).
    good = np.zeros(n, dtype=bool)
    preds: list[list[int]] = [[] for _ in range(n)]
    frontier = []
    for s, out in enumerate(edges):
        for t in out.values():
            if t == -1:
                if not good[s]:
                    good[s] = True
                    frontier.append(s)
            else:
                preds[t].append(s)
    while frontier:
        t = frontier.pop()
        for s in preds[t]:
            if not good[s]:
                good[s] = True
                frontier.append(s)
    done = n  # absorbing index with value 0
    nxt = np.full((n, 7), -2, dtype=np.int64)  # -2 = action not useful here
    for s, out in enumerate(edges):
        for a, t in out.items():
            if t == -1 or good[t]:
                nxt[s, a] = done if t == -1 else t
    left, right = nxt[:, LEFT], nxt[:, RIGHT]
    value = np.where(np.append(good, True), 0.0, np.inf)
    for _ in range(100_000):
        q = np.full((n, 7), np.inf)
        for a in (LEFT, RIGHT, PICKUP, DROP, TOGGLE):
            ok = nxt[:, a] != -2
            q[ok, a] = 1.0 + value[nxt[ok, a]]
        ok = (nxt[:, FORWARD] != -2) & (left != -2) & (right != -2)
        q[ok, FORWARD] = 1.0 + (1 - slip) * value[nxt[ok, FORWARD]] + slip / 2 * (value[left[ok]] + value[right[ok]])
        new = np.append(np.where(good, q.min(axis=1), np.inf), 0.0)
        if np.allclose(new, value, rtol=0, atol=1e-9, equal_nan=False) or np.array_equal(new, value):
            value = new
            break
        value = new
    if not np.isfinite(value[0]):
        raise UnsolvableLevel("no policy completes the mission")
    return float(value[0])


def solve(level: Level, slip: float = 0.0, max_states: int = 500_000) -> Plan:
    """Optimal plan for ``level``; with ``slip > 0`` its ``steps`` is the optimal expected count.

    Raises:
        UnsolvableLevel: if no plan completes the mission.
    """
    model = _Model(level)
    actions = _bfs(model, max_states)
    steps = float(len(actions)) if slip <= 0 else _expected_steps(model, slip, max_states)
    return Plan(actions, steps)

"""The oracle: an optimal plan for a generated level, by exact search over its state space.

The search state (:mod:`shiftgrid.envs.oracle_state`) is the agent's pose, the carried object,
where every object now lies (picked up, dropped anywhere, toggled away), the doors' locks and
openings, and the mission's progress. Its moves are the environment's own: turns, ``forward``,
``pickup``, ``toggle`` (doors with the matching key; boxes, which vanish as in minigrid) and
``drop`` on any free cell in front, so plans that move a blocker aside, or put a carried
object down to pick up another, are searched. A* with an admissible lower bound (distances on
the walls-only grid, plus the actions each remaining clause needs) returns a shortest plan.

Exactness: where the search would pass ``max_states`` states, the oracle falls back to the
search without free drops (only the drop that completes a ``putnext``), whose plan is valid
but may be longer than the optimum; :attr:`Plan.exact` is then False, and so is
``info["optimal_exact"]``. It is never called exact unless the full search proved it.

With a slippery floor (``slip > 0``: ``forward`` turns the agent left or right with that
probability) the oracle solves the Markov decision process by value iteration and reports
the *expected* number of steps of the optimal policy. On levels with nothing to pick up
(Maze) the drop-free states are all the states, and the value is exact. Elsewhere the value
by default covers the policies without free drops only, an upper bound flagged inexact;
``slip_rounds > 0`` runs an LAO*-style search over free drops instead (exact where it
finishes within ``max_mdp_states`` and that many rounds; slow: hundreds of ms a level).

:func:`solve_from` plans from a live environment mid-episode (the agent's pose, what it
carries, objects moved or removed, doors, mission progress).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1")
    >>> _, info = env.reset(seed=0)
    >>> plan = solve(env.unwrapped.level)
    >>> len(plan.actions) == info["optimal_steps"], plan.exact
    (True, True)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from shiftgrid.envs.level import Level
from shiftgrid.envs.oracle_state import (  # noqa: F401  (action names are part of this module's API)
    DONE, DROP, FORWARD, INF, LEFT, PICKUP, RIGHT, TOGGLE, InvalidLevel, Model, State,
)

MAX_STATES = 100_000
MAX_MDP_STATES = 20_000
FALLBACK_STATES = 500_000  # the drop-free searches a passed budget falls back on
FALLBACK_ROUNDS = 100
SLIP_ROUNDS = 0  # default: no free-drop search with slip (it rarely finishes within budget; see solve)


class UnsolvableLevel(RuntimeError):
    """No plan completes the mission (a generator bug, or a split whose levels cannot be solved)."""


class _Budget(Exception):
    """The search passed its state budget."""


@dataclass(frozen=True)
class Plan:
    """An optimal plan: the actions of a shortest deterministic plan and the optimal step count.

    ``steps`` equals ``len(actions)`` without slip; with slip it is the optimal *expected* count.
    ``exact`` is False where the state budget forced a search without free drops: the plan is
    valid, but a shorter one (or, with slip, a better policy) may exist.
    """

    actions: tuple[int, ...]
    steps: float
    exact: bool = True


def _path(parent: dict, state: State, last: int) -> tuple[int, ...]:
    actions = [last]
    while parent[state] is not None:
        state, a = parent[state]
        actions.append(a)
    return tuple(reversed(actions))


def _first(model: Model) -> list[tuple[int, State, bool]]:
    """The start state's successors, the no-op included where it advances the mission."""
    out = list(model.transitions(model.start))
    idle = model.idle(model.start)
    return out + [idle] if idle is not None else out


def _astar(model: Model, max_states: int) -> tuple[int, ...]:
    """A shortest plan by A* over ``model`` (bucketed by f = g + h, deepest first within a bucket)."""
    start = model.start
    h0 = model.lower_bound(start)
    if h0 >= INF:
        raise UnsolvableLevel("no sequence of actions completes the mission")
    g = {start: 0}
    parent: dict = {start: None}
    buckets: dict[int, list] = {h0: [(start, 0)]}
    best, best_end, f, top = INF, None, h0, h0
    while f < best and f <= top:
        bucket = buckets.pop(f, [])
        while bucket:
            s, gs = bucket.pop()
            if g[s] < gs:
                continue
            for action, nxt, complete in (_first(model) if s is start else model.transitions(s)):
                ng = gs + 1
                if complete:
                    if ng < best:
                        best, best_end = ng, (s, action)
                    continue
                if ng >= g.get(nxt, INF):
                    continue
                fn = ng + model.lower_bound(nxt)
                if fn >= best or fn >= INF:
                    continue
                g[nxt] = ng
                parent[nxt] = (s, action)
                if len(g) > max_states:
                    raise _Budget
                (bucket if fn == f else buckets.setdefault(fn, [])).append((nxt, ng))
                top = max(top, fn)
            if best <= f:
                break
        f += 1
    if best_end is None:
        raise UnsolvableLevel("no sequence of actions completes the mission")
    return _path(parent, *best_end)


def _bfs(model: Model, max_states: int) -> tuple[int, ...]:
    """A shortest plan by breadth-first search (used on the restricted, drop-free model)."""
    start = model.start
    parent: dict = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for action, nxt, complete in (_first(model) if state is start else model.transitions(state)):
            if complete:
                return _path(parent, state, action)
            if nxt not in parent:
                parent[nxt] = (state, action)
                if len(parent) > max_states:
                    raise UnsolvableLevel(f"search exceeded {max_states} states")
                queue.append(nxt)
    raise UnsolvableLevel("no sequence of actions completes the mission")


def _expected_steps(model: Model, slip: float, max_states: int, max_rounds: int) -> float:
    """Optimal expected steps to complete the mission when ``forward`` slips with prob ``slip``.

    LAO*-style: value iteration over an envelope of expanded states, where states not yet
    expanded count their (admissible) lower bound. The envelope starts as every state
    reachable without free drops; the region around each state the greedy policy reaches
    outside it is expanded, until the greedy policy never leaves the envelope. Its value is
    then both that of a real policy and a lower bound on the optimum: the optimum. Raises
    ``_Budget`` past ``max_states`` states or ``max_rounds`` expansions.
    """
    index = {model.start: 0}
    states: list[State] = [model.start]
    rows: list[list[int] | None] = [None]  # per state: next index per action (-2 none, -1 complete)
    bound: list[float] = [0.0]

    def expand(k: int) -> None:
        stack = [k]
        while stack:
            j = stack.pop()
            if rows[j] is not None:
                continue
            row = [-2] * 7
            for action, nxt, complete in (_first(model) if j == 0 else model.transitions(states[j])):
                if complete:
                    row[action] = -1
                    continue
                t = index.get(nxt)
                if t is None:
                    t = index[nxt] = len(states)
                    states.append(nxt)
                    rows.append(None)
                    bound.append(float(model.lower_bound(nxt)))
                    if len(states) > max_states:
                        raise _Budget
                row[action] = t
                if action != DROP and rows[t] is None:
                    stack.append(t)
            rows[j] = row

    expand(0)
    value = None
    for _ in range(max_rounds):
        value, best, nxt = _iterate(rows, np.array(bound), slip, value)
        if not np.isfinite(value[0]):
            raise UnsolvableLevel("no policy completes the mission")
        frontier, seen, stack = [], {0}, [0]
        while stack:  # the states the greedy policy reaches
            s = stack.pop()
            if rows[s] is None:
                frontier.append(s)
                continue
            a = int(best[s])
            for t in (nxt[s, a], nxt[s, LEFT], nxt[s, RIGHT]) if a == FORWARD else (nxt[s, a],):
                if 0 <= t < len(rows) and t not in seen:
                    seen.add(int(t))
                    stack.append(int(t))
        if not frontier:
            return float(value[0])
        for k in frontier:
            expand(k)
    raise _Budget


def _iterate(
    rows: list, bound: np.ndarray, slip: float, init: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value iteration over expanded states (unexpanded ones keep ``bound``): values, greedy actions, successors."""
    n = len(rows)
    fixed = np.array([r is None for r in rows] + [True])
    nxt = np.array([[-2] * 7 if r is None else r for r in rows], dtype=np.int64)
    nxt[nxt == -1] = n  # the absorbing "complete" index, value 0
    has = nxt >= 0
    safe = np.where(has, nxt, n)
    good = fixed.copy()
    while True:  # states from which completion or an unexpanded state can be reached
        new = fixed | np.append((has & good[safe]).any(axis=1), True)
        if np.array_equal(new, good):
            break
        good = new
    value = np.zeros(n + 1)
    if init is not None:
        value[: len(init) - 1] = init[:-1]
    value = np.where(good, np.where(fixed, np.append(bound, 0.0), value), np.inf)
    usable = has & good[safe]
    fwd_ok = usable[:, FORWARD] & usable[:, LEFT] & usable[:, RIGHT]
    expanded = ~fixed[:-1]
    q = np.full((n, 7), np.inf)
    for _ in range(100_000):
        q = np.where(usable, 1.0 + value[safe], np.inf)
        f = 1.0 + (1 - slip) * value[safe[:, FORWARD]] + slip / 2 * (value[safe[:, LEFT]] + value[safe[:, RIGHT]])
        q[:, FORWARD] = np.where(fwd_ok, f, np.inf)
        new = value.copy()
        new[:-1] = np.where(expanded & good[:-1], q.min(axis=1), value[:-1])
        if np.array_equal(new, value) or np.allclose(new, value, rtol=0, atol=1e-9):
            value = new
            break
        value = new
    return value, q.argmin(axis=1), nxt


def _solve(make: Any, slip: float, max_states: int, max_mdp_states: int, slip_rounds: int) -> Plan:
    model = make(True)
    exact = True
    try:
        actions = _astar(model, max_states)
    except _Budget:
        exact, actions = False, _bfs(make(False), FALLBACK_STATES)
    if slip <= 0:
        return Plan(actions, float(len(actions)), exact)
    if not model.movable:  # nothing to drop: the drop-free state space is the whole one
        return Plan(actions, _expected_steps(model, slip, FALLBACK_STATES, 1), exact)
    try:
        if slip_rounds < 1:
            raise _Budget
        return Plan(actions, _expected_steps(model, slip, max_mdp_states, slip_rounds), exact)
    except _Budget:
        pass
    try:
        return Plan(actions, _expected_steps(make(False), slip, FALLBACK_STATES, 1), False)
    except UnsolvableLevel:  # only free drops complete it: search them after all, with a larger budget
        try:
            return Plan(actions, _expected_steps(model, slip, FALLBACK_STATES, FALLBACK_ROUNDS), exact)
        except _Budget:
            raise UnsolvableLevel("with slip, every policy needs free drops, and their search passed its budget") from None


def solve(level: Level, slip: float = 0.0, max_states: int = MAX_STATES, max_mdp_states: int = MAX_MDP_STATES,
          slip_rounds: int = SLIP_ROUNDS) -> Plan:
    """Optimal plan for ``level`` from its start; with ``slip > 0`` its ``steps`` is the optimal expected count.

    ``max_states`` bounds the deterministic search; ``max_mdp_states`` and ``slip_rounds`` the
    search with slip over free drops (0 rounds: go straight to the drop-free policies, inexact
    where the level has objects to move). Past a bound the plan is valid but ``exact`` is False.

    Raises:
        UnsolvableLevel: if no plan completes the mission.
        InvalidLevel: if an object of the level is not on its grid at its position (e.g. a played level).
    """
    Model.from_level(level)  # validates before any search
    return _solve(lambda drops: Model.from_level(level, drops), slip, max_states, max_mdp_states, slip_rounds)


def solve_from(env: Any, max_states: int = MAX_STATES, max_mdp_states: int = MAX_MDP_STATES,
               slip_rounds: int = SLIP_ROUNDS) -> Plan:
    """Optimal plan from the live state of a shiftgrid env mid-episode (unwrapped or wrapped).

    The state is read from the env as it stands: the agent's pose, the carried object, objects
    moved or removed, doors opened or unlocked, and the mission's progress. With slip, ``steps``
    is the optimal expected count from here.

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> env = gym.make("shiftgrid/DoorKey-v1"); _, info = env.reset(seed=6)
        >>> first = env.unwrapped.optimal_actions[0]
        >>> _ = env.step(first)
        >>> solve_from(env).steps == info["optimal_steps"] - 1
        True

    Raises:
        UnsolvableLevel: if the mission can no longer be completed (e.g. its object was toggled away).
        ValueError: if the episode is already over.
    """
    u = env.unwrapped
    if u.progress.complete:
        raise ValueError("the mission is already complete; reset the env to plan again")
    return _solve(lambda drops: Model.from_env(u, drops), u.slip, max_states, max_mdp_states, slip_rounds)

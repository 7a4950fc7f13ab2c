"""An admissible lower bound on the actions a level still needs from a state of the oracle's search.

Distances are on the level's walls-only grid (objects and doors relaxed to passable): the
fewest turns and moves from each pose to face a cell, computed backwards once per target.
The bound of a state is the largest of: each clause of the current step (with the detours it
must make: the key of a locked door, dropping what is carried), plus the actions (pickup,
toggle) later steps need; and, over every remaining clause in any order, the travel between
the cells they must be faced from, plus their actions. It never exceeds the true remaining
count (A* over :class:`~shiftgrid.envs.oracle_state.Model` is then exact), and is INF where
the mission can no longer be completed (an object it names was toggled away).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.oracle_state import Model
    >>> env = gym.make("shiftgrid/GoTo-v1"); _, info = env.reset(seed=0)
    >>> m = Model.from_level(env.unwrapped.level)
    >>> 0 < LowerBound(m)(m.start) <= info["optimal_steps"]
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.mission import Clause, Mission

if TYPE_CHECKING:
    from shiftgrid.envs.oracle_state import Model

INF = 1 << 30
EXACT_DISTANCES = 12  # targets per model whose facing distances are searched; later ones get Manhattan bounds
State = tuple


class _ManhattanFacing:
    """A lower bound on the steps from a pose to face ``cell``: the Manhattan distance to it, less one,
    plus a turn where the agent stands next to it facing elsewhere (indexable like a distance list)."""

    def __init__(self, model: "LowerBound", cell: int):
        self.model = model
        self.y, self.x = divmod(cell, model.w)
        self.cell = cell

    def __getitem__(self, pose: int) -> int:
        y, x = divmod(pose >> 2, self.model.w)
        m = abs(x - self.x) + abs(y - self.y)
        return m - 1 + (m == 1 and self.model.front(pose) != self.cell) if m else 1


class LowerBound:
    """The bound for one model: call it on a state. Distance tables are cached per target."""

    def __init__(self, model: "Model"):
        self.w, self.h, self.blocked, self.goal = model.w, model.h, model.blocked, model.goal
        self.kind, self.color, self.key_color, self.door = model.kind, model.color, model.key_color, model.door
        self.mission = model.mission
        self.front, self._neighbours = model.front, model._neighbours
        self._dist: dict[Any, Any] = {}
        self._searched = 0
        self._pred: list[list[int]] | None = None
        self._tail = self._tail_counts(model.mission)
        #: per step: the objects the remaining clauses name (their positions key the events cache)
        self._targets = [sorted({c.target for st in model.mission.steps[k:] for c in st if c.verb != "reach"})
                         for k in range(len(model.mission.steps))]
        self._event_cache: dict[tuple, Any] = {}

    def _facing(self, target: Any) -> list[int] | _ManhattanFacing:
        """Fewest turns and moves from each pose to face cell ``target`` (an int), to face a cell next
        to cell ``n`` (``("near", n)``) or to stand on a goal (``"goal"``).

        Walls and lava block; objects and doors are treated as passable (a relaxation). Past
        :data:`EXACT_DISTANCES` targets per model, cells get Manhattan bounds instead (cheaper, still admissible).
        """
        dist = self._dist.get(target)
        if dist is not None:
            return dist
        if isinstance(target, int) and self._searched >= EXACT_DISTANCES:
            return _ManhattanFacing(self, target)
        self._searched += 1
        if self._pred is None:
            self._pred = self._predecessors()
        pred = self._pred
        dist = [INF] * (4 * self.w * self.h)
        frontier = self._meeting(target)
        for p in frontier:
            dist[p] = 0
        k = 0
        while frontier:
            k += 1
            nxt = []
            for p in frontier:
                for q in pred[p]:
                    if dist[q] == INF:
                        dist[q] = k
                        nxt.append(q)
            frontier = nxt
        self._dist[target] = dist
        return dist

    def _predecessors(self) -> list[list[int]]:
        """Per pose, the poses one turn or one (relaxed) forward away from it, in reverse."""
        w, h = self.w, self.h
        pred: list[list[int]] = [[] for _ in range(4 * w * h)]
        for c in range(w * h):
            if self.blocked[c]:
                continue
            y, x = divmod(c, w)
            for d in range(4):
                p = c * 4 + d
                pred[p].append(c * 4 + (d + 1) % 4)
                pred[p].append(c * 4 + (d + 3) % 4)
                bx, by = x - DIRECTIONS[d][0], y - DIRECTIONS[d][1]
                if 0 <= bx < w and 0 <= by < h and not self.blocked[by * w + bx]:
                    pred[p].append((by * w + bx) * 4 + d)
        return pred

    def _from_facing(self, source: Any, target: Any) -> int:
        """Fewest steps from any pose that meets ``source`` to one that meets ``target`` (as in :meth:`_facing`)."""
        key = ("via", source, target)
        v = self._dist.get(key)
        if v is None:
            far = self._facing(target)
            v = min((far[p] for p in self._meeting(source)), default=INF)
            self._dist[key] = v
        return v

    def _meeting(self, source: Any) -> list[int]:
        """The poses that meet ``source`` (those at distance 0 in :meth:`_facing`)."""
        if isinstance(source, int):
            y, x = divmod(source, self.w)
            out = []
            for d, (dx, dy) in enumerate(DIRECTIONS):
                bx, by = x - dx, y - dy
                if 0 <= bx < self.w and 0 <= by < self.h and not self.blocked[by * self.w + bx]:
                    out.append((by * self.w + bx) * 4 + d)
            return out
        if source == "goal":
            return [c * 4 + d for c in range(self.w * self.h) if self.goal[c] for d in range(4)]
        return sorted({p for q in self._neighbours(source[1]) if not self.blocked[q] for p in self._meeting(q)})

    def _events_bound(self, s: State) -> int:
        """Every remaining clause, in any order: the poses it needs visited (pairwise travel) plus its actions."""
        pose, carry, pos = s[:3]
        step, done = s[5], s[6]
        targets = self._targets[step]
        key = (step, done, carry) + tuple(pos[t] for t in targets)
        plan = self._event_cache.get(key)
        if plan is None:
            plan = self._event_cache[key] = self._events(step, done, carry, pos)
        if plan is INF:
            return INF
        ev, pairs, actions = plan
        if not ev:
            return actions
        da = [self._facing(e)[pose] for e in ev]
        travel = max(da)
        for a, b, ab, ba in pairs:
            travel = max(travel, min(da[a] + ab, da[b] + ba))
        return travel + actions

    def _events(self, step: int, done: int, carry: int, pos: tuple) -> Any:
        """The cells the remaining clauses are met at, their pairwise distances and their actions; INF if impossible."""
        steps = self.mission.steps
        events, keys, drop = set(), set(), False
        for k in range(step, len(steps)):
            for i, c in enumerate(steps[k]):
                if k == step and (done >> i) & 1:
                    continue
                if c.verb == "reach":
                    events.add("goal")
                    continue
                if c.verb == "putnext":
                    continue
                p = pos[c.target]
                if p >= 0:
                    events.add(p)
                elif c.target != carry:
                    return INF  # a clause on an object toggled away
                if c.verb != "goto":
                    keys.add((c.verb, c.target))
                if carry >= 0 and (c.verb == "pickup" or c.target == carry):
                    drop = True
        ev = sorted(events, key=str)
        pairs = [(a, b, self._from_facing(ev[a], ev[b]), self._from_facing(ev[b], ev[a]))
                 for a in range(len(ev)) for b in range(a + 1, len(ev))]
        return ev, pairs, len(keys) + drop

    @staticmethod
    def _tail_counts(mission: Mission) -> list[int]:
        """Per step: actions (pickup, toggle, drop) that later steps need, each for a distinct (verb, target)."""
        out = []
        for s in range(len(mission.steps)):
            before = {(c.verb, c.target) for st in mission.steps[: s + 1] for c in st}
            later = {(c.verb, c.target) for st in mission.steps[s + 1:] for c in st if c.verb != "goto" and c.verb != "reach"}
            out.append(len(later - before))
        return out

    def _clause_bound(self, clause: Clause, s: State) -> int:
        pose, carry, pos, unlocked, opened = s[:5]
        verb, t = clause.verb, clause.target
        if verb == "reach":
            return self._facing("goal")[pose]
        p = pos[t]
        if verb == "goto":
            return self._facing(p)[pose] if p >= 0 else (1 if carry == t else INF)
        if verb == "pickup":
            if carry == t:
                return 2
            return self._facing(p)[pose] + 1 + (carry >= 0) if p >= 0 else INF
        if verb == "putnext":
            return self._putnext_bound(s, t, clause.other)
        # open
        reach = self._facing(p)[pose]
        if (unlocked >> t) & 1:
            return reach + (2 if (opened >> t) & 1 else 1)
        if carry >= 0 and self.kind[carry] == "key" and self.color[carry] == self.key_color[t]:
            return reach + 1
        best = INF
        for k, q in enumerate(pos):
            if q >= 0 and self.kind[k] == "key" and self.color[k] == self.key_color[t]:
                best = min(best, self._facing(q)[pose] + 1 + (carry >= 0) + self._from_facing(q, p) + 1)
        return best

    def _putnext_bound(self, s: State, t: int, other: int) -> int:
        """Drop ``t`` next to ``other``: next to where ``other`` lies now, or after moving ``other`` first."""
        pose, carry, pos = s[:3]
        o, p = pos[other], pos[t]
        if o <= -2:  # a box toggled away: its last position still counts, and it never moves again
            o = -2 - o
            moved = INF
        elif o == -1:  # carried: drop it, pick up t, drop t
            return 3 + self._facing(p)[pose] if p >= 0 else INF
        elif self.door[other]:
            moved = INF
        elif carry == t:  # drop t, pick up the other object and drop it, pick up t and drop it
            moved = self._facing(o)[pose] + 5
        elif p >= 0:  # face both objects, in either order; pick up and drop each
            do, dp = self._facing(o)[pose], self._facing(p)[pose]
            moved = min(do + self._from_facing(o, p), dp + self._from_facing(p, o)) + 4 + (carry >= 0)
        else:
            return INF
        near = ("near", o)
        if carry == t:
            stay = self._facing(near)[pose] + 1
        elif p >= 0:
            stay = self._facing(p)[pose] + 1 + self._from_facing(p, near) + 1 + (carry >= 0)
        else:
            return INF
        return min(stay, moved)

    def __call__(self, s: State) -> int:
        """An admissible (never too large) estimate of the actions still needed from ``s``; INF if none can complete."""
        steps = self.mission.steps
        step, done = s[5], s[6]
        clauses = steps[step]
        h = 0
        for i, clause in enumerate(clauses):
            if not (done >> i) & 1:
                h = max(h, self._clause_bound(clause, s))
        if h >= INF:
            return INF
        if len(clauses) == 1 and clauses[0].verb == "open" and step + 1 < len(steps) and steps[step + 1] == (clauses[0].__class__("reach"),):
            h += self._from_facing(s[2][clauses[0].target], "goal")  # the door opens from in front of it
        h += self._tail[step]
        if len(steps) - step > 1 or len(clauses) > 1:
            h = max(h, self._events_bound(s))
        return h

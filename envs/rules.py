"""The game's rules, written once: actions, mission clauses, occlusion, reward and the episode's end.

Every rule is a plain function of cell codes (:mod:`~shiftgrid.envs.cell_codes`), integers and
bit masks over a level's objects, written so that it gives the same answer on Python integers
and on torch tensors (only ``&``, ``|``, ``==``, ``!=`` and a ``where`` passed in). Its readers:

- the tensor engine compiles :func:`transition` and :func:`sweep_row` into lookup tables
  (:func:`transition_table`, :func:`visibility_table`) and calls :func:`clause_holds`,
  :func:`advance`, :func:`reward` and :func:`truncated` on batches;
- the oracle's search (:mod:`shiftgrid.envs.oracle_state`) calls the same functions on one state;
- the minigrid env (:mod:`shiftgrid.envs.env`) verifies missions with :func:`clause_holds` and
  :func:`advance`; its dynamics are minigrid's objects, held to these rules by parity tests.

Dynamics (minigrid's): ``forward`` enters empty cells, floor, goals, lava (the episode ends, a
failure) and open doors; ``pickup`` takes a key, ball or box when nothing is carried; ``drop``
puts the carried object on an empty cell in front; ``toggle`` opens and closes unlocked doors,
unlocks (and opens) a locked door with the key its colour calls for (the level's key map), and
replaces a box by its contents.

Mission clauses (shiftgrid's, and BabyAI's verifier where it differs), checked after every action:

==================  ====================================================================
goto                the object in front is the target
pickup              ``pickup`` taken with empty hands, the target carried now
open                ``toggle`` on the target door in front, which is now open
putnext             the target dropped, next to (4-adjacent) the other's last floor cell
reach               the agent stands on a goal
goto_recorded       BabyAI: the cell in front is where a target was at reset or at the last drop
putnext_recorded    BabyAI: as putnext, next to where an other object was recorded
==================  ====================================================================

Example:
    >>> from shiftgrid.envs.cell_codes import EMPTY, code, decode, DOOR_T, KEY_T
    >>> door = code(DOOR_T, 0, 2)  # a locked red door
    >>> e = transition(TOGGLE, door, code(KEY_T, 0), opens_with=0)
    >>> decode(e.front), e.carry == code(KEY_T, 0)
    ((4, 0, 0), True)
    >>> transition(TOGGLE, door, EMPTY, opens_with=0).front == door
    True
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, NamedTuple

import numpy as np

from shiftgrid.envs.cell_codes import (
    BALL_T, BOX_T, CLOSED, DOOR_T, EMPTY, EMPTY_T, FLOOR_T, GOAL_T, KEY_T, LAVA_T, LOCKED, NUM_CODES, OPEN,
    VALID_CODES, WALL_T, code, decode,
)

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
NUM_ACTIONS = 7
NUM_COLORS = 6
#: How an object moved: not at all, front to hand, hand to front, or gone (a box opened).
STAYED, PICKED, DROPPED, CONSUMED = range(4)
#: Placeholder front code in the compiled table: "the opened box's contents" (filled in by the reader).
CONTENTS = 255

VERBS = ("goto", "pickup", "open", "putnext", "reach", "goto_recorded", "putnext_recorded")
#: Verb codes (0: no clause, padding).
GOTO, PICKUP_V, OPEN_V, PUTNEXT, REACH, GOTO_RECORDED, PUTNEXT_RECORDED = range(1, len(VERBS) + 1)
VERB_CODES = dict(zip(VERBS, range(1, len(VERBS) + 1)))

PICKABLE_TYPES = (KEY_T, BALL_T, BOX_T)
#: What can be carried: nothing (EMPTY), or a key, ball or box of any colour. Index = carry class.
CARRY_CODES: tuple[int, ...] = (EMPTY,) + tuple(code(t, c) for t in PICKABLE_TYPES for c in range(NUM_COLORS))


class Effect(NamedTuple):
    """What an action does: the front cell's new code, the carried code, a turn (-1, 0, 1),
    whether the agent moves forward, whether it dies (lava), and how an object moved."""

    front: int
    carry: int
    turn: int = 0
    move: bool = False
    dies: bool = False
    moved: int = STAYED


def passable(k: int) -> bool:
    """Whether the agent can enter a cell of code ``k`` (minigrid's ``can_overlap``; empty cells too)."""
    t, _, s = decode(k)
    return t in (EMPTY_T, FLOOR_T, GOAL_T, LAVA_T) or (t == DOOR_T and s == OPEN)


def opaque(k: int) -> bool:
    """Whether a cell of code ``k`` hides what lies behind it (walls, closed and locked doors)."""
    t, _, s = decode(k)
    return t == WALL_T or (t == DOOR_T and s != OPEN)


def transition(action: int, front: int, carry: int, opens_with: int, contents: int = EMPTY) -> Effect:
    """The effect of ``action`` with ``front`` the cell ahead and ``carry`` the carried code (EMPTY: nothing).

    ``opens_with`` is the colour of the key that unlocks the door ahead (the level's key map
    applied to its colour); ``contents`` what a box ahead holds.
    """
    t, c, s = decode(front)
    if action == LEFT:
        return Effect(front, carry, turn=-1)
    if action == RIGHT:
        return Effect(front, carry, turn=1)
    if action == FORWARD:
        return Effect(front, carry, move=passable(front), dies=t == LAVA_T)
    if action == PICKUP and t in PICKABLE_TYPES and carry == EMPTY:
        return Effect(EMPTY, front, moved=PICKED)
    if action == DROP and front == EMPTY and carry != EMPTY:
        return Effect(carry, EMPTY, moved=DROPPED)
    if action == TOGGLE and t == DOOR_T:
        if s == LOCKED:
            ct, cc, _ = decode(carry)
            return Effect(code(DOOR_T, c, OPEN) if ct == KEY_T and cc == opens_with else front, carry)
        return Effect(code(DOOR_T, c, CLOSED if s == OPEN else OPEN), carry)
    if action == TOGGLE and t == BOX_T:
        return Effect(contents, carry, moved=CONSUMED)
    return Effect(front, carry)


# -- mission clauses --------------------------------------------------------------------------------

class Facts(NamedTuple):
    """What the clauses read after an action. Object sets are bit masks over the level's objects
    (bit ``k``: object ``k``); the cell "in front" is the one in front after the action.

    Attributes:
        action: the action taken (after any slip).
        front: the object in front.
        carry, pre_carry: the object carried after and before the action.
        dropped: whether the action put the carried object down.
        front_open: whether the cell in front is an open door.
        on_goal: whether the agent stands on a goal.
        ghost_adjacent: objects whose last floor cell (kept by an opened box) is next to the cell in front.
        recorded_front, recorded_adjacent: objects whose recorded cell (BabyAI) is the cell in front, next to it.
    """

    action: Any
    front: Any
    carry: Any
    pre_carry: Any
    dropped: Any
    front_open: Any
    on_goal: Any
    ghost_adjacent: Any = 0
    recorded_front: Any = 0
    recorded_adjacent: Any = 0


#: What each clause verb asks, as data: the action it needs (None: any) and the facts that must hold,
#: each ``(fact, test)`` with ``test`` one of "target" (the fact's objects include a target), "other"
#: (include an other object), "nothing" (no object), "true". Both :func:`clause_holds` (any backend,
#: every fact at once) and :func:`clause_holds_lazily` (one clause, facts computed on demand) read it.
CLAUSE_RULES: dict[int, tuple[int | None, tuple[tuple[str, str], ...]]] = {
    GOTO: (None, (("front", "target"),)),
    PICKUP_V: (PICKUP, (("pre_carry", "nothing"), ("carry", "target"))),
    OPEN_V: (TOGGLE, (("front", "target"), ("front_open", "true"))),
    PUTNEXT: (DROP, (("dropped", "true"), ("pre_carry", "target"), ("ghost_adjacent", "other"))),
    REACH: (None, (("on_goal", "true"),)),
    GOTO_RECORDED: (None, (("recorded_front", "target"),)),
    PUTNEXT_RECORDED: (DROP, (("dropped", "true"), ("pre_carry", "target"), ("recorded_adjacent", "other"))),
}


def _test(test: str, value: Any, target: Any, other: Any) -> Any:
    if test == "target":
        return (value & target) != 0
    if test == "other":
        return (value & other) != 0
    if test == "nothing":
        return value == 0
    return value


def clause_holds(verb: Any, target: Any, other: Any, f: Facts) -> Any:
    """Whether a clause holds after an action (:data:`CLAUSE_RULES`): ``target``/``other`` are object
    bit masks (one bit for shiftgrid's clauses, the objects a BabyAI description matches for BabyAI's).
    Works on Python integers and on tensors alike (broadcasting ``verb`` against the facts).

    Example:
        >>> f = Facts(action=PICKUP, front=0, carry=0b10, pre_carry=0, dropped=False, front_open=False, on_goal=False)
        >>> bool(clause_holds(PICKUP_V, 0b10, 0, f)), bool(clause_holds(GOTO, 0b10, 0, f))
        (True, False)
    """
    out = None
    for code, (action, conditions) in CLAUSE_RULES.items():
        term = verb == code
        if action is not None:
            term = term & (f.action == action)
        for fact, test in conditions:
            term = term & _test(test, getattr(f, fact), target, other)
        out = term if out is None else out | term
    return out


def clause_holds_lazily(verb: int, target: int, other: int, action: int, fact: Callable[[str], Any]) -> bool:
    """:func:`clause_holds` for one clause, asking ``fact(name)`` only for the facts its verb reads
    (and none when the action is not the one it needs): the oracle's and the minigrid env's path.

    Example:
        >>> facts = {"front": 0b1, "front_open": True}
        >>> clause_holds_lazily(OPEN_V, 0b1, 0, TOGGLE, facts.get), clause_holds_lazily(OPEN_V, 0b1, 0, LEFT, facts.get)
        (True, False)
    """
    needed, conditions = CLAUSE_RULES[verb]
    if needed is not None and action != needed:
        return False
    for name, test in conditions:
        value = fact(name)
        if not (value & target if test == "target" else value & other if test == "other"
                else not value if test == "nothing" else value):
            return False
    return True


def _where(cond: Any, a: Any, b: Any) -> Any:
    return a if cond else b


def advance(step: Any, done: Any, holds: Any, step_clauses: Callable[[Any], Any], num_steps: int,
            where: Callable = _where) -> tuple[Any, Any]:
    """The mission's progress after an action: ``(step, done)``.

    ``step`` is the current mission step, ``done`` the bit mask of clauses (numbered over the
    whole mission) already done in it, ``holds`` the clauses that hold after this action, and
    ``step_clauses(k)`` the clauses of step ``k`` (0 past the last). A step completes once all
    its clauses are done; the next step is checked on the same action. The mission is complete
    when ``step`` reaches the number of steps. ``num_steps`` bounds the loop (any upper bound).

    Example:
        >>> masks = [0b011, 0b100]  # step 0: clauses 0 and 1 ("and"), then clause 2
        >>> advance(0, 0b001, 0b110, lambda k: masks[k] if k < 2 else 0, 2)
        (2, 0)
    """
    for _ in range(num_steps):
        cur = step_clauses(step)
        done = done | (holds & cur)
        complete = (cur != 0) & ((done & cur) == cur)
        step = step + complete
        done = where(complete, 0, done)
    return step, done


def reward(steps: Any, max_steps: Any) -> Any:
    """The reward of a success after ``steps`` actions: ``1 - 0.9 * steps / max_steps``."""
    return 1 - 0.9 * (steps / max_steps)


def truncated(terminated: Any, steps: Any, max_steps: Any, minigrid_style: Any) -> Any:
    """Whether the episode is cut at its limit: shiftgrid's envs only when not terminated;
    minigrid's own (``minigrid_style``) whenever ``steps`` reaches ``max_steps``."""
    return (steps >= max_steps) & ((terminated == 0) | minigrid_style)


# -- occlusion --------------------------------------------------------------------------------------

def sweep_row(mask: int, opaque_bits: int, width: int = 7) -> tuple[int, int]:
    """minigrid's visibility sweep (``Grid.process_vis``) over one row of the view, as bits.

    ``mask``: cells of the row seen so far; ``opaque_bits``: its cells that hide what is behind.
    Returns the row's seen cells and the cells of the next row (towards the view's far edge)
    it makes seen: each seen, see-through cell lights its neighbours along the row (a sweep to
    the right, then one to the left) and, diagonally too, the row beyond.

    Example:
        >>> sweep_row(0b0001000, 0b0000000)  # an open row: everything, and the whole next row
        (127, 127)
        >>> sweep_row(0b0001000, 0b0010000)  # a wall to the right stops the sweep there
        (31, 31)
    """
    seen = [bool(mask >> i & 1) for i in range(width)]
    op = [bool(opaque_bits >> i & 1) for i in range(width)]
    above = [False] * width
    for i in range(width - 1):
        if seen[i] and not op[i]:
            seen[i + 1] = above[i + 1] = above[i] = True
    for i in range(width - 1, 0, -1):
        if seen[i] and not op[i]:
            seen[i - 1] = above[i - 1] = above[i] = True
    return sum(1 << i for i in range(width) if seen[i]), sum(1 << i for i in range(width) if above[i])


# -- compiled tables (what the engine reads) --------------------------------------------------------

@lru_cache(maxsize=None)
def carry_class_table() -> np.ndarray:
    """``[256]`` int64: each code's index in :data:`CARRY_CODES` (0 for codes that cannot be carried)."""
    table = np.zeros(NUM_CODES, dtype=np.int64)
    for i, k in enumerate(CARRY_CODES):
        table[k] = i
    table.flags.writeable = False
    return table


def pack(e: Effect) -> int:
    """An effect as one int32: front | carry << 8 | (turn + 1) << 16 | move << 18 | dies << 19 | moved << 20."""
    return e.front | e.carry << 8 | (e.turn + 1) << 16 | int(e.move) << 18 | int(e.dies) << 19 | e.moved << 20


@lru_cache(maxsize=None)
def transition_table() -> np.ndarray:
    """:func:`transition` for every action, valid front code, carry class and key colour, packed by :func:`pack`.

    Flat ``int32`` indexed by ``((action * 256 + front) * len(CARRY_CODES) + carry class) * 6 + opens_with``;
    a box's contents read as :data:`CONTENTS`. Invalid front codes keep everything as it is.
    """
    nc = len(CARRY_CODES)
    carry = np.array(CARRY_CODES, dtype=np.int32)
    table = np.zeros((NUM_ACTIONS, NUM_CODES, nc, NUM_COLORS), dtype=np.int32)
    table[:] = (np.arange(NUM_CODES, dtype=np.int32)[:, None, None] | carry[None, :, None] << 8 | 1 << 16)[None]
    for a in range(NUM_ACTIONS):
        for f in VALID_CODES:
            for ci, c in enumerate(CARRY_CODES):
                for k in range(NUM_COLORS):
                    table[a, f, ci, k] = pack(transition(a, f, c, k, CONTENTS))
    flat = table.reshape(-1)
    flat.flags.writeable = False
    return flat


_VALID = frozenset(VALID_CODES)


@lru_cache(maxsize=None)
def opaque_table() -> np.ndarray:
    """``[256]`` bool: :func:`opaque` of every code (invalid codes: opaque)."""
    table = np.array([opaque(k) if k in _VALID else True for k in range(NUM_CODES)], dtype=bool)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=None)
def visibility_table(width: int = 7) -> np.ndarray:
    """:func:`sweep_row` for every (mask, opaque bits): ``[mask | opaque << width]`` -> ``seen | next_row << width``."""
    n = 1 << width
    table = np.zeros(n * n, dtype=np.int64)
    for mask in range(n):
        for op in range(n):
            seen, above = sweep_row(mask, op, width)
            table[mask | op << width] = seen | above << width
    table.flags.writeable = False
    return table

"""Sequence: BabyAI-style multi-clause instructions ("go to the red ball, then open the blue door").

A mission is a list of steps done in order (joined by ", then"); a step is one clause or two
done in any order (joined by "and"). Clauses go to an object or a door, open a door, or, as
the very last clause, pick up an object (nothing is ever dropped, so one pickup at most).

The room may be split by internal walls (``layout``); every gap in them holds a closed,
unlocked door. Objects are placed so that the floor (doors included) stays connected and each
object keeps a free neighbour, so every level is solvable by construction.

Composition has two held-out kinds: colour x type combinations of the named objects
(``targets``, from :mod:`shiftgrid.envs.families.common`) and verb x type pairs
(``verb_pairs``): :data:`HELDOUT_VERB_PAIRS` are never asked in training, while every verb and
every type still is.

Version 1 starts the agent beside no target of the first step, so no mission is begun without
moving; version 0 (deprecated) let it start beside one, not facing it.

Example:
    >>> import numpy as np
    >>> level = generate(SequenceFactors(num_clauses=3, layout="split"), np.random.default_rng(0))
    >>> level.mission.num_clauses
    3
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Union

import numpy as np

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.factors import Factors, factor
from shiftgrid.envs.families.common import (
    ROOM_LAYOUTS,
    SEEN_COMBOS,
    Combo,
    carve_layout,
    make_object,
    place_agent_apart,
    place_passable,
    retry,
    target_pool,
)
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import COLORS, describe
from shiftgrid.envs.level import Cell, KeyedDoor, Level, LevelBuilder, LevelError, cell_of
from shiftgrid.envs.mission import Clause, Mission

#: Verb x object-type pairs never asked in training (each verb and type still appears there).
HELDOUT_VERB_PAIRS: tuple[tuple[str, str], ...] = (("pickup", "box"), ("goto", "key"))

_PHRASES = {"goto": "go to", "open": "open", "pickup": "pick up"}
#: A clause's target before placement: a door's object index, or an object's colour x type.
Target = Union[int, Combo]


@dataclass(frozen=True)
class SequenceFactors(Factors):
    """Factors of Sequence (plus the common ones: size, slip, palette, view)."""

    num_clauses: int = factor(2, low=1, high=6, doc="clauses in the mission, in steps of one or two")
    num_distractors: int = factor(1, low=0, high=6, doc="objects the mission does not name (uniquely described)")
    targets: str = factor("seen", choices=("seen", "heldout"), doc="colour x type pool of the named objects")
    verb_pairs: str = factor("seen", choices=("seen", "heldout"), doc="heldout: a clause is a held-out verb x type")
    layout: str = factor("room", choices=ROOM_LAYOUTS, doc="internal walls (size 7 or more); each gap holds a closed door")


def doorways(b: LevelBuilder) -> list[Cell]:
    """Gaps in internal walls: free cells walled on two opposite sides and open on the other two.

    Example:
        >>> b = LevelBuilder(7, 7, np.random.default_rng(0))
        >>> _ = carve_layout(b, "rooms")
        >>> len(doorways(b))
        3
    """
    out = []
    for x, y in b.free_cells():
        right, down, left, up = (_is_wall(b, x + dx, y + dy) for dx, dy in DIRECTIONS)
        if (left and right and not (up or down)) or (up and down and not (left or right)):
            out.append((x, y))
    return out


def _is_wall(b: LevelBuilder, x: int, y: int) -> bool:
    cell = b.grid.get(x, y)
    return cell is not None and cell.type == "wall"


def _step_sizes(n: int, rng: np.random.Generator) -> list[int]:
    """Split ``n`` clauses into consecutive steps of one or two clauses, at random."""
    sizes = []
    while n > 0:
        k = 2 if n >= 2 and rng.random() < 0.5 else 1
        sizes.append(k)
        n -= k
    return sizes


class _Planner:
    """Chooses each clause's verb and target under the family's rules, in mission order.

    A clause's ``mode`` is ``any``, ``object`` (it must name an object: the level then has a
    held-out target when ``targets='heldout'``) or ``pair`` (a held-out verb x type pair).
    """

    def __init__(self, b: LevelBuilder, f: SequenceFactors, doors: list[int]):
        self.b, self.f, self.doors = b, f, doors
        self.pool = target_pool(f.targets)
        self.named: list[Combo] = []  # objects named so far, in order
        self.opened: set[int] = set()

    def allowed(self, verb: str, obj_type: str, mode: str) -> bool:
        """``pair`` clauses must be held-out pairs; others may be only with ``verb_pairs='heldout'``."""
        held = (verb, obj_type) in HELDOUT_VERB_PAIRS
        return held if mode == "pair" else (not held or self.f.verb_pairs == "heldout")

    def options(self, verb: str, last: bool, mode: str, excluded: set) -> tuple[list[Target], list[Target]]:
        """(fresh, reused) targets for ``verb``: doors and new objects, then objects named before."""
        if verb == "open" or (verb == "goto" and mode == "any"):
            doors: list[Target] = [d for d in self.doors if d not in excluded and not (verb == "open" and d in self.opened)]
        else:
            doors = []
        if verb == "open" or (verb == "pickup" and not last):
            return (doors if mode == "any" else []), []
        new: list[Target] = [c for c in self.pool if c not in self.named and self.allowed(verb, c[1], mode)]
        old: list[Target] = [c for c in self.named if c not in excluded and self.allowed(verb, c[1], mode)]
        return doors + new, old

    def clause(self, last: bool, mode: str, excluded: set) -> tuple[str, Target]:
        """One clause's (verb, target): a uniform verb, then a fresh target if any (doors 1 in 3)."""
        b = self.b
        choices = {v: self.options(v, last, mode, excluded) for v in ("goto", "open", "pickup")}
        verbs = [v for v, (fresh, old) in choices.items() if fresh or old]
        if not verbs:
            raise LevelError(
                f"no {mode!r} clause fits: targets={self.f.targets!r}, verb_pairs={self.f.verb_pairs!r}, "
                f"{len(self.doors)} doors, {len(self.named)} objects named")
        verb = b.choice(verbs)
        fresh, old = choices[verb]
        doors = [t for t in fresh if isinstance(t, int)]
        new = [t for t in fresh if not isinstance(t, int)]
        if doors and new:
            target = b.choice(doors) if b.rng.random() < 1 / 3 else b.choice(new)
        else:
            target = b.choice(fresh or old)
        if verb == "open":
            self.opened.add(target)
        if not isinstance(target, int) and target not in self.named:
            self.named.append(target)
        return verb, target


def _clause_text(verb: str, target: Target, b: LevelBuilder) -> str:
    color, kind = (b.objects[target].color, "door") if isinstance(target, int) else target
    return f"{_PHRASES[verb]} {describe(color, kind)}"


def _place_agent(b: LevelBuilder, first: list[int], apart: bool) -> None:
    """Put the agent on a free cell beside no target of the first step (``apart``, version 1), or
    anywhere not facing one (version 0)."""
    if apart:
        place_agent_apart(b, first)
        return
    x, y = b.place_agent()
    targets = {cell_of(b.objects[i]) for i in first}
    dirs = [d for d, (dx, dy) in enumerate(DIRECTIONS) if (x + dx, y + dy) not in targets]
    b.agent_dir = b.choice(dirs)


def _attempt(f: SequenceFactors, rng: np.random.Generator, apart: bool = True) -> Level:
    b = LevelBuilder(f.size, f.size, rng)
    carve_layout(b, f.layout)
    gaps = doorways(b)
    colors = [COLORS[int(i)] for i in rng.permutation(len(COLORS))[: len(gaps)]]
    doors = [b.put(KeyedDoor(c), x, y) for c, (x, y) in zip(colors, gaps)]
    planner = _Planner(b, f, doors)
    sizes = _step_sizes(f.num_clauses, rng)
    # One clause (at random) makes the level a held-out combination when the factors ask for one.
    special = "pair" if f.verb_pairs == "heldout" else "object" if f.targets == "heldout" else "any"
    forced = int(rng.integers(f.num_clauses))
    spec: list[list[tuple[str, Target]]] = []
    previous: set = set()
    for size in sizes:
        step: list[tuple[str, Target]] = []
        for _ in range(size):
            p = sum(len(s) for s in spec) + len(step)
            excluded = previous | {t for _, t in step}
            step.append(planner.clause(p == f.num_clauses - 1, special if p == forced else "any", excluded))
        spec.append(step)
        previous = {t for _, t in step}
    index: dict[Target, int] = {c: place_passable(b, make_object(*c), keep=range(len(b.objects)), reachable=True) for c in planner.named}
    index.update({d: d for d in doors})
    spare = [c for c in SEEN_COMBOS if c not in planner.named]
    if f.num_distractors > len(spare):
        raise LevelError(f"num_distractors={f.num_distractors} but only {len(spare)} descriptions are left unnamed")
    for i in rng.permutation(len(spare))[: f.num_distractors]:
        place_passable(b, make_object(*spare[int(i)]), keep=range(len(b.objects)), reachable=True)
    _place_agent(b, [index[t] for _, t in spec[0]], apart)
    text = ", then ".join(" and ".join(_clause_text(v, t, b) for v, t in step) for step in spec)
    mission = Mission(tuple(tuple(Clause(v, index[t]) for v, t in step) for step in spec))
    return b.build(text, mission)


def generate(f: SequenceFactors, rng: np.random.Generator) -> Level:
    """A Sequence level: doors in the layout's gaps, the named objects, distractors, the agent.

    Targets within a step differ, a step names nothing the previous step named, a door is
    opened at most once, and objects are named fresh while the pool allows. A crowded room is
    retried up to ``ATTEMPTS`` times with the same ``rng``.

    Example:
        >>> level = generate(SequenceFactors(num_clauses=2, verb_pairs="heldout"), np.random.default_rng(3))
        >>> any((c.verb, level.objects[c.target].type) in HELDOUT_VERB_PAIRS for s in level.mission.steps for c in s)
        True
    """
    return retry(_attempt, f, rng)


def generate_v0(f: SequenceFactors, rng: np.random.Generator) -> Level:
    """Version 0's Sequence level: the agent may start beside a target of the first step."""
    return retry(_attempt, f, rng, False)


def max_steps(f: SequenceFactors) -> int:
    """Episode limit: ``size**2`` per clause (GoTo's limit for each)."""
    return f.size * f.size * f.num_clauses


FAMILY = Family(
    name="Sequence",
    factors=SequenceFactors,
    generate=generate,
    max_steps=max_steps,
    description="multi-clause instructions: go to, open, pick up, in order ('then') and in any order ('and')",
    exposure={"targets": "heldout", "verb_pairs": "heldout"},
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, generate=generate_v0)

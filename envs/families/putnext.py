"""PutNext: move a described object next to another ("put the red ball next to the blue key").

Objects are placed so that the floor stays passable: the free cells stay connected and both
named objects keep a free neighbour, so every level is solvable by construction. Version 1
starts the agent beside neither named object, so no level is solved without moving; version 0
(deprecated) placed it anywhere (about 2% of its training levels needed no forward step).

Example:
    >>> import numpy as np
    >>> level = generate(PutNextFactors(size=7, num_distractors=2), np.random.default_rng(0))
    >>> level.mission_text.startswith("put the ")
    True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import numpy as np
from shiftgrid.envs.families.common import (
    SEEN_COMBOS,
    carve_layout,
    distractor_pool,
    make_object,
    neighbours,
    place_agent_apart,
    place_passable,
    retry,
    target_pool,
)
from shiftgrid.envs.families.goto import GoToFactors
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import describe
from shiftgrid.envs.level import Level, LevelBuilder, cell_of
from shiftgrid.envs.mission import Clause, Mission

@dataclass(frozen=True)
class PutNextFactors(GoToFactors):
    """Factors of PutNext: as GoTo's; ``targets`` is the pool of the object to move."""


def _attempt(f: PutNextFactors, rng: np.random.Generator, apart: bool = True) -> Level:
    b = LevelBuilder(f.size, f.size, rng)
    floor = carve_layout(b, f.layout)
    moved = b.choice(target_pool(f.targets))
    fixed = b.choice([c for c in SEEN_COMBOS if c != moved])
    other = place_passable(b, make_object(*fixed), floor, reachable=True)
    near_fixed = neighbours(cell_of(b.objects[other]))
    target = place_passable(b, make_object(*moved), floor, keep=[other], avoid=near_fixed, reachable=True)
    pool = [c for c in distractor_pool(moved, f.distractor_style) if c != fixed]
    for _ in range(f.num_distractors):
        place_passable(b, make_object(*b.choice(pool)), floor, keep=[other, target])
    if apart:
        place_agent_apart(b, [target, other])
    else:
        b.place_agent()
    text = f"put {describe(*moved)} next to {describe(*fixed)}"
    return b.build(text, Mission(((Clause("putnext", target, other=other),),)))


def generate(f: PutNextFactors, rng: np.random.Generator) -> Level:
    """A PutNext level; crowded rooms are retried up to ``ATTEMPTS`` times with the same ``rng``.

    Example:
        >>> level = generate(PutNextFactors(size=6), np.random.default_rng(1))
        >>> [c.verb for c in level.mission.steps[0]]
        ['putnext']
    """
    return retry(_attempt, f, rng)


def generate_v0(f: PutNextFactors, rng: np.random.Generator) -> Level:
    """Version 0's PutNext level: the agent may start beside the object to move."""
    return retry(_attempt, f, rng, False)


def max_steps(f: PutNextFactors) -> int:
    """Episode limit: ``2 * size**2`` (two trips across the room, with room to spare)."""
    return 2 * f.size * f.size


FAMILY = Family(
    name="PutNext",
    factors=PutNextFactors,
    generate=generate,
    max_steps=max_steps,
    description="put a described object next to another",
    exposure={"targets": "heldout"},
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, generate=generate_v0)

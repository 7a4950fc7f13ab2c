"""GoTo: go to a described object among distractors ("go to the red ball").

Version 1 starts the agent beside no object its mission names, so no level is solved by turning
in place; version 0 (``GoTo-v1``, still registered, deprecated) let it start beside its target,
not facing it (about 14% of its training levels were solved without a forward step).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from shiftgrid.envs.factors import Factors, factor
from shiftgrid.envs.families.common import (
    ROOM_LAYOUTS,
    carve_layout,
    place_agent_apart,
    place_agent_not_facing,
    place_target_and_distractors,
)
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import describe
from shiftgrid.envs.level import Level, LevelBuilder
from shiftgrid.envs.mission import Clause, Mission


@dataclass(frozen=True)
class GoToFactors(Factors):
    """Factors of GoTo (plus the common ones: size, slip, palette, view)."""

    num_distractors: int = factor(3, low=0, high=40, doc="objects besides the target")
    targets: str = factor("seen", choices=("seen", "heldout"), doc="colour x type pool the target comes from")
    distractor_style: str = factor("random", choices=("random", "near_miss"), doc="near_miss: distractors share the target's colour or type")
    layout: str = factor("room", choices=ROOM_LAYOUTS, doc="internal walls")


#: How each single-object verb is said.
PHRASES = {"goto": "go to", "pickup": "pick up"}


def object_level(f: GoToFactors, rng: np.random.Generator, verb: str, *, apart: bool = True) -> Level:
    """A room (``f.layout``) with a uniquely described target, distractors and the agent; mission ``verb`` target.

    ``apart``: the agent starts beside no object the mission names (version 1); False places
    it anywhere not facing the target (version 0).

    Example:
        >>> object_level(GoToFactors(size=6), np.random.default_rng(0), "pickup").mission_text.startswith("pick up the")
        True
    """
    b = LevelBuilder(f.size, f.size, rng)
    carve_layout(b, f.layout)
    index, (color, obj_type) = place_target_and_distractors(b, f.targets, f.distractor_style, f.num_distractors)
    if apart:
        place_agent_apart(b, [index])
    else:
        place_agent_not_facing(b, index)
    return b.build(f"{PHRASES[verb]} {describe(color, obj_type)}", Mission(((Clause(verb, index),),)))


def generate(f: GoToFactors, rng: np.random.Generator) -> Level:
    return object_level(f, rng, "goto")


def generate_v0(f: GoToFactors, rng: np.random.Generator) -> Level:
    return object_level(f, rng, "goto", apart=False)


def max_steps(f: GoToFactors) -> int:
    return f.size * f.size


FAMILY = Family(
    name="GoTo",
    factors=GoToFactors,
    generate=generate,
    max_steps=max_steps,
    description="go to a described object among distractors",
    exposure={"targets": "heldout"},
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, generate=generate_v0)

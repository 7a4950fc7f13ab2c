"""Pickup: pick up a described object among distractors ("pick up the blue key")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiftgrid.envs.families.common import carve_layout, place_agent_not_facing, place_target_and_distractors
from shiftgrid.envs.families.goto import GoToFactors, max_steps
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import describe
from shiftgrid.envs.level import Level, LevelBuilder
from shiftgrid.envs.mission import Clause, Mission


@dataclass(frozen=True)
class PickupFactors(GoToFactors):
    """Same factors as GoTo: size, distractors, target pool, distractor style, layout (+ common)."""


def generate(f: PickupFactors, rng: np.random.Generator) -> Level:
    b = LevelBuilder(f.size, f.size, rng)
    carve_layout(b, f.layout)
    index, (color, obj_type) = place_target_and_distractors(b, f.targets, f.distractor_style, f.num_distractors)
    place_agent_not_facing(b, index)
    return b.build(f"pick up {describe(color, obj_type)}", Mission(((Clause("pickup", index),),)))


FAMILY = Family(
    name="Pickup",
    factors=PickupFactors,
    generate=generate,
    max_steps=max_steps,
    description="pick up a described object among distractors",
    exposure={"targets": "heldout"},
)

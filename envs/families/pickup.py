"""Pickup: pick up a described object among distractors ("pick up the blue key")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiftgrid.envs.families.goto import GoToFactors, max_steps, object_level
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Level


@dataclass(frozen=True)
class PickupFactors(GoToFactors):
    """Same factors as GoTo: size, distractors, target pool, distractor style, layout (+ common)."""


def generate(f: PickupFactors, rng: np.random.Generator) -> Level:
    return object_level(f, rng, "pickup")


FAMILY = Family(
    name="Pickup",
    factors=PickupFactors,
    generate=generate,
    max_steps=max_steps,
    description="pick up a described object among distractors",
    exposure={"targets": "heldout"},
)

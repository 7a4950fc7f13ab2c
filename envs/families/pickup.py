"""Pickup: pick up a described object among distractors ("pick up the blue key").

Version 1 starts the agent beside no object its mission names; version 0 (deprecated) let it
start beside its target (about 14% of its training levels were solved without a forward step).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from shiftgrid.envs.families.goto import GoToFactors, max_steps, object_level
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Level


@dataclass(frozen=True)
class PickupFactors(GoToFactors):
    """Same factors as GoTo: size, distractors, target pool, distractor style, layout (+ common)."""


def generate(f: PickupFactors, rng: np.random.Generator) -> Level:
    return object_level(f, rng, "pickup")


def generate_v0(f: PickupFactors, rng: np.random.Generator) -> Level:
    return object_level(f, rng, "pickup", apart=False)


FAMILY = Family(
    name="Pickup",
    factors=PickupFactors,
    generate=generate,
    max_steps=max_steps,
    description="pick up a described object among distractors",
    exposure={"targets": "heldout"},
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, generate=generate_v0)

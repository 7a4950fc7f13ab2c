"""Missions as BabyAI instruction objects, so minigrid's ``BabyAIBot`` and BabyAI's verifier run on shiftgrid levels.

Expressible: one or two steps, each one clause or two joined by "and", with verbs goto,
pickup, open and putnext (BabyAI has no "reach the goal" and at most two sequenced parts).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v0"); _ = env.reset(seed=0)
    >>> type(env.unwrapped.instrs).__name__
    'GoToInstr'
"""

from __future__ import annotations

from minigrid.envs.babyai.core.verifier import (
    AndInstr,
    BeforeInstr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from shiftgrid.envs.mission import Clause, Mission


class NotExpressible(ValueError):
    """The mission has no BabyAI instruction equivalent."""


def _desc(obj) -> ObjDesc:
    return ObjDesc(obj.type, obj.color)


def _clause(c: Clause, objects: list):
    if c.verb == "goto":
        return GoToInstr(_desc(objects[c.target]))
    if c.verb == "pickup":
        return PickupInstr(_desc(objects[c.target]))
    if c.verb == "open":
        return OpenInstr(_desc(objects[c.target]))
    if c.verb == "putnext":
        return PutNextInstr(_desc(objects[c.target]), _desc(objects[c.other]))
    raise NotExpressible(f"BabyAI has no instruction for {c.verb!r}")


def _step(step: tuple[Clause, ...], objects: list):
    if len(step) == 1:
        return _clause(step[0], objects)
    if len(step) == 2:
        return AndInstr(_clause(step[0], objects), _clause(step[1], objects))
    raise NotExpressible(f"BabyAI joins at most two clauses with 'and', got {len(step)}")


def to_instrs(mission: Mission, objects: list):
    """BabyAI instruction tree for ``mission``; raises :class:`NotExpressible` if there is none."""
    if len(mission.steps) == 1:
        return _step(mission.steps[0], objects)
    if len(mission.steps) == 2:
        return BeforeInstr(_step(mission.steps[0], objects), _step(mission.steps[1], objects))
    raise NotExpressible(f"BabyAI sequences at most two steps, got {len(mission.steps)}")

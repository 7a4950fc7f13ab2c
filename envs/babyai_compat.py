"""Missions as BabyAI instruction objects, so minigrid's ``BabyAIBot`` and BabyAI's verifier run on shiftgrid levels.

Expressible: one or two steps, each one clause or two joined by "and", with verbs goto,
pickup, open and putnext (BabyAI has no "reach the goal" and at most two sequenced parts).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1"); _ = env.reset(seed=0)
    >>> type(env.unwrapped.instrs).__name__
    'GoToInstr'
"""

from __future__ import annotations

from typing import Any

from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.verifier import (
    AndInstr,
    BeforeInstr,
    Instr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from shiftgrid.envs.mission import Clause, Mission


class NotExpressible(ValueError):
    """The mission has no BabyAI instruction equivalent."""


def _desc(obj: WorldObj) -> ObjDesc:
    return ObjDesc(obj.type, obj.color)


def _clause(c: Clause, objects: list) -> Instr:
    if c.verb == "goto":
        return GoToInstr(_desc(objects[c.target]))
    if c.verb == "pickup":
        return PickupInstr(_desc(objects[c.target]))
    if c.verb == "open":
        return OpenInstr(_desc(objects[c.target]))
    if c.verb == "putnext":
        return PutNextInstr(_desc(objects[c.target]), _desc(objects[c.other]))
    raise NotExpressible(f"BabyAI has no instruction for {c.verb!r}")


def _step(step: tuple[Clause, ...], objects: list) -> Instr:
    if len(step) == 1:
        return _clause(step[0], objects)
    if len(step) == 2:
        return AndInstr(_clause(step[0], objects), _clause(step[1], objects))
    raise NotExpressible(f"BabyAI joins at most two clauses with 'and', got {len(step)}")


def to_instrs(mission: Mission, objects: list) -> Instr:
    """BabyAI instruction tree for ``mission``; raises :class:`NotExpressible` if there is none."""
    if len(mission.steps) == 1:
        return _step(mission.steps[0], objects)
    if len(mission.steps) == 2:
        return BeforeInstr(_step(mission.steps[0], objects), _step(mission.steps[1], objects))
    raise NotExpressible(f"BabyAI sequences at most two steps, got {len(mission.steps)}")


def expressible(mission: Mission) -> bool:
    """Whether :func:`to_instrs` can express ``mission``."""
    return (
        len(mission.steps) <= 2
        and all(len(step) <= 2 for step in mission.steps)
        and all(c.verb != "reach" for step in mission.steps for c in step)
    )


def babyai_instrs(env: Any) -> Instr | None:
    """The env's mission as BabyAI instructions, reset on the env's current (start) state; None if inexpressible."""
    if not expressible(env.level.mission):
        return None
    instrs = to_instrs(env.level.mission, env.objects)
    instrs.reset_verifier(env)
    return instrs


def update_positions(instr: Instr) -> None:
    """Refresh the object positions BabyAI's verifier tracks (after a drop), as BabyAI's levels do."""
    if isinstance(instr, (BeforeInstr, AndInstr)):
        update_positions(instr.instr_a)
        update_positions(instr.instr_b)
    else:
        instr.update_objs_poss()

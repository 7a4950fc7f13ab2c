"""Curriculum teachers: choose the next level of the training split at every reset of every sub-environment.

Teachers by name (:data:`TEACHERS`), each with its knowledge tier: ``uniform`` (outcomes; domain
randomisation, the baseline), ``tscl`` (outcomes; learning-progress bandit over factor groups),
``plr`` and ``plr-robust`` (learner; prioritised level replay by value errors),
``learnability`` and ``regret`` (oracle; exact scores). :func:`make_curriculum` builds one
with its options checked; every teacher also takes the options of its side estimates
(``side_every``, ``side_levels``, ``side_episodes``: :mod:`.side`). The reset plumbing is :mod:`.wrapper` (inside each sub-env) and
:mod:`.driver` (the teacher's side, in the main process); every chosen level is logged by
:mod:`.log`.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> space = LevelSpace.of_env(gym.make("shiftgrid/DoorKey-v1"))
    >>> teacher = make_curriculum("plr", space, {"temperature": 0.1}, seed=0)
    >>> teacher.tier.label, teacher.temperature
    ('learner', 0.1)
    >>> try:
    ...     make_curriculum("plr", space, {"temprature": 0.1})
    ... except CurriculumError as e:
    ...     print(e)
    unknown option 'temprature' of teacher 'plr'; valid: score, buffer_size, replay_prob, temperature, staleness, min_levels, side_every, side_levels, side_episodes, tier
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from shiftgrid.envs.teacher.curriculum.base import Curriculum, LevelChoice, LevelStats, Outcome
from shiftgrid.envs.teacher.curriculum.exact import Learnability, Regret
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, LevelSpace
from shiftgrid.envs.teacher.curriculum.plr import PLR, RobustPLR
from shiftgrid.envs.teacher.curriculum.side import SIDE_OPTIONS, SideSettings, split_options
from shiftgrid.envs.teacher.curriculum.tscl import TSCL
from shiftgrid.envs.teacher.curriculum.uniform import Uniform
from shiftgrid.envs.teacher.knowledge import KnowledgeError, Tier

#: Every curriculum teacher by name (one entry per line: a missing comma cannot merge two names).
TEACHERS: dict[str, type[Curriculum]] = {
    "uniform": Uniform,
    "tscl": TSCL,
    "plr": PLR,
    "plr-robust": RobustPLR,
    "learnability": Learnability,
    "regret": Regret,
}


def teacher_options(name: str) -> list[str]:
    """The options teacher ``name`` takes (keyword arguments of its class and its bases, then the side estimates', ``tier`` last).

    Example:
        >>> teacher_options("tscl")
        ['group_by', 'window', 'epsilon', 'side_every', 'side_levels', 'side_episodes', 'tier']
    """
    out: list[str] = []
    for cls in teacher_class(name).__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or cls is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in out and p.name != "tier":
                out.append(p.name)
    return out + list(SIDE_OPTIONS) + ["tier"]


def teacher_class(name: str) -> type[Curriculum]:
    """The class of teacher ``name``; an unknown name raises :class:`CurriculumError` listing the valid ones."""
    try:
        return TEACHERS[name]
    except (KeyError, TypeError):
        raise CurriculumError(f"unknown teacher {name!r}; valid: {', '.join(TEACHERS)}") from None


def check_teacher(name: str, options: Mapping[str, Any] | None = None) -> None:
    """Check a teacher's name and option names (:class:`CurriculumError`) and its tier against its needs (``KnowledgeError``).

    Example:
        >>> try:
        ...     check_teacher("regret", {"tier": "outcomes"})
        ... except KnowledgeError as e:
        ...     print(str(e)[:60])
        Regret has knowledge tier 'outcomes' but 'optimal_return' ne
    """
    cls, options = teacher_class(name), dict(options or {})
    valid = teacher_options(name)
    for key in options:
        if key not in valid:
            raise CurriculumError(f"unknown option {key!r} of teacher {name!r}; valid: {', '.join(valid)}")
    split_options(options)  # the side estimates' values
    probe = object.__new__(cls)
    if "tier" in options:
        try:
            probe.tier = Tier.parse(options["tier"])
        except ValueError as e:
            raise CurriculumError(f"teacher {name!r}: {e}") from None
    for item in cls.needs:
        probe.require(item)


def make_curriculum(name: str, levels: LevelSpace, options: Mapping[str, Any] | None = None, seed: int = 0) -> Curriculum:
    """Teacher ``name`` over ``levels`` with ``options``; unknown names or options, or bad values, raise :class:`CurriculumError`.

    A ``tier`` below what the teacher needs raises :class:`~shiftgrid.envs.teacher.knowledge.KnowledgeError`.
    """
    check_teacher(name, options)
    cls, options = teacher_class(name), split_options(options)[1]
    try:
        return cls(levels, seed, **options)
    except (TypeError, ValueError) as e:
        if isinstance(e, (CurriculumError, KnowledgeError)):
            raise
        raise CurriculumError(f"teacher {name!r} rejected its options {options}: {e}") from None


__all__ = ["TEACHERS", "Curriculum", "CurriculumError", "LevelChoice", "LevelSpace", "LevelStats", "Outcome",
           "SideSettings", "check_teacher", "make_curriculum", "split_options", "teacher_class", "teacher_options", "Uniform", "TSCL", "PLR", "RobustPLR", "Learnability", "Regret"]

"""shiftgrid.envs: grid-world families with declared factors, distribution-shift splits and an exact oracle.

Importing this package registers every built-in family as ``shiftgrid/<Family>-v<N>``.

Example:
    >>> import gymnasium as gym
    >>> import shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1", split="size/far")
    >>> obs, info = env.reset(seed=0)
    >>> info["success"], info["optimal_return"] > 0
    (False, True)
"""

from shiftgrid.envs.engine import make_tensor_vec
from shiftgrid.envs.env import ShiftGridEnv
from shiftgrid.envs.factors import FactorError, Factors, factor
from shiftgrid.envs.families import BUILTIN_FAMILIES, SUPERSEDED_FAMILIES
from shiftgrid.envs.families.goto import FAMILY as GOTO
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import KeyedDoor, Level, LevelBuilder, LevelError, level_hash
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.oracle import InvalidLevel, Plan, UnsolvableLevel, solve, solve_from
from shiftgrid.envs.registration import (
    RegistrationError,
    UnknownEnvError,
    family_splits,
    register_family,
    registered_ids,
    splits_for,
)
from shiftgrid.envs.shift.split import Split, SplitError, SplitSet, load_splits

for _family in BUILTIN_FAMILIES + SUPERSEDED_FAMILIES:
    register_family(_family)

__all__ = [
    "ShiftGridEnv", "Factors", "factor", "FactorError", "Family", "Level", "LevelBuilder", "LevelError",
    "KeyedDoor", "level_hash", "Clause", "Mission", "Plan", "UnsolvableLevel", "InvalidLevel", "solve", "solve_from",
    "register_family",
    "registered_ids", "splits_for", "family_splits", "UnknownEnvError", "RegistrationError", "Split", "SplitSet", "SplitError",
    "load_splits", "BUILTIN_FAMILIES", "SUPERSEDED_FAMILIES", "GOTO", "make_tensor_vec",
]

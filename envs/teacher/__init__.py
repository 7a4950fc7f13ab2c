"""Teachers: knowledge tiers, the oracle teacher, and advice.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.teacher import OracleTeacher, Tier
    >>> env = gym.make("shiftgrid/GoTo-v0"); _ = env.reset(seed=0)
    >>> OracleTeacher.tier is Tier.ORACLE, 0 <= OracleTeacher().act(env) <= 6
    (True, True)
"""

from shiftgrid.envs.teacher.knowledge import KNOWLEDGE, KnowledgeError, Teacher, Tier, tier_of
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher, is_babyai, is_shiftgrid
from shiftgrid.envs.teacher.subgoal import Subgoal, direction_text, next_subgoal

__all__ = ["KNOWLEDGE", "KnowledgeError", "Teacher", "Tier", "tier_of", "OracleTeacher", "is_babyai", "is_shiftgrid",
           "Subgoal", "direction_text", "next_subgoal"]

"""Teachers: knowledge tiers, the oracle teacher, and its advice (an ``advice`` text observation).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.teacher import OracleTeacher, Tier
    >>> env = gym.make("shiftgrid/GoTo-v1"); _ = env.reset(seed=0)
    >>> OracleTeacher.tier is Tier.ORACLE, 0 <= OracleTeacher().act(env) <= 6
    (True, True)
"""

from shiftgrid.envs.teacher.knowledge import KNOWLEDGE, KnowledgeError, Teacher, Tier, tier_of
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher, is_babyai, is_shiftgrid
from shiftgrid.envs.teacher.subgoal import Subgoal, direction_text, next_subgoal
from shiftgrid.envs.teacher.advice import ACTION_WORDS, GRANULARITIES, WHEN, AdviceConfig, advice_text
from shiftgrid.envs.teacher.advice_wrapper import ADVICE_KEY, AdviceWrapper, NoAdvice
from shiftgrid.envs.teacher.cost import COST_KEY, add_costs

__all__ = ["KNOWLEDGE", "KnowledgeError", "Teacher", "Tier", "tier_of", "OracleTeacher", "is_babyai", "is_shiftgrid",
           "Subgoal", "direction_text", "next_subgoal", "ACTION_WORDS", "GRANULARITIES", "WHEN", "AdviceConfig",
           "advice_text", "ADVICE_KEY", "AdviceWrapper", "NoAdvice", "COST_KEY", "add_costs"]

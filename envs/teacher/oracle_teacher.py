"""The oracle teacher: knows the level, and acts or advises from its optimal plan from the live state.

On shiftgrid ids it plans with the exact oracle (:func:`~shiftgrid.envs.oracle.solve_from`,
from wherever the learner has taken the episode); on minigrid's BabyAI ids it follows
minigrid's ``BabyAIBot`` (:mod:`shiftgrid.envs.teacher.bot`; its subgoals read off the bot's
plan), so demonstrations, labels and advice also work on BabyAI's own levels.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1"); _, info = env.reset(seed=0)
    >>> teacher, steps, done = OracleTeacher(), 0, False
    >>> while not done:
    ...     _, _, done, _, info = env.step(teacher.act(env)); steps += 1
    >>> info["success"], steps == info["optimal_steps"]
    (True, True)
"""

from __future__ import annotations

from typing import Any

from shiftgrid.envs.env import ShiftGridEnv
from shiftgrid.envs.oracle import Plan, solve_from
from shiftgrid.envs.teacher.bot import BotTracker, bot_subgoal
from shiftgrid.envs.teacher.knowledge import Teacher, Tier
from shiftgrid.envs.teacher.subgoal import Subgoal, next_subgoal


def is_shiftgrid(env: Any) -> bool:
    """Whether ``env`` (wrapped or not) is a shiftgrid env, which the exact oracle plans."""
    return isinstance(env.unwrapped, ShiftGridEnv)


def is_babyai(env: Any) -> bool:
    """Whether ``env`` is one of minigrid's BabyAI levels (``BabyAIBot`` plays them; they get instructions at reset)."""
    from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

    return isinstance(env.unwrapped, RoomGridLevel)


class OracleTeacher(Teacher):
    """A teacher with the ``oracle`` tier: the next optimal action and subgoal from the env's current state.

    ``act`` takes a single gymnasium env (wrapped or not) as it stands mid-episode. On BabyAI
    ids it keeps one ``BabyAIBot`` per env and episode; call it at every step of an episode
    you want it to follow (a skipped step starts a fresh bot, which is valid but forgets what
    it has seen).
    """

    tier = Tier.ORACLE

    def __init__(self) -> None:
        self._bots = BotTracker()

    def plan(self, env: Any) -> Plan:
        """The optimal plan from ``env``'s current state (shiftgrid ids).

        Raises:
            ValueError: ``env`` is not a shiftgrid env, or its mission is already complete.
            UnsolvableLevel: the learner made the mission impossible (e.g. toggled its box away).
        """
        self.require("optimal_plan")
        if not is_shiftgrid(env):
            raise ValueError(f"{type(env.unwrapped).__name__} is not a shiftgrid env: the exact oracle plans shiftgrid "
                             "levels only (on BabyAI ids OracleTeacher.act follows BabyAIBot)")
        return solve_from(env)

    def act(self, env: Any) -> int:
        """The next optimal action (0..6, minigrid's ``Actions``) from ``env``'s current state.

        Raises:
            ValueError: ``env`` is neither a shiftgrid env nor a BabyAI level, or its mission is complete.
        """
        self.require("optimal_action")
        if is_shiftgrid(env):
            return int(self.plan(env).actions[0])
        if is_babyai(env):
            return self._bots.act(env)
        raise ValueError(f"OracleTeacher plans shiftgrid ids (exact oracle) and BabyAI ids (BabyAIBot); "
                         f"{type(env.unwrapped).__name__} is neither")

    def subgoal(self, env: Any, plan: Plan | None = None) -> Subgoal | None:
        """The next subgoal of the optimal plan from ``env``'s current state (``plan``: that plan, if already made).

        On BabyAI levels it is the bot's next subgoal, None while the bot does not know where
        to go yet (it explores) or has no words for it (closing a door it should not have opened).

        Example:
            >>> import gymnasium as gym, shiftgrid.envs
            >>> env = gym.make("shiftgrid/Pickup-v1"); _ = env.reset(seed=0)
            >>> OracleTeacher().subgoal(env).text == env.unwrapped.mission
            True
        """
        self.require("optimal_plan")
        if not is_shiftgrid(env) and is_babyai(env):
            return bot_subgoal(self._bots.planned(env)[0], env)
        plan = plan or self.plan(env)
        return next_subgoal(env, plan.actions)

"""minigrid's ``BabyAIBot`` followed along an episode whose actions someone else chooses.

The bot keeps a plan (a stack of subgoals) and its memory of what the agent has seen, and
must be told, at each step, the action the agent actually took (``replan(action_taken)``).
:class:`BotTracker` keeps one bot per environment and episode and infers that action from the
state change since it last advised: a turn, a move, a pickup, a drop, a toggle (a door or box
in front changed), or nothing at all (a no-op, told to the bot as ``done``). A new episode, or
a gap of more than one step, starts a fresh bot. :func:`bot_subgoal` reads the bot's next
subgoal off its plan, for subgoal and direction advice on BabyAI levels.

Example:
    >>> import gymnasium as gym
    >>> env = gym.make("BabyAI-GoToLocal-v0"); _ = env.reset(seed=0)
    >>> tracker = BotTracker()
    >>> 0 <= tracker.act(env) <= 6
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minigrid.core.actions import Actions
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.verifier import ObjDesc
from minigrid.utils.baby_ai_bot import (
    BabyAIBot,
    CloseSubgoal,
    DropSubgoal,
    ExploreSubgoal,
    GoNextToSubgoal,
    OpenSubgoal,
    PickupSubgoal,
)

from shiftgrid.envs.level import cell_of
from shiftgrid.envs.teacher.subgoal import Subgoal, describe_object


@dataclass
class _Snapshot:
    step: int
    pos: tuple[int, int]
    dir: int
    carrying: Any
    front: Any
    front_state: Any
    grid: Any  # a reset builds a new grid: the episode's identity


def _snapshot(u: Any) -> _Snapshot:
    front = u.grid.get(*u.front_pos)
    state = (front.type, getattr(front, "is_open", None), getattr(front, "is_locked", None)) if front is not None else None
    return _Snapshot(int(u.step_count), (int(u.agent_pos[0]), int(u.agent_pos[1])), int(u.agent_dir), u.carrying,
                     front, state, u.grid)


def inferred_action(before: _Snapshot, after: _Snapshot) -> int:
    """The action that took the agent from ``before`` to ``after`` (``done`` when nothing changed)."""
    if after.dir == (before.dir - 1) % 4 and after.pos == before.pos:
        return int(Actions.left)
    if after.dir == (before.dir + 1) % 4 and after.pos == before.pos:
        return int(Actions.right)
    if after.pos != before.pos:
        return int(Actions.forward)
    if before.carrying is None and after.carrying is not None:
        return int(Actions.pickup)
    if before.carrying is not None and after.carrying is None:
        return int(Actions.drop)
    if after.front is not before.front or after.front_state != before.front_state:
        return int(Actions.toggle)
    return int(Actions.done)


class BotTracker:
    """One ``BabyAIBot`` per environment and episode, told the actions actually taken (see the module docstring)."""

    def __init__(self) -> None:
        self._bots: dict[int, tuple[BabyAIBot, _Snapshot, int]] = {}  # env id -> bot, state it planned from, its action

    def planned(self, env: Any) -> tuple[BabyAIBot, int]:
        """The bot of ``env``'s episode after planning from its current state, and its suggested action."""
        u = env.unwrapped
        now = _snapshot(u)
        held = self._bots.get(id(u))
        if held is not None and held[1].grid is now.grid:  # the same episode
            bot, then, suggestion = held
            if then.step == now.step:
                return bot, suggestion  # asked again at the same step: already planned from here
            if then.step == now.step - 1:
                return self._plan(u, bot, inferred_action(then, now))
        return self._plan(u, BabyAIBot(u), None)  # a new episode, or steps it did not see

    def _plan(self, u: Any, bot: BabyAIBot, taken: int | None) -> tuple[BabyAIBot, int]:
        action = int(bot.replan(taken))
        self._bots[id(u)] = (bot, _snapshot(u), action)
        return bot, action

    def act(self, env: Any) -> int:
        """The bot's next action from ``env``'s current state."""
        return self.planned(env)[1]


def _target(bot: BabyAIBot, sub: Any) -> tuple[Any, tuple[int, int] | None]:
    """The object (or None) and cell a ``GoNextToSubgoal`` heads for (None: not found yet)."""
    datum = sub.datum
    if isinstance(datum, ObjDesc):
        obj, pos = bot._find_obj_pos(datum, sub.reason == "PutNext")
        return obj, (None if pos is None else (int(pos[0]), int(pos[1])))
    if isinstance(datum, WorldObj):
        return datum, cell_of(datum)
    pos = (int(datum[0]), int(datum[1]))
    return bot.mission.unwrapped.grid.get(*pos), pos


def bot_subgoal(bot: BabyAIBot, env: Any) -> Subgoal | None:
    """The bot's next subgoal, read off its stack (after it planned from ``env``'s current state).

    Exploration and path steps are skipped; a ``GoNextTo`` is named by what the subgoal beneath
    it does there (pick up, open, put next to, drop) or else "go to". None: the bot does not
    yet know where its object is (it explores), or its next subgoal has no words (closing a door).

    Example:
        >>> import gymnasium as gym
        >>> env = gym.make("BabyAI-GoToLocal-v0"); _ = env.reset(seed=1)
        >>> tracker = BotTracker(); bot, _ = tracker.planned(env)
        >>> bot_subgoal(bot, env).text, env.unwrapped.mission
        ('go to the purple box', 'go to the purple box')
    """
    u = env.unwrapped
    stack = [s for s in bot.stack if not s.is_exploratory() and not isinstance(s, ExploreSubgoal)]
    front = (int(u.front_pos[0]), int(u.front_pos[1]))
    carried = u.carrying
    for i in range(len(stack) - 1, -1, -1):
        sub, below = stack[i], (stack[i - 1] if i > 0 else None)
        if isinstance(sub, PickupSubgoal):
            return Subgoal("pickup", describe_object(u.grid.get(*front)), front)
        if isinstance(sub, OpenSubgoal):
            return Subgoal("open", describe_object(u.grid.get(*front)), front)
        if isinstance(sub, DropSubgoal) and carried is not None:
            return Subgoal("drop", describe_object(carried), front)
        if isinstance(sub, CloseSubgoal):
            return None
        if not isinstance(sub, GoNextToSubgoal):
            continue
        obj, cell = _target(bot, sub)
        if cell is None:
            return None
        if isinstance(below, DropSubgoal) and carried is not None:
            if sub.reason == "PutNext" and obj is not None:
                return Subgoal("putnext", describe_object(carried), cell, describe_object(obj))
            return Subgoal("drop", describe_object(carried), cell)
        if obj is None or obj.type in ("wall", "floor"):
            continue  # a cell on the way
        if isinstance(below, PickupSubgoal):
            return Subgoal("pickup", describe_object(obj), cell)
        if isinstance(below, OpenSubgoal):
            return Subgoal("open", describe_object(obj), cell)
        return Subgoal("goto", describe_object(obj), cell)
    return None

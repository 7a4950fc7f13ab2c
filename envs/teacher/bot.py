"""minigrid's ``BabyAIBot`` followed along an episode whose actions someone else chooses.

The bot keeps a plan (a stack of subgoals) and its memory of what the agent has seen, and
must be told, at each step, the action the agent actually took (``replan(action_taken)``).
:class:`BotTracker` keeps one bot per environment and episode and infers that action from the
state change since it last advised: a turn, a move, a pickup, a drop, a toggle (a door or box
in front changed), or nothing at all (a no-op, told to the bot as ``done``). A new episode, or
a gap of more than one step, starts a fresh bot.

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
from minigrid.utils.baby_ai_bot import BabyAIBot


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
        self._bots: dict[int, tuple[BabyAIBot, _Snapshot]] = {}

    def bot(self, env: Any) -> tuple[BabyAIBot, int | None]:
        """The bot for ``env``'s episode, and the action to tell it (None: fresh bot, nothing taken yet)."""
        u = env.unwrapped
        now = _snapshot(u)
        held = self._bots.get(id(u))
        if held is not None and held[1].grid is not now.grid:
            held = None  # a new episode
        if held is not None and held[1].step == now.step - 1:
            return held[0], inferred_action(held[1], now)
        if held is not None and held[1].step == now.step:
            return held[0], None  # asked twice at the same step: the bot already planned from here
        return BabyAIBot(u), None

    def act(self, env: Any) -> int:
        """The bot's next action from ``env``'s current state."""
        u = env.unwrapped
        bot, taken = self.bot(env)
        held = self._bots.get(id(u))
        if held is not None and held[0] is bot and taken is None and held[1].step == int(u.step_count) and held[1].grid is u.grid:
            return int(bot._last_suggestion)  # type: ignore[attr-defined]
        action = int(bot.replan(taken))
        bot._last_suggestion = action  # type: ignore[attr-defined]
        self._bots[id(u)] = (bot, _snapshot(u))
        return action

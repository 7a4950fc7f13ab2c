"""The next subgoal of an optimal plan, read off the plan from the live state of a shiftgrid env.

The plan's actions are followed on the agent's pose alone (turns and moves change nothing
else) up to its first *event*: an interaction (``pickup``, ``toggle``, ``drop``, the no-op
``done``), or a move after which a clause of the mission's current step holds (a ``goto``
target in front, the goal underfoot). The event is the subgoal: "pick up the yellow key",
"open the yellow door", "put the red ball next to the blue key", "go to the goal". It says what
the mission leaves out (DoorKey's key, a door in the way, an object to move aside), and it is
always the plan's from where the agent now stands, so it stays right when the learner strays.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.oracle import solve_from
    >>> env = gym.make("shiftgrid/DoorKey-v1"); _ = env.reset(seed=0)
    >>> env.unwrapped.mission
    'open the blue door, then get to the goal'
    >>> next_subgoal(env, solve_from(env).actions).text
    'pick up the blue key'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from minigrid.core.constants import DIR_TO_VEC

from shiftgrid.envs.language import describe
from shiftgrid.envs.level import cell_of
from shiftgrid.envs.oracle_state import DONE, DROP, FORWARD, LEFT, PICKUP, RIGHT, TOGGLE

Cell = tuple[int, int]
#: What a subgoal asks, as :attr:`Subgoal.verb`.
SUBGOAL_VERBS = ("goto", "reach", "pickup", "open", "putnext", "drop")
_PHRASE = {"goto": "go to", "reach": "go to", "pickup": "pick up", "open": "open", "drop": "drop"}


@dataclass(frozen=True)
class Subgoal:
    """One subgoal: ``verb`` on the object described ``what`` (``other`` for ``putnext``), located at ``cell``.

    ``cell`` is where the subgoal takes the agent's attention: the object's cell (``goto``,
    ``pickup``, ``open``), the goal's (``reach``), the object it is put next to (``putnext``),
    the cell it is dropped on (``drop``).
    """

    verb: str
    what: str
    cell: Cell
    other: str | None = None

    @property
    def text(self) -> str:
        """The subgoal in the mission's language: ``'pick up the yellow key'``."""
        if self.verb == "putnext":
            return f"put {self.what} next to {self.other}"
        return f"{_PHRASE[self.verb]} {self.what}"

    @property
    def landmark(self) -> str:
        """What :func:`direction_text` locates: the object (or goal) at :attr:`cell`."""
        return self.other if self.verb == "putnext" else self.what  # type: ignore[return-value]  # putnext names its other


def describe_object(obj: Any) -> str:
    """How advice names ``obj``: ``'the red ball'``, ``'the goal'``."""
    if obj is None:
        return "the floor"
    if obj.type == "goal":
        return "the goal"
    return describe(obj.color, obj.type)


def _pending(env: Any) -> list:
    """The clauses of the mission's current step not done yet."""
    p = env.progress
    if p.complete:
        return []
    return [c for i, c in enumerate(p.mission.steps[p.step]) if i not in p.done]


def _front(pos: Cell, d: int) -> Cell:
    v = DIR_TO_VEC[d]
    return int(pos[0] + v[0]), int(pos[1] + v[1])


def _clause_event(env: Any, pending: list, pos: Cell, d: int) -> Subgoal | None:
    """The pending ``goto`` / ``reach`` clause that holds with the agent at ``pos`` facing ``d``, as a subgoal."""
    grid, front = env.grid, _front(pos, d)
    for c in pending:
        if c.verb == "reach":
            cell = grid.get(*pos)
            if cell is not None and cell.type == "goal":
                return Subgoal("reach", "the goal", pos)
        elif c.verb == "goto":
            obj = env.objects[c.target]
            if 0 <= front[0] < grid.width and 0 <= front[1] < grid.height and grid.get(*front) is obj:
                return Subgoal("goto", describe_object(obj), front)
    return None


def _interaction(env: Any, pending: list, action: int, pos: Cell, d: int) -> Subgoal:
    front = _front(pos, d)
    obj = env.grid.get(*front)
    if action == PICKUP:
        return Subgoal("pickup", describe_object(obj), front)
    if action == TOGGLE:
        return Subgoal("open", describe_object(obj), front)
    carried = env.carrying
    for c in pending:  # a drop that completes a putnext clause
        if c.verb == "putnext" and env.objects[c.target] is carried:
            other = env.objects[c.other]
            return Subgoal("putnext", describe_object(carried), cell_of(other), describe_object(other))
    return Subgoal("drop", describe_object(carried), front)


def next_subgoal(env: Any, actions: Sequence[int]) -> Subgoal:
    """The first event of ``actions`` (an optimal plan from the env's current state) as a :class:`Subgoal`.

    Args:
        env: a shiftgrid env (wrapped or not) in the state the plan starts from.
        actions: the plan (e.g. :func:`~shiftgrid.envs.oracle.solve_from`'s ``actions``).

    Raises:
        ValueError: an empty plan (the mission is complete).
    """
    u = env.unwrapped
    if not actions:
        raise ValueError("an empty plan has no subgoal (is the mission complete?)")
    pending = _pending(u)
    pos, d = (int(u.agent_pos[0]), int(u.agent_pos[1])), int(u.agent_dir)
    for action in actions:
        if action in (PICKUP, TOGGLE, DROP):
            return _interaction(u, pending, action, pos, d)
        if action == LEFT:
            d = (d - 1) % 4
        elif action == RIGHT:
            d = (d + 1) % 4
        elif action == FORWARD:
            pos = _front(pos, d)
        event = _clause_event(u, pending, pos, d)
        if event is not None:
            return event
        if action == DONE:
            break
    # The plan completed the step without a visible event: name the step's first open clause.
    c = pending[0]
    if c.verb == "reach":
        return Subgoal("reach", "the goal", pos)
    obj = u.objects[c.target]
    return Subgoal(c.verb if c.verb in SUBGOAL_VERBS else "goto", describe_object(obj), cell_of(obj))


def relative(env: Any, cell: Cell) -> tuple[int, int]:
    """``cell`` in the agent's frame: (cells ahead, cells to the right); negative: behind, to the left.

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> env = gym.make("shiftgrid/GoTo-v1"); _ = env.reset(seed=0); u = env.unwrapped
        >>> x, y = u.front_pos
        >>> relative(u, (int(x), int(y)))
        (1, 0)
    """
    u = env.unwrapped
    delta = np.asarray(cell) - np.asarray(u.agent_pos)
    ahead, right = int(delta @ u.dir_vec), int(delta @ u.right_vec)
    return ahead, right


def direction_text(env: Any, subgoal: Subgoal) -> str:
    """Where the subgoal is from the agent: ``'the red box is behind you on your left'``, ``'the yellow door is ahead'``.

    A free drop (``drop``) has no landmark to locate; its text is the subgoal's (``'drop the red ball'``).
    """
    if subgoal.verb == "drop":
        return subgoal.text
    ahead, right = relative(env, subgoal.cell)
    parts = ["ahead" if ahead > 0 else "behind you" if ahead < 0 else ""]
    parts.append("on your right" if right > 0 else "on your left" if right < 0 else "")
    where = " ".join(p for p in parts if p) or "here"
    return f"{subgoal.landmark} is {where}"

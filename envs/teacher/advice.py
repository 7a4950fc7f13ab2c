"""Advice: what the teacher says (at a granularity), and when it speaks (schedule, budget, fading).

Granularities, all from the optimal plan from the agent's *current* state:

- ``subgoal``: the plan's next subgoal in the mission's language ("pick up the yellow key");
- ``direction``: where that subgoal is from the agent ("the yellow key is behind you on your left");
- ``action``: the next optimal action in words ("turn left", "go forward", "pick up").

How the learner takes it (``protocol``): ``observation`` puts the words in the learner's
observation (``advice`` tokens; the baseline, for SB3's learners); ``kickstart`` never shows them:
the teacher's next optimal action at every step of ``watched_envs`` envs becomes a training signal,
a cross-entropy loss toward it added to the learner's own with ``weight``, falling with the same
``fade_steps`` (``--algo tensor-ppo``; granularity ``action`` only); ``distill`` (advice
distillation, ``--algo tensor-ppo``, any granularity) shows the words to a second, *advised*
policy that plays the ``watched_envs`` envs and learns by PPO, while the learner's advice-free
policy plays the others and also learns the advised policy's action distribution on the advised
policy's steps (a cross-entropy with ``weight``, fading over ``fade_steps``, after which the
advised policy and the teacher stop).

When to speak (:class:`AdviceConfig`): ``always`` (every step), ``every`` ``k`` steps (steps 0,
k, 2k... of the episode), or on ``deviation`` (only after the learner's last action left the
optimal plan: the optimal steps from the new state are not one fewer than before; on a
slippery floor, its action was not the plan's). A ``budget`` caps utterances per episode, and
``fade_steps`` fades advice out over training: it is spoken with probability
``max(0, 1 - training_step / fade_steps)``, where the training step is the learner's global
step count, which it sets on every sub-environment (``set_training_step``).

Example:
    >>> config = AdviceConfig("action", when="every", every=2, budget=10)
    >>> config.check(); config.enabled
    True
    >>> ACTION_WORDS[2]
    'go forward'
    >>> fade_probability(AdviceConfig("subgoal", fade_steps=1000), 250)
    0.75
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minigrid.core.actions import Actions

from shiftgrid.envs.errors import UserInputError

#: Advice granularities, coarsest first.
GRANULARITIES = ("subgoal", "direction", "action")
#: When the teacher may speak.
WHEN = ("always", "every", "deviation")
#: How the learner takes advice: in its observation, or as a loss toward the teacher's action.
PROTOCOLS = ("observation", "kickstart", "distill")
#: The protocols that turn advice into a training signal of a learner on the engine (``--algo tensor-ppo``).
TRAINING_PROTOCOLS = ("kickstart", "distill")

#: minigrid's actions in words (``toggle`` opens the door or box in front; ``done`` is the no-op).
ACTION_WORDS: dict[int, str] = {
    int(Actions.left): "turn left",
    int(Actions.right): "turn right",
    int(Actions.forward): "go forward",
    int(Actions.pickup): "pick up",
    int(Actions.drop): "drop",
    int(Actions.toggle): "open",
    int(Actions.done): "done",
}


class AdviceError(UserInputError, ValueError):
    """Advice asked for where no teacher can give it (an env with neither the exact oracle nor BabyAI's bot)."""


@dataclass
class AdviceConfig:
    """Advice settings (the ``advice`` section of a training config).

    Example:
        >>> AdviceConfig().enabled, AdviceConfig("direction").enabled
        (False, True)
    """

    granularity: str | None = None
    """``subgoal``, ``direction`` or ``action`` (None: no advice)."""
    when: str = "always"
    """``always`` (every step), ``every`` (every ``every`` steps) or ``deviation`` (after the learner left the optimal plan)."""
    every: int = 1
    """With ``when: every``: speak at steps 0, k, 2k... of each episode."""
    budget: int | None = None
    """Utterances per episode at most (None: no limit)."""
    fade_steps: int | None = None
    """Training steps over which the probability of speaking falls linearly from 1 to 0 (None: never fades);
    with ``kickstart``, the steps over which its loss weight falls to 0."""
    protocol: str = "observation"
    """``observation`` (the words in the learner's observation), ``kickstart`` (a loss toward the teacher's action)
    or ``distill`` (an advised policy's behaviour learned by the advice-free one)."""
    weight: float = 1.0
    """``kickstart`` / ``distill``: the weight of its cross-entropy loss at step 0 (beside PPO's loss)."""
    watched_envs: int = 16
    """``kickstart`` / ``distill``: how many of the learner's envs the teacher speaks in, at every step (the first ones)."""

    @property
    def enabled(self) -> bool:
        return self.granularity is not None

    def check(self) -> None:
        """Raise ``ValueError`` naming the bad setting and what is valid."""
        if self.granularity is not None and self.granularity not in GRANULARITIES:
            raise ValueError(f"advice.granularity={self.granularity!r} is not valid; valid: {', '.join(GRANULARITIES)} (or null: no advice)")
        if self.when not in WHEN:
            raise ValueError(f"advice.when={self.when!r} is not valid; valid: {', '.join(WHEN)}")
        if self.every < 1:
            raise ValueError(f"advice.every={self.every!r} is not valid; valid: an integer >= 1")
        if self.budget is not None and self.budget < 0:
            raise ValueError(f"advice.budget={self.budget!r} is not valid; valid: an integer >= 0 or null (no limit)")
        if self.fade_steps is not None and self.fade_steps < 1:
            raise ValueError(f"advice.fade_steps={self.fade_steps!r} is not valid; valid: an integer >= 1 or null (no fading)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"advice.protocol={self.protocol!r} is not valid; valid: {', '.join(PROTOCOLS)}")
        if self.protocol == "kickstart" and self.granularity != "action":
            raise ValueError(f"advice.protocol=kickstart learns toward the teacher's next action: it needs --advice action, "
                             f"got granularity {self.granularity!r}")
        if not self.weight > 0 or self.watched_envs < 1:
            raise ValueError(f"advice.weight must be > 0 and advice.watched_envs >= 1, got {self.weight!r} and {self.watched_envs!r}")


def fade_probability(config: AdviceConfig, training_step: int) -> float:
    """The probability of speaking at ``training_step`` (1 without fading)."""
    if config.fade_steps is None:
        return 1.0
    return max(0.0, 1.0 - training_step / config.fade_steps)


def scheduled(config: AdviceConfig, step: int, deviated: bool) -> bool:
    """Whether the schedule lets the teacher speak at episode step ``step`` (``deviated``: the last action left the plan).

    Example:
        >>> [scheduled(AdviceConfig("action", when="every", every=3), t, False) for t in range(4)]
        [True, False, False, True]
    """
    if config.when == "always":
        return True
    if config.when == "every":
        return step % config.every == 0
    return deviated


def advice_text(granularity: str, env: Any, teacher: Any, plan: Any = None, action: int | None = None) -> str:
    """What ``teacher`` says at ``granularity`` about ``env``'s current state.

    ``plan`` (the optimal plan from here) and ``action`` (its first action) save replanning
    when the caller has them.

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> from shiftgrid.envs.teacher import OracleTeacher
        >>> env = gym.make("shiftgrid/DoorKey-v1"); _ = env.reset(seed=0)
        >>> [advice_text(g, env, OracleTeacher()) for g in GRANULARITIES]
        ['pick up the blue key', 'the blue key is behind you', 'turn right']
    """
    from shiftgrid.envs.teacher.subgoal import direction_text

    if granularity == "action":
        return ACTION_WORDS[int(teacher.act(env) if action is None else action)]
    subgoal = teacher.subgoal(env, plan)
    if subgoal is None:  # a BabyAI bot still exploring: nothing to say yet
        return ""
    if granularity == "subgoal":
        return subgoal.text
    if granularity == "direction":
        return direction_text(env, subgoal)
    raise ValueError(f"advice granularity {granularity!r} is not valid; valid: {', '.join(GRANULARITIES)}")

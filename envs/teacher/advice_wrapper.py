"""The advice observation: a wrapper in which the oracle teacher speaks, and one in which it is silent.

:class:`AdviceWrapper` adds ``advice`` (a gymnasium ``Text``, like ``mission``) to a Dict
observation: the teacher's words about the current state when it speaks
(:mod:`shiftgrid.envs.teacher.advice`), ``""`` when it does not. :class:`NoAdvice` adds the same
key, always ``""``: evaluation uses it, so a policy trained with advice keeps its observation
space and is scored without its teacher. Tokenised by
:class:`~shiftgrid.envs.wrappers.MissionTokens`, silence is all padding.

Counts: ``info["advice_utterances"]`` and ``info["advice_tokens"]`` are the episode's totals so
far; ``info["teacher_cost"]`` (every ``step``) holds what this step's observation cost,
plus that of the reset observation before it (SB3's vector envs never show reset infos), so
summing it over steps counts every utterance (:func:`shiftgrid.envs.teacher.cost.add_costs`).

Fading reads the learner's global step, set on every sub-environment:
``vec_env.env_method("set_training_step", n)`` (SB3) or ``envs.call("set_training_step", n)``
(gymnasium).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = AdviceWrapper(gym.make("shiftgrid/Pickup-v1"), AdviceConfig("action"))
    >>> obs, info = env.reset(seed=0)
    >>> obs["advice"] in ("turn left", "turn right", "go forward", "pick up")
    True
    >>> _, _, _, _, info = env.step(2)
    >>> info["advice_utterances"], info["teacher_cost"]["utterances"]
    (2, 2)
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from shiftgrid.envs.env import MISSION_CHARSET, MISSION_MAX_LENGTH
from shiftgrid.envs.language import tokenize
from shiftgrid.envs.oracle import Plan, UnsolvableLevel
from shiftgrid.envs.spaces import MissionText
from shiftgrid.envs.teacher.cost import COST_KEY
from shiftgrid.envs.teacher.advice import AdviceConfig, AdviceError, advice_text, fade_probability, scheduled
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher, is_babyai, is_shiftgrid

#: The observation key advice goes under.
ADVICE_KEY = "advice"


def advice_space() -> MissionText:
    """The ``advice`` space: text in the mission's alphabet (vectorises like the mission)."""
    return MissionText(max_length=MISSION_MAX_LENGTH, min_length=0, charset=MISSION_CHARSET)


def _with_advice(env: gym.Env) -> spaces.Dict:
    if not isinstance(env.observation_space, spaces.Dict):
        raise TypeError(f"advice needs a Dict observation space, got {env.observation_space}")
    if ADVICE_KEY in env.observation_space.spaces:
        raise ValueError("the observation already has an 'advice' key (is the env wrapped twice?)")
    return spaces.Dict({**env.observation_space.spaces, ADVICE_KEY: advice_space()})


class NoAdvice(gym.ObservationWrapper):
    """The ``advice`` key of :class:`AdviceWrapper`, always silent (``""``): how advised learners are evaluated."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = _with_advice(env)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, ADVICE_KEY: ""}


class AdviceWrapper(gym.Wrapper):
    """The oracle teacher's advice as an ``advice`` text observation (see the module docstring).

    Args:
        env: a shiftgrid env or a BabyAI level (advised from BabyAIBot's plan), with a Dict observation.
        config: granularity and when to speak.
        teacher: the teacher that speaks (default: a new :class:`OracleTeacher`).

    Raises:
        ValueError: advice disabled or malformed in ``config``.
        AdviceError: an env with neither an oracle nor a bot (a user error: the CLI prints one line).
    """

    def __init__(self, env: gym.Env, config: AdviceConfig, teacher: OracleTeacher | None = None):
        super().__init__(env)
        config.check()
        if not config.enabled:
            raise ValueError("AdviceWrapper needs a granularity (subgoal, direction or action); use NoAdvice for silence")
        if not is_shiftgrid(env) and not is_babyai(env):
            spec = getattr(env.unwrapped, "spec", None)
            name = f"{spec.id} ({type(env.unwrapped).__name__})" if spec is not None else type(env.unwrapped).__name__
            raise AdviceError(f"advice needs a teacher that can plan: a shiftgrid id (the exact oracle, e.g. shiftgrid/GoTo-v1) "
                              f"or a BabyAI level (BabyAIBot, e.g. BabyAI-GoToLocal-v0); {name} is neither")
        self.observation_space = _with_advice(env)
        self.config, self.teacher = config, teacher or OracleTeacher()
        self.training_step = 0
        self.rng = np.random.default_rng()
        self.utterances = self.tokens = 0
        self._pending = {"utterances": 0, "advice_tokens": 0}
        self._t = 0
        self._plan: Plan | None = None
        self._suggested: int | None = None
        self._before: tuple[Plan, int] | None = None  # the last plan, and the action then taken

    def set_training_step(self, step: int) -> None:
        """The learner's global step count (for fading)."""
        self.training_step = int(step)

    # -- the teacher's view of the current state -------------------------------------------------
    def _look(self, needed: bool) -> None:
        """Plan (shiftgrid) or ask the bot (BabyAI) from the current state, where needed now or for deviation."""
        self._plan, self._suggested = None, None
        follows = self.config.when == "deviation" or not is_shiftgrid(self.env)  # the bot must see every step
        if not (needed or follows):
            return
        if is_shiftgrid(self.env):
            self._plan = self._followed()
            if self._plan is None:
                try:
                    self._plan = self.teacher.plan(self.env)
                except UnsolvableLevel:  # the learner made the mission impossible: nothing right to say
                    return
            self._suggested = int(self._plan.actions[0])
        else:
            self._suggested = self.teacher.act(self.env)

    def _followed(self) -> Plan | None:
        """A plan from here without a search: the level's plan at reset, or the rest of the last plan.

        The rest of the last plan serves where the learner took its first action on a floor
        that does not slip: the new state is then the one the plan went through, and the rest
        of a shortest plan is a shortest plan from there.
        """
        u = self.env.unwrapped
        sample = getattr(u, "sample", None) if self._t == 0 else None
        if sample is not None and sample.plan is not None:
            return sample.plan  # the level's own plan, made at reset
        if self._before is None or bool(getattr(u, "slip", 0)):
            return None
        plan, taken = self._before
        if len(plan.actions) < 2 or taken != plan.actions[0]:
            return None
        return Plan(plan.actions[1:], plan.steps - 1, plan.exact)

    def _deviated(self, action: int, before: Any, before_action: int | None) -> bool:
        if before_action is None or self._suggested is None:
            return False
        u = self.env.unwrapped
        if before is not None and self._plan is not None and not getattr(u, "slip", 0):
            return self._plan.steps != before.steps - 1
        return int(action) != before_action

    def _speak(self, deviated: bool) -> str:
        c = self.config
        if not scheduled(c, self._t, deviated) or (c.budget is not None and self.utterances >= c.budget):
            return ""
        p = fade_probability(c, self.training_step)
        if p < 1.0 and self.rng.random() >= p:
            return ""
        if self._plan is None and self._suggested is None:
            self._look(True)
        if self._suggested is None:
            return ""
        assert c.granularity is not None, "__init__ refuses a config without a granularity"
        text = advice_text(c.granularity, self.env, self.teacher, self._plan, self._suggested)
        if not text:
            return ""
        self.utterances += 1
        self.tokens += len(tokenize(text))
        self._pending["utterances"] += 1
        self._pending["advice_tokens"] += len(tokenize(text))
        return text

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "advice_utterances": self.utterances, "advice_tokens": self.tokens}

    # -- gymnasium ------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), 0xAD1CE])
        self.utterances = self.tokens = self._t = 0
        self._before = None
        self._look(needed=False)  # _speak plans if it speaks
        return {**obs, ADVICE_KEY: self._speak(deviated=False)}, self._info(info)

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        before, before_action = self._plan, self._suggested
        self._before = None if before is None else (before, int(np.asarray(action)))
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        text = ""
        if not (terminated or truncated):
            self._look(needed=False)
            text = self._speak(self._deviated(int(np.asarray(action)), before, before_action))
        cost, self._pending = self._pending, {"utterances": 0, "advice_tokens": 0}
        return {**obs, ADVICE_KEY: text}, reward, terminated, truncated, {**self._info(info), COST_KEY: cost}

"""Learner-facing environments: one ``make_env`` for shiftgrid, minigrid and BabyAI ids.

Every environment made here has a Dict observation of Boxes (mission as token ids) and an
``info["success"]`` (also ``info["is_success"]``, which stable-baselines3 reads for
``rollout/success_rate``). On minigrid's and BabyAI's own ids, success is BabyAI's rule:
the episode ended with a positive reward.

With ``advice`` (an enabled :class:`~shiftgrid.envs.teacher.advice.AdviceConfig`) the oracle
teacher's advice is an ``advice`` observation, tokenised like the mission; with
``silent_advice`` the key is there but always empty (all padding): how a policy trained with
advice is evaluated, so its observation space still matches and it is scored without its teacher.

Example:
    >>> env = make_env("shiftgrid/GoTo-v1", split="size/near")
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs)
    ['direction', 'image', 'mission']
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym

import shiftgrid.envs
from shiftgrid.envs.registration import UnknownEnvError, bare_id
from shiftgrid.envs.teacher.advice import AdviceConfig, AdviceError
from shiftgrid.envs.teacher.advice_wrapper import ADVICE_KEY, AdviceWrapper, NoAdvice
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, MissionTokens


class SuccessInfo(gym.Wrapper):
    """Put ``success`` (and ``is_success`` for SB3) in ``info``; where the env has none, success = positive reward."""

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "success" not in info:
            info["success"] = bool(terminated and float(reward) > 0)
        info["is_success"] = bool(info["success"])
        return obs, reward, terminated, truncated, info


def has_splits(env_id: str) -> bool:
    """Whether ``env_id`` is a shiftgrid id (with splits) rather than a plain gymnasium id.

    A ``module:id`` (gymnasium's form) imports ``module`` first, as ``gym.make`` does.
    """
    return bare_id(env_id) in shiftgrid.envs.registered_ids(superseded=True)


def make_env(env_id: str, split: str | None = None, max_len: int = DEFAULT_MAX_LEN, *, advice: AdviceConfig | None = None,
             silent_advice: bool = False, **kwargs: Any) -> gym.Env:
    """Make ``env_id`` (with ``split`` for shiftgrid ids) wrapped for learners.

    ``env_id`` may be ``module:id``: ``module`` is imported first (it registers ``id``), also in
    subprocess vector envs, which is how a family of another project trains there. ``advice``
    (enabled) adds the teacher's advice, ``silent_advice`` an always-empty ``advice`` key (see
    the module docstring).

    Example:
        >>> env = make_env("shiftgrid/GoTo-v1", advice=AdviceConfig("subgoal"))
        >>> obs, _ = env.reset(seed=0)
        >>> bool((obs["advice"] == obs["mission"]).all())  # on GoTo the subgoal is the mission
        True

    Raises:
        UnknownEnvError: unknown id, or a split given for an id without splits.
        ValueError: malformed advice settings, or a granularity the env cannot give.
    """
    env_id = bare_id(env_id)
    if has_splits(env_id):
        env = gym.make(env_id, split=split or "train", **kwargs)
    else:
        if env_id not in gym.registry:
            known = ", ".join(shiftgrid.envs.registered_ids())
            raise UnknownEnvError(f"unknown environment id {env_id!r}; shiftgrid ids: {known} (or any minigrid/BabyAI id; "
                                  f"an id your module registers: 'yourmodule:{env_id}', which subprocesses import too)")
        if split not in (None, "train"):
            raise UnknownEnvError(f"{env_id} has no splits (got split={split!r}); only shiftgrid ids do")
        env = gym.make(env_id, **kwargs)
    env = SuccessInfo(env)
    if advice is not None and advice.enabled:
        if advice.protocol != "observation":
            raise AdviceError(f"advice.protocol={advice.protocol} is a training signal, not words in the observation: "
                             "--algo tensor-ppo takes it (here: advice.protocol=observation)")
        env = AdviceWrapper(env, advice)
    elif silent_advice:
        env = NoAdvice(env)
    return MissionTokens(env, max_len=max_len)


def env_spaces(env_id: str, split: str | None = None, **kwargs: Any) -> tuple[gym.Space, gym.Space]:
    """``(observation_space, action_space)`` of ``make_env(env_id, split, **kwargs)``, the env closed again.

    What a learner or a model is built for when it steps no env itself (acting, loading, benchmarks).

    Example:
        >>> obs_space, act_space = env_spaces("MiniGrid-Empty-5x5-v0")
        >>> obs_space["image"].shape, int(act_space.n)
        ((7, 7, 3), 7)
    """
    env = make_env(env_id, split, **kwargs)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def expects_advice(agent: Any) -> bool:
    """Whether ``agent`` (an SB3 model, a learner holding one as ``model`` or ``policy``) observes an ``advice`` key.

    Example:
        >>> expects_advice(object())
        False
    """
    for holder in (agent, getattr(agent, "model", None), getattr(agent, "policy", None)):
        space = getattr(holder, "observation_space", None)
        if isinstance(space, gym.spaces.Dict):
            return ADVICE_KEY in space.spaces
    return False


def close_quietly(env: Any) -> None:
    """Close a (vector) env, if any; subprocess workers that already exited (after Ctrl-C) are no error."""
    if env is None:
        return
    try:
        env.close()
    except (EOFError, BrokenPipeError, ConnectionError):
        pass

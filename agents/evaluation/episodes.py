"""Evaluating any agent with the SB3 ``predict`` signature, episode by episode, on shift splits.

Reset seeds, and why evaluation never sees a training level:

- **shiftgrid ids**: every test split (``id``, ``<axis>/near``, ``<axis>/far``) is held out by
  construction (its own level-seed range and the reserved level-hash bucket that training
  never draws from), so episode ``i`` simply resets with seed ``seed + i``.
- **ids without splits** (minigrid, BabyAI): episode ``i`` resets with seed
  ``HELD_OUT_SEED_BASE + seed + i`` (``HELD_OUT_SEED_BASE = 10**9``), a range that training
  never passes to ``reset``. Such envs have no level hash, so this separates reset seeds, not
  level contents: an unseeded training reset may still draw the same layout by chance.

Checkpoint selection during training evaluates from ``eval.seed`` (default
:data:`~shiftgrid.agents.run.config.VALIDATION_SEED`), ``shiftgrid evaluate`` from seed 0: the
levels ``best.pt`` was chosen on are not the levels it is scored on.

Example:
    >>> from shiftgrid.agents.evaluation.baselines import RandomAgent
    >>> from gymnasium import spaces
    >>> agent = RandomAgent(spaces.Discrete(7), seed=0)
    >>> results = run_episodes(agent, "shiftgrid/GoTo-v1", "size/near", episodes=3)
    >>> len(results), all(r.optimal_return > 0 for r in results)
    (3, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, cast

import gymnasium as gym
import numpy as np
import torch

from shiftgrid.envs.episodes import EpisodeCounter
from shiftgrid.envs.learner_env import expects_advice, has_splits, make_env
from shiftgrid.envs.registration import UnknownEnvError, splits_for

#: First reset seed used to evaluate on ids without splits; training must stay below it.
HELD_OUT_SEED_BASE = 10**9
#: The split name used for ids without splits: the training distribution on held-out seeds.
IN_DISTRIBUTION = "id"
#: How a policy sees the env: a callable from the env of :func:`evaluation_env` (Dict observation, text mission,
#: ``info["success"]``) to the env the policy acts in (e.g. minigrid's ``ImgObsWrapper``); None: shiftgrid's own view.
ObservationWrapper = Callable[[gym.Env], gym.Env]


class PolicyError(ValueError):
    """A policy answered with something that is not a batch of valid actions."""


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode.

    Attributes:
        success: the mission was completed.
        ret: undiscounted return.
        length: steps taken.
        optimal_return, optimal_steps: the oracle's figures for this level (None on ids without an oracle).
        level_hash: canonical hash of the level (None on ids without one).
        optimal_exact: the oracle proved ``optimal_return`` optimal (False: a bound, the search
            passed its budget or the level is slippery with objects; None on ids without an oracle).
        action_counts: how often the policy took each action in the episode (``action_counts[a]``; None
            where the action space is not discrete), so reports can tell a (nearly) constant policy.
    """

    success: bool
    ret: float
    length: int
    optimal_return: float | None = None
    optimal_steps: float | None = None
    level_hash: str | None = None
    optimal_exact: bool | None = None
    action_counts: tuple[int, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as ``dataclasses.asdict`` gives them (without its deep copy: a report holds thousands)."""
        return dict(vars(self))


def _stack(observations: Sequence[Any]) -> Any:
    """Batch per-env observations (dicts of arrays, or arrays) the way SB3 vec envs do."""
    if isinstance(observations[0], dict):
        return {k: np.stack([np.asarray(o[k]) for o in observations]) for k in observations[0]}
    return np.stack([np.asarray(o) for o in observations])


def _number(x: Any) -> float | None:
    return None if x is None else float(x)


def first_reset_seed(env_id: str, seed: int = 0) -> int:
    """Reset seed of evaluation episode 0 (episode ``i`` uses this plus ``i``); see the module docstring.

    Example:
        >>> first_reset_seed("shiftgrid/GoTo-v1", 5), first_reset_seed("MiniGrid-Empty-5x5-v0", 5)
        (5, 1000000005)
    """
    return seed if has_splits(env_id) else HELD_OUT_SEED_BASE + seed


def evaluation_env(env_id: str, split: str | None, env_kwargs: Mapping[str, Any] | None = None,
                   wrapper: ObservationWrapper | None = None, advice: bool = False) -> gym.Env:
    """One evaluation env: :func:`~shiftgrid.envs.learner_env.make_env` with ``env_kwargs``, seen through ``wrapper``.

    Without ``wrapper`` the policy sees what shiftgrid's learners train on (missions as tokens,
    :class:`~shiftgrid.envs.wrappers.MissionTokens`); a ``wrapper`` receives the env beneath
    that (missions as text) and returns the env the policy acts in. Evaluation is always
    without advice: with ``advice`` (a policy trained with it) the ``advice`` key is there, but
    always empty (all padding), so the observation space matches and no teacher speaks.

    Example:
        >>> from minigrid.wrappers import ImgObsWrapper
        >>> evaluation_env("shiftgrid/GoTo-v1", "id", {"size": 9}, ImgObsWrapper).observation_space.shape
        (7, 7, 3)
    """
    kwargs = {**dict(env_kwargs or {}), **({"silent_advice": True} if advice else {})}
    env = make_env(env_id, split, **kwargs)
    if wrapper is None:
        return env
    return wrapper(cast(gym.Wrapper, env).env)  # make_env's env beneath its MissionTokens


def advice_note(agents: Sequence[Any], configs: Sequence[Mapping[str, Any]]) -> str | None:
    """The report's line on advice, where an agent was trained with it (None otherwise): it is evaluated without.

    Example:
        >>> advice_note([object()], [{"advice": {"granularity": "subgoal"}}])
        "evaluated without advice (trained with the oracle teacher's subgoal advice; the policy's advice input is all padding)"
        >>> advice_note([object()], [{"advice": {"granularity": "action", "protocol": "kickstart"}}])
        "evaluated without the teacher (trained with the oracle teacher's action advice as a training signal: kickstarting; the policy has no advice input)"
        >>> advice_note([object()], [{}]) is None
        True
    """
    advised = [c.get("advice") or {} for c in configs if (c.get("advice") or {}).get("granularity")]
    kinds = sorted({str(a["granularity"]) for a in advised})
    if not kinds and not any(expects_advice(a) for a in agents):
        return None
    trained = f"the oracle teacher's {' and '.join(kinds)} advice" if kinds else "advice"
    signals = sorted({str(a.get("protocol")) for a in advised} & {"kickstart", "distill"})
    if signals and len(signals) == len({str(a.get("protocol", "observation")) for a in advised}):
        how = {"kickstart": "kickstarting", "distill": "advice distillation"}
        return (f"evaluated without the teacher (trained with {trained} as a training signal: "
                f"{' and '.join(how[s] for s in signals)}; the policy has no advice input)")
    return f"evaluated without advice (trained with {trained}; the policy's advice input is all padding)"


def check_actions(actions: Any, n: int, action_space: gym.Space, who: str) -> np.ndarray:
    """``actions`` as an array of ``n`` valid actions of ``action_space``, else :class:`PolicyError` naming both.

    Example:
        >>> from gymnasium import spaces
        >>> check_actions([2, 0], 2, spaces.Discrete(7), "f").tolist()
        [2, 0]
        >>> try:
        ...     check_actions([2, 9], 2, spaces.Discrete(7), "f")
        ... except PolicyError as e:
        ...     print(e)
        f returned action 9 for observation 1 of a batch of 2; valid actions: Discrete(7) (integers 0..6)
    """
    valid = f"{action_space}" + (f" (integers 0..{action_space.n - 1})" if isinstance(action_space, gym.spaces.Discrete) else "")
    try:
        array = np.asarray(actions)
    except Exception:
        array = None
    expected = (n, *action_space.shape) if action_space.shape else (n,)
    if array is None or array.dtype == object or array.shape != expected:
        got = (f"an array of shape {actions.shape} ({actions.dtype})" if isinstance(actions, np.ndarray)
               else f"{type(actions).__name__} {' '.join(repr(actions).split())[:60]}")
        raise PolicyError(f"{who} returned {got} for a batch of {n} observations; expected one action per observation "
                          f"(shape {expected}) of {valid}")
    if isinstance(action_space, gym.spaces.Discrete):  # the whole batch at once (an engine batch may be thousands)
        start = int(action_space.start)
        fits = np.issubdtype(array.dtype, np.integer) & (array >= start) & (array < start + int(action_space.n))
        if fits.all():
            return array
        i = int(np.flatnonzero(~fits)[0])
        raise PolicyError(f"{who} returned action {array[i].tolist()!r} for observation {i} of a batch of {n}; valid actions: {valid}")
    for i, a in enumerate(array):
        ok = action_space.contains(np.asarray(a, dtype=action_space.dtype)) if action_space.shape else action_space.contains(a)
        if not ok:
            raise PolicyError(f"{who} returned action {a.tolist()!r} for observation {i} of a batch of {n}; valid actions: {valid}")
    return array


def who(agent: Any) -> str:
    """How errors name ``agent``: its ``label``, else its ``predict``."""
    return getattr(agent, "label", None) or f"{type(agent).__name__}.predict"


def cuda_devices() -> list[int]:
    """The CUDA devices whose generators sampled evaluation actions draw from (none until CUDA is in use).

    Forked with the CPU generator, so an evaluation or side estimate leaves the learner's randomness as it was.
    """
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


def run_episodes(
    agent: Any, env_id: str, split: str | None, episodes: int, *, seed: int = 0, n_envs: int = 4,
    deterministic: bool = True, env_kwargs: Mapping[str, Any] | None = None, wrapper: ObservationWrapper | None = None,
    step_budget: int | None = None,
) -> list[EpisodeResult]:
    """Run exactly ``episodes`` episodes of ``agent`` on ``env_id``/``split`` (fewer where ``step_budget`` runs out).

    Episode ``i`` always resets with the same seed (see the module docstring), whatever
    ``n_envs``, and results come back in episode order. ``n_envs`` environments are stepped
    side by side so the agent is called on batches; a slot whose episode ends starts the next
    unstarted episode (with ``episode_start`` true, so recurrent agents reset their memory), and
    idles once none is left. ``split`` is None for ids without splits (on a shiftgrid id, None
    means ``train``).

    Args:
        agent: anything with ``predict(obs, state, episode_start, deterministic) -> (actions, state)``.
        env_id: a shiftgrid, minigrid or BabyAI id (made with :func:`~shiftgrid.envs.learner_env.make_env`).
        split: split name on shiftgrid ids (``id``, ``size/far``, ...), None otherwise.
        episodes: how many episodes (>= 1).
        seed: first evaluation seed.
        n_envs: environments stepped side by side.
        deterministic: take the agent's most likely action (BabyAI's protocol). False samples
            from the policy instead, from torch's generator seeded with ``seed`` (restored after),
            so a stochastic evaluation repeats exactly for a given ``n_envs``. A policy without
            memory can loop forever on its most likely action where sampling gets it unstuck.
        env_kwargs: keyword arguments of the env (a run's ``env_kwargs``: factor values, ``max_steps``...).
        wrapper: how the agent sees the env (see :func:`evaluation_env`); None: as shiftgrid trains.
            An agent trained with advice is evaluated without it (its ``advice`` input all padding).
        step_budget: once the episodes have taken this many steps in all, start no new one (those
            under way finish); the results are then the first episodes, fewer than ``episodes``.

    Raises:
        PolicyError: the agent returned something other than one valid action per observation.

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import ScriptedAgent
        >>> spin = ScriptedAgent([], fallback=0)  # turns left until the episode limit
        >>> [(r.success, r.length > 0) for r in run_episodes(spin, "shiftgrid/GoTo-v1", "id", 2, n_envs=2)]
        [(False, True), (False, True)]
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    base = first_reset_seed(env_id, seed)
    n = max(1, min(n_envs, episodes))
    envs = [evaluation_env(env_id, split, env_kwargs, wrapper, advice=expects_advice(agent)) for _ in range(n)]
    with torch.random.fork_rng(devices=cuda_devices()):
        torch.manual_seed(seed)
        return _run(agent, envs, lambda i: {"seed": base + i}, episodes, deterministic, step_budget)


def run_levels(agent: Any, env_id: str, split: str | None, level_seeds: Sequence[int], episodes: int, *, seed: int = 0,
               n_envs: int = 4, deterministic: bool = True, env_kwargs: Mapping[str, Any] | None = None) -> list[EpisodeResult]:
    """``episodes`` episodes of ``agent`` on each level of a shiftgrid split, named by its level seed, as :func:`run_episodes` plays them.

    Results come in order: level ``j``'s episodes are ``j * episodes`` to ``(j + 1) * episodes - 1``.
    Episode ``i`` resets with ``options={"level_seed": ...}`` and ``seed=seed + i`` (the level is the
    level seed's; the reset seed only seeds the episode's dynamics, e.g. slips), and torch's generator
    is seeded with ``seed`` as in :func:`run_episodes`.

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import ScriptedAgent
        >>> out = run_levels(ScriptedAgent([], fallback=0), "shiftgrid/GoTo-v1", "train", [7, 9], 2, n_envs=2)
        >>> len(out), out[0].level_hash == out[1].level_hash != out[2].level_hash
        (4, True)
    """
    if episodes < 1 or not level_seeds:
        raise ValueError(f"run_levels needs episodes >= 1 and at least one level seed, got {episodes} and {list(level_seeds)}")
    total = episodes * len(level_seeds)
    envs = [evaluation_env(env_id, split, env_kwargs, advice=expects_advice(agent)) for _ in range(max(1, min(n_envs, total)))]
    with torch.random.fork_rng(devices=cuda_devices()):
        torch.manual_seed(seed)
        return _run(agent, envs, lambda i: {"seed": seed + i, "options": {"level_seed": int(level_seeds[i // episodes])}},
                    total, deterministic)


def _run(agent: Any, envs: list, reset: Callable[[int], dict[str, Any]], episodes: int, deterministic: bool,
         step_budget: int | None = None) -> list[EpisodeResult]:
    """Play ``episodes`` episodes on ``envs`` side by side; episode ``i`` starts with ``env.reset(**reset(i))``.

    With ``step_budget``, no episode starts once that many steps were taken: the first episodes come back.
    """
    n = len(envs)
    taken = 0
    try:
        slot_episode = list(range(n))
        obs = [env.reset(**reset(i))[0] for i, env in enumerate(envs)]
        counter = EpisodeCounter(n)
        results: list[EpisodeResult | None] = [None] * episodes
        active, next_episode = np.ones(n, dtype=bool), n
        state, episode_start = None, np.ones(n, dtype=bool)
        space = envs[0].action_space
        counts = np.zeros((n, int(space.n)), dtype=np.int64) if isinstance(space, gym.spaces.Discrete) else None
        while active.any():
            actions, state = agent.predict(_stack(obs), state=state, episode_start=episode_start, deterministic=deterministic)
            actions = check_actions(actions, n, envs[0].action_space, who(agent))
            episode_start = np.zeros(n, dtype=bool)
            reward, terminated, truncated = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            infos: list[dict[str, Any]] = [{}] * n
            for j in np.flatnonzero(active):
                obs[j], reward[j], terminated[j], truncated[j], infos[j] = envs[j].step(actions[j])
                if counts is not None:
                    counts[j, int(actions[j]) - int(space.start)] += 1
            taken += int(active.sum())
            for j in counter.step(reward, terminated, truncated, active):
                info = infos[j]
                results[slot_episode[j]] = EpisodeResult(
                    success=bool(info.get("success", False)),
                    ret=float(counter.ended_returns[j]),
                    length=int(counter.ended_lengths[j]),
                    optimal_return=_number(info.get("optimal_return")),
                    optimal_steps=_number(info.get("optimal_steps")),
                    level_hash=info.get("level_hash"),
                    optimal_exact=None if info.get("optimal_exact") is None else bool(info["optimal_exact"]),
                    action_counts=None if counts is None else tuple(int(c) for c in counts[j]),
                )
                if counts is not None:
                    counts[j] = 0
                if next_episode < episodes and (step_budget is None or taken < step_budget):
                    slot_episode[j] = next_episode
                    obs[j] = envs[j].reset(**reset(next_episode))[0]
                    episode_start[j] = True
                    next_episode += 1
                else:
                    active[j] = False
        return results[:next_episode]  # type: ignore[return-value]  # every started episode's slot was filled before its env idled
    finally:
        for env in envs:
            env.close()


def splits_to_evaluate(env_id: str, splits: str | Iterable[str] = "all") -> list[str]:
    """The splits to evaluate, by canonical name: ``all`` = ``id`` and every ``<axis>/near|far``.

    ``<axis>/id`` splits share the levels of ``id``, so they are evaluated once, as ``id``
    (:meth:`~shiftgrid.envs.SplitSet.canonical`). On ids without splits the only split is
    ``id`` (the training distribution on held-out seeds).

    Raises:
        SplitError: an unknown split name (the message lists the valid ones).
        UnknownEnvError: a named split on an id without splits.

    Example:
        >>> splits_to_evaluate("shiftgrid/GoTo-v1", ["size/id", "size/far", "id"])
        ['id', 'size/far']
    """
    if not has_splits(env_id):
        names = [splits] if isinstance(splits, str) else list(splits)
        if set(names) - {"all", IN_DISTRIBUTION}:
            raise UnknownEnvError(f"{env_id} has no splits (got {', '.join(names)}); use 'all' or 'id' (held-out reset seeds)")
        return [IN_DISTRIBUTION]
    split_set = splits_for(env_id)
    if splits == "all":
        return split_set.test_splits()
    names = [splits] if isinstance(splits, str) else list(splits)
    return list(dict.fromkeys(split_set.canonical(name) for name in names))


def axis_layout(env_id: str, evaluated: Iterable[str]) -> dict[str, dict[str, str]]:
    """Axis -> {``id``/``near``/``far`` -> split name} over the ``evaluated`` splits (none on ids without splits).

    Example:
        >>> axis_layout("shiftgrid/GoTo-v1", ["id", "size/near", "size/far"])
        {'size': {'id': 'id', 'near': 'size/near', 'far': 'size/far'}}
    """
    return splits_for(env_id).axis_layout(list(evaluated)) if has_splits(env_id) else {}

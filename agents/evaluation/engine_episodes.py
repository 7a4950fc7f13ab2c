"""Evaluation episodes on the tensor engine: the minigrid env's evaluation levels, played all at once.

:func:`run_engine_episodes` plays episode ``i`` of a split on the level the minigrid env's
evaluation resets it on (reset seed ``first_reset_seed(env_id, seed) + i``; the levels are
:func:`~shiftgrid.envs.engine.bank.seeded_bank`'s, generated once and cached), every episode of a
batch at once, with the observations :func:`~shiftgrid.agents.evaluation.episodes.evaluation_env`
gives (``image``, ``direction``, ``mission`` tokens as NumPy arrays, so any agent with SB3's
``predict`` acts on them: tensor-ppo, SB3 policies, scripted ones). The engine steps the rules the
minigrid env is held to at every step (the parity tests), so for the same actions every
episode's success, return, length, level hash and oracle figures are the minigrid env's (the
engine hands out rewards as float32; a success's, the only reward, is taken in float64 from the
rule the engine applies, as the minigrid env computes it). Envs
whose episode ended leave the batch (:meth:`~shiftgrid.envs.engine.batch.TensorEngine.keep`).
:func:`run_engine_panel` plays the same episodes for several agents in one batch (the references:
uniform random and every constant action), each agent acting on its own envs, as it would alone.

:func:`evaluate_splits` plays every split of an evaluation, each with :func:`split_episodes`: ``backend`` ``engine``, ``minigrid``
or ``auto`` (the engine wherever it can play the split as the minigrid env would, else the
minigrid env). The engine does not play (:func:`engine_refusal` says why): an id it cannot
express; ``env_kwargs`` other than factor values and ``max_steps``; a policy that sees the env
through an observation wrapper or expects advice; a split whose floor slips (the minigrid env
draws its slips from its own generator, which the engine does not replay).

Example:
    >>> from shiftgrid.agents.evaluation.baselines import ScriptedAgent
    >>> out = run_engine_episodes(ScriptedAgent([2, 2, 1]), "shiftgrid/GoTo-v1", "id", 3)
    >>> len(out), all(r.level_hash is not None for r in out)
    (3, True)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from shiftgrid.agents.evaluation.backends import EngineRefused, check_backend
from shiftgrid.agents.evaluation.episodes import (
    EpisodeResult,
    ObservationWrapper,
    check_actions,
    cuda_devices,
    first_reset_seed,
    run_episodes,
    splits_to_evaluate,
    who,
)
from shiftgrid.envs.engine.bank import seeded_bank, source_for
from shiftgrid.envs.engine.batch import LevelStore, TensorEngine
from shiftgrid.envs.engine.levels import int_to_hash, stack
from shiftgrid.envs.engine.vector import fit_tokens
from shiftgrid.envs.errors import UserInputError
from shiftgrid.envs.learner_env import expects_advice, has_splits
from shiftgrid.envs.rules import reward as success_reward
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN

#: Episodes the engine plays in one batch (more are played batch after batch): an evaluation's 1,000 episodes of
#: nine splits of one canvas, with the references' 100 each beside them, fit one batch.
ENGINE_BATCH = 16384
#: The action space of every env the engine runs (minigrid's seven actions).
ACTIONS = gym.spaces.Discrete(7)


def _source_and_limit(env_id: str, split: str | None, env_kwargs: Mapping[str, Any] | None) -> tuple[Any, int | None]:
    """The engine's source of ``split``'s levels with ``env_kwargs``' factor values, and their ``max_steps``."""
    kwargs = dict(env_kwargs or {})
    max_steps = kwargs.pop("max_steps", None)
    if not has_splits(env_id) and (kwargs or max_steps is not None):
        raise EngineRefused(f"env_kwargs {sorted(dict(env_kwargs or {}))}: the engine runs {env_id} with none")
    return source_for(env_id, split or "train", kwargs or None), max_steps


def engine_refusal(agent: Any, env_id: str, split: str | None, env_kwargs: Mapping[str, Any] | None = None,
                   wrapper: ObservationWrapper | None = None) -> str | None:
    """Why the engine cannot play ``split`` as the minigrid env's evaluation would (None: it can).

    Example:
        >>> engine_refusal(object(), "shiftgrid/GoTo-v1", "size/far") is None
        True
        >>> print(engine_refusal(object(), "shiftgrid/DoorKey-v1", "rules/far"))
        split rules/far of shiftgrid/DoorKey-v1 slips (slip 0.2): the minigrid env draws the slips from its own generator, which the engine does not replay
    """
    if wrapper is not None:
        return "the policy sees the env through an observation wrapper; the engine gives shiftgrid's own view"
    if expects_advice(agent):
        return "the policy observes advice; the engine has no advice key"
    try:
        source, _ = _source_and_limit(env_id, split, env_kwargs)
    except UserInputError as e:  # an id or factor the engine cannot express, a bad keyword
        return str(e)
    if source.kind == "split":
        slip = dict(source.split.factors).get("slip", 0.0)
        if any(float(v) > 0 for v in (slip if isinstance(slip, (list, tuple)) else [slip])):
            return (f"split {split} of {env_id} slips (slip {slip}): the minigrid env draws the slips from its own "
                    "generator, which the engine does not replay")
    return None


def split_backend(agent: Any, env_id: str, split: str | None, backend: str = "auto",
                  env_kwargs: Mapping[str, Any] | None = None, wrapper: ObservationWrapper | None = None) -> str:
    """``engine`` or ``minigrid``: where :func:`split_episodes` plays ``split`` with ``backend``.

    Raises:
        EngineRefused: ``backend="engine"`` on a split the engine cannot play (naming why), or an unknown backend.

    Example:
        >>> split_backend(object(), "shiftgrid/GoTo-v1", "id"), split_backend(object(), "shiftgrid/DoorKey-v1", "rules/far")
        ('engine', 'minigrid')
    """
    if check_backend(backend) == "minigrid":
        return "minigrid"
    why = engine_refusal(agent, env_id, split, env_kwargs, wrapper)
    if why is None:
        return "engine"
    if backend == "engine":
        raise EngineRefused(f"cannot evaluate on the engine: {why}; use --backend auto or minigrid")
    return "minigrid"


def split_episodes(agent: Any, env_id: str, split: str | None, episodes: int, *, seed: int = 0, n_envs: int = 4,
                   deterministic: bool = True, env_kwargs: Mapping[str, Any] | None = None,
                   wrapper: ObservationWrapper | None = None, backend: str = "auto", device: Any = "cpu",
                   ) -> list[EpisodeResult]:
    """``episodes`` evaluation episodes of ``split`` where :func:`split_backend` says: the same levels either way.

    On the minigrid env ``n_envs`` envs are stepped side by side
    (:func:`~shiftgrid.agents.evaluation.episodes.run_episodes`); on the engine every episode at once.

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import ScriptedAgent
        >>> a = split_episodes(ScriptedAgent([2, 1, 2]), "shiftgrid/GoTo-v1", "id", 4, backend="engine")
        >>> b = split_episodes(ScriptedAgent([2, 1, 2]), "shiftgrid/GoTo-v1", "id", 4, backend="minigrid")
        >>> a == b
        True
    """
    if split_backend(agent, env_id, split, backend, env_kwargs, wrapper) == "engine":
        return run_engine_episodes(agent, env_id, split, episodes, seed=seed, deterministic=deterministic,
                                   env_kwargs=env_kwargs, device=device)
    return run_episodes(agent, env_id, split, episodes, seed=seed, n_envs=n_envs, deterministic=deterministic,
                        env_kwargs=env_kwargs, wrapper=wrapper)


def run_engine_episodes(agent: Any, env_id: str, split: str | None, episodes: int, *, seed: int = 0,
                        deterministic: bool = True, env_kwargs: Mapping[str, Any] | None = None, device: Any = "cpu",
                        batch: int = ENGINE_BATCH) -> list[EpisodeResult]:
    """Episodes ``0 .. episodes - 1`` of ``split`` on the engine (see the module docstring), in episode order.

    Episode ``i`` plays the level of reset seed ``first_reset_seed(env_id, seed) + i``, as
    :func:`~shiftgrid.agents.evaluation.episodes.run_episodes` does; ``deterministic`` and torch's
    generator (seeded with ``seed``, restored after) are as there. ``batch`` episodes play at once.

    Raises:
        EngineRefused: a split the engine cannot play (:func:`engine_refusal`).
        PolicyError: the agent returned something other than one valid action per observation.
    """
    return run_engine_panel([agent], env_id, split, episodes, seed=seed, deterministic=deterministic,
                            env_kwargs=env_kwargs, device=device, batch=batch)[0]


def run_engine_panel(agents: Sequence[Any], env_id: str, split: str | None, episodes: int | Sequence[int], *,
                     seed: int = 0, deterministic: bool = True, env_kwargs: Mapping[str, Any] | None = None,
                     device: Any = "cpu", batch: int = ENGINE_BATCH) -> list[list[EpisodeResult]]:
    """:func:`run_engine_episodes` for each of ``agents`` on the same levels, played in one batch: one list each.

    ``episodes``: how many each agent plays (one count for all, or one per agent): agent ``a`` plays
    the first ``episodes[a]`` levels. Each agent acts on its own envs only, in the order it would meet
    them alone (its rows keep their order as the batch shrinks), so its results are those it gets
    alone, a random agent's draws included (as long as its episodes fit one batch, as alone), while
    the engine steps every agent's envs at once (``batch`` envs at most: each batch plays the same
    range of levels for every agent that has levels left in it).

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import constant_agent
        >>> left, forward = run_engine_panel([constant_agent(0), constant_agent(2)], "shiftgrid/GoTo-v1", "id", [2, 1])
        >>> left == run_engine_episodes(constant_agent(0), "shiftgrid/GoTo-v1", "id", 2), len(forward)
        (True, 1)
    """
    played = run_engine_splits(agents, env_id, [split], episodes, seed=seed, deterministic=deterministic,
                               env_kwargs=env_kwargs, device=device, batch=batch)
    return [by_split[split] for by_split in played]


def run_engine_splits(agents: Sequence[Any], env_id: str, splits: Sequence[str | None],
                      episodes: int | Sequence[int | Mapping[str | None, int]], *, seed: int = 0, deterministic: bool = True,
                      env_kwargs: Mapping[str, Any] | None = None, device: Any = "cpu", batch: int = ENGINE_BATCH,
                      on_splits: Any = None) -> list[dict[str | None, list[EpisodeResult]]]:
    """:func:`run_engine_panel` on every split of ``splits``: per agent, split -> its episodes there.

    ``episodes``: one count for every agent and split, one per agent (every split), or per agent a mapping
    split -> count (the splits it plays). Splits whose levels share a canvas are played in one batch (a
    level bank of all their levels), so the engine steps them together: the steps left to the longest
    episode are taken once per canvas, not once per split. Each agent acts on its own envs, split by split
    in the order of ``splits`` and level by level, so an agent that plays one split gets the episodes it
    gets alone there (its random draws included, while its episodes fit one batch), and one whose action
    is a function of its observation (a deterministic policy, a constant one) gets them on every split.
    ``on_splits(names)`` is called as each batch's splits are done (a progress bar).

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import constant_agent
        >>> both, one = run_engine_splits([constant_agent(2), constant_agent(0)], "shiftgrid/GoTo-v1", ["id", "layout/far"],
        ...                               [3, {"layout/far": 2}])
        >>> both["layout/far"] == run_engine_episodes(constant_agent(2), "shiftgrid/GoTo-v1", "layout/far", 3), list(one)
        (True, ['layout/far'])
    """
    if not agents:
        raise ValueError("run_engine_panel needs at least one agent")
    per_agent = [episodes] * len(agents) if isinstance(episodes, int) else list(episodes)
    counts = [dict(e) if isinstance(e, Mapping) else {split: e for split in splits} for e in per_agent]
    if len(counts) != len(agents) or any(set(c) - set(splits) or min(c.values(), default=0) < 0 or sum(c.values()) < 1
                                         for c in counts):
        raise ValueError(f"episodes must be >= 1 for each of the {len(agents)} agents (a count, or split -> count "
                         f"of splits among {list(splits)}), got {episodes}")
    first = first_reset_seed(env_id, seed)
    groups: dict[tuple[int, int], list[tuple[str | None, Any, Any]]] = {}  # canvas -> (split, its bank, its source)
    for split in splits:
        most = max(c.get(split, 0) for c in counts)
        if most < 1:
            continue
        source, max_steps = _source_and_limit(env_id, split, env_kwargs)
        bank = seeded_bank(env_id, split or "train", first, most,
                           factors=source.factors if source.kind == "split" else None, max_steps=max_steps)
        groups.setdefault(tuple(source.canvas), []).append((split, bank, source))
    results: list[dict[str | None, list[EpisodeResult]]] = [{split: [] for split in splits if c.get(split, 0)} for c in counts]
    with torch.random.fork_rng(devices=cuda_devices()):
        torch.manual_seed(seed)
        for group in groups.values():
            layout = group[0][1].layout
            for _, bank, _ in group[1:]:
                layout = layout.union(bank.layout)
            store = LevelStore(stack([bank.rows for _, bank, _ in group], layout), layout, device, pool=False)
            offsets = np.cumsum([0] + [len(bank.rows["codes"]) for _, bank, _ in group])
            chunk = panel_chunk([n for split, _, _ in group for c in counts if (n := c.get(split, 0))], batch)
            for start in range(0, max(c.get(split, 0) for split, _, _ in group for c in counts), chunk):
                levels, owner, where, figures = [], [], [], []
                for g, (split, _, source) in enumerate(group):
                    for a, c in enumerate(counts):
                        span = range(start, min(start + chunk, c.get(split, 0)))
                        levels.append(offsets[g] + np.arange(span.start, span.stop))
                        owner += [a] * len(span)
                        where += [split] * len(span)
                        figures += [source.kind == "split"] * len(span)  # shiftgrid ids: level hashes, oracle figures
                if not owner:
                    continue
                playing = sorted(set(owner))
                index = {a: i for i, a in enumerate(playing)}
                rows = torch.as_tensor(np.concatenate(levels), device=store.device)
                played = _play([agents[a] for a in playing], TensorEngine(store, len(rows)), rows,
                               np.array([index[a] for a in owner]), deterministic, np.array(figures), env_id)
                for result, a, split in zip(played, owner, where):
                    results[a][split].append(result)
            if on_splits is not None:
                on_splits([split for split, _, _ in group])
    return results


def panel_chunk(counts: Sequence[int], batch: int) -> int:
    """The most levels per agent a batch of ``batch`` envs plays, each agent playing ``counts[a]`` in all.

    Example:
        >>> panel_chunk([1000] + [100] * 8, 4096), panel_chunk([3, 3], 4), panel_chunk([5000], 4096)
        (1000, 2, 4096)
    """
    if sum(counts) <= batch:
        return max(counts)
    low, high = 1, max(counts)  # the largest chunk c with sum(min(c, n)) <= batch (at least 1)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if sum(min(mid, n) for n in counts) <= batch else (low, mid - 1)
    return low


def _numpy(obs: Mapping[str, torch.Tensor], env_id: str) -> dict[str, np.ndarray]:
    """The engine's observation batch as the minigrid env's evaluation stacks it."""
    return {"image": obs["image"].cpu().numpy(), "direction": obs["direction"].cpu().numpy().astype(np.int64),
            "mission": fit_tokens(obs["mission"].cpu().numpy().astype(np.int64), DEFAULT_MAX_LEN, env_id)}


def _compactable(state: Any, n: int) -> bool:
    """Whether the agent's recurrent state can follow the batch as it shrinks (none, or one row per env)."""
    return state is None or (isinstance(state, np.ndarray) and state.ndim >= 1 and state.shape[0] == n)


def _play(agents: Sequence[Any], engine: TensorEngine, levels: torch.Tensor, owner: np.ndarray, deterministic: bool,
          figures: np.ndarray, env_id: str) -> list[EpisodeResult]:
    """One batch: every env starts on its level; each episode's result is read at the step it ends.

    Agent ``owner[i]`` acts in env ``i``; ``figures[i]``: its episode reports the level's hash and the oracle's figures.

    An agent that declares ``acts_on_observation_only`` (with ``deterministic``, its action is a
    function of the observation alone: a constant action, tensor-ppo's most likely action) fails an
    episode whose state, the step count aside, repeats: the dynamics are deterministic (no slip here)
    and the observation is a function of the state, so the episode cycles through the same actions,
    without success, until its limit truncates it. It is recorded so at once (length: the limit;
    action counts: the cycle's, repeated). States are compared with the state at the last step that
    was a power of two, which finds a cycle of any period (Brent's method).
    """
    n = len(levels)
    obs = engine.reset(levels=levels)
    limits = (engine.store.arrays["misc"].index_select(0, levels) & 0xFFFFFFFF).cpu().numpy()
    episode = np.arange(n)  # the episode each engine env plays
    running = np.ones(n, dtype=bool)  # envs still kept whose episode has not ended (all, while the batch shrinks)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    counts = np.zeros((n, ACTIONS.n), dtype=np.int64)
    out: list[EpisodeResult | None] = [None] * n
    states: list[Any] = [None] * len(agents)
    episode_start = np.ones(n, dtype=bool)
    cycles = np.array([deterministic and bool(getattr(a, "acts_on_observation_only", False)) for a in agents])
    history = np.zeros((n, int(limits.max())), dtype=np.int8) if cycles.any() else None  # each episode's actions
    snapshot: dict[str, torch.Tensor] | None = None
    steps = snapshot_step = 0
    while running.any():
        actions = _act(agents, owner[episode], states, _numpy(obs, env_id), episode_start, deterministic)
        obs, reward, terminated, truncated, info = engine.step(torch.as_tensor(actions, dtype=torch.int64,
                                                                               device=engine.device), check=False)
        live = episode[running]
        returns[live] += reward.double().cpu().numpy()[running]
        np.add.at(counts, (live, actions[running]), 1)
        if history is not None:
            history[live, steps] = actions[running]
        lengths[live] += 1
        steps += 1
        ended = ((terminated | truncated).cpu().numpy()) & running
        looped, period = np.zeros_like(ended), steps - snapshot_step
        if history is not None:
            if snapshot is not None:
                looped = _same_state(engine.state, snapshot) & running & ~ended & cycles[owner[episode]]
            if steps & (steps - 1) == 0:  # a power of two: compare with this state from now on
                snapshot, snapshot_step = {k: v.clone() for k, v in engine.state.items() if k != "t"}, steps
        if ended.any() or looped.any():
            got = {k: info[k].cpu().numpy() for k in ("success", "level_hash", "optimal_return", "optimal_steps",
                                                      "optimal_exact")}
            for j in np.flatnonzero(looped):  # it would repeat its last `period` actions until its limit: record that now
                e = episode[j]
                assert history is not None
                left, cycle = int(limits[e]) - steps, history[e, steps - period:steps].astype(np.int64)
                counts[e] += (left // period) * np.bincount(cycle, minlength=ACTIONS.n)
                counts[e] += np.bincount(cycle[:left % period], minlength=ACTIONS.n)
                lengths[e], got["success"][j] = int(limits[e]), False
            done = np.flatnonzero(ended | looped)
            columns = zip(episode[done].tolist(), *(got[k][done].tolist() for k in ("success", "optimal_return",
                                                                                    "optimal_steps", "level_hash",
                                                                                    "optimal_exact")),
                          counts[episode[done]].tolist())
            for e, success, optimal_return, optimal_steps, level_hash, optimal_exact, taken in columns:
                # the engine's rewards are float32; a success's (its only reward) is the rule's float64 figure
                ret = float(success_reward(float(lengths[e]), float(limits[e]))) if success else float(returns[e])
                known = bool(figures[e])
                out[e] = EpisodeResult(
                    success=bool(success), ret=ret, length=int(lengths[e]),
                    optimal_return=float(optimal_return) if known else None,
                    optimal_steps=float(optimal_steps) if known else None,
                    level_hash=int_to_hash(level_hash) if known else None,
                    optimal_exact=bool(optimal_exact) if known else None,
                    action_counts=tuple(taken))
            running &= ~(ended | looped)
            # an agent's ended envs leave the batch, unless its memory cannot follow them (then all its envs stay)
            mine = owner[episode]
            sizes = np.bincount(mine, minlength=len(agents))
            shrinks = np.array([_compactable(st, int(sizes[a])) for a, st in enumerate(states)])
            keep = running | ~shrinks[mine]
            if not keep.all():
                kept = np.flatnonzero(keep)
                index = torch.as_tensor(kept, device=engine.device)
                engine.keep(index)
                obs = {k: v.index_select(0, index) for k, v in obs.items()}
                snapshot = None if snapshot is None else {k: v.index_select(0, index) for k, v in snapshot.items()}
                states = [st if st is None or not shrinks[a] else st[running[mine == a]] for a, st in enumerate(states)]
                episode, running = episode[kept], running[kept]
        episode_start = np.zeros(len(episode), dtype=bool)
    return out  # type: ignore[return-value]  # every episode ended (the engine truncates at the level's limit)


def _act(agents: Sequence[Any], owner: np.ndarray, states: list[Any], obs: Mapping[str, np.ndarray],
         episode_start: np.ndarray, deterministic: bool) -> np.ndarray:
    """Every env's action, each agent choosing for its own envs (``owner``: each env's agent); ``states`` is updated."""
    if len(agents) == 1:
        actions, states[0] = agents[0].predict(obs, state=states[0], episode_start=episode_start, deterministic=deterministic)
        return check_actions(actions, len(owner), ACTIONS, who(agents[0]))
    out = np.zeros(len(owner), dtype=np.int64)
    order = np.argsort(owner, kind="stable")  # each agent's rows, in order
    bounds = np.searchsorted(owner[order], np.arange(len(agents) + 1))
    for a, agent in enumerate(agents):
        rows = order[bounds[a]:bounds[a + 1]]
        if len(rows):
            actions, states[a] = agent.predict({k: v[rows] for k, v in obs.items()}, state=states[a],
                                               episode_start=episode_start[rows], deterministic=deterministic)
            out[rows] = check_actions(actions, len(rows), ACTIONS, who(agent))
    return out


def _same_state(state: Mapping[str, torch.Tensor], snapshot: Mapping[str, torch.Tensor]) -> np.ndarray:
    """Per env: every field of ``state`` (the step count aside) equals ``snapshot``'s."""
    same = torch.ones(len(state["level"]), dtype=torch.bool, device=state["level"].device)
    for k, v in snapshot.items():
        same &= (state[k] == v).reshape(len(v), -1).all(1)
    return same.cpu().numpy()


def evaluate_splits(
    agent: Any,
    env_id: str,
    splits: str | Iterable[str] = "all",
    episodes: int = 1000,
    seed: int = 0,
    *,
    n_envs: int = 4,
    progress: bool = True,
    deterministic: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
    wrapper: ObservationWrapper | None = None,
    backend: str = "auto",
    device: Any = "cpu",
) -> dict[str, list[EpisodeResult]]:
    """Evaluate ``agent`` on every split of :func:`splits_to_evaluate` (``episodes`` each), with a progress bar.

    Each split is played where ``backend`` says (:func:`split_episodes`:
    ``auto``, the tensor engine on ``device`` wherever it plays the split as the minigrid env would, else the minigrid
    env; ``engine``; ``minigrid``); the levels, and the results for the same actions, are the same either way.
    ``deterministic``, ``env_kwargs`` and ``wrapper`` are passed on.

    Returns:
        canonical split name -> episode results (``<axis>/id`` appears once, as ``id``).

    Example:
        >>> from shiftgrid.agents.evaluation.baselines import RandomAgent
        >>> from gymnasium import spaces
        >>> out = evaluate_splits(RandomAgent(spaces.Discrete(7), 0), "shiftgrid/GoTo-v1",
        ...                       ["id", "size/far"], episodes=2, progress=False)
        >>> {k: len(v) for k, v in out.items()}
        {'id': 2, 'size/far': 2}
    """
    names = splits_to_evaluate(env_id, splits)
    with_splits = has_splits(env_id)
    results: dict[str, list[EpisodeResult]] = {}
    bar = tqdm(names, desc=f"evaluate {env_id}", unit="split", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        results[name] = split_episodes(agent, env_id, name if with_splits else None, episodes, seed=seed, n_envs=n_envs,
                                       deterministic=deterministic, env_kwargs=env_kwargs, wrapper=wrapper,
                                       backend=backend, device=device)
    return results

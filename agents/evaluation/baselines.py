"""Reference agents with the SB3 ``predict`` signature, the references every shift report shows, and the constant-policy check.

There is deliberately no "oracle agent" here: following the optimal plan needs the true
environment state, which ``predict(obs, ...)`` does not receive. The oracle's figures are in
every episode's ``info`` instead (``optimal_return``, ``optimal_steps``), so evaluation reports
optimality ratio and exact regret against it. The references here are honest lower bounds:

- :class:`RandomAgent` — uniform random actions (the usual chance level).
- :class:`ScriptedAgent` — a fixed action sequence replayed from each episode start, open loop.
  Given the oracle's plan of a known level it reaches the goal optimally, which makes it a
  check that an evaluator passes ``state`` and ``episode_start`` correctly. With no script it is a
  constant policy (:func:`constant_agent`).

Every shift report shows, on the same levels (the same reset seeds), what these references score
(:func:`measure_references`): the uniform-random policy and the best constant action per split
(every action is played as a constant policy and the best by success, then return, is shown: an
upper bound of what a policy that ignores its observations gets by repeating one action; on some
levels turning in place solves the mission). A report also warns where an evaluated policy took
one action in more than :data:`CONSTANT_SHARE` of its steps (:func:`constant_policy_warnings`):
such a policy has collapsed, and its numbers are a constant action's.

Example:
    >>> from gymnasium import spaces
    >>> agent = RandomAgent(spaces.Discrete(7), seed=0)
    >>> actions, state = agent.predict({"image": np.zeros((4, 7, 7, 3))})
    >>> actions.shape, state
    ((4,), None)
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping, Sequence

import numpy as np
from gymnasium import spaces

from shiftgrid.agents.evaluation.engine_episodes import run_engine_splits, split_backend, split_episodes
from shiftgrid.agents.evaluation.episodes import EpisodeResult, evaluation_env
from shiftgrid.agents.evaluation.stats import run_metrics
from shiftgrid.envs.learner_env import has_splits

#: A policy whose most common action is more than this share of its steps is reported as (nearly) constant.
CONSTANT_SHARE = 0.95
#: minigrid's action names, by action id.
ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
#: The references' labels in reports and results.json.
RANDOM, CONSTANT = "uniform random", "best constant action"
#: References already measured in this process (a sweep's configurations share their levels): arguments -> result.
_MEASURED: dict[str, dict[str, Any]] = {}


def batch_size(observation: np.ndarray | dict[str, np.ndarray]) -> int:
    """Number of environments in a batched observation (an array, or a dict of arrays)."""
    first = next(iter(observation.values())) if isinstance(observation, dict) else observation
    return len(first)


class RandomAgent:
    """Uniform random actions: the chance-level reference.

    Args:
        action_space: the environment's action space (any gymnasium space).
        seed: seed of the agent's own random generator (it ignores ``deterministic``:
            a random policy has no mode to act on).

    Example:
        >>> agent = RandomAgent(spaces.Discrete(3), seed=1)
        >>> a, _ = agent.predict(np.zeros((5, 2)))
        >>> a.shape, bool(((a >= 0) & (a < 3)).all())
        ((5,), True)
    """

    def __init__(self, action_space: spaces.Space, seed: int | None = None):
        self.action_space = copy.deepcopy(action_space)  # seeding must not touch the env's own space
        self.action_space.seed(seed)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """One uniformly random action per environment in the batch; no state."""
        n = batch_size(observation)
        if isinstance(self.action_space, spaces.Discrete):  # one draw for the batch (an evaluation's batch may be thousands)
            space = self.action_space
            return space.np_random.integers(int(space.n), size=n) + int(space.start), None
        return np.array([self.action_space.sample() for _ in range(n)]), None


class ScriptedAgent:
    """Replay ``actions`` from every episode start, ignoring observations (open loop).

    Its recurrent state is the per-environment position in the script, reset where
    ``episode_start`` is true, exactly as a recurrent SB3 policy resets its memory. Past the
    end of the script it repeats ``fallback``.

    Args:
        actions: the action sequence (e.g. ``env.unwrapped.optimal_actions`` of a known level).
        fallback: action taken once the script is exhausted (6 = minigrid's ``done``).

    Example:
        >>> agent = ScriptedAgent([2, 1, 0])
        >>> obs = np.zeros((2, 1))
        >>> a, s = agent.predict(obs, None, np.array([True, True]))
        >>> a, s = agent.predict(obs, s, np.array([False, True]))
        >>> a.tolist(), s.tolist()
        ([1, 2], [2, 1])
    """

    def __init__(self, actions: Sequence[int], fallback: int = 6):
        self.actions = np.asarray(list(actions), dtype=np.int64)
        self.fallback = int(fallback)
        #: Without a script its action depends on nothing (the engine's evaluation then records an episode that
        #: cycles at once: :mod:`~shiftgrid.agents.evaluation.engine_episodes`).
        self.acts_on_observation_only = not len(self.actions)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next scripted action per environment, and the advanced script positions."""
        n = batch_size(observation)
        t = np.zeros(n, dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).copy()
        if episode_start is not None:
            t[np.asarray(episode_start, dtype=bool)] = 0
        padded = np.append(self.actions, self.fallback)
        return padded[np.minimum(t, len(self.actions))], t + 1


def constant_agent(action: int) -> ScriptedAgent:
    """The policy that takes ``action`` at every step.

    Example:
        >>> constant_agent(0).predict(np.zeros((3, 1)))[0].tolist()
        [0, 0, 0]
    """
    return ScriptedAgent([], fallback=action)


def action_name(action: int, n_actions: int = len(ACTION_NAMES)) -> str:
    """minigrid's name of ``action`` (``left``, ``forward``...) in its 7-action space, else the number.

    Example:
        >>> action_name(0), action_name(2), action_name(3, n_actions=4)
        ('left', 'forward', '3')
    """
    return ACTION_NAMES[action] if n_actions == len(ACTION_NAMES) and 0 <= action < n_actions else str(action)


def measure_references(env_id: str, splits: Sequence[str], episodes: int, seed: int = 0, *, n_envs: int = 4,
                       env_kwargs: Mapping[str, Any] | None = None, backend: str = "auto", device: Any = "cpu",
                       ) -> dict[str, Any]:
    """The uniform-random policy and every constant action on ``splits``, on the evaluation's own levels.

    Episode ``i`` of every split resets with the seed an evaluation with ``seed`` gives it, so these
    are the levels the evaluated policy played (the first ``episodes`` of them), where ``backend`` says
    (:func:`~shiftgrid.agents.evaluation.engine_episodes.split_episodes`; on the engine, every reference in one
    batch, the splits of one canvas together: :func:`~shiftgrid.agents.evaluation.engine_episodes.run_engine_splits`). The random policy is seeded
    with ``seed`` (its draws go to episodes in batch order, so its figures depend on the batching). Measured
    once per process for the same arguments.

    Returns:
        ``{"episodes", "seed", "splits": {split: {"uniform random": metrics, "best constant action":
        {**metrics, "action": name}, "constant actions": {name: success rate}}}}`` (JSON-ready).

    Example:
        >>> ref = measure_references("shiftgrid/GoTo-v1", ["id"], episodes=3)
        >>> sorted(ref["splits"]["id"]), ref["splits"]["id"]["best constant action"]["action"] in ACTION_NAMES
        (['best constant action', 'constant actions', 'uniform random'], True)
    """
    key = json.dumps([env_id, list(splits), episodes, seed, n_envs, dict(env_kwargs or {}), backend, str(device)],
                     sort_keys=True, default=str)
    if key in _MEASURED:
        return _MEASURED[key]
    with_splits = has_splits(env_id)
    space = reference_space(env_id, splits[0] if with_splits else None, env_kwargs)
    out: dict[str, Any] = {"episodes": episodes, "seed": seed, "splits": {}}
    where = {s: s if with_splits else None for s in splits}
    on_engine = [s for s in splits if split_backend(None, env_id, where[s], backend, env_kwargs) == "engine"]
    engine = _references_on_engine([], env_id, [where[s] for s in on_engine], 0, episodes, space, seed, env_kwargs, device)[1]
    for split in splits:
        if split in on_engine:  # every reference of every split in one batch, the splits of a canvas together
            played = engine[where[split]]
        else:
            played = {label: split_episodes(agent, env_id, where[split], episodes, seed=seed, n_envs=n_envs,
                                            env_kwargs=env_kwargs, backend=backend, device=device)
                      for label, agent in reference_agents(space, seed).items()}
        out["splits"][split] = reference_figures(played, split)
    _MEASURED[key] = out
    return out


def reference_space(env_id: str, split: str | None, env_kwargs: Mapping[str, Any] | None = None) -> spaces.Discrete:
    """The action space the references act in (``env_id``'s on ``split``).

    Raises:
        ValueError: an action space that is not discrete.
    """
    probe = evaluation_env(env_id, split, env_kwargs)
    space = probe.action_space
    probe.close()
    if not isinstance(space, spaces.Discrete):
        raise ValueError(f"references need a discrete action space; {env_id} has {space}")
    return space


def reference_agents(space: spaces.Discrete, seed: int) -> dict[str, Any]:
    """The references of one split, by label: the uniform-random policy (seeded with ``seed``) and every constant action.

    Example:
        >>> list(reference_agents(spaces.Discrete(7), 0))[:3]
        ['uniform random', 'left', 'right']
    """
    n = int(space.n)
    return {RANDOM: RandomAgent(space, seed=seed), **{action_name(a, n): constant_agent(int(space.start) + a) for a in range(n)}}


def reference_figures(played: Mapping[str, Sequence[EpisodeResult]], split: str) -> dict[str, Any]:
    """One split's entry of :func:`measure_references` from the episodes each reference (by label) played there."""
    metrics = {label: run_metrics({split: list(results)})[split] for label, results in played.items()}
    constants = {label: m for label, m in metrics.items() if label != RANDOM}
    best = max(constants, key=lambda label: (constants[label]["success_rate"], constants[label]["mean_return"]))
    return {RANDOM: metrics[RANDOM], CONSTANT: {**constants[best], "action": best},
            "constant actions": {label: m["success_rate"] for label, m in constants.items()}}


def evaluate_with_references(agents: Sequence[Any], env_id: str, splits: Sequence[str], episodes: int,
                             reference_episodes: int, seed: int = 0, *, env_kwargs: Mapping[str, Any] | None = None,
                             device: Any = "cpu", progress: bool = False,
                             ) -> tuple[list[dict[str, list[EpisodeResult]]], dict[str, Any]]:
    """Each agent's most likely actions on ``episodes`` levels of every split, and :func:`measure_references`'s figures
    on the first ``reference_episodes`` of them, every split played by all of them in one engine batch.

    The same numbers as :func:`~shiftgrid.agents.evaluation.scoring.evaluate_splits` for each agent and
    :func:`measure_references` (:func:`~shiftgrid.agents.evaluation.engine_episodes.run_engine_splits`: each
    plays as alone), in less time: the engine steps the references' envs beside the agents'.
    Every split must be one the engine plays (``split_backend(..., "auto") == "engine"``).

    Returns:
        ``(per agent: split -> episodes, references)``.

    Example:
        >>> [played], refs = evaluate_with_references([constant_agent(2)], "shiftgrid/GoTo-v1", ["id"], 4, 2)
        >>> len(played["id"]), refs == measure_references("shiftgrid/GoTo-v1", ["id"], 2)
        (4, True)
    """
    from tqdm import tqdm

    with_splits = has_splits(env_id)
    space = reference_space(env_id, splits[0] if with_splits else None, env_kwargs)
    key = {s: s if with_splits else None for s in splits}
    bar = tqdm(total=len(splits), desc=f"evaluate {env_id}", unit="split", disable=not progress)

    def done(names: Sequence[str | None]) -> None:
        bar.set_postfix_str(", ".join(map(str, names))[-40:])
        bar.update(len(names))

    with bar:
        played, refs = _references_on_engine(agents, env_id, list(key.values()), episodes, reference_episodes, space, seed,
                                             env_kwargs, device, done)
    results = [{s: by_split[key[s]] for s in splits} for by_split in played]
    references = {"episodes": reference_episodes, "seed": seed,
                  "splits": {s: reference_figures(refs[key[s]], s) for s in splits}}
    return results, references


def _references_on_engine(agents: Sequence[Any], env_id: str, splits: Sequence[str | None], episodes: int,
                          reference_episodes: int, space: spaces.Discrete, seed: int, env_kwargs: Mapping[str, Any] | None,
                          device: Any, on_splits: Any = None,
                          ) -> tuple[list[dict[str | None, list[EpisodeResult]]], dict[str | None, dict[str, list[EpisodeResult]]]]:
    """``agents`` on ``episodes`` of every split and, beside them, each split's own references (fresh ones, so each
    plays as alone there) on its first ``reference_episodes``: (per agent: split -> episodes, split -> label -> episodes)."""
    if not splits:
        return [{} for _ in agents], {}
    per_split = {split: reference_agents(space, seed) for split in splits}
    everyone = [*agents, *(agent for play in per_split.values() for agent in play.values())]
    counts: list[Any] = [episodes] * len(agents) + [{split: reference_episodes} for split, play in per_split.items()
                                                    for _ in play]
    played = run_engine_splits(everyone, env_id, splits, counts, seed=seed, env_kwargs=env_kwargs, device=device,
                               on_splits=on_splits)
    refs, at = {}, len(agents)
    for split, play in per_split.items():
        refs[split] = {label: played[at + i][split] for i, label in enumerate(play)}
        at += len(play)
    return played[:len(agents)], refs


def dominant_action(results: Mapping[str, Sequence[EpisodeResult]]) -> tuple[int, float] | None:
    """``(action, share of all steps)`` of the action a run took most, over every split (None: no counts kept).

    Example:
        >>> eps = [EpisodeResult(False, 0.0, 4, action_counts=(3, 1)), EpisodeResult(True, 0.9, 2, action_counts=(2, 0))]
        >>> dominant_action({"id": eps})
        (0, 0.8333333333333334)
    """
    rows = [e.action_counts for eps in results.values() for e in eps if e.action_counts is not None]
    if not rows:
        return None
    total = np.sum(np.array(rows, dtype=np.int64), axis=0)
    if total.sum() == 0:
        return None
    action = int(np.argmax(total))
    return action, float(total[action] / total.sum())


def constant_policy_warnings(runs: Mapping[str, Mapping[str, Sequence[EpisodeResult]]]) -> list[str]:
    """A warning per run (name -> split -> episodes) whose most common action is over :data:`CONSTANT_SHARE` of its steps.

    Example:
        >>> eps = [EpisodeResult(False, 0.0, 64, action_counts=(63, 1, 0, 0, 0, 0, 0))]
        >>> print(constant_policy_warnings({"seed0": {"id": eps}})[0])
        seed0 took one action (left) in 98% of its steps: a (nearly) constant policy, whose scores are a constant action's (compare the best constant action)
    """
    out = []
    for name, results in runs.items():
        found = dominant_action(results)
        if found is not None and found[1] > CONSTANT_SHARE:
            n = next(len(e.action_counts) for eps in results.values() for e in eps if e.action_counts is not None)
            out.append(f"{name} took one action ({action_name(found[0], n)}) in {found[1]:.0%} of its steps: a (nearly) "
                       "constant policy, whose scores are a constant action's (compare the best constant action)")
    return out


def action_summary(results: Mapping[str, Sequence[EpisodeResult]]) -> dict[str, Any] | None:
    """What results.json records of a run's actions: the most common one and its share of the steps, overall and per split."""
    found = dominant_action(results)
    if found is None:
        return None
    n = next(len(e.action_counts) for eps in results.values() for e in eps if e.action_counts is not None)
    per_split = {split: dominant_action({split: eps}) for split, eps in results.items()}
    return {"most_common": action_name(found[0], n), "share": found[1], "constant": found[1] > CONSTANT_SHARE,
            "splits": {split: None if f is None else {"most_common": action_name(f[0], n), "share": f[1]}
                       for split, f in per_split.items()}}

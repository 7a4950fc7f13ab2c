"""The evaluator as a Python API: score any policy on the shift splits, with the report of ``shiftgrid evaluate``.

:func:`evaluate_policy` takes a policy trained anywhere (an object with SB3's ``predict``, or a
plain batched function ``obs_batch -> actions``; see :mod:`shiftgrid.agents.evaluation.policies`), or
several training seeds of one configuration (a list or a mapping name -> policy), and scores it
exactly as ``shiftgrid evaluate`` scores a run: the same splits, the same reset seeds (episode
``i`` of every split resets with ``seed + i``; see :mod:`shiftgrid.agents.evaluation.episodes`), which
training levels never use and which are disjoint from the validation seeds training-time
evaluation starts at (:data:`~shiftgrid.agents.run.config.VALIDATION_SEED`), the same metrics, IQM
and 95% bootstrap intervals across seeds, and, with ``out``, the same report files.
``shiftgrid evaluate`` itself goes through :func:`evaluate_agents`.

Example:
    >>> import numpy as np
    >>> def forward(obs):  # a policy in one line: always move forward (minigrid action 2)
    ...     return np.full(len(obs["image"]), 2)
    >>> ev = evaluate_policy(forward, "shiftgrid/GoTo-v1", splits=["id", "size/far"], episodes=3)
    >>> {split: len(episodes) for split, episodes in ev.results.items()}
    {'id': 3, 'size/far': 3}
    >>> ev.summary.splits["id"]["success_rate"].n_runs
    1
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import gymnasium as gym

from shiftgrid.agents.evaluation.baselines import constant_policy_warnings, evaluate_with_references, measure_references
from shiftgrid.agents.evaluation.engine_episodes import evaluate_splits, split_backend
from shiftgrid.agents.evaluation.episodes import (
    EpisodeResult,
    ObservationWrapper,
    advice_note,
    axis_layout,
    evaluation_env,
    first_reset_seed,
    splits_to_evaluate,
)
from shiftgrid.agents.evaluation.policies import as_predictor, observation_wrapper, wrapper_name
from shiftgrid.agents.evaluation.report import RunRecord, write_report
from shiftgrid.agents.evaluation.stats import ShiftSummary, run_metrics, summarize
from shiftgrid.envs.learner_env import expects_advice, has_splits


@dataclass
class Candidate:
    """One agent to score: anything with SB3's ``predict``, and what is known of how it was trained.

    ``config`` holds at least ``env`` (and, when known, ``seed``, ``algo``, ``split``,
    ``env_kwargs``); ``training`` is the report's :attr:`~shiftgrid.agents.evaluation.report.RunRecord.training`.
    """

    name: str
    agent: Any
    config: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    tb_dir: Path | None = None


@dataclass
class Evaluation:
    """What an evaluation computed: per run, per split, the episodes; their summary; the report files.

    Attributes:
        env_id: the environment.
        runs: one record per policy (``runs[k].results``: canonical split -> episodes).
        summary: per split and per axis, IQM and 95% bootstrap CI across the runs.
        meta: the report's header lines (episodes, seeds, env kwargs, observation wrapper...).
        paths: kind (``json``, ``csv``, ``md``, ``shift_<metric>``...) -> file written; empty without ``out``.
        references: the uniform-random policy and the best constant action on the same levels
            (:func:`~shiftgrid.agents.evaluation.baselines.measure_references`; None where not measured).
    """

    env_id: str
    runs: list[RunRecord]
    summary: ShiftSummary
    meta: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    references: dict[str, Any] | None = None

    @property
    def results(self) -> dict[str, list[EpisodeResult]]:
        """Split -> episodes of the only run (several runs: see :attr:`runs`)."""
        if len(self.runs) != 1:
            raise ValueError(f"{len(self.runs)} runs were evaluated; read each one's results from .runs")
        return self.runs[0].results


def training_split_note(env_id: str, split: str | None) -> str:
    """The training split, and whether it is a held-out one (then scores on it are not a shift)."""
    if not has_splits(env_id):
        return "(no splits)"
    from shiftgrid.envs import splits_for

    name = split or "train"
    if splits_for(env_id)[name].held_out:
        return f"{name} (a held-out split: for this run it is the training distribution, not a shift)"
    return name


def env_kwargs_note(env_kwargs: Mapping[str, Any] | None) -> str:
    """The report's line on the env's keyword arguments.

    Example:
        >>> env_kwargs_note({}), env_kwargs_note({"size": 9})
        ('none', 'size=9 (on every split: a factor set here has the same value on every level of the axis)')
    """
    if not env_kwargs:
        return "none"
    return (", ".join(f"{k}={v!r}" for k, v in env_kwargs.items())
            + " (on every split: a factor set here has the same value on every level of the axis)")


def as_sb3_sees(space: gym.Space) -> gym.Space:
    """``space`` with image channels first where SB3 moves them (its ``VecTransposeImage``), as a saved model records it.

    Example:
        >>> as_sb3_sees(gym.spaces.Box(0, 255, (7, 7, 3), "uint8")).shape
        (3, 7, 7)
    """
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
    from stable_baselines3.common.vec_env import VecTransposeImage

    def moved(s: gym.Space, key: str = "") -> gym.Space:
        if isinstance(s, gym.spaces.Box) and is_image_space(s) and not is_image_space_channels_first(s):
            return VecTransposeImage.transpose_space(s, key)
        return s

    if isinstance(space, gym.spaces.Dict):
        return gym.spaces.Dict({k: moved(s, k) for k, s in space.spaces.items()})
    return moved(space)


def check_observation_space(agent: Any, env_id: str, splits: Sequence[str], env_kwargs: Mapping[str, Any] | None,
                            wrapper: ObservationWrapper | None, *, who: str = "the policy") -> None:
    """If ``agent`` states an ``observation_space`` (SB3 models do), it must be the wrapped env's on every split.

    The env's space is compared as it is and as SB3 records it (:func:`as_sb3_sees`).

    Raises:
        ValueError: the spaces differ (the message gives both).
    """
    expected = getattr(agent, "observation_space", None)
    if expected is None:
        return
    for split in splits:
        env = evaluation_env(env_id, split if has_splits(env_id) else None, env_kwargs, wrapper, advice=expects_advice(agent))
        got = env.observation_space
        env.close()
        if got != expected and as_sb3_sees(got) != expected:
            raise ValueError(f"{who} expects observations {expected}, but {env_id} ({split}) seen through "
                             f"{wrapper_name(wrapper)} gives {got}; state the observation wrapper it was trained with")


def evaluate_agents(candidates: Sequence[Candidate], out: str | Path | None = None, *, splits: str | Iterable[str] = "all",
                    episodes: int = 1000, seed: int = 0, n_envs: int = 4, stochastic: bool = False,
                    wrapper: ObservationWrapper | None = None, notes: Sequence[str] = (), progress: bool = True,
                    extra_meta: Mapping[str, Any] | None = None, reference_episodes: int | None = None,
                    backend: str = "auto", device: Any = "cpu") -> Evaluation:
    """Score agents (seeds of one configuration) on every split; with ``out``, write the shift report there.

    The env is ``candidates[0].config["env"]``, made with its ``env_kwargs`` (every candidate must
    share them) and seen through ``wrapper`` (None: as shiftgrid trains). The uniform-random policy
    and the best constant action are scored on the first ``reference_episodes`` of the same levels
    (None: all ``episodes``; 0: not at all, and the report says so), and a (nearly) constant policy
    is warned of (:mod:`~shiftgrid.agents.evaluation.baselines`). ``backend`` says where episodes run
    (:func:`~shiftgrid.agents.evaluation.engine_episodes.split_episodes`; the tensor engine on ``device``
    or the minigrid env, the same levels and numbers either way); the report says where they ran.
    """
    env_id = candidates[0].config["env"]
    env_kwargs = dict(candidates[0].config.get("env_kwargs") or {})
    differing = [c.name for c in candidates if dict(c.config.get("env_kwargs") or {}) != env_kwargs]
    if differing:
        raise ValueError(f"{', '.join(differing)} were trained with other env_kwargs than {candidates[0].name} "
                         f"({env_kwargs}): seeds of one configuration share them")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    reference_episodes = episodes if reference_episodes is None else reference_episodes
    if not 0 <= reference_episodes <= episodes:
        raise ValueError(f"reference episodes must be in 0..{episodes} (the evaluated levels), got {reference_episodes}")
    names = splits_to_evaluate(env_id, splits)
    where = {name: {split_backend(c.agent, env_id, name if has_splits(env_id) else None, backend, env_kwargs, wrapper)
                    for c in candidates} for name in names}  # a split the engine is forced on and cannot play fails here
    with_splits = has_splits(env_id)
    together = (reference_episodes > 0 and not stochastic and all(w == {"engine"} for w in where.values())
                and all(split_backend(None, env_id, name if with_splits else None, backend, env_kwargs) == "engine"
                        for name in names))
    references: dict[str, Any] | None = None
    if together:  # every split on the engine: the agents and the references in one batch per split
        played, references = evaluate_with_references([c.agent for c in candidates], env_id, names, episodes,
                                                      reference_episodes, seed, env_kwargs=env_kwargs, device=device,
                                                      progress=progress)
    else:
        played = [evaluate_splits(c.agent, env_id, names, episodes, seed, n_envs=n_envs, deterministic=not stochastic,
                                  env_kwargs=env_kwargs, wrapper=wrapper, progress=progress, backend=backend, device=device)
                  for c in candidates]
    records = [RunRecord(c.name, c.config.get("seed"), results, dict(c.config), c.tb_dir, c.training)
               for c, results in zip(candidates, played)]
    first = first_reset_seed(env_id, seed)
    meta: dict[str, Any] = {
        "algorithm": candidates[0].config.get("algo"),
        "training split": training_split_note(env_id, candidates[0].config.get("split")),
        "env kwargs": env_kwargs_note(env_kwargs),
        "observation wrapper": wrapper_name(wrapper),
        "advice": advice_note([c.agent for c in candidates], [c.config for c in candidates]),
        **dict(extra_meta or {}),
        "episodes per split": episodes,
        "actions": "sampled from the policy" if stochastic else "most likely (deterministic)",
        "evaluation reset seeds": f"{first}..{first + episodes - 1} on every split",
        "episodes ran on": backend_note(where),
    }
    overlap = [f"{c.name} (seeds {s[0]}..{s[1]})" for c in candidates
               if (s := (c.training.get("checkpoint") or {}).get("validation_seeds")) and s[0] <= first + episodes - 1 and first <= s[1]]
    if overlap:
        meta["warning"] = (f"these evaluation seeds overlap the seeds the checkpoint was chosen on: {', '.join(overlap)}; "
                           "pass --seed past them for an unbiased score")
    if notes:
        meta["warning: not independent"] = "; ".join(notes)
    constant = constant_policy_warnings({r.name: r.results for r in records})
    if constant:
        meta["warning: constant policy"] = "; ".join(constant)
    if reference_episodes and references is None:
        references = measure_references(env_id, names, reference_episodes, seed, n_envs=n_envs, env_kwargs=env_kwargs,
                                        backend=backend, device=device)
    meta["references"] = (f"uniform random and the best constant action on the first {reference_episodes} of the same levels"
                          if references else "not measured (reference episodes 0)")
    meta = {k: v for k, v in meta.items() if v is not None}
    layout = axis_layout(env_id, names)
    if out is not None:
        paths = write_report(out, records, layout, env_id=env_id, meta=meta, references=references)
    else:
        paths = {}
    summary = summarize([run_metrics(r.results) for r in records], layout)
    return Evaluation(env_id, records, summary, meta, paths, references)


def backend_note(where: Mapping[str, set[str]]) -> str:
    """The report's line on where each split's episodes ran (split -> the backends its policies ran on).

    Example:
        >>> backend_note({"id": {"engine"}, "size/far": {"engine"}})
        'the tensor engine (every split)'
        >>> backend_note({"id": {"engine"}, "rules/far": {"minigrid"}})
        'the tensor engine (id); the minigrid env (rules/far)'
    """
    label = {"engine": "the tensor engine", "minigrid": "the minigrid env"}
    kinds = sorted({b for used in where.values() for b in used})
    if len(kinds) == 1:
        return f"{label[kinds[0]]} (every split)"
    return "; ".join(f"{label[k]} ({', '.join(n for n, used in where.items() if k in used)})" for k in kinds)


def _named(policies: Any) -> list[tuple[str, int | None, Any]]:
    """``(name, seed, policy)`` of one policy, a list of them, or a mapping name -> policy (int names are seeds)."""
    if isinstance(policies, Mapping):
        if not policies:
            raise ValueError("no policies given (an empty mapping)")
        return [(str(k), k if isinstance(k, int) else None, p) for k, p in policies.items()]
    if isinstance(policies, (list, tuple)):
        if not policies:
            raise ValueError("no policies given (an empty list)")
        return [(f"policy{i}", None, p) for i, p in enumerate(policies)]
    return [("policy", None, policies)]


def evaluate_policy(
    policy: Any,
    env_id: str,
    splits: str | Iterable[str] = "all",
    episodes: int = 1000,
    seed: int = 0,
    *,
    wrapper: str | ObservationWrapper | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool = True,
    out: str | Path | None = None,
    n_envs: int = 4,
    progress: bool = False,
    config: Mapping[str, Any] | None = None,
    reference_episodes: int | None = None,
    backend: str = "auto",
    device: Any = "cpu",
) -> Evaluation:
    """Score ``policy`` on ``env_id``'s splits as ``shiftgrid evaluate`` scores a run (see the module docstring).

    Args:
        policy: an object with SB3's ``predict(obs, state, episode_start, deterministic)``, a
            batched function ``fn(obs_batch) -> actions`` (observations as the ``wrapper`` gives
            them, stacked: a dict of arrays or an array; one integer action per row back), or
            several training seeds of one configuration: a list, or a mapping name -> policy
            (integer names are reported as seeds); several are summarised with IQM and 95% CIs.
        env_id: a shiftgrid id (or ``module:id``), or a minigrid / BabyAI id.
        splits: ``"all"`` (``id`` and every ``<axis>/near|far``) or split names.
        episodes: episodes per split (``shiftgrid evaluate``'s default: 1000, BabyAI's protocol).
        seed: first evaluation seed (episode ``i`` resets with ``seed + i``, as ``shiftgrid evaluate``).
        wrapper: how the policy sees the env: ``"tokens"`` / None (shiftgrid's own view, missions
            as token ids), ``"image"`` (``ImgObsWrapper``), ``"flat"`` (``FlatObsWrapper``),
            ``"MODULE:CALLABLE"``, or a callable env -> env, given the env with text missions.
        env_kwargs: keyword arguments of the env (factor values such as ``size``, ``max_steps``...).
        deterministic: passed to ``predict`` (a plain function ignores it).
        out: folder for results.json/.csv/.md and the plots; None writes nothing.
        n_envs: environments stepped side by side (the policy is called on batches of up to this many).
        progress: show a progress bar over the splits.
        config: what the report should record of how the policies were trained (``algo``, ``split``...).
        reference_episodes: how many of the same levels the references (uniform random, every constant action)
            play per split (None: all ``episodes``; 0: none).
        backend: where episodes run: ``auto`` (the tensor engine where it plays a split as the minigrid env would,
            else the minigrid env), ``engine`` or ``minigrid``: the same levels and numbers either way.
        device: the engine's device.

    Returns:
        an :class:`Evaluation` (``.results``: split -> episodes of one policy; ``.runs``, ``.summary``, ``.paths``).

    Raises:
        TypeError: a policy with neither ``predict`` nor a call.
        PolicyError: a policy returned something other than one valid action per observation.
        ValueError: a policy whose ``observation_space`` differs from the wrapped env's, an unknown wrapper.
        UnknownEnvError, SplitError: an unknown env id or split name (the message lists the valid ones).
    """
    wrap = observation_wrapper(wrapper)
    given = _named(policy)
    seen: dict[int, str] = {}
    notes = []
    for name, _, p in given:
        if id(p) in seen:
            notes.append(f"{seen[id(p)]} and {name} are the same object: they are not independent seeds")
        seen.setdefault(id(p), name)
    named = [(name, s, as_predictor(p)) for name, s, p in given]
    names = splits_to_evaluate(env_id, splits)  # unknown ids and splits fail before any episode runs
    for name, _, agent in named:
        check_observation_space(agent, env_id, names, env_kwargs, wrap, who=name if len(named) > 1 else "the policy")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    candidates = [Candidate(name, agent, {**dict(config or {}), "env": env_id, "env_kwargs": dict(env_kwargs or {}),
                                          **({"seed": s} if s is not None else {})})
                  for name, s, agent in named]
    return evaluate_agents(candidates, out, splits=names, episodes=episodes, seed=seed, n_envs=n_envs,
                           stochastic=not deterministic, wrapper=wrap, notes=notes, progress=progress,
                           reference_episodes=reference_episodes, backend=backend, device=device)

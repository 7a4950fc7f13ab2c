"""World models under shift: real episodes played on every split, scored open-loop.

For a model and the behaviour policy it was trained with (:mod:`shiftgrid.agents.model_based.behaviour`;
for a Dreamer's model, the Dreamer agent itself: :mod:`shiftgrid.agents.model_based.run_model`),
:func:`record_splits` plays real episodes on every split with that behaviour, and
:func:`~shiftgrid.world_models.scoring.score_splits` scores the model on them (the metrics,
windows and horizons are :mod:`shiftgrid.world_models.scoring`'s). :func:`evaluate_world_model`
does both; :func:`report_style` is how the shift report shows the metrics.

Seeds: episode ``i`` of every split resets with ``first_reset_seed(env_id, seed) + i``, as
``shiftgrid evaluate`` does (:mod:`shiftgrid.agents.evaluation.episodes`): on shiftgrid ids the
evaluated splits (``id``, ``<axis>/near|far``) are held out from the ``train`` split a world
model collects its data on by construction (own level-seed ranges and a level-hash bucket
training never draws); on ids without splits the seeds start at ``HELD_OUT_SEED_BASE`` (10^9),
which training collection never passes to ``reset``. ``reserved`` seed ranges (a run's
validation collection) that overlap the evaluation seeds are refused. Build the behaviour
with a fixed seed (``shiftgrid wm evaluate`` uses ``--seed``) and torch's generator (latent
samples) is seeded too, so an evaluation repeats exactly; the real episodes do not depend on
the model, so every run of one configuration is scored on the same ones.

Example:
    >>> from shiftgrid.agents.model_based.behaviour import make_behaviour
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> from shiftgrid.world_models.models import build_model
    >>> model = build_model("rssm", "tiny", ObsSpec())
    >>> played = record_splits(make_behaviour("random", noise=1.0, seed=0), "shiftgrid/GoTo-v1", ["id", "size/far"],
    ...                        episodes=2, progress=False)
    >>> scores = score_splits(model, played, context=3, horizons=(1, 5), progress=False)
    >>> sorted(scores), 0 <= scores["id"]["cell_accuracy@5"] <= 1, scores["id"]["windows@1"] > 0
    (['id', 'size/far'], True, True)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from shiftgrid.agents.evaluation.episodes import first_reset_seed, splits_to_evaluate
from shiftgrid.agents.evaluation.report import ReportStyle
from shiftgrid.envs.learner_env import has_splits, make_env
from shiftgrid.world_models.interface import WorldModel
from shiftgrid.world_models.scoring import (
    DEFAULT_CONTEXT,
    DEFAULT_HORIZONS,
    METRICS,
    Episode,
    check_horizons,
    score_splits,
)

#: The metrics of the Markdown tables (everything is in results.json / results.csv).
TABLE_METRICS = ("changed_cell_accuracy", "frame_accuracy", "obs_nll", "return_gap")

def evaluation_seeds(env_id: str, episodes: int, seed: int = 0, reserved: Sequence[tuple[int, int]] = ()) -> range:
    """The reset seeds of episodes ``0..episodes-1`` of every split; ``ValueError`` if one is ``reserved``.

    ``reserved`` holds inclusive ``(first, last)`` seed ranges the run used (its validation collection).

    Example:
        >>> evaluation_seeds("shiftgrid/GoTo-v1", 3), evaluation_seeds("MiniGrid-Empty-5x5-v0", 2)
        (range(0, 3), range(1000000000, 1000000002))
    """
    first = first_reset_seed(env_id, seed)
    seeds = range(first, first + episodes)
    for low, high in reserved:
        if low <= seeds[-1] and seeds[0] <= high:
            raise ValueError(f"evaluation seeds {seeds[0]}..{seeds[-1]} overlap seeds {low}..{high} the run collected "
                             "its validation data on; pass a --seed past them")
    return seeds


def _record(envs: gym.vector.SyncVectorEnv, behaviour: Any, seeds: Sequence[int], bar: tqdm) -> list[Episode]:
    """One episode per seed, played ``envs.num_envs`` side by side; each sub-env's steps after its episode end are dropped."""
    n, out = envs.num_envs, []
    for start in range(0, len(seeds), n):
        chunk: list[int | None] = list(seeds[start:start + n])
        obs, _ = envs.reset(seed=chunk + [seeds[-1] + 1 + i for i in range(n - len(chunk))])  # spare sub-envs: discarded
        steps: list[list[dict[str, Any]]] = [[_step(obs, j)] for j in range(n)]
        active = np.arange(n) < len(chunk)
        while active.any():
            actions = np.asarray(behaviour.act(envs, obs))
            obs, reward, terminated, truncated, _ = envs.step(actions)
            for j in np.flatnonzero(active):
                steps[j][-1]["action"] = int(actions[j])
                steps[j].append({**_step(obs, j), "reward": float(reward[j]), "terminated": bool(terminated[j]),
                                 "truncated": bool(truncated[j])})
                if terminated[j] or truncated[j]:
                    active[j] = False
                    bar.update(1)
        out += [_stack(steps[j]) for j in range(len(chunk))]
    return out


def _step(obs: Mapping[str, np.ndarray], j: int | np.integer) -> dict[str, Any]:
    return {k: np.asarray(v[j]) for k, v in obs.items()}


def _stack(steps: list[dict[str, Any]]) -> Episode:
    """Steps in the replay layout: ``action`` taken from each observation (0 at the end), reward into it (0 at the start)."""
    keys = [k for k in steps[0] if k not in ("action",)]
    defaults = {"action": (0, np.int64), "reward": (0.0, np.float32), "terminated": (False, bool), "truncated": (False, bool)}
    episode = {k: np.stack([np.asarray(s[k]) for s in steps]) for k in keys}
    for k, (d, dtype) in defaults.items():
        episode[k] = np.array([s.get(k, d) for s in steps], dtype=dtype)
    episode["is_first"] = np.arange(len(steps)) == 0
    return episode


def record_splits(behaviour: Any, env_id: str, splits: str | Iterable[str] = "all", episodes: int = 100, seed: int = 0, *,
                  env_kwargs: Mapping[str, Any] | None = None, n_envs: int = 8, reserved: Sequence[tuple[int, int]] = (),
                  progress: bool = True, wrapper: Callable[[gym.Env], gym.Env] | None = None) -> dict[str, list[Episode]]:
    """Real episodes of ``behaviour`` (``act(envs, obs)`` on a ``SyncVectorEnv``) on every split, on the evaluation seeds.

    ``wrapper`` (analysis only) wraps each env; the keys it adds to observations are kept in the episodes.

    Returns:
        canonical split name -> ``episodes`` episodes, each a dict of ``(L + 1, ...)`` arrays in
        the replay layout (``image``, ``direction``, token keys, ``action``, ``reward``,
        ``terminated``, ``truncated``, ``is_first``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    names = splits_to_evaluate(env_id, splits)
    seeds = evaluation_seeds(env_id, episodes, seed, reserved)
    out: dict[str, list[Episode]] = {}
    bar = tqdm(total=len(names) * episodes, desc=f"play {env_id}", unit="episode", disable=not progress)
    try:
        for name in names:
            bar.set_postfix_str(name)
            split = name if has_splits(env_id) else None
            n = max(1, min(n_envs, episodes))
            make = functools.partial(make_env, env_id, split, **dict(env_kwargs or {}))
            envs = gym.vector.SyncVectorEnv([make if wrapper is None else (lambda: wrapper(make()))] * n)
            try:
                if hasattr(behaviour, "check"):
                    behaviour.check(envs)
                out[name] = _record(envs, behaviour, seeds, bar)
            finally:
                envs.close()
    finally:
        bar.close()
    return out


def evaluate_world_model(model: WorldModel, behaviour: Any, env_id: str, splits: str | Iterable[str] = "all",
                         episodes: int = 100, *, context: int = DEFAULT_CONTEXT, horizons: Iterable[int] = DEFAULT_HORIZONS,
                         seed: int = 0, env_kwargs: Mapping[str, Any] | None = None, stride: int = 1, n_envs: int = 8,
                         batch_size: int = 1024, progress: bool = False) -> dict[str, dict[str, float]]:
    """:func:`record_splits` then :func:`score_splits`: split -> ``name@k`` -> value of one model.

    ``behaviour`` is the one the model was trained with (``make_behaviour(policy, noise=..., seed=...)``), or for
    a Dreamer's model the Dreamer agent (:meth:`~shiftgrid.agents.model_based.run_model.ScoredRun.behaviour`).
    Several models of one configuration: record once, score each (as ``shiftgrid wm evaluate`` does).

    Example:
        >>> from shiftgrid.agents.model_based.behaviour import make_behaviour
        >>> from shiftgrid.world_models.interface import ObsSpec
        >>> from shiftgrid.world_models.models import build_model
        >>> scores = evaluate_world_model(build_model("rssm", "tiny", ObsSpec()), make_behaviour("random", noise=1.0, seed=0),
        ...                               "MiniGrid-Empty-5x5-v0", episodes=1, context=2, horizons=[1])
        >>> list(scores), scores["id"]["windows@1"] > 0
        (['id'], True)
    """
    check_horizons(horizons, context)
    played = record_splits(behaviour, env_id, splits, episodes, seed, env_kwargs=env_kwargs, n_envs=n_envs,
                           progress=progress)
    return score_splits(model, played, context=context, horizons=horizons, stride=stride, batch_size=batch_size,
                        seed=seed, progress=progress)


#: The learning curve of a ``wm train`` run's report: TensorBoard tag and the words of its axis.
ONE_STEP_CURVE = ("train/one_step/cell_accuracy", "one-step cell accuracy (training batches)")


def report_style(horizons: Iterable[int], curve: tuple[str, str] = ONE_STEP_CURVE) -> ReportStyle:
    """How the shift report of :func:`shiftgrid.agents.evaluation.report.write_report` shows world-model metrics at ``horizons``
    (``curve``: the TensorBoard tag of its learning curves, and the words of their axis).

    Example:
        >>> style = report_style([1, 5])
        >>> style.label("obs_nll@5"), style.per_seed, len(style.table)
        ('obs NLL (nats) @5', 'changed_cell_accuracy@5', 8)
    """
    hs = sorted(set(horizons))
    return ReportStyle(
        title="World-model shift report",
        labels={f"{m}@{k}": f"{words} @{k}" for m, words in METRICS.items() for k in hs},
        table=[f"{m}@{k}" for m in TABLE_METRICS for k in hs],
        plotted=[f"{m}@{k}" for m in ("changed_cell_accuracy", "obs_nll") for k in hs],
        per_seed=f"changed_cell_accuracy@{hs[-1]}",
        gap_note="Gaps are id − shifted: for accuracies and F1 a positive gap is a loss under shift; for obs NLL and "
                 "the return gap (errors) a negative gap is.",
        curve=curve,
    )

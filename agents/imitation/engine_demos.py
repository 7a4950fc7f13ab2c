"""Demonstrations straight from the engine: each level's optimal plan, replayed for thousands of levels at once.

The minigrid-env path (:func:`~shiftgrid.agents.imitation.datasets.write_demos`) asks the oracle for
the next action at every step of every episode, one env at a time. Here the plan the level sampler
already computes for each level (the exact oracle's, the same search) is replayed from the start on
the tensor engine, every episode of a chunk in one batch, and the steps are written as the same
Minari dataset (same observations, rewards, terminations, infos and metadata). Episode ``i`` plays
the level of ``reset(seed=seed + i)`` on the minigrid env; its levels and plans are generated in
worker processes as level banks are.

A plan is followed open loop, so this needs deterministic dynamics: a split whose levels slip is
refused (the minigrid-env path re-plans at every step and records those). A level whose plan the
oracle did not prove optimal (``optimal_exact`` False) still gives a valid, possibly longer,
demonstration, as the minigrid-env path would.

Example:
    >>> import tempfile, minari
    >>> from shiftgrid.agents.imitation.datasets import open_dataset
    >>> folder = write_engine_demos(tempfile.mkdtemp() + "/d", "shiftgrid/GoTo-v1", 4, seed=0, workers=1)
    >>> dataset = open_dataset(folder)
    >>> dataset.total_episodes, all(e.rewards[-1] > 0 for e in dataset.iterate_episodes())
    (4, True)
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shiftgrid.agents.evaluation.backends import BACKENDS
from shiftgrid.agents.imitation.datasets import (
    DatasetError, EpisodeRecorder, check_new_dataset, recording_env, write_dataset, write_demos,
)

#: Episodes replayed in one engine batch.
CHUNK = 4096


class SlippingSplit(DatasetError):
    """The split's levels slip: an open-loop plan is not a demonstration there."""


def _level_and_plan(source: Any, seed: int) -> tuple[dict[str, np.ndarray], tuple[int, ...] | None, str, float]:
    """In a worker: the row of ``reset(seed=seed)``'s level, its oracle plan's actions, its mission and its slip."""
    from gymnasium.utils.seeding import np_random

    from shiftgrid.envs.engine.levels import Layout, row_from_sample
    from shiftgrid.envs.shift.split import sample_level

    s = sample_level(source.family, source.split, np_random(seed)[0])
    row = row_from_sample(s, source.family.max_steps(s.factors), Layout(*source.canvas))
    plan = None if s.plan is None else tuple(int(a) for a in s.plan.actions)
    return row, plan, s.level.mission_text, float(s.factors.slip)


def levels_and_plans(env_id: str, split: str, seeds: list[int], workers: int | None = None) -> list[tuple[Any, ...]]:
    """:func:`_level_and_plan` of every reset seed, in order, in worker processes where there are many."""
    from shiftgrid.envs.engine.bank import _workers, process_pool, source_for

    source = source_for(env_id, split)
    n = min(_workers(workers), max(1, len(seeds) // 64))
    if n == 1:
        return [_level_and_plan(source, s) for s in seeds]
    with process_pool(n) as pool:
        return list(pool.map(partial(_level_and_plan, source), seeds, chunksize=32))


def _replay(canvas: tuple[int, int], rows: list[dict[str, np.ndarray]], plans: list[tuple[int, ...]], missions: list[str],
            seeds: list[int]) -> list[EpisodeRecorder]:
    """Play every plan on its level (``canvas``: the split's grid), all at once on the engine (CPU), recording each episode."""
    from shiftgrid.envs.engine.batch import LevelStore, TensorEngine, info_of
    from shiftgrid.envs.engine.levels import Layout, int_to_hash, stack
    from shiftgrid.envs.rules import reward as success_reward
    from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN

    single = [{k: v[None] for k, v in r.items()} for r in rows]
    layout = Layout(*canvas, max(r["obj_cell"].shape[1] for r in single), max(r["verb"].shape[1] for r in single),
                    max(DEFAULT_MAX_LEN, max(r["tokens"].shape[1] for r in single)))
    store = LevelStore(stack(single, layout), layout, "cpu")
    n = len(rows)
    engine = TensorEngine(store, n)
    levels = torch.arange(n)
    obs = engine.reset(levels=levels)
    info = {k: v.numpy() for k, v in info_of(store, levels).items()}
    infos = [{"success": False, "level_hash": int_to_hash(int(info["level_hash"][i])), "level_seed": int(info["level_seed"][i])}
             for i in range(n)]
    recs = [EpisodeRecorder({"image": obs["image"][i].numpy(), "direction": int(obs["direction"][i]), "mission": missions[i]},
                            dict(infos[i]), seed=seeds[i]) for i in range(n)]
    limits = (store.arrays["misc"].index_select(0, levels) & 0xFFFFFFFF).numpy()
    lengths = np.array([len(p) for p in plans])
    actions = np.full((n, int(lengths.max())), 6, dtype=np.int64)  # past its plan an env idles (its episode has ended)
    for i, p in enumerate(plans):
        actions[i, :len(p)] = p
    for t in range(actions.shape[1]):
        obs, rewards, terms, truncs, step_info = engine.step(torch.as_tensor(actions[:, t]), check=False)
        image, direction = obs["image"].numpy(), obs["direction"].numpy()
        reward, terminated, truncated = rewards.double().numpy(), terms.numpy(), truncs.numpy()
        success = step_info["success"].numpy()
        for i in (int(j) for j in np.flatnonzero(lengths > t)):
            # the engine's rewards are float32; a success's (its only reward) is the rule's float64 figure, as the env gives
            r = float(success_reward(float(t + 1), float(limits[i]))) if success[i] else float(reward[i])
            recs[i].step(int(actions[i, t]), {"image": image[i], "direction": int(direction[i]), "mission": missions[i]},
                         r, bool(terminated[i]), bool(truncated[i]), {**infos[i], "success": bool(success[i])})
    return recs


def write_engine_demos(out: str | Path, env_id: str, episodes: int, seed: int = 0, split: str | None = None,
                       progress: bool = False, workers: int | None = None) -> Path:
    """Record ``episodes`` oracle demonstrations of a shiftgrid id's ``split`` on the engine into ``out`` (a new folder).

    Episode ``i`` is the level of ``reset(seed=seed + i)``; levels without a plan are skipped and
    listed (``skipped_seeds``), as the minigrid-env path skips the seeds its teacher fails.

    Raises:
        DatasetError: ``out`` exists, a non-shiftgrid id, or a split whose levels slip.
    """
    import minari  # noqa: F401  (written at the end: a missing extra fails before any episode is recorded)
    from tqdm import tqdm

    from shiftgrid.envs.engine.bank import source_for
    from shiftgrid.envs.learner_env import has_splits

    check_new_dataset(out, episodes)
    if not has_splits(env_id):
        raise DatasetError(f"--backend engine replays the exact oracle's plans of shiftgrid ids; {env_id} is not one "
                           "(--backend minigrid records BabyAI's bot there)")
    env, split = recording_env(env_id, split)
    canvas = source_for(env_id, split or "train").canvas
    buffers: list[Any] = []
    skipped: list[int] = []
    next_seed, steps = seed, 0
    bar = tqdm(total=episodes, unit="episode", desc="demos (engine)", disable=not progress, dynamic_ncols=True)
    try:
        while len(buffers) < episodes:
            want = min(CHUNK, episodes - len(buffers))
            seeds = list(range(next_seed, next_seed + want))
            next_seed += want
            made = levels_and_plans(env_id, split or "train", seeds, workers)
            if any(slip > 0 for _, _, _, slip in made):
                raise SlippingSplit(f"split {split} of {env_id} has levels that slip: a plan replayed open loop is not a "
                                   "demonstration there; use --backend minigrid (the teacher re-plans at every step)")
            kept = [(s, m) for s, m in zip(seeds, made) if m[1] is not None]
            skipped += [s for s, m in zip(seeds, made) if m[1] is None]
            if not kept:
                continue
            recs = _replay(canvas, [m[0] for _, m in kept], [m[1] for _, m in kept], [m[2] for _, m in kept],
                           [s for s, _ in kept])
            for rec in recs:
                if not rec.success:  # a plan that does not complete its level: the engine and the oracle disagree
                    raise DatasetError(f"the oracle's plan for reset seed {rec.seed} of {env_id} did not complete its "
                                       "level on the engine; nothing written")
                buffers.append(rec.buffer(len(buffers)))
                steps += len(rec.actions)
            bar.update(len(recs))
            bar.set_postfix(steps=steps, skipped=len(skipped), refresh=False)
        return write_dataset(out, env, buffers, split=split, kind="demos", algorithm="OracleTeacher",
                             extra={"seed": seed, "episodes": episodes, "steps": steps, "skipped_seeds": skipped,
                                    "recorded_on": "engine"})
    finally:
        bar.close()
        env.close()



def record_demos(out: str | Path, env_id: str, episodes: int, seed: int = 0, split: str | None = None,
                 progress: bool = False, workers: int | None = None, backend: str = "auto") -> Path:
    """Record ``episodes`` teacher demonstrations into ``out`` where ``backend`` says (``auto``: on the engine for
    shiftgrid ids whose levels do not slip, else in the minigrid env, as ``shiftgrid demos`` does).

    Raises:
        DatasetError: an unknown backend, or what the chosen writer refuses (a slipping split forced on the engine).
    """
    from shiftgrid.envs.learner_env import has_splits

    if backend not in BACKENDS:  # evaluation's backends, the same three words
        raise DatasetError(f"unknown demonstrations backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "engine" or (backend == "auto" and has_splits(env_id)):
        try:
            return write_engine_demos(out, env_id, episodes, seed=seed, split=split, progress=progress, workers=workers)
        except SlippingSplit:
            if backend == "engine":
                raise
    return write_demos(out, env_id, episodes, seed=seed, split=split, progress=progress)

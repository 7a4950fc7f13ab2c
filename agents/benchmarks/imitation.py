"""Demonstrations needed for 99% success: BabyAI's sample-efficiency measurement for bc, dagger and the expert (figures, not a test).

One row per environment, demonstration budget ``n``, seed and algorithm, each scored the same way: most
likely action on ``episodes`` held-out training-split episodes (reset seeds from :data:`HELD_OUT_SEED`
on, BabyAI's protocol of 1,000 episodes on seeds disjoint from the training ones). An evaluation level
whose hash the learner met in training is counted (``overlap``) and ``success_fresh`` leaves it out.

Every budget of a seed reads one dataset: the oracle's demonstrations of reset seeds ``seed * 10**7 + i``
(recorded once per env and seed, on the engine where it can, ``max(counts)`` of them; or given by
``datasets``, a path with ``{seed}``), of which a budget ``n`` takes the first ``n``: the budgets are nested,
as a dataset recorded for each would be.

- ``bc``: clones the first ``n`` demonstrations with ``updates`` minibatch updates of ``batch_size``.
- ``expert`` (the intelligent expert): starts from the first ``n // 4`` of those demonstrations and
  adds, each round, at most ``n // 4`` demonstrations of the probe levels its learner failed
  (``probe_episodes = n // 2`` a round) until its demonstrations total ``n`` (``max_demos``), then is
  fitted a last time; a learner that fails too few probes to spend its budget stops after
  :data:`EXPERT_ROUNDS` rounds. Demonstrations, demo steps and env steps (probes + demonstrations) are
  read from the run (``teacher/cost.json``, the checkpoint), never assumed; ``overlap`` counts the
  initial demonstrations' and every probe level (a superset of the levels demonstrated).
- ``dagger``: no demonstrations; its budget is teacher labels, as many env steps as bc's ``n``
  demonstrations take on that env and seed (``D``, rounded down to whole rollouts of ``n_envs`` envs,
  at least :data:`DAGGER_ROLLOUTS`), so rows are comparable; ``demo_equiv`` is labels /
  bc's mean demonstration length. Labels and env steps are read from the run. Its levels come from
  unseeded resets, so ``overlap`` is not tracked (None).

The cloning work is the same for all: about ``updates`` minibatch updates of ``batch_size``. dagger
spreads them over its rollouts (``updates * rollout size / D`` after each); the expert's ``epochs`` per
round are set so that its planned fits (on ``n/4, n/2, 3n/4, n`` and the last ``n`` demonstrations)
total ``updates``. A run that does more rounds does more; every row reports the updates the run made.

Each row also gives its wall-clock seconds (``row_s``: demonstrations, training and evaluation;
``train_s``, ``eval_s``) and the CPU seconds of this process (``cpu_s``; on a shared machine the
wall-clock grows with the load, the CPU seconds much less).

Rows measured with other settings (``hyperparams`` such as ``{"memory": True}``, other ``updates``) name them
in ``setting``; the summary and the curves (:func:`plot_curves`) keep each learner (algo and setting) apart.
Rows are scored on the tensor engine where it plays the split as the minigrid env would (the same episodes).

The summary (:func:`summary`), per env, algo and budget: success over seeds as the IQM with a 95%
bootstrap interval (:func:`~shiftgrid.agents.evaluation.stats.iqm_interval`), and per env and algo the smallest
budget whose IQM and every seed reach the target.

Example:
    $ shiftgrid benchmark imitation --env shiftgrid/GoTo-v1,shiftgrid/Pickup-v1 --algos bc,dagger,expert \\
        --demos 1000,2000,5000 --seeds 0,1,2 --episodes 1000 --json imitation.jsonl
    $ shiftgrid benchmark imitation --from imitation.jsonl   # the summary of saved rows

    >>> row = {"env": "E", "algo": "bc", "seed": 0, "budget": 10, "success": 1.0, "demo_steps": 40, "labels": None}
    >>> print(summary([row, {**row, "seed": 1}]).splitlines()[-1])
    | E | bc | 10 |
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

#: First reset seed of the held-out evaluation episodes (demonstrations use ``seed * 10**7 + i``).
HELD_OUT_SEED = 900_000_000
#: The algorithms compared.
ALGOS = ("bc", "dagger", "expert")
#: Minibatch updates a row plans for (a row with other settings says so in its ``setting``).
DEFAULT_UPDATES = 2000
#: Fewest rollouts of dagger (each of at most 128 steps per env, its label budget split evenly between them).
DAGGER_ROLLOUTS = 8
#: Most rounds of the expert (it ends sooner once its demonstrations reach the budget).
EXPERT_ROUNDS = 8


def benchmark(env_ids: Sequence[str], algos: Sequence[str], counts: Sequence[int], seeds: Sequence[int], *,
              episodes: int = 1000, updates: int = DEFAULT_UPDATES, batch_size: int = 256, learning_rate: float = 1e-3,
              device: str = "cpu", n_envs: int = 8, torch_threads: int = 1, progress: bool = False,
              on_row: Callable[[dict[str, Any]], None] | None = None, datasets: str | None = None,
              hyperparams: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per env, budget, seed and algo (in that order of loops), each passed to ``on_row`` as measured.

    ``datasets``: the demonstrations of each seed (a path with ``{seed}``, and ``{env}`` for several envs: the id
    with ``/`` as ``_``), each holding at least ``max(counts)``; None records them (once per env and seed).
    ``hyperparams`` are added to every learner's (e.g. ``{"memory": True}``).
    """
    bad = [a for a in algos if a not in ALGOS]
    if bad:
        raise ValueError(f"unknown algos {bad}; valid: {', '.join(ALGOS)}")
    rows = []
    recorded: dict[tuple[str, int], Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in env_ids:
            for n in counts:
                for seed in seeds:
                    key = (env_id, seed)
                    if key not in recorded:
                        recorded[key] = (dataset_path(datasets, env_id, seed) if datasets else
                                         _record(dataset_path(f"{tmp}/demos-{{env}}-{{seed}}", env_id, seed), env_id,
                                                 max(counts), seed, progress))
                    where = Path(tmp) / f"{env_id.replace('/', '_')}-{n}-{seed}"
                    for algo in algos:
                        row = measure(env_id, algo, n, seed, where, demos=recorded[key], episodes=episodes,
                                      updates=updates, batch_size=batch_size, learning_rate=learning_rate, device=device,
                                      n_envs=n_envs, torch_threads=torch_threads, progress=progress,
                                      hyperparams=hyperparams)
                        rows.append(row)
                        if on_row is not None:
                            on_row(row)
    return rows


def measure(env_id: str, algo: str, n: int, seed: int, where: Path, *, demos: Path | None = None, episodes: int = 1000,
            updates: int = DEFAULT_UPDATES, batch_size: int = 256, learning_rate: float = 1e-3, device: str = "cpu", n_envs: int = 8,
            torch_threads: int = 1, progress: bool = False, hyperparams: Mapping[str, Any] | None = None,
            ) -> dict[str, Any]:
    """One row: ``algo`` on ``env_id`` with budget ``n`` and ``seed``, trained under ``where`` and scored held out.

    ``demos``: the seed's dataset (its first ``n`` demonstrations are bc's, the first ``n // 4`` the expert's
    initial ones, and their steps dagger's label budget); None records ``n`` under ``where``.
    """
    from shiftgrid.agents.evaluation.engine_episodes import split_episodes
    from shiftgrid.agents.imitation.datasets import read_episodes
    from shiftgrid.envs.learner_env import has_splits
    from shiftgrid.world_models.device import resolve_device
    from shiftgrid.agents.run.checkpoint import load_agent, read_checkpoint
    from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    from shiftgrid.agents.run.rundir import RunDir
    from shiftgrid.agents.run.services import TEACHER_COST_FILE
    from shiftgrid.agents.run.train import train

    t0, cpu0 = time.perf_counter(), time.process_time()
    if demos is None:
        demos = where / "demos"
        if not demos.exists():
            _record(demos, env_id, n, seed, progress)
    demo_steps = _steps(demos, n)
    mean_len = demo_steps / n
    hp: dict[str, Any] = {"batch_size": batch_size, "learning_rate": learning_rate, **dict(hyperparams or {})}
    kw: dict[str, Any] = {}
    if algo == "bc":
        steps = updates * batch_size
        hp.update(max_demos=n)
        kw = {"demos": str(demos)}
    elif algo == "dagger":
        rollouts = max(DAGGER_ROLLOUTS, math.ceil(demo_steps / (n_envs * 128)))
        rollout_steps = max(1, demo_steps // (n_envs * rollouts))
        steps = rollouts * n_envs * rollout_steps  # at most bc's demonstration steps, short by < n_envs * rollouts
        hp.update(rollout_steps=rollout_steps, updates=max(1, round(updates / rollouts)))
    else:
        first = max(1, n // 4)
        planned = (first + min(n, 2 * first) + min(n, 3 * first) + 2 * n) * mean_len  # transitions of the planned fits
        hp.update(initial_demos=first, max_demos=n, max_new_demos=first, probe_episodes=max(1, n // 2),
                  max_rounds=EXPERT_ROUNDS, epochs=max(1, round(updates * batch_size / planned)))
        steps = 10**12  # no step limit: max_demos and max_rounds end the run
        kw = {"demos": str(demos)}
    run_dir = where / algo
    t1 = time.perf_counter()
    train(TrainConfig(algo=algo, env=env_id, steps=steps, seed=seed, device=device, progress=progress, n_envs=n_envs,
                      run_dir=str(run_dir), eval=EvalConfig(freq=0), checkpoint_freq=0, torch_threads=torch_threads,
                      hyperparams=hp, **kw))
    t2 = time.perf_counter()
    checkpoint = read_checkpoint(RunDir(run_dir).latest)
    cost_file = RunDir(run_dir).teacher / TEACHER_COST_FILE
    cost = json.loads(cost_file.read_text()) if cost_file.is_file() else {}
    agent, _ = load_agent(run_dir, device)
    scored = split_episodes(agent, env_id, "train" if has_splits(env_id) else None, episodes, seed=HELD_OUT_SEED,
                            n_envs=n_envs, device=resolve_device(device))
    t3 = time.perf_counter()
    seen: set[str | None] | None = None
    if algo == "bc":
        seen = {e.level_hash for e in itertools.islice(read_episodes(demos), n)}
    elif algo == "expert":
        from shiftgrid.agents.evaluation.episodes import first_reset_seed
        from shiftgrid.agents.imitation.expert import PROBE_SEED

        probe0 = first_reset_seed(env_id, PROBE_SEED)
        seen = {e.level_hash for e in itertools.islice(read_episodes(demos), max(1, n // 4))}
        seen |= _level_hashes(env_id, range(probe0, probe0 + int(checkpoint.state["counters"]["probed"])))
    fresh = scored if seen is None else [r for r in scored if r.level_hash not in seen]
    counters = checkpoint.state["counters"]
    labels = None if algo != "dagger" else int(cost.get("labels", 0))
    run_demos = n if algo == "bc" else None if algo == "dagger" else int(cost.get("demo_episodes", 0))
    setting = ", ".join([f"{k}={v}" for k, v in sorted(dict(hyperparams or {}).items())]
                        + ([f"{updates} updates"] if updates != DEFAULT_UPDATES else []))
    return {"env": env_id, "algo": algo, "setting": setting, "seed": seed, "budget": n, "demos": run_demos,
            "demo_steps": demo_steps if algo == "bc" else None if algo == "dagger" else int(cost.get("demo_steps", 0)),
            "labels": labels, "env_steps": demo_steps if algo == "bc" else int(checkpoint.num_timesteps),
            "demo_equiv": None if labels is None else round(labels / mean_len, 1), "updates": int(counters["updates"]),
            "rounds": int(counters["rounds"]) if algo == "expert" else None,
            "eval_episodes": len(scored), "overlap": None if seen is None else len(scored) - len(fresh),
            "success": float(np.mean([r.success for r in scored])),
            "success_fresh": float(np.mean([r.success for r in fresh])) if fresh and seen is not None else None,
            "prepare_s": round(t1 - t0, 1), "train_s": round(t2 - t1, 1), "eval_s": round(t3 - t2, 1),
            "row_s": round(t3 - t0, 1), "cpu_s": round(time.process_time() - cpu0, 1)}


def dataset_path(template: str, env_id: str, seed: int) -> Path:
    """The dataset of ``env_id`` and ``seed`` that ``template`` names (``{seed}``; ``{env}``: the id with ``/`` as ``_``).

    Example:
        >>> str(dataset_path("demos/{env}-{seed}", "shiftgrid/GoTo-v1", 2))
        'demos/shiftgrid_GoTo-v1-2'
    """
    return Path(template.format(seed=seed, env=env_id.replace("/", "_")))


def _record(out: Path, env_id: str, n: int, seed: int, progress: bool) -> Path:
    """The oracle's ``n`` demonstrations for ``seed`` (reset seeds ``seed * 10**7 + i``), on the engine where it can."""
    from shiftgrid.agents.imitation.engine_demos import record_demos

    return record_demos(out, env_id, n, seed=seed * 10**7, progress=progress, workers=1)


def _steps(dataset: Path, n: int) -> int:
    """Steps of the dataset's first ``n`` demonstrations (from the episodes' metadata).

    Raises:
        ValueError: a dataset with fewer than ``n`` demonstrations.
    """
    from shiftgrid.agents.imitation.datasets import open_dataset

    data = open_dataset(dataset)
    if data.total_episodes < n:
        raise ValueError(f"the dataset {dataset} holds {data.total_episodes} demonstrations; the budget {n} needs more")
    return int(sum(int(m["total_steps"]) for m in data.storage.get_episode_metadata(range(n))))


def _level_hashes(env_id: str, seeds: Iterable[int]) -> set[str]:
    """The level hashes of the training-split resets with ``seeds``."""
    from shiftgrid.agents.imitation.datasets import recording_env

    env, _ = recording_env(env_id)
    try:
        return {str(env.reset(seed=s)[1]["level_hash"]) for s in seeds}
    finally:
        env.close()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows saved one JSON object a line (as ``--json`` appends them).

    Raises:
        ValueError: a line that is not a JSON row, naming the file and line.
    """
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i} is not a JSON row ({e.msg}): {line[:60]!r}") from None
            if not isinstance(row, dict) or not {"env", "algo", "seed", "budget", "success"} <= set(row):
                raise ValueError(f"{path}:{i} is not an imitation row (needs env, algo, seed, budget, success): {line[:60]!r}")
            rows.append(row)
    return rows


def learner(r: Mapping[str, Any]) -> str:
    """A row's learner: its algo, and its settings where they are not the benchmark's defaults.

    Example:
        >>> learner({"algo": "bc", "setting": "memory=True, 6000 updates"}), learner({"algo": "dagger"})
        ('bc (memory=True, 6000 updates)', 'dagger')
    """
    return f"{r['algo']} ({r['setting']})" if r.get("setting") else str(r["algo"])


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:,}"


HEADER = ("| env | algo | seed | budget | demos | demo steps | labels | demo-equiv. | env steps | updates | eval episodes | "
          "seen in training | success | success (unseen levels) | row s | cpu s | train s | eval s |")


def row_line(r: Mapping[str, Any]) -> str:
    """One measured row, as a line of the rows table.

    Example:
        >>> row_line({"env": "E", "algo": "dagger", "seed": 0, "budget": 10, "demos": None, "demo_steps": None,
        ...           "labels": 48, "demo_equiv": 12.0, "env_steps": 48, "updates": 30, "eval_episodes": 5,
        ...           "overlap": None, "success": 0.8, "success_fresh": None, "row_s": 3.0, "cpu_s": 2.9, "train_s": 2.0,
        ...           "eval_s": 1.0})
        '| E | dagger | 0 | 10 | – | – | 48 | 12.0 | 48 | 30 | 5 | – | 0.800 | – | 3.0 | 2.9 | 2.0 | 1.0 |'
    """
    fresh = "–" if r["success_fresh"] is None else f"{r['success_fresh']:.3f}"
    return (f"| {r['env']} | {learner(r)} | {r['seed']} | {r['budget']:,} | {_num(r['demos'])} | {_num(r['demo_steps'])} | "
            f"{_num(r['labels'])} | {_num(r['demo_equiv'])} | {r['env_steps']:,} | {r['updates']:,} | "
            f"{r['eval_episodes']:,} | {_num(r['overlap'])} | {r['success']:.3f} | {fresh} | {r['row_s']} | {r['cpu_s']} | "
            f"{r['train_s']} | {r['eval_s']} |")


def summary(rows: Sequence[Mapping[str, Any]], target: float = 0.99) -> str:
    """Per env, algo and budget: success over seeds (IQM [95% CI]) and the teacher's mean cost; then the budgets
    reaching ``target`` (IQM and every seed), per env and algo.

    The teacher's cost is demonstration steps (bc, expert) or labels (dagger), the mean over seeds.
    Rows measured twice for the same env, algo, budget and seed count once (the last).

    Example:
        >>> rows = [{"env": "E", "algo": "bc", "seed": s, "budget": n, "success": x, "demo_steps": 4 * n, "labels": None}
        ...         for n, xs in [(10, (0.9, 1.0)), (20, (1.0, 1.0))] for s, x in enumerate(xs)]
        >>> print(summary(rows))  # doctest: +NORMALIZE_WHITESPACE
        | env | algo | budget | seeds | success IQM [95% CI] | per seed | teacher cost (mean) |
        |---|---|---|---|---|---|---|
        | E | bc | 10 | 2 | 0.950 [0.900, 1.000] | 0.900, 1.000 | 40 demo steps |
        | E | bc | 20 | 2 | 1.000 [1.000, 1.000] | 1.000, 1.000 | 80 demo steps |
        <BLANKLINE>
        smallest budget whose IQM and every seed reach 0.99 success:
        <BLANKLINE>
        | env | algo | budget |
        |---|---|---|
        | E | bc | 20 |
    """
    from shiftgrid.agents.evaluation.stats import iqm_interval

    latest = {(r["env"], learner(r), r["budget"], r["seed"]): r for r in rows}
    groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for (env, algo, n, _), r in sorted(latest.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], str(kv[0][3]))):
        groups[(env, algo, n)].append(r)
    lines = ["| env | algo | budget | seeds | success IQM [95% CI] | per seed | teacher cost (mean) |",
             "|---|---|---|---|---|---|---|"]
    reached: dict[tuple[str, str], int | None] = {}
    for (env, algo, n), rs in groups.items():
        ci = iqm_interval([r["success"] for r in rs])
        labels = [r["labels"] for r in rs if r.get("labels") is not None]
        steps = [r["demo_steps"] for r in rs if r.get("demo_steps") is not None]
        cost = (f"{np.mean(labels):,.0f} labels" if labels else f"{np.mean(steps):,.0f} demo steps" if steps else "–")
        lines.append(f"| {env} | {algo} | {n:,} | {len(rs)} | {ci.iqm:.3f} [{ci.low:.3f}, {ci.high:.3f}] | "
                     f"{', '.join(f'{x:.3f}' for x in ci.per_run)} | {cost} |")
        met = ci.iqm >= target and all(x >= target for x in ci.per_run)
        if reached.get((env, algo)) is None:
            reached[(env, algo)] = n if met else None
    lines += ["", f"smallest budget whose IQM and every seed reach {target} success:", "",
              "| env | algo | budget |", "|---|---|---|"]
    lines += [f"| {env} | {algo} | {'not reached' if n is None else f'{n:,}'} |" for (env, algo), n in reached.items()]
    return "\n".join(lines)


def plot_curves(rows: Sequence[Mapping[str, Any]], path: Path, target: float = 0.99) -> Path:
    """Success against demonstrations, one panel per env and one line per algo (IQM over seeds with its 95%
    interval, each seed a dot), the ``target`` dashed; demonstrations on a log axis. Rows measured twice count once.

    Example:
        >>> import tempfile
        >>> rows = [{"env": "E", "algo": "bc", "seed": s, "budget": n, "success": 0.5 + n / 100}
        ...         for n in (10, 20) for s in (0, 1)]
        >>> plot_curves(rows, Path(tempfile.mkdtemp()) / "curves.png").stat().st_size > 0
        True
    """
    from matplotlib.figure import Figure

    from shiftgrid.agents.evaluation.stats import iqm_interval

    latest = {(r["env"], learner(r), r["budget"], r["seed"]): r for r in rows}
    envs = sorted({env for env, _, _, _ in latest})
    fig = Figure(figsize=(4.2 * len(envs) + 0.4, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(envs), squeeze=False)[0])
    for ax, env in zip(axes, envs):
        for algo in ALGOS + tuple(sorted({a for e, a, _, _ in latest if e == env} - set(ALGOS))):
            budgets = sorted({n for e, a, n, _ in latest if e == env and a == algo})
            if not budgets:
                continue
            cis = [iqm_interval([r["success"] for (e, a, n, _), r in latest.items() if (e, a, n) == (env, algo, b)])
                   for b in budgets]
            line = ax.plot(budgets, [c.iqm for c in cis], marker="o", label=algo)[0]
            ax.fill_between(budgets, [c.low for c in cis], [c.high for c in cis], color=line.get_color(), alpha=0.2)
            for b, c in zip(budgets, cis):
                ax.plot([b] * len(c.per_run), c.per_run, ".", color=line.get_color(), alpha=0.5)
        ax.axhline(target, color="#888888", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(env)
        ax.set_xlabel("demonstrations (dagger: their steps in labels)")
        ax.legend(fontsize="small")
    axes[0].set_ylabel("held-out success (IQM, 95% CI)")
    fig.savefig(path, dpi=110)
    return Path(path)


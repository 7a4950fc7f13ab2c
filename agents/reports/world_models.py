"""World models' shift report of trained runs: what ``shiftgrid wm evaluate`` does.

Runs whose learner owns a world model (``wm train`` or Dreamer runs) are checked to be seeds of one
configuration (:mod:`shiftgrid.agents.reports.runs`), the real episodes are played on every split
(:func:`~shiftgrid.agents.evaluation.world_model.record_splits`; once per behaviour, so runs of a
``wm train`` configuration share them), each model is scored on them
(:func:`~shiftgrid.world_models.scoring.score_splits`) and the report is written with the agents'
report code. With ``breakdown`` the episodes also carry the agent's true pose (analysis only, never a
model's input) and each model's errors are broken down by action, by what could be known and by
cell type (:mod:`shiftgrid.agents.evaluation.cell_breakdown`) into ``breakdown.json`` / ``breakdown.md``.

Example:
    >>> paths = evaluate_world_model_runs(["runs/wm-rssm-goto/seed=0"], episodes=50)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.agents.evaluation.cell_breakdown import PoseObservation, breakdown_markdown
from shiftgrid.agents.evaluation.cell_breakdown import breakdown as cell_breakdown
from shiftgrid.agents.evaluation.episodes import axis_layout, first_reset_seed, splits_to_evaluate
from shiftgrid.agents.evaluation.world_model import record_splits, report_style
from shiftgrid.agents.reports.runs import EvaluationError, check_counts, check_same_configuration, distinct_runs, run_labels
from shiftgrid.envs.learner_env import has_splits
from shiftgrid.world_models.scoring import CONTINUE_THRESHOLD, REWARD_THRESHOLD, check_horizons, score_splits

#: Where the report of one run whose agent acts itself (Dreamer) goes inside its ``eval/`` folder, beside its agent's.
AGENT_REPORT_DIR = "world_model"
#: Config entries runs must share to be summarised together (seeds of one configuration).
SHARED = ("algo", "env", "env_kwargs", "hyperparams.model", "hyperparams.policy", "hyperparams.noise")


def check_training_split(env_id: str, names: Sequence[str], paths: Sequence[Path], configs: Sequence[dict]) -> None:
    """A run trained on a held-out split cannot be scored on it: its levels there may be ones it was trained on."""
    if not has_splits(env_id):
        return
    from shiftgrid.envs import splits_for

    split_set = splits_for(env_id)
    for path, config in zip(paths, configs):
        trained = config.get("split")
        if trained and split_set[trained].held_out and split_set.canonical(trained) in names:
            others = ",".join(n for n in names if n != split_set.canonical(trained)) or "another split"
            raise EvaluationError(f"{path} was trained on {trained}, so its levels there may be training levels; "
                                  f"leave it out: --splits {others}")


def evaluate_world_model_runs(runs: Sequence[Path], *, splits: str | list[str] = "all", horizons: Sequence[int] = (1, 5, 15),
                              episodes: int = 100, context: int = 5, stride: int = 1, seed: int = 0, checkpoint: str = "latest",
                              out: Path | None = None, n_envs: int = 8, batch_size: int = 1024, device: str = "auto",
                              stochastic: bool = False, progress: bool = True, behaviour: str | None = None,
                              breakdown: bool = False) -> dict[str, Path]:
    """Score the world models of ``runs`` (runs whose learner owns one: ``wm train`` or Dreamer runs) on every
    split and write their shift report; returns the files written (what ``shiftgrid wm evaluate`` does).

    ``behaviour`` chooses what plays the real episodes (``random``, ``oracle``, or a trained agent's run,
    checkpoint or ``.zip``); None: each run's own (:meth:`~shiftgrid.agents.model_based.run_model.ScoredRun.playing`).
    ``breakdown`` also writes each model's error breakdown (see the module docstring).

    Raises:
        EvaluationError: a run set that cannot be evaluated together, or as asked.
    """
    import torch

    from shiftgrid.agents.evaluation.report import RunRecord, write_report
    from shiftgrid.agents.evaluation.scoring import env_kwargs_note, training_split_note
    from shiftgrid.agents.model_based.run_model import load_scored_run
    from shiftgrid.world_models.device import resolve_device

    runs = [Path(p) for p in runs]
    dirs = distinct_runs(runs)
    check_counts(len(runs), out, episodes=episodes, context=context, stride=stride, n_envs=n_envs, batch_size=batch_size)
    try:
        horizons = check_horizons(horizons, context)
    except ValueError as e:
        raise EvaluationError(str(e)) from None
    torch.set_num_threads(1)  # small networks on a shared CPU, as in training and shiftgrid evaluate
    resolve_device(device)  # CUDA asked for but absent: one line before anything loads
    loaded = [load_scored_run(p, device=device, checkpoint=checkpoint) for p in runs]
    configs = [run.config.to_dict() for run in loaded]
    check_same_configuration(runs, configs, SHARED)
    if stochastic and not loaded[0].agent_plays(behaviour):
        raise EvaluationError(f"--stochastic samples a Dreamer agent's actions (or those of an agent given as --behaviour); "
                              f"{runs[0]} is played by {loaded[0].describe_behaviour(policy=behaviour)}; drop --stochastic")
    env_id, env_kwargs = configs[0]["env"], dict(configs[0].get("env_kwargs") or {})
    names = splits_to_evaluate(env_id, splits)
    check_training_split(env_id, names, runs, configs)
    reserved = [(first_reset_seed(env_id, c["eval"]["seed"]), first_reset_seed(env_id, c["eval"]["seed"])
                 + c["eval"]["episodes"] - 1) for c in configs if c["eval"]["freq"]]
    played: dict[str, dict[str, list]] = {}  # behaviour key -> its episodes: a wm train configuration's runs share them
    try:
        for run in loaded:
            if run.behaviour_key(behaviour) not in played:
                played[run.behaviour_key(behaviour)] = record_splits(
                    run.behaviour(seed, deterministic=not stochastic, policy=behaviour), env_id, names, episodes, seed,
                    env_kwargs=env_kwargs, n_envs=n_envs, reserved=reserved, progress=progress,
                    wrapper=PoseObservation if breakdown else None)
    except ValueError as e:  # evaluation seeds that overlap validation seeds, a --behaviour that cannot play
        raise EvaluationError(str(e)) from None
    records = []
    for label, rd, run, c in zip(run_labels(dirs, runs), dirs, loaded, configs):
        scores = score_splits(run.model, played[run.behaviour_key(behaviour)], context=context, horizons=horizons,
                              stride=stride, batch_size=batch_size, seed=seed, progress=progress)
        training = {"steps": run.steps, "checkpoint": {"file": f"{run.file.parent.name}/{run.file.name}", "steps": run.steps,
                                                       "chosen": f"the run's {checkpoint} checkpoint"}}
        records.append(RunRecord(label, c.get("seed"), {}, c, rd.tb if rd.tb.is_dir() else None, training, scores))
    shared = len(played) == 1
    first = first_reset_seed(env_id, seed)

    def windows(record: RunRecord) -> str:
        assert record.metrics is not None, "the records above carry their scores"
        return ", ".join(f"{split} " + "/".join(f"{record.metrics[split][f'windows@{k}']:.0f}" for k in horizons)
                         for split in names)

    meta = {
        "world model": ", ".join(sorted({run.family for run in loaded})),
        "behaviour": loaded[0].describe_behaviour(not stochastic, "the run's" if shared else "each run's", behaviour),
        "training split": training_split_note(env_id, configs[0].get("split")),
        "env kwargs": env_kwargs_note(env_kwargs),
        "episodes per split": f"{episodes} " + ("(the same real episodes for every run)" if shared
                                                else "per run (each run's agent plays its own, on the same reset seeds)"),
        "evaluation reset seeds": f"{first}..{first + episodes - 1} on every split",
        "context": f"{context} real steps filtered before each open-loop prediction; a window starts at every "
                   + ("step" if stride == 1 else f"{stride}th step"),
        "horizons": "k = " + ", ".join(map(str, horizons)) + ": the k-th step predicted from the real actions",
        "windows scored (k = " + "/".join(map(str, horizons)) + ")": (
            windows(records[0]) + " (the same for every run" if shared
            else "; ".join(f"{r.name}: {windows(r)}" for r in records) + " (each run's own episodes")
        + f"; horizon k needs episodes of at least {context - 1} + k steps)",
        "positives": f"reward F1: reward > {REWARD_THRESHOLD:g} (real and predicted); termination F1: real termination "
                     f"vs continuation probability < {CONTINUE_THRESHOLD:g}",
    }
    target = out if out is not None else (dirs[0].eval / AGENT_REPORT_DIR if loaded[0].acts_itself else dirs[0].eval)
    paths = write_report(target, records, axis_layout(env_id, names), env_id=env_id, meta=meta,
                         style=report_style(horizons, loaded[0].curve))
    if breakdown:
        tables: dict[str, Any] = {}
        for label, run in zip(run_labels(dirs, runs), loaded):
            model_device = next(run.model.parameters()).device
            with torch.random.fork_rng(devices=[model_device] if model_device.type == "cuda" else []):
                torch.manual_seed(seed)
                tables[label] = {split: cell_breakdown(run.model, episodes, context=context, horizons=horizons,
                                                       batch_size=batch_size)
                                 for split, episodes in played[run.behaviour_key(behaviour)].items()}
        paths["breakdown_json"] = Path(target) / "breakdown.json"
        paths["breakdown_json"].write_text(json.dumps(tables, indent=1, default=float))
        paths["breakdown_md"] = Path(target) / "breakdown.md"
        paths["breakdown_md"].write_text(breakdown_markdown(tables))
    return paths

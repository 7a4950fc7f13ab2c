"""``shiftgrid wm evaluate``: world models scored under shift, open-loop, on every split.

Each RUN is a ``shiftgrid wm train`` run or a Dreamer run (``shiftgrid train --algo dreamer``),
a run directory or a checkpoint in one; several are seeds of one configuration (same learner,
env, env kwargs, model family and behaviour), summarised together: IQM and 95% bootstrap
intervals across them, each seed's numbers kept. On every split a behaviour plays
``--episodes`` real episodes on evaluation seeds disjoint from training (episode ``i`` resets
with ``--seed`` + ``i``, 10^9 + that on ids without splits; see
:mod:`shiftgrid.agents.evaluation.world_model`): for a wm train run its behaviour policy (its
``policy`` and ``noise``), the same episodes for every run; for a Dreamer run its own agent
(its actor through ``predict``, most likely actions as ``shiftgrid evaluate`` plays it, or
sampled with ``--stochastic``), each run's own episodes on the same seeds. For a window at
every step the model filters ``--context`` real steps, then predicts open-loop from the real
actions, scored at each of ``--horizons``.

The report (results.json / results.md / long-form results.csv, ``shift_*.png``) is the agents'
report, written by the same code: it goes to ``--out DIR`` (required for several runs), or for one
run to ``<run dir>/eval`` (a Dreamer run: ``<run dir>/eval/world_model``, beside its agent's
report from ``shiftgrid evaluate``), and replaces a report already there, as ``shiftgrid
evaluate`` does.

Example:
    $ shiftgrid wm evaluate runs/wm-rssm-GoTo-v0-s0 --episodes 50
    $ shiftgrid wm evaluate runs/wm-rssm-GoTo/seed0 runs/wm-rssm-GoTo/seed1 --horizons 1,5,15 --out reports/wm-rssm-goto
    $ shiftgrid wm evaluate runs/dreamer-goto/runs/seed=0 runs/dreamer-goto/runs/seed=1 --out reports/dreamer-goto-wm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.scripts.cli import UserError

#: Where one Dreamer run's report goes inside its ``eval/`` folder (``eval/`` itself holds its agent's report).
DREAMER_REPORT_DIR = "world_model"
#: Config entries runs must share to be summarised together (seeds of one configuration).
SHARED = ("algo", "env", "env_kwargs", "hyperparams.model", "hyperparams.policy", "hyperparams.noise")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score world models on every shift split (open-loop prediction); write the report",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="a wm train or Dreamer run directory (or a checkpoint in one); several: seeds of one configuration")
    p.add_argument("--splits", default="all", help="'all' (id and every <axis>/near|far) or comma-separated split names")
    p.add_argument("--episodes", type=int, default=100, help="real episodes per split (default: 100)")
    p.add_argument("--context", type=int, default=5, help="real steps filtered before each prediction (default: 5)")
    p.add_argument("--horizons", default="1,5,15", help="open-loop steps scored, comma-separated (default: 1,5,15)")
    p.add_argument("--stride", type=int, default=1, help="steps between window starts in an episode (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed; also seeds the behaviour (default: 0)")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"),
                   help="which checkpoint of a run directory (default: latest)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default, one run only: <run dir>/eval; "
                   f"a Dreamer run: <run dir>/eval/{DREAMER_REPORT_DIR})")
    p.add_argument("--stochastic", action="store_true",
                   help="a Dreamer run's agent samples its actions (default: most likely, as shiftgrid evaluate plays it)")
    p.add_argument("--n-envs", type=int, default=8, help="environments stepped side by side (default: 8)")
    p.add_argument("--batch-size", type=int, default=1024, help="windows predicted at once on the device (default: 1024)")
    p.add_argument("--device", default="auto", help="torch device of the models: auto (CUDA when present), cpu, cuda")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run, command="wm evaluate")


def parse_horizons(text: str) -> list[int]:
    """``"1,5,15"`` -> ``[1, 5, 15]``; :class:`UserError` for anything else or a horizon below 1.

    Example:
        >>> parse_horizons("15, 1,5")
        [1, 5, 15]
    """
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--horizons {text!r} must be comma-separated integers >= 1, e.g. 1,5,15") from None
    if not values or min(values) < 1:
        raise UserError(f"--horizons {text!r} must be comma-separated integers >= 1, e.g. 1,5,15")
    return sorted(set(values))


def check_counts(args: argparse.Namespace) -> None:
    """Counts that must be positive, and several runs need ``--out``."""
    for flag in ("episodes", "context", "stride", "n_envs", "batch_size"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if len(args.runs) > 1 and args.out is None:
        raise UserError(f"{len(args.runs)} runs given: pass --out DIR for their joint report")


def _get(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = (value or {}).get(part)
    return value


def check_same_configuration(paths: Sequence[Path], configs: Sequence[dict[str, Any]]) -> None:
    """Several runs must share :data:`SHARED` (so they model one environment from the same behaviour's data)."""
    for key in SHARED:
        values = [_get(c, key) or ({} if key == "env_kwargs" else None) for c in configs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            listing = ", ".join(f"{p} ({key}={v})" for p, v in zip(paths, values))
            raise UserError(f"runs with a different {key} cannot be summarised together: {listing}")


def check_training_split(env_id: str, names: Sequence[str], paths: Sequence[Path], configs: Sequence[dict]) -> None:
    """A run trained on a held-out split cannot be scored on it: its levels there may be ones it was trained on."""
    from shiftgrid.envs.learner_env import has_splits

    if not has_splits(env_id):
        return
    from shiftgrid.envs import splits_for

    split_set = splits_for(env_id)
    for path, config in zip(paths, configs):
        trained = config.get("split")
        if trained and split_set[trained].held_out and split_set.canonical(trained) in names:
            others = ",".join(n for n in names if n != split_set.canonical(trained)) or "another split"
            raise UserError(f"{path} was trained on {trained}, so its levels there may be training levels; "
                            f"leave it out: --splits {others}")


def run(args: argparse.Namespace) -> int:
    from shiftgrid.scripts.evaluate_cmd import parse_splits

    horizons = parse_horizons(args.horizons)
    check_counts(args)
    splits = parse_splits(args.splits)
    missing = [str(p) for p in args.runs if not p.exists()]
    if missing:
        raise UserError(f"no such run directory or checkpoint: {', '.join(missing)}")
    paths = evaluate_runs(args.runs, splits=splits, horizons=horizons, episodes=args.episodes, context=args.context,
                          stride=args.stride, seed=args.seed, checkpoint=args.checkpoint, out=args.out,
                          n_envs=args.n_envs, batch_size=args.batch_size, device=args.device,
                          stochastic=args.stochastic, progress=not args.no_progress)
    print(paths["md"].read_text())
    print(f"report written to {paths['md'].parent}: {', '.join(p.name for p in paths.values())}")
    return 0


def evaluate_runs(runs: Sequence[Path], *, splits: str | list[str] = "all", horizons: Sequence[int] = (1, 5, 15),
                  episodes: int = 100, context: int = 5, stride: int = 1, seed: int = 0, checkpoint: str = "latest",
                  out: Path | None = None, n_envs: int = 8, batch_size: int = 1024, device: str = "auto",
                  stochastic: bool = False, progress: bool = True) -> dict[str, Path]:
    """Score the world models of ``runs`` (wm train or Dreamer runs) on every split and write their shift report;
    returns the files written."""
    import torch

    from shiftgrid.agents.evaluation.episodes import axis_layout, first_reset_seed, splits_to_evaluate
    from shiftgrid.agents.evaluation.report import RunRecord, write_report
    from shiftgrid.agents.evaluation.scoring import env_kwargs_note, training_split_note
    from shiftgrid.agents.evaluation.world_model import record_splits, report_style
    from shiftgrid.agents.model_based.run_model import load_scored_run
    from shiftgrid.scripts.evaluate_cmd import distinct_runs
    from shiftgrid.world_models.device import resolve_device
    from shiftgrid.world_models.scoring import CONTINUE_THRESHOLD, REWARD_THRESHOLD, score_splits

    torch.set_num_threads(1)  # small networks on a shared CPU, as in training and shiftgrid evaluate
    dirs = distinct_runs(runs)
    resolve_device(device)  # CUDA asked for but absent: one line before anything loads
    loaded = [load_scored_run(p, device=device, checkpoint=checkpoint) for p in runs]
    configs = [run.config.to_dict() for run in loaded]
    check_same_configuration(runs, configs)
    if stochastic and not loaded[0].acts_itself:
        raise UserError(f"--stochastic samples a Dreamer agent's actions; {runs[0]} is a wm train run, played by its "
                        f"own behaviour policy ({loaded[0].describe_behaviour()}); drop --stochastic")
    env_id, env_kwargs = configs[0]["env"], dict(configs[0].get("env_kwargs") or {})
    names = splits_to_evaluate(env_id, splits)
    check_training_split(env_id, names, runs, configs)
    reserved = [(first_reset_seed(env_id, c["eval"]["seed"]), first_reset_seed(env_id, c["eval"]["seed"])
                 + c["eval"]["episodes"] - 1) for c in configs if c["eval"]["freq"]]
    played: dict[str, dict[str, list]] = {}  # behaviour key -> its episodes: a wm train configuration's runs share them
    try:
        for run in loaded:
            if run.behaviour_key not in played:
                played[run.behaviour_key] = record_splits(run.behaviour(seed, deterministic=not stochastic), env_id, names,
                                                          episodes, seed, env_kwargs=env_kwargs, n_envs=n_envs,
                                                          reserved=reserved, progress=progress)
    except ValueError as e:  # evaluation seeds that overlap validation seeds
        raise UserError(str(e)) from None
    labels = [rd.root.name for rd in dirs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in runs]
    records = []
    for label, rd, run, c in zip(labels, dirs, loaded, configs):
        scores = score_splits(run.model, played[run.behaviour_key], context=context, horizons=horizons, stride=stride,
                              batch_size=batch_size, seed=seed, progress=progress)
        training = {"steps": run.steps, "checkpoint": {"file": f"{run.file.parent.name}/{run.file.name}", "steps": run.steps,
                                                       "chosen": f"the run's {checkpoint} checkpoint"}}
        records.append(RunRecord(label, c.get("seed"), {}, c, rd.tb if rd.tb.is_dir() else None, training, scores))
    shared = len(played) == 1
    first = first_reset_seed(env_id, seed)

    def windows(record: RunRecord) -> str:
        return ", ".join(f"{split} " + "/".join(f"{record.metrics[split][f'windows@{k}']:.0f}" for k in horizons)
                         for split in names)

    meta = {
        "world model": ", ".join(sorted({run.family for run in loaded})),
        "behaviour": loaded[0].describe_behaviour(not stochastic, "the run's" if shared else "each run's"),
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
    target = out if out is not None else (dirs[0].eval / DREAMER_REPORT_DIR if loaded[0].acts_itself else dirs[0].eval)
    return write_report(target, records, axis_layout(env_id, names), env_id=env_id, meta=meta,
                        style=report_style(horizons, loaded[0].curve))

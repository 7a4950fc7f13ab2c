"""``shiftgrid evaluate``: evaluate trained runs on every shift split and write the shift report.

One path is one run (a run directory or a checkpoint in it); several paths are several seeds
of one configuration, summarized together (IQM and 95% bootstrap intervals across them). The
report (results.json/.csv/.md and plots) goes to ``<run dir>/eval`` for one run, or to
``--out DIR`` (required for several runs). Evaluation starts at reset seed 0; the evaluations
during training (which chose ``best.pt``) used their own validation seeds, so the report never
scores a checkpoint on the levels it was selected on.

Example:
    $ shiftgrid evaluate runs/goto-ppo-s0 --episodes 200
    $ shiftgrid evaluate runs/goto-ppo-s0 runs/goto-ppo-s1 runs/goto-ppo-s2 --out reports/goto-ppo
    $ shiftgrid evaluate runs/goto-ppo-s0/checkpoints/latest.pt --splits id,size/near,size/far --stochastic
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.agents.envs import has_splits
from shiftgrid.agents.evaluation import axis_layout, evaluate_splits, first_reset_seed, splits_to_evaluate
from shiftgrid.agents.report import RunRecord, write_report
from shiftgrid.agents.rundir import RunDir
from shiftgrid.scripts.cli import UserError

#: Config keys that do not change what a run learns (ignored when telling whether two runs are the same).
_INCIDENTAL = ("run_dir", "progress", "device", "vec_env", "torch_threads", "version")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate runs on every shift split; write results.json/.csv/.md and plots",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="one run, or several seeds of one configuration")
    p.add_argument("--splits", default="all", help="'all' (id and every <axis>/near|far) or comma-separated split names")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per split (BabyAI's protocol: 1000)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed (episode i resets with seed + i)")
    p.add_argument("--out", type=Path, default=None, help="report folder; when None, <run dir>/eval (one run only)")
    p.add_argument("--n-envs", type=int, default=4, help="environments stepped side by side")
    p.add_argument("--device", default="auto", help="torch device for the agents: auto, cpu, cuda")
    p.add_argument("--stochastic", action="store_true",
                   help="sample actions from the policy (seeded) instead of taking the most likely one")
    p.set_defaults(func=run)


def load(path: Path, device: str) -> tuple[Any, dict, dict]:
    """``(agent, config, checkpoint description)`` of a run directory or checkpoint (see :func:`describe_checkpoint`)."""
    import torch

    from shiftgrid.agents.checkpoint import build_learner, find_checkpoint, read_checkpoint

    torch.set_num_threads(1)  # small networks: extra threads only slow each forward pass (as in training)
    file = find_checkpoint(path)
    checkpoint = read_checkpoint(file)
    return build_learner(checkpoint, device), checkpoint.config, describe_checkpoint(file, checkpoint)


def describe_checkpoint(file: Path, checkpoint: Any) -> dict[str, Any]:
    """Which checkpoint was evaluated (file, steps) and how it was chosen."""
    best = checkpoint.best if file.name == "best.pt" else None
    if best is None:
        chosen = "the run's last checkpoint" if file.name == "latest.pt" else "given as a file"
    else:
        seeds = best.get("seeds")
        where = f" on validation seeds {seeds[0]}..{seeds[1]}" if seeds else ""
        n = len(checkpoint.history)
        count = f" of {n} evaluation{'s' * (n != 1)}" if n else ""
        chosen = f"best `{best['split']}` success ({best['success']:.3f}){where}{count}"
    return {"file": f"{file.parent.name}/{file.name}", "steps": checkpoint.num_timesteps, "chosen": chosen,
            "validation_seeds": None if best is None else best.get("seeds")}


def parse_splits(text: str) -> str | list[str]:
    """``all`` or the list of comma-separated names."""
    if text.strip() == "all":
        return "all"
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError(f"--splits {text!r} names no split; give 'all' or names such as id,size/near")
    return names


def check_arguments(paths: Sequence[Path], episodes: int, n_envs: int, out: Path | None) -> list[RunDir]:
    """Validate what can be checked before loading any agent; return the run directories."""
    if episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {episodes}")
    if n_envs < 1:
        raise UserError(f"--n-envs must be >= 1, got {n_envs}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"no such run directory or checkpoint: {', '.join(missing)}")
    runs = [RunDir.of(p) for p in paths]
    seen: dict[Path, Path] = {}
    for path, rd in zip(paths, runs):
        if rd.root.resolve() in seen:
            raise UserError(f"{seen[rd.root.resolve()]} and {path} are the same run; several paths must be different seeds")
        seen[rd.root.resolve()] = path
    if len(paths) > 1 and out is None:
        raise UserError(f"{len(paths)} runs given: pass --out DIR for their joint report")
    return runs


def training_record(run: RunDir, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What the report says of a run's training: the evaluated checkpoint (file, steps, choice) and the met target."""
    return {"steps": checkpoint.get("steps"), "checkpoint": checkpoint,
            "target": json.loads(run.target.read_text()) if run.target.is_file() else None}


def check_same_configuration(paths: Sequence[Path], configs: list[dict]) -> None:
    """Several runs must be seeds of one configuration: same environment and algorithm."""
    for key in ("env", "algo"):
        values = {str(c.get(key)) for c in configs}
        if len(values) > 1:
            listing = ", ".join(f"{p} ({key}={c.get(key)})" for p, c in zip(paths, configs))
            raise UserError(f"runs of different {key}s cannot be summarized together: {listing}")


def not_independent(paths: Sequence[Path], configs: list[dict]) -> list[str]:
    """Warnings for runs with the same seed and config: they are repeats, not independent seeds."""
    key = [json.dumps({k: v for k, v in c.items() if k not in _INCIDENTAL}, sort_keys=True, default=str) for c in configs]
    out = []
    for i in range(len(configs)):
        for j in range(i + 1, len(configs)):
            if key[i] == key[j]:
                out.append(f"{paths[i]} and {paths[j]} have the same seed ({configs[i].get('seed')}) and config: "
                           "they are not independent seeds")
    return out


def training_split_note(env_id: str, split: str | None) -> str:
    """The training split, and whether it is a held-out one (then scores on it are not a shift)."""
    if not has_splits(env_id):
        return "(no splits)"
    from shiftgrid.envs import splits_for

    name = split or "train"
    if splits_for(env_id)[name].held_out:
        return f"{name} (a held-out split: for this run it is the training distribution, not a shift)"
    return name


@dataclass
class Candidate:
    """One agent to score: anything with SB3's ``predict``, and what is known of how it was trained.

    ``config`` holds at least ``env`` (and, when known, ``seed``, ``algo``, ``split``); ``training``
    is the report's :attr:`~shiftgrid.agents.report.RunRecord.training`.
    """

    name: str
    agent: Any
    config: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    tb_dir: Path | None = None


def evaluate_agents(candidates: Sequence[Candidate], out: Path, *, splits: str | list[str] = "all", episodes: int = 1000,
                    seed: int = 0, n_envs: int = 4, stochastic: bool = False, notes: Sequence[str] = ()) -> dict[str, Path]:
    """Score agents (seeds of one configuration) on every split and write the shift report into ``out``."""
    env_id = candidates[0].config["env"]
    names = splits_to_evaluate(env_id, splits)
    records = [RunRecord(c.name, c.config.get("seed"), evaluate_splits(c.agent, env_id, names, episodes, seed, n_envs=n_envs,
                                                                      deterministic=not stochastic),
                         dict(c.config), c.tb_dir, c.training) for c in candidates]
    first = first_reset_seed(env_id, seed)
    meta: dict[str, Any] = {
        "algorithm": candidates[0].config.get("algo"),
        "training split": training_split_note(env_id, candidates[0].config.get("split")),
        "episodes per split": episodes,
        "actions": "sampled from the policy" if stochastic else "most likely (deterministic)",
        "evaluation reset seeds": f"{first}..{first + episodes - 1} on every split",
    }
    overlap = [f"{c.name} (seeds {s[0]}..{s[1]})" for c in candidates
               if (s := (c.training.get("checkpoint") or {}).get("validation_seeds")) and s[0] <= first + episodes - 1 and first <= s[1]]
    if overlap:
        meta["warning"] = (f"these evaluation seeds overlap the seeds the checkpoint was chosen on: {', '.join(overlap)}; "
                           "pass --seed past them for an unbiased score")
    if notes:
        meta["warning: not independent"] = "; ".join(notes)
    return write_report(out, records, axis_layout(env_id, names), env_id=env_id, meta=meta)


def evaluate_runs(paths: Sequence[Path], *, splits: str | list[str] = "all", episodes: int = 1000, seed: int = 0,
                  out: Path | None = None, n_envs: int = 4, device: str = "auto", stochastic: bool = False) -> dict[str, Path]:
    """Evaluate the runs (or checkpoints) at ``paths`` and write their shift report; returns the files written."""
    paths = [Path(p) for p in paths]
    runs = check_arguments(paths, episodes, n_envs, out)
    loaded = [load(p, device) for p in paths]
    configs = [config for _, config, _ in loaded]
    check_same_configuration(paths, configs)
    splits_to_evaluate(configs[0]["env"], splits)  # bad split names fail before any episode runs
    labels = [rd.root.name for rd in runs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in paths]
    notes = not_independent(paths, configs)
    for note in notes:
        print(f"shiftgrid evaluate: warning: {note}", file=sys.stderr)
    candidates = [Candidate(label, agent, config, training_record(rd, checkpoint), rd.tb if rd.tb.is_dir() else None)
                  for label, rd, (agent, config, checkpoint) in zip(labels, runs, loaded)]
    return evaluate_agents(candidates, out if out is not None else runs[0].eval, splits=splits, episodes=episodes, seed=seed,
                           n_envs=n_envs, stochastic=stochastic, notes=notes)


def run(args: argparse.Namespace) -> int:
    paths = evaluate_runs(args.paths, splits=parse_splits(args.splits), episodes=args.episodes, seed=args.seed, out=args.out,
                          n_envs=args.n_envs, device=args.device, stochastic=args.stochastic)
    print(paths["md"].read_text())
    print(f"report written to {paths['md'].parent}: {', '.join(p.name for p in paths.values())}")
    return 0

"""``shiftgrid evaluate``: evaluate trained runs on every shift split and write the shift report.

One path is one run (a run directory or a checkpoint in it); several paths are several seeds
of one configuration, summarized together (IQM and 95% bootstrap intervals across them). The
report (results.json/.csv/.md and plots) goes to ``<run dir>/eval`` for one run, or to
``--out DIR`` (required for several runs).

Example:
    $ shiftgrid evaluate runs/goto-ppo-s0 --episodes 200
    $ shiftgrid evaluate runs/goto-ppo-s0 runs/goto-ppo-s1 runs/goto-ppo-s2 --out reports/goto-ppo
    $ shiftgrid evaluate runs/goto-ppo-s0/checkpoints/latest.pt --splits id,size/near,size/far --stochastic
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shiftgrid.agents.config import TARGET_FILE
from shiftgrid.agents.envs import has_splits
from shiftgrid.agents.evaluation import axis_layout, evaluate_splits, first_reset_seed, splits_to_evaluate
from shiftgrid.agents.report import RunRecord, write_report
from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate runs on every shift split; write results.json/.csv/.md and plots")
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="one run, or several seeds of one configuration")
    p.add_argument("--splits", default="all", help="'all' (id and every <axis>/near|far) or comma-separated split names")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per split (BabyAI's protocol: 1000)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed (episode i resets with seed + i)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <run dir>/eval for one run)")
    p.add_argument("--n-envs", type=int, default=4, help="environments stepped side by side")
    p.add_argument("--device", default="auto", help="torch device for the agents: auto, cpu, cuda")
    p.add_argument("--stochastic", action="store_true",
                   help="sample actions from the policy (seeded) instead of taking the most likely one")
    p.set_defaults(func=run)


def load(path: Path, device: str) -> tuple[Any, dict]:
    """``(agent, config)`` of a run directory or checkpoint (see :mod:`shiftgrid.agents.checkpoint`)."""
    import torch

    from shiftgrid.agents.checkpoint import load_agent

    torch.set_num_threads(1)  # small networks: extra threads only slow each forward pass (as in training)
    return load_agent(path, device=device)


def run_dir_of(path: Path) -> Path:
    """The run directory of a run directory or of a checkpoint file (``<run>/checkpoints/x.pt`` -> ``<run>``)."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def parse_splits(text: str) -> str | list[str]:
    """``all`` or the list of comma-separated names."""
    if text.strip() == "all":
        return "all"
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError(f"--splits {text!r} names no split; give 'all' or names such as id,size/near")
    return names


def check_arguments(args: argparse.Namespace) -> list[Path]:
    """Validate what can be checked before loading any agent; return the run directories."""
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.n_envs < 1:
        raise UserError(f"--n-envs must be >= 1, got {args.n_envs}")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UserError(f"no such run directory or checkpoint: {', '.join(missing)}")
    run_dirs = [run_dir_of(p) for p in args.paths]
    seen: dict[Path, Path] = {}
    for path, rd in zip(args.paths, run_dirs):
        if rd.resolve() in seen:
            raise UserError(f"{seen[rd.resolve()]} and {path} are the same run; several paths must be different seeds")
        seen[rd.resolve()] = path
    if len(args.paths) > 1 and args.out is None:
        raise UserError(f"{len(args.paths)} runs given: pass --out DIR for their joint report")
    return run_dirs


def training_record(run_dir: Path, agent: Any) -> dict[str, Any]:
    """What the report says of a run's training: checkpoint steps and the met target (``target.json``)."""
    target_file = run_dir / TARGET_FILE
    steps = getattr(agent, "num_timesteps", None)
    return {"steps": None if steps is None else int(steps),
            "target": json.loads(target_file.read_text()) if target_file.is_file() else None}


def check_same_configuration(paths: list[Path], configs: list[dict]) -> None:
    """Several runs must be seeds of one configuration: same environment and algorithm."""
    for key in ("env", "algo"):
        values = {str(c.get(key)) for c in configs}
        if len(values) > 1:
            listing = ", ".join(f"{p} ({key}={c.get(key)})" for p, c in zip(paths, configs))
            raise UserError(f"runs of different {key}s cannot be summarized together: {listing}")


def run(args: argparse.Namespace) -> int:
    run_dirs = check_arguments(args)
    splits = parse_splits(args.splits)
    loaded = [load(p, args.device) for p in args.paths]
    configs = [config for _, config in loaded]
    check_same_configuration(args.paths, configs)
    env_id = configs[0]["env"]
    names = splits_to_evaluate(env_id, splits)
    labels = [rd.name for rd in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in args.paths]
    records = []
    for label, rd, (agent, config) in zip(labels, run_dirs, loaded):
        results = evaluate_splits(agent, env_id, names, args.episodes, args.seed, n_envs=args.n_envs,
                                  deterministic=not args.stochastic)
        tb = rd / "tb"
        records.append(RunRecord(label, config.get("seed"), results, dict(config), tb if tb.is_dir() else None,
                                 training_record(rd, agent)))
    first = first_reset_seed(env_id, args.seed)
    meta = {
        "algorithm": configs[0].get("algo"),
        "training split": configs[0].get("split") or ("train" if has_splits(env_id) else "(no splits)"),
        "episodes per split": args.episodes,
        "actions": "sampled from the policy" if args.stochastic else "most likely (deterministic)",
        "evaluation reset seeds": f"{first}..{first + args.episodes - 1} on every split",
    }
    out = args.out if args.out is not None else run_dirs[0] / "eval"
    paths = write_report(out, records, axis_layout(env_id, names), env_id=env_id, meta=meta)
    print(paths["md"].read_text())
    print(f"report written to {out}: {', '.join(p.name for p in paths.values())}")
    return 0

"""``shiftgrid main``: the suite's main job (``make run``).

Trains the default learner (PPO with the BabyAI-style FiLM extractor) on the default family's
training split on the CPU or GPU, evaluates it on every held-out split, and prints where the
shift report and the TensorBoard logs are. It is ``shiftgrid train`` followed by
``shiftgrid evaluate``, with small defaults so it finishes in a few minutes on a laptop CPU.

Example:
    $ shiftgrid main                                  # PPO on GoTo, 100k steps, 1 seed
    $ shiftgrid main --env shiftgrid/Pickup-v1 --seeds 0,1,2 --steps 300000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("main", help="the main job: train PPO, evaluate on every split, print the report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--env", default="shiftgrid/GoTo-v1", help="environment id")
    p.add_argument("--algo", default="ppo", help="learner (see shiftgrid train --help)")
    p.add_argument("--steps", type=int, default=100_000, help="training steps per seed (this flag's default, not the presets')")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per split")
    p.add_argument("--run-dir", type=Path, default=None, help="run directory; when None, runs/main-<algo>-<env>-<time>")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shiftgrid.agents.reports.runs import evaluate_runs
    from shiftgrid.agents.run.presets import layered
    from shiftgrid.agents.run.rundir import RunDir, default_run_dir
    from shiftgrid.scripts.train_cmd import new_runs, parse_seeds, train_all

    if args.steps < 1 or args.episodes < 1:
        raise UserError(f"--steps and --episodes must be >= 1, got {args.steps} and {args.episodes}")
    seeds = parse_seeds(args.seeds)
    run = RunDir(args.run_dir) if args.run_dir else default_run_dir(args.algo, args.env, "main-")
    print(f"== training {args.algo} on {args.env} for {args.steps} steps, seeds {', '.join(map(str, seeds))} -> {run.root}")
    chosen = {"algo": args.algo, "env": args.env, "steps": args.steps, "device": args.device, "run_dir": str(run.root)}
    code = train_all(new_runs(layered({}, chosen), seeds))
    if code:
        return code
    runs = [run.root] if len(seeds) == 1 else [run.seed(s).root for s in seeds]
    report = run.eval if len(seeds) == 1 else run.root / "report"
    print(f"== evaluating on every split of {args.env}, {args.episodes} episodes each")
    evaluate_runs(runs, episodes=args.episodes, device=args.device, out=report)
    print(f"\nshift report: {report / 'results.md'} (also results.json, results.csv and PNG plots)")
    print(f"TensorBoard:  tensorboard --logdir {run.root}")
    return 0

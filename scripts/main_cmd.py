"""``shiftgrid main``: the suite's main job (``make run``).

Trains the default learner (PPO with the BabyAI-style FiLM extractor) on the default family's
training split on the CPU or GPU, evaluates it on every held-out split, and prints where the
shift report and the TensorBoard logs are. It is ``shiftgrid train`` followed by
``shiftgrid evaluate``, with small defaults so it finishes in a few minutes on a laptop CPU.

Example:
    $ shiftgrid main                                  # PPO on GoTo, 100k steps, 1 seed
    $ shiftgrid main --env shiftgrid/Pickup-v0 --seeds 0,1,2 --steps 300000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("main", help="the main job: train PPO, evaluate on every split, print the report")
    p.add_argument("--env", default="shiftgrid/GoTo-v0", help="environment id (default: shiftgrid/GoTo-v0)")
    p.add_argument("--algo", default="ppo", help="algorithm (default: ppo)")
    p.add_argument("--steps", type=int, default=100_000, help="training steps per seed (default: 100000)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each (default: 0)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per split (default: 100)")
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/main-<algo>-<env>-<time>")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shiftgrid.scripts.cli import main as cli

    if args.steps < 1 or args.episodes < 1:
        raise UserError(f"--steps and --episodes must be >= 1, got {args.steps} and {args.episodes}")
    seeds = [s.strip() for s in args.seeds.split(",") if s.strip()]
    name = args.env.split("/")[-1]
    run_dir = args.run_dir or Path("runs") / f"main-{args.algo}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"== training {args.algo} on {args.env} for {args.steps} steps, seeds {', '.join(seeds)} -> {run_dir}")
    code = cli(["train", "--algo", args.algo, "--env", args.env, "--steps", str(args.steps), "--seed", ",".join(seeds),
                "--device", args.device, "--run-dir", str(run_dir)])
    if code:
        return code
    runs = [run_dir] if len(seeds) == 1 else [run_dir / f"seed{s}" for s in seeds]
    report = run_dir / "eval" if len(seeds) == 1 else run_dir / "report"
    print(f"== evaluating on every split of {args.env}, {args.episodes} episodes each")
    code = cli(["evaluate", *map(str, runs), "--episodes", str(args.episodes), "--device", args.device,
                "--out", str(report)])
    if code:
        return code
    print(f"\nshift report: {report / 'results.md'} (also results.json, results.csv and PNG plots)")
    print(f"TensorBoard:  tensorboard --logdir {run_dir}")
    return 0

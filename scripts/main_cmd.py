"""``shiftgrid main``: the suite's main job (``make run``).

Trains the default learner (tensor-ppo: PPO on the tensor engine, with the cheap mission-reading
network) on the default family's training split on the CPU or GPU, evaluates it on 1,000 episodes
of every held-out split (on the engine, every episode of a split at once), and prints where the
shift report and the TensorBoard logs are, whether training reached its success target (the
preset's: 90% over 100 training episodes), and how long training and evaluation took. It is
``shiftgrid train`` followed by ``shiftgrid evaluate``.

Example:
    $ shiftgrid main                                  # tensor-ppo on GoTo, the preset's 200k steps, 1 seed
    $ shiftgrid main --algo ppo --steps 100000 --episodes 100
    $ shiftgrid main --env shiftgrid/Pickup-v1 --seeds 0,1,2 --steps 300000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from shiftgrid.agents.evaluation.backends import BACKENDS
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("main", help="the main job: train tensor-ppo, evaluate on every split, print the report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--env", default="shiftgrid/GoTo-v1", help="environment id")
    p.add_argument("--algo", default="tensor-ppo", help="learner (see shiftgrid train --help)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per seed; when None, the preset's (200,000 for tensor-ppo on GoTo)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    p.add_argument("--episodes", type=int, default=1000, help="evaluation episodes per split (BabyAI's protocol: 1000)")
    p.add_argument("--reference-episodes", type=int, default=100, metavar="N",
                   help="how many of the same levels the references (uniform random, the best constant action) play per "
                        "split: chance-level figures, whose 95%% interval is about +-0.05 at 100 (--episodes for all)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="where evaluation episodes run: the tensor engine, the minigrid env, or auto (the engine wherever "
                        "it plays a split as the minigrid env would)")
    p.add_argument("--run-dir", type=Path, default=None, help="run directory; when None, runs/main-<algo>-<env>-<time>")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shiftgrid.agents.reports.runs import evaluate_runs
    from shiftgrid.agents.run.presets import layered
    from shiftgrid.agents.run.rundir import default_run_dir
    from shiftgrid.scripts.train_cmd import new_runs, parse_seeds, train_all

    if (args.steps is not None and args.steps < 1) or args.episodes < 1:
        raise UserError(f"--steps and --episodes must be >= 1, got {args.steps} and {args.episodes}")
    if not 0 <= args.reference_episodes:
        raise UserError(f"--reference-episodes must be >= 0 (0: no references), got {args.reference_episodes}")
    reference_episodes = min(args.reference_episodes, args.episodes)
    started = time.perf_counter()
    if args.backend == "engine":  # refuse before training, not after
        from shiftgrid.agents.evaluation.engine_episodes import split_backend
        from shiftgrid.agents.evaluation.episodes import splits_to_evaluate
        from shiftgrid.envs.learner_env import has_splits

        for split in splits_to_evaluate(args.env):
            split_backend(None, args.env, split if has_splits(args.env) else None, "engine")
    seeds = parse_seeds(args.seeds)
    run = RunDir(args.run_dir) if args.run_dir else default_run_dir(args.algo, args.env, "main-")
    chosen = {"algo": args.algo, "env": args.env, "device": args.device, "run_dir": str(run.root),
              **({"steps": args.steps} if args.steps is not None else {})}
    configs = new_runs(layered({}, chosen), seeds)
    steps = configs[0][0].steps
    print(f"== training {args.algo} on {args.env} for {steps} steps, seeds {', '.join(map(str, seeds))} -> {run.root}")
    code = train_all(configs)
    if code:
        return code
    runs = [run.root] if len(seeds) == 1 else [run.seed(s).root for s in seeds]
    trained = time.perf_counter()
    report = run.eval if len(seeds) == 1 else run.root / "report"
    print(f"== evaluating on every split of {args.env}, {args.episodes} episodes each "
          f"(references: {reference_episodes} of the same levels)")
    evaluate_runs(runs, episodes=args.episodes, device=args.device, out=report, backend=args.backend,
                  reference_episodes=reference_episodes)
    done = time.perf_counter()
    print(f"\nshift report: {report / 'results.md'} (also results.json, results.csv and PNG plots)")
    print(f"TensorBoard:  tensorboard --logdir {run.root}")
    for line in target_lines(configs[0][0], runs):
        print(line)
    print(timing_line(trained - started, done - trained))
    return 0


def target_lines(config: Any, runs: list[Path]) -> list[str]:
    """Whether each run met its training-success target (``target.json``), where the config sets one."""
    if config.target.success is None:
        return []
    want = f"{config.target.success:.0%} training success over {config.target.episodes} episodes"
    out = []
    for root in runs:
        met = RunDir(root).target
        if met.is_file():
            t = json.loads(met.read_text())
            out.append(f"target:       {want} reached at step {t['steps']} ({t['wall_s']} s) in {root.name}")
        else:
            out.append(f"target:       {want} NOT reached in {root.name}")
    return out


def timing_line(training_s: float, evaluation_s: float) -> str:
    """How long training and evaluation took, and evaluation's share of the two.

    Example:
        >>> timing_line(90.0, 10.0)
        'time:         training 90.0 s, evaluation 10.0 s (10.0% of 100.0 s)'
    """
    total = training_s + evaluation_s
    return (f"time:         training {training_s:.1f} s, evaluation {evaluation_s:.1f} s "
            f"({100 * evaluation_s / max(total, 1e-9):.1f}% of {total:.1f} s)")

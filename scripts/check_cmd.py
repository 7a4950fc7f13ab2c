"""``shiftgrid check``: sample levels from every split, solve each with the oracle, replay the plan.

A quick health check of a family (built-in or your own): every level must be solvable and
the environment must agree with the oracle (success on the plan's last action, reward equal
to the optimal return). On slippery splits the open-loop plan is replayed with the slip off.

Example:
    $ shiftgrid check shiftgrid/GoTo-v0 --levels 50
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import shiftgrid.envs
from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="solve and replay levels of every split with the oracle")
    p.add_argument("env", nargs="*", help="shiftgrid ids (default: every registered one)")
    p.add_argument("--levels", type=int, default=20, help="levels per split")
    p.set_defaults(func=run)


def check_split(env_id: str, split: str, levels: int) -> dict:
    """Replay the oracle's plan on ``levels`` levels of ``split``; return counts and timings."""
    env = gym.make(env_id, split=split)
    ok, steps, start = 0, [], time.perf_counter()
    for i in range(levels):
        _, info = env.reset(seed=i)
        plan = env.unwrapped.optimal_actions
        steps.append(info["optimal_steps"])
        # The plan is open-loop: on a slippery split it is replayed with the slip off (the
        # oracle's optimal_steps there is the expected count of the closed-loop optimum).
        deterministic = env.unwrapped.slip == 0
        env.unwrapped.slip = 0.0
        for t, a in enumerate(plan):
            _, reward, term, trunc, step_info = env.step(a)
            if term or trunc:
                break
        ok += bool(step_info["success"]) and (not deterministic or (t == len(plan) - 1 and np.isclose(reward, info["optimal_return"])))
    return {"levels": levels, "agree": ok, "mean_optimal_steps": float(np.mean(steps)),
            "ms_per_level": 1000 * (time.perf_counter() - start) / levels}


def run(args: argparse.Namespace) -> int:
    ids = args.env or shiftgrid.envs.registered_ids("shiftgrid")
    if args.levels < 1:
        raise UserError(f"--levels must be >= 1, got {args.levels}")
    print(f"{'environment':<24} {'split':<20} {'oracle plans that succeed':>26} {'mean optimal steps':>19} {'ms/level':>9}")
    failures = 0
    for env_id in ids:
        splits = shiftgrid.envs.splits_for(env_id)
        for split in tqdm(["train", *splits.test_splits()], desc=env_id, leave=False):  # <axis>/id is id
            r = check_split(env_id, split, args.levels)
            failures += r["levels"] - r["agree"]
            tqdm.write(f"{env_id:<24} {split:<20} {r['agree']:>20}/{r['levels']:<5} {r['mean_optimal_steps']:>19.1f} {r['ms_per_level']:>9.1f}")
    print("all oracle plans succeeded" if failures == 0 else f"{failures} oracle plans did not succeed")
    return 0 if failures == 0 else 1

"""``shiftgrid check``: sample levels from every split, solve each with the oracle, replay the plan.

A quick health check of a family (built-in or your own): every level must be solvable and
the environment must agree with the oracle (success on the plan's last action, reward equal
to the optimal return). On slippery splits the open-loop plan is replayed with the slip off.

With ``--bot N``, minigrid's ``BabyAIBot`` also plays ``N`` levels of every split where its
instructions apply: no episode may return more than the oracle's ``optimal_return``.

Example:
    $ shiftgrid check shiftgrid/GoTo-v1 --levels 50
    $ shiftgrid check shiftgrid/Pickup-v1 --levels 5 --bot 1000
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import shiftgrid.envs
from shiftgrid.scripts.cli import UserError

if TYPE_CHECKING:
    from shiftgrid.envs.env import ShiftGridEnv


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="solve and replay levels of every split with the oracle")
    p.add_argument("env", nargs="*", help="shiftgrid ids (default: every registered one)")
    p.add_argument("--levels", type=int, default=20, help="levels per split")
    p.add_argument("--bot", type=int, default=0, metavar="N",
                   help="also play BabyAIBot on N levels per split (where it applies): it must never beat optimal_return")
    p.set_defaults(func=run)


def check_split(env_id: str, split: str, levels: int) -> dict:
    """Replay the oracle's plan on ``levels`` levels of ``split``; return counts and timings."""
    env = gym.make(env_id, split=split)
    ok, steps, inexact, start = 0, [], 0, time.perf_counter()
    for i in range(levels):
        _, info = env.reset(seed=i)
        u = cast("ShiftGridEnv", env.unwrapped)
        plan = u.optimal_actions
        steps.append(info["optimal_steps"])
        inexact += not info["optimal_exact"]
        # The plan is open-loop: on a slippery split it is replayed with the slip off (the
        # oracle's optimal_steps there is the expected count of the closed-loop optimum).
        deterministic = u.slip == 0
        u.slip = 0.0
        for t, a in enumerate(plan):
            _, reward, term, trunc, step_info = env.step(a)
            if term or trunc:
                break
        ok += bool(step_info["success"]) and (not deterministic or (t == len(plan) - 1 and np.isclose(float(reward), info["optimal_return"])))
    return {"levels": levels, "agree": ok, "mean_optimal_steps": float(np.mean(steps)), "inexact": inexact,
            "ms_per_level": 1000 * (time.perf_counter() - start) / levels}


def bot_split(env_id: str, split: str, levels: int) -> dict:
    """Play ``BabyAIBot`` on ``levels`` levels of ``split``: episodes played, bot errors, and the seeds where it beat the oracle."""
    from minigrid.utils.baby_ai_bot import BabyAIBot

    env = gym.make(env_id, split=split)
    u = env.unwrapped
    played, errors, beaten, start = 0, 0, [], time.perf_counter()
    for i in range(levels):
        _, info = env.reset(seed=i)
        if getattr(u, "_instrs", None) is None:  # no BabyAI instruction for this mission
            continue
        bot, ret, done = BabyAIBot(u), 0.0, False
        try:
            while not done:
                _, reward, term, trunc, _ = env.step(bot.replan())
                ret, done = ret + float(reward), term or trunc
        except AssertionError:  # the bot's own planner gives up on some levels (minigrid asserts)
            errors += 1
            continue
        played += 1
        if ret > info["optimal_return"] + 1e-9:
            beaten.append(i)
    env.close()
    return {"played": played, "errors": errors, "beaten": beaten, "seconds": time.perf_counter() - start}


def run(args: argparse.Namespace) -> int:
    ids = args.env or shiftgrid.envs.registered_ids("shiftgrid")
    if args.levels < 1:
        raise UserError(f"--levels must be >= 1, got {args.levels}")
    if args.bot < 0:
        raise UserError(f"--bot must be >= 0 (0: no bot), got {args.bot}")
    print(f"{'environment':<24} {'split':<20} {'oracle plans that succeed':>26} {'mean optimal steps':>19} {'inexact':>8} {'ms/level':>9}")
    failures = 0
    for env_id in ids:
        splits = shiftgrid.envs.splits_for(env_id)
        for split in tqdm(["train", *splits.test_splits()], desc=env_id, leave=False):  # <axis>/id is id
            r = check_split(env_id, split, args.levels)
            failures += r["levels"] - r["agree"]
            tqdm.write(f"{env_id:<24} {split:<20} {r['agree']:>20}/{r['levels']:<5} {r['mean_optimal_steps']:>19.1f} {r['inexact']:>8} {r['ms_per_level']:>9.1f}")
    print("all oracle plans succeeded" if failures == 0 else f"{failures} oracle plans did not succeed")
    beaten = 0
    if args.bot:
        print(f"\n{'environment':<24} {'split':<20} {'BabyAIBot episodes':>19} {'bot errors':>11} {'return > optimal_return':>24} {'seconds':>8}")
        for env_id in ids:
            for split in ["train", *shiftgrid.envs.splits_for(env_id).test_splits()]:
                b = bot_split(env_id, split, args.bot)
                if b["played"] or b["errors"]:
                    beaten += len(b["beaten"])
                    print(f"{env_id:<24} {split:<20} {b['played']:>19} {b['errors']:>11} {len(b['beaten']):>24} {b['seconds']:>8.1f}", flush=True)
        print("BabyAIBot never beat the oracle" if beaten == 0 else f"BabyAIBot beat the oracle in {beaten} episodes")
    return 0 if failures == 0 and beaten == 0 else 1

"""``shiftgrid benchmark envs``: reset+step throughput of each family next to a comparable minigrid env.

Both are driven by the same random policy in the same process, interleaved, and the median
of ``--repeats`` is reported with the ratio shiftgrid / minigrid. The oracle is on (as in
training), so the figure includes computing every level's optimal plan.

Example:
    $ shiftgrid benchmark envs --steps 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
from functools import partial

import gymnasium as gym
from tqdm import tqdm

import shiftgrid.envs
from shiftgrid.envs.throughput import REFERENCES, measure, measure_resets
from shiftgrid.scripts.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="print throughput figures (envs)")
    p.add_argument("what", choices=["envs"], help="what to benchmark")
    p.add_argument("--families", default="all", help="comma-separated family names, or 'all'")
    p.add_argument("--steps", type=int, default=20000, help="random-policy steps per measurement")
    p.add_argument("--resets", type=int, default=500, help="resets per reset-only measurement")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    p.add_argument("--split", default="train", help="split of the shiftgrid env to measure")
    p.set_defaults(func=run)


def _quiet_make(env_id: str) -> gym.Env:
    """Make a minigrid env whose resets print nothing (BabyAI levels print rejected samples)."""
    return _Quiet(gym.make(env_id))


class _Quiet(gym.Wrapper):
    def reset(self, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.reset(**kwargs)

    def step(self, action):
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.step(action)


def _families(arg: str) -> list[str]:
    known = [f.name for f in shiftgrid.envs.BUILTIN_FAMILIES]
    if arg == "all":
        return known
    names = [n.strip() for n in arg.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise UserError(f"unknown families {bad}; valid: {', '.join(known)}")
    return names


def run(args: argparse.Namespace) -> int:
    if args.steps < 100 or args.repeats < 1 or args.resets < 1:
        raise UserError(f"--steps must be >= 100 and --repeats, --resets >= 1; got {args.steps}, {args.repeats}, {args.resets}")
    families = _families(args.families)
    print(f"reset+step throughput, random policy, {args.steps} steps x {args.repeats} repeats (median), oracle on")
    header = f"{'family':<10} {'minigrid reference':<32} {'shiftgrid sps':>14} {'minigrid sps':>13} {'ratio':>6} {'shiftgrid resets/s':>19} {'minigrid resets/s':>18}"
    rows = []
    for name in tqdm(families, desc="families", leave=False):
        ours = partial(gym.make, f"shiftgrid/{name}-v0", split=args.split)
        ref = partial(_quiet_make, REFERENCES[name])
        a, b, ra, rb = [], [], [], []
        for r in range(args.repeats):
            a.append(measure(ours, args.steps, seed=r).steps_per_second)
            b.append(measure(ref, args.steps, seed=r).steps_per_second)
            ra.append(measure_resets(ours, args.resets, seed=r).resets_per_second)
            rb.append(measure_resets(ref, args.resets, seed=r).resets_per_second)
        sa, sb = statistics.median(a), statistics.median(b)
        rows.append(f"{name:<10} {REFERENCES[name]:<32} {sa:>14.0f} {sb:>13.0f} {sa / sb:>5.2f}x {statistics.median(ra):>19.0f} {statistics.median(rb):>18.0f}")
    print(header)
    print("\n".join(rows))
    return 0

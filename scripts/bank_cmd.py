"""``shiftgrid bank``: build a level bank (a split's levels as arrays, for the tensor engine), or describe one.

``bank build`` generates the first ``--count`` admissible levels of a split with the same
generators and sampler as the minigrid env (its seed range, hash bucket and oracle check),
using every core, with a progress bar, and saves them (default: the cache directory,
``$SHIFTGRID_CACHE/banks``); a bank already there is loaded instead. ``bank info`` prints what a
bank file holds. A bank of another splits version, or a corrupt file, is refused in one line.

Example:
    $ shiftgrid bank build --env shiftgrid/DoorKey-v1 --split train --count 100000
    $ shiftgrid bank build --env MiniGrid-DoorKey-8x8-v0 --count 10000 --out banks/doorkey.npz
    $ shiftgrid bank info banks/doorkey.npz
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from shiftgrid.scripts.cli import UserError

if TYPE_CHECKING:
    from shiftgrid.envs.engine.bank import Bank


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bank", help="build or describe a level bank (levels as arrays for the tensor engine)")
    p.add_argument("action", choices=["build", "info"], help="build: generate (or load) a bank; info: describe a bank file")
    p.add_argument("path", nargs="?", type=Path, help="info: the bank file")
    p.add_argument("--env", help="build: a shiftgrid id (shiftgrid/GoTo-v1) or a minigrid id the engine runs")
    p.add_argument("--split", default="train", help="build: the split (train, id, <axis>/near, ...); minigrid ids: train")
    p.add_argument("--count", type=int, default=10_000, help="build: levels in the bank")
    p.add_argument("--out", type=Path, default=None, help="build: where to save it (default: the cache directory)")
    p.add_argument("--workers", type=int, default=None, help="build: processes (default: every core)")
    p.add_argument("--rebuild", action="store_true", help="build: generate again even if the file exists")
    p.set_defaults(func=run)


def _describe(bank: Bank) -> str:
    meta = bank.meta
    what = f"{meta['env_id']} split {meta['split']}" + (f" (splits version {meta['splits_version']})" if "splits_version" in meta else "")
    size = os.path.getsize(meta["path"]) / 1e6 if meta.get("path") and os.path.exists(meta["path"]) else float("nan")
    steps = bank.rows["optimal_steps"]
    known = steps[steps == steps]
    lines = [f"{what}: {len(bank)} levels, canvas {meta['canvas'][0]}x{meta['canvas'][1]}, {size:.2f} MB at {meta.get('path')}"]
    if meta.get("loaded"):
        lines.append("already built: loaded, not generated again (--rebuild generates it again)")
    elif "seconds" in meta:
        lines.append(f"built in {meta['seconds']:.1f} s with {meta['workers']} workers; {meta.get('acceptance', float('nan')):.0%} of "
                     f"the seeds tried were admissible")
    if len(known):
        lines.append(f"optimal steps: mean {known.mean():.1f}, max {known.max():.0f}; exact on {bank.rows['optimal_exact'].mean():.1%}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from shiftgrid.envs.engine.bank import Bank, build_bank

    if args.action == "info":
        if args.path is None:
            raise UserError("bank info needs a bank file: shiftgrid bank info PATH")
        bank = Bank.load(args.path)
        bank.meta["path"] = str(args.path)
        print(_describe(bank))
        return 0
    if args.path is not None:
        raise UserError(f"bank build takes no PATH (got {args.path}); use --out PATH")
    if not args.env:
        raise UserError("bank build needs --env ID (a shiftgrid id such as shiftgrid/GoTo-v1, or a minigrid id the engine runs)")
    if args.count < 1:
        raise UserError(f"--count must be >= 1, got {args.count}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    bank = build_bank(args.env, args.split, args.count, out=args.out, workers=args.workers, cache=not args.rebuild)
    print(_describe(bank))
    return 0

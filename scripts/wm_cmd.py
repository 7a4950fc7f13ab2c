"""``shiftgrid wm``: world models, trained from any behaviour and scored under shift.

Subcommands live in ``shiftgrid.scripts.wm_<name>_cmd`` (each defines ``add_parser(subparsers)``);
none imports torch before it runs, so ``shiftgrid --help`` works on the base install.

Example:
    $ shiftgrid wm train --model rssm --env shiftgrid/GoTo-v1 --policy random --steps 20000 --preset small
    $ shiftgrid wm evaluate runs/wm-rssm-GoTo-v1-* --horizons 1,5,15
"""

from __future__ import annotations

import argparse
import importlib

#: ``shiftgrid wm`` subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = ("train", "evaluate")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("wm", help="train and evaluate world models (wm train, wm evaluate)")
    wm_sub = p.add_subparsers(dest="wm_command", metavar="SUBCOMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"shiftgrid.scripts.wm_{name}_cmd").add_parser(wm_sub)

"""``shiftgrid envs``: the table of families, axes and splits (the README's table comes from here).

Example:
    $ shiftgrid envs              # one row per environment
    $ shiftgrid envs --splits     # and every split with what it changes
"""

from __future__ import annotations

import argparse

import shiftgrid.envs
from shiftgrid.envs.shift.split import SplitSet


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list environment families, shift axes and splits")
    p.add_argument("--splits", action="store_true", help="also list every split and its factor changes")
    p.set_defaults(func=run)


def split_changes(splits: SplitSet, name: str) -> str:
    """The factors a split changes relative to ``train``, as ``k=v`` pairs."""
    train, split = splits["train"].factors, splits[name].factors
    changed = {k: v for k, v in split.items() if train.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "(training factors, held-out levels)"


def env_table(with_splits: bool = False) -> str:
    """Markdown table of registered shiftgrid environments (and optionally their splits)."""
    rows = ["| id | task | axes of shift (each: id / near / far) |", "|---|---|---|"]
    for env_id in shiftgrid.envs.registered_ids("shiftgrid"):
        splits = shiftgrid.envs.splits_for(env_id)
        rows.append(f"| `{env_id}` | {splits.family.description} | {', '.join(splits.axes)} |")
    if with_splits:
        for env_id in shiftgrid.envs.registered_ids("shiftgrid"):
            splits = shiftgrid.envs.splits_for(env_id)
            rows += ["", f"**{env_id}** — train: {split_changes_train(splits)}", "",
                     "| split | description | changes from train |", "|---|---|---|"]
            for name in splits.test_splits():
                s = splits[name]
                rows.append(f"| `{name}` | {s.description} | {split_changes(splits, name)} |")
    return "\n".join(rows)


def split_changes_train(splits: SplitSet) -> str:
    return ", ".join(f"{k}={v}" for k, v in splits["train"].factors.items())


def run(args: argparse.Namespace) -> int:
    print(env_table(args.splits))
    return 0

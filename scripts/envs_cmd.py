"""``shiftgrid envs``: the table of families, axes and splits (the README's table comes from here).

With ``--random-policy`` it measures each split's chance level instead: the success of uniformly
random actions, one episode on each of the split's first 1,000 levels, on the tensor engine
(needs the learner extra for torch).

Example:
    $ shiftgrid envs              # one row per environment
    $ shiftgrid envs --splits     # and every split with what it changes
    $ shiftgrid envs --random-policy                               # every current id and split
    $ shiftgrid envs --random-policy --env shiftgrid/Maze-v0 --episodes 200
"""

from __future__ import annotations

import argparse
import time

import shiftgrid.envs
from shiftgrid.envs.registration import bare_id
from shiftgrid.envs.shift.split import SplitSet
from shiftgrid.scripts.cli import UserError

#: The options that go with ``--random-policy`` (each None unless given).
RANDOM_OPTIONS = ("env", "episodes", "seed", "device")
#: Episodes per split ``--random-policy`` plays unless ``--episodes`` says otherwise.
RANDOM_EPISODES = 1000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list environment families, shift axes and splits (or measure random-policy success)")
    p.add_argument("--splits", action="store_true", help="also list every split and its factor changes")
    p.add_argument("--random-policy", action="store_true",
                   help="measure the success of uniformly random actions on every split, on the tensor engine")
    p.add_argument("--env", nargs="+", metavar="ID",
                   help="with --random-policy: the ids to measure (default: every current shiftgrid id)")
    p.add_argument("--episodes", type=int, help=f"with --random-policy: episodes (distinct levels) per split "
                                                 f"(default: {RANDOM_EPISODES})")
    p.add_argument("--seed", type=int, help="with --random-policy: seed of the actions and slips (default: 0)")
    p.add_argument("--device", help="with --random-policy: the engine's device, cpu or cuda (default: cpu)")
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


def random_policy(env_ids: list[str], episodes: int, seed: int, device: str) -> str:
    """The chance-level table of every split of ``env_ids`` (see :mod:`shiftgrid.agents.evaluation.chance`)."""
    from shiftgrid.agents.evaluation.chance import chance_table, random_policy_success

    rows, start = [], time.perf_counter()
    for env_id in env_ids:
        for split in ["train", *shiftgrid.envs.splits_for(env_id).test_splits()]:
            rows.append(random_policy_success(env_id, split, episodes, seed=seed, device=device))
    return (f"uniformly random actions, one episode on each of the first {episodes} levels of every split, seed {seed}, "
            f"on the tensor engine ({device}), {time.perf_counter() - start:.0f} s\n\n{chance_table(rows)}")


def run(args: argparse.Namespace) -> int:
    given = [f"--{k}" for k in RANDOM_OPTIONS if getattr(args, k) is not None]
    if not args.random_policy:
        if given:
            raise UserError(f"{', '.join(given)} go with --random-policy; valid: add --random-policy, or leave them out")
        print(env_table(args.splits))
        return 0
    episodes: int = RANDOM_EPISODES if args.episodes is None else args.episodes
    if episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {episodes}")
    known = shiftgrid.envs.registered_ids("shiftgrid", superseded=True)
    ids: list[str] = args.env or shiftgrid.envs.registered_ids("shiftgrid")
    unknown = [i for i in ids if bare_id(i) not in known]
    if unknown:
        raise UserError(f"unknown shiftgrid ids {unknown}; valid: {', '.join(known)}")
    print(random_policy([bare_id(i) for i in ids], episodes, args.seed or 0, args.device or "cpu"))
    return 0

"""``shiftgrid demos``: record the oracle teacher's demonstrations as a Minari dataset.

``--out DIR`` becomes a Minari datasets root holding one dataset (it must not exist yet:
datasets are never overwritten). Episode ``i`` resets with seed ``--seed + i`` (seeds whose
episode the teacher fails are skipped and listed in the metadata), so a seed gives one dataset.
On shiftgrid ids the teacher plans with the exact oracle; on BabyAI ids it is minigrid's BabyAIBot.
``--backend engine`` (``auto``'s choice on shiftgrid ids whose levels do not slip) replays each level's
optimal plan on the tensor engine, every episode of a chunk at once, and writes the same dataset.

Example:
    $ shiftgrid demos --env shiftgrid/GoTo-v1 --episodes 1000 --seed 0 --out demos/goto
    $ shiftgrid demos --env shiftgrid/GoTo-v1 --episodes 100000 --backend engine --out demos/goto-100k
    $ MINARI_DATASETS_PATH=demos/goto python -c "import minari; print(minari.load_dataset('shiftgrid/GoTo/demos-train-v0'))"
    $ shiftgrid train --algo bc --demos demos/goto --steps 200000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shiftgrid.agents.evaluation.backends import BACKENDS
from shiftgrid.scripts.cli import UserError, one_line_errors


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demos", help="record the oracle teacher's demonstrations as a Minari dataset",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="shiftgrid, minigrid (BabyAI) id, e.g. shiftgrid/GoTo-v1")
    p.add_argument("--split", help="split of a shiftgrid id (default: train)")
    p.add_argument("--episodes", type=int, required=True, help="successful demonstrations to record")
    p.add_argument("--seed", type=int, default=0, help="first reset seed (default: 0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="new folder: a Minari datasets root for the dataset")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="engine: replay the oracle's plans on the tensor engine (shiftgrid ids, levels that do not slip); "
                        "minigrid: the teacher acts step by step in the minigrid env; auto: the engine where it can (default)")
    p.add_argument("--workers", type=int, default=None, help="--backend engine: processes that generate levels and plans "
                   "(default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    one_line_errors(p, "shiftgrid demos")
    p.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    from shiftgrid.agents.imitation.datasets import DatasetError, open_dataset

    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    try:
        folder = _record(args)
    except DatasetError as e:
        raise UserError(str(e)) from None
    dataset = open_dataset(folder)
    on = "engine" if dataset.storage.metadata.get("shiftgrid", {}).get("recorded_on") == "engine" else "minigrid env"
    meta = dataset.storage.metadata.get("shiftgrid", {})
    skipped = len(meta.get("skipped_seeds", []))
    print(f"{args.out}: {dataset.total_episodes} demonstrations, {dataset.total_steps} steps of {dataset.env_spec.id}"
          + (f" (split {meta.get('split')})" if meta.get("split") else "") + (f", {skipped} seeds skipped" if skipped else "")
          + f"; Minari id {dataset.id} (load with MINARI_DATASETS_PATH={args.out} and minari.load_dataset); recorded on the {on}")
    return 0


def _record(args: argparse.Namespace) -> Path:
    """The dataset's folder, recorded on the backend ``--backend`` names (``auto``: the engine where it can)."""
    from shiftgrid.agents.imitation.engine_demos import record_demos

    return record_demos(args.out, args.env, args.episodes, seed=args.seed, split=args.split,
                        progress=not args.no_progress, workers=args.workers, backend=args.backend)

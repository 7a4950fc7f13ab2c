"""``shiftgrid wm evaluate``: world models scored under shift, open-loop, on every split.

Each RUN is a ``shiftgrid wm train`` run or a Dreamer run (``shiftgrid train --algo dreamer``),
a run directory or a checkpoint in one; several are seeds of one configuration (same learner,
env, env kwargs, model family and behaviour), summarised together: IQM and 95% bootstrap
intervals across them, each seed's numbers kept. On every split a behaviour plays
``--episodes`` real episodes on evaluation seeds disjoint from training (episode ``i`` resets
with ``--seed`` + ``i``, 10^9 + that on ids without splits; see
:mod:`shiftgrid.agents.evaluation.world_model`): for a wm train run its behaviour policy (its
``policy`` and ``noise``), the same episodes for every run; for a Dreamer run its own agent
(its actor through ``predict``, most likely actions as ``shiftgrid evaluate`` plays it, or
sampled with ``--stochastic``), each run's own episodes on the same seeds. For a window at
every step the model filters ``--context`` real steps, then predicts open-loop from the real
actions, scored at each of ``--horizons``. A model trained from demonstrations (``wm train --demos``)
is played by the demonstrator (the oracle teacher ``shiftgrid demos`` records); ``--behaviour``
chooses another for any run (``random``, ``oracle``, a trained agent's run), and the report names it.

The report (results.json / results.md / long-form results.csv, ``shift_*.png``) is the agents'
report, written by the same code: it goes to ``--out DIR`` (required for several runs), or for one
run to ``<run dir>/eval`` (a Dreamer run: ``<run dir>/eval/world_model``, beside its agent's
report from ``shiftgrid evaluate``), and replaces a report already there, as ``shiftgrid
evaluate`` does.

Example:
    $ shiftgrid wm evaluate runs/wm-rssm-GoTo-v1-s0 --episodes 50
    $ shiftgrid wm evaluate runs/wm-rssm-GoTo/seed=0 runs/wm-rssm-GoTo/seed=1 --horizons 1,5,15 --out reports/wm-rssm-goto
    $ shiftgrid wm evaluate runs/dreamer-goto/runs/seed=0 runs/dreamer-goto/runs/seed=1 --out reports/dreamer-goto-wm
    $ shiftgrid wm evaluate runs/wm-from-demos --behaviour random --episodes 50
    $ shiftgrid wm evaluate runs/wm-mechanism-goto --splits id,size/far --episodes 50 --breakdown
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shiftgrid.scripts.cli import UserError

#: Where one Dreamer run's report goes inside its ``eval/`` folder (the library's ``AGENT_REPORT_DIR``; no import at start-up).
DREAMER_REPORT_DIR = "world_model"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score world models on every shift split (open-loop prediction); write the report",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="a wm train or Dreamer run directory (or a checkpoint in one); several: seeds of one configuration")
    p.add_argument("--splits", default="all", help="'all' (id and every <axis>/near|far) or comma-separated split names")
    p.add_argument("--episodes", type=int, default=100, help="real episodes per split (default: 100)")
    p.add_argument("--context", type=int, default=5, help="real steps filtered before each prediction (default: 5)")
    p.add_argument("--horizons", default="1,5,15", help="open-loop steps scored, comma-separated (default: 1,5,15)")
    p.add_argument("--stride", type=int, default=1, help="steps between window starts in an episode (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed; also seeds the behaviour (default: 0)")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"),
                   help="which checkpoint of a run directory (default: latest)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default, one run only: <run dir>/eval; "
                   f"a Dreamer run: <run dir>/eval/{DREAMER_REPORT_DIR})")
    p.add_argument("--stochastic", action="store_true",
                   help="a Dreamer run's agent samples its actions (default: most likely, as shiftgrid evaluate plays it)")
    p.add_argument("--behaviour", default=None, metavar="random|oracle|RUN",
                   help="what plays the real episodes: random, oracle, or a trained agent (run dir, .pt or .zip), without "
                        "added noise (default: the run's own: a wm train run's behaviour policy, the oracle that recorded "
                        "the demonstrations of a model trained from them, a Dreamer run's agent)")
    p.add_argument("--n-envs", type=int, default=8, help="environments stepped side by side (default: 8)")
    p.add_argument("--batch-size", type=int, default=1024, help="windows predicted at once on the device (default: 1024)")
    p.add_argument("--device", default="auto", help="torch device of the models: auto (CUDA when present), cpu, cuda")
    p.add_argument("--breakdown", action="store_true",
                   help="also break each model's errors down by action, by what could be known from the context and by "
                        "cell type (breakdown.md / breakdown.json; reads the agent's true pose for this analysis only)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run, command="wm evaluate")


def parse_horizons(text: str) -> list[int]:
    """``"1,5,15"`` -> ``[1, 5, 15]``; :class:`UserError` for anything else or a horizon below 1.

    Example:
        >>> parse_horizons("15, 1,5")
        [1, 5, 15]
    """
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--horizons {text!r} must be comma-separated integers >= 1, e.g. 1,5,15") from None
    if not values or min(values) < 1:
        raise UserError(f"--horizons {text!r} must be comma-separated integers >= 1, e.g. 1,5,15")
    return sorted(set(values))


def run(args: argparse.Namespace) -> int:
    from shiftgrid.agents.reports.world_models import evaluate_world_model_runs
    from shiftgrid.scripts.evaluate_cmd import parse_splits

    horizons = parse_horizons(args.horizons)
    paths = evaluate_world_model_runs(args.runs, splits=parse_splits(args.splits), horizons=horizons, episodes=args.episodes,
                                      context=args.context, stride=args.stride, seed=args.seed, checkpoint=args.checkpoint,
                                      out=args.out, n_envs=args.n_envs, batch_size=args.batch_size, device=args.device,
                                      stochastic=args.stochastic, progress=not args.no_progress, behaviour=args.behaviour,
                                      breakdown=args.breakdown)
    print(paths["md"].read_text())
    print(f"report written to {paths['md'].parent}: {', '.join(p.name for p in paths.values())}")
    return 0

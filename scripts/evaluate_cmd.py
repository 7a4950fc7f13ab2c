"""``shiftgrid evaluate``: evaluate trained runs on every shift split and write the shift report.

One path is one run (a run directory or a checkpoint in it); several paths are several seeds
of one configuration, summarised together (IQM and 95% bootstrap intervals across them). The
report (results.json/.csv/.md and plots) goes to ``<run dir>/eval`` for one run, or to
``--out DIR`` (required for several runs). Evaluation starts at reset seed 0; the evaluations
during training (which chose ``best.pt``) used their own validation seeds, so the report never
scores a checkpoint on the levels it was selected on. ``--checkpoint latest`` evaluates a run
directory's final checkpoint instead of its best. A run trained with ``env_kwargs`` is
evaluated with the same ``env_kwargs`` (the report says which). Beside the runs, the report
shows the uniform-random policy and the best constant action on the same levels, and warns of a
policy that takes one action in nearly every step.

A path may also be an SB3 model saved by ``model.save`` (a ``.zip``: PPO, A2C, DQN or
RecurrentPPO, told from the zip or by ``--algo``), with ``--env ID`` (the zip does not record
the shiftgrid id) and ``--wrapper`` (how the model saw the env; default ``tokens``, as
shiftgrid trains); its report goes to ``<zip folder>/<zip name>-eval`` unless ``--out``.
The library behind this command is :mod:`shiftgrid.agents.reports.runs` (and, for any policy,
:func:`shiftgrid.agents.evaluate_policy`).

Example:
    $ shiftgrid evaluate runs/goto-ppo-s0 --episodes 200
    $ shiftgrid evaluate runs/goto-ppo-s0 runs/goto-ppo-s1 runs/goto-ppo-s2 --out reports/goto-ppo
    $ shiftgrid evaluate runs/goto-ppo-s0/checkpoints/latest.pt --splits id,size/near,size/far --stochastic
    $ shiftgrid evaluate runs/goto-ppo-s0 --checkpoint latest --reference-episodes 200
    $ shiftgrid evaluate model.zip --env shiftgrid/GoTo-v1 --wrapper image --episodes 200
    $ shiftgrid evaluate runs/goto-ppo-s0 --backend minigrid   # the minigrid env, batch --n-envs

Episodes run on the tensor engine wherever it plays a split as the minigrid env would (every
episode of a split at once; the same levels, and for the same actions the same results), else on
the minigrid env; ``--backend engine`` or ``minigrid`` forces one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shiftgrid.agents.evaluation.policies import WRAPPERS
from shiftgrid.agents.run.config import EVAL_BACKENDS
from shiftgrid.agents.run.rundir import CHECKPOINTS
from shiftgrid.agents.sb3.zip_model import ZIP_ALGOS
from shiftgrid.scripts.cli import UserError, one_line_errors


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate runs on every shift split; write results.json/.csv/.md and plots",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="one run, or several seeds of one configuration (run directories, .pt checkpoints, "
                        "or SB3 .zip models saved by model.save)")
    p.add_argument("--splits", default="all", help="'all' (id and every <axis>/near|far) or comma-separated split names")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per split (BabyAI's protocol: 1000)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed (episode i resets with seed + i)")
    p.add_argument("--out", type=Path, default=None, help="report folder; when None, <run dir>/eval (one run only)")
    p.add_argument("--n-envs", type=int, default=4, help="environments stepped side by side")
    p.add_argument("--device", default="auto", help="torch device for the agents: auto, cpu, cuda")
    p.add_argument("--checkpoint", default=None, choices=CHECKPOINTS,
                   help="which checkpoint of a run directory: best (best.pt where there is one, else latest.pt; what a "
                        "run directory alone gives) or latest (the final one)")
    p.add_argument("--reference-episodes", type=int, default=None, metavar="N",
                   help="episodes per split the references (uniform random, every constant action) play, on the first N "
                        "of the same levels; when None, all --episodes; 0: none (the report says so)")
    p.add_argument("--backend", default="auto", choices=EVAL_BACKENDS,
                   help="where episodes run: the tensor engine (every episode of a split at once), the minigrid env, or auto "
                        "(the engine wherever it plays a split as the minigrid env would; the same levels and numbers)")
    p.add_argument("--stochastic", action="store_true",
                   help="sample actions from the policy (seeded) instead of taking the most likely one")
    p.add_argument("--env", default=None, metavar="ID", help="environment of .zip models (required for them)")
    p.add_argument("--algo", default=None, choices=ZIP_ALGOS,
                   help="algorithm of .zip models; when None, told from the zip's data")
    p.add_argument("--wrapper", default="tokens", metavar="|".join(WRAPPERS) + "|MODULE:CALLABLE",
                   help="how .zip models saw the env: tokens (shiftgrid's view, as it trains), image (ImgObsWrapper), "
                        "flat (FlatObsWrapper), or a callable env -> env")
    one_line_errors(p, "shiftgrid evaluate")
    p.set_defaults(func=run)


def parse_splits(text: str) -> str | list[str]:
    """``all`` or the list of comma-separated names."""
    if text.strip() == "all":
        return "all"
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError(f"--splits {text!r} names no split; give 'all' or names such as id,size/near")
    return names


def run(args: argparse.Namespace) -> int:
    from shiftgrid.agents.reports.runs import evaluate_runs, evaluate_zips

    zips = [p for p in args.paths if p.suffix == ".zip"]
    common = dict(splits=parse_splits(args.splits), episodes=args.episodes, seed=args.seed, out=args.out, n_envs=args.n_envs,
                  device=args.device, stochastic=args.stochastic, reference_episodes=args.reference_episodes,
                  backend=args.backend)
    if zips and len(zips) < len(args.paths):
        raise UserError(f"cannot mix SB3 .zip models ({', '.join(map(str, zips))}) with shiftgrid runs in one report")
    if zips and args.checkpoint is not None:
        raise UserError(f"--checkpoint {args.checkpoint} picks a run directory's checkpoint; an SB3 .zip is one model")
    if zips:
        paths = evaluate_zips(zips, args.env, algo=args.algo, wrapper=args.wrapper, **common)
    else:
        given = [f"--{flag} {v}" for flag, v in (("env", args.env), ("algo", args.algo)) if v is not None]
        given += [f"--wrapper {args.wrapper}"] if args.wrapper != "tokens" else []
        if given:
            raise UserError(f"{' '.join(given)} is for SB3 .zip models; a shiftgrid run records its env, algo and view")
        paths = evaluate_runs(args.paths, checkpoint=args.checkpoint, **common)
    print(paths["md"].read_text())
    print(f"report written to {paths['md'].parent}: {', '.join(p.name for p in paths.values())}")
    return 0

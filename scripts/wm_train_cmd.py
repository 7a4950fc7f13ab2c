"""``shiftgrid wm train``: train a world model on transitions a behaviour policy collects.

The trainer is the world-model learner (shiftgrid.agents.model_based.world_model) run by the same
machinery as ``shiftgrid train``: run directory, resolved config.yaml, checkpoints,
--resume, Ctrl-C / SIGTERM saving first, progress bar, TensorBoard (losses, KL, per-cell
accuracy, open-loop prediction images). Configuration layers, each overriding the one before:
the defaults, presets/world-model.yaml, presets/world-model-<env name>.yaml, --config FILE,
the flags, and --set key=value (world-model settings are hyperparams.*, e.g.
--set hyperparams.train_ratio=64 or --set hyperparams.model_overrides.bf16=true).
Several seeds (--seed 0,1,2) run one after the other in DIR/seed=0, DIR/seed=1, ...

Example:
    $ shiftgrid wm train --model rssm --env shiftgrid/GoTo-v1 --policy oracle --noise 0.25 --steps 20000 --preset small
    $ shiftgrid wm train --model rssm --env MiniGrid-Empty-5x5-v0 --policy random --steps 5000 --preset tiny --seed 0,1,2
    $ shiftgrid wm train --model rssm --env shiftgrid/GoTo-v1 --policy runs/goto-ppo --steps 20000
    $ shiftgrid wm train --resume runs/wm-rssm-GoTo-v1-20260101-120000 --steps 40000
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shiftgrid.scripts.cli import UserError, one_line_errors

#: The registry name of the world-model trainer.
LEARNER = "world-model"
#: Flags that are config keys (flag dest -> key) and flags that are world-model settings (hyperparams.*).
RUN_FLAGS = ("env", "split", "steps", "n_envs", "device", "run_dir", "demos")
SETTING_FLAGS = ("model", "preset", "policy", "noise")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a world model on transitions of a behaviour policy",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="world-model family: rssm, transformer or mechanism (default: rssm)")
    p.add_argument("--env", help="shiftgrid, minigrid or BabyAI id (default: shiftgrid/GoTo-v1)")
    p.add_argument("--split", help="training split of a shiftgrid id (default: train)")
    p.add_argument("--policy", metavar="random|oracle|RUN",
                   help="behaviour policy: random, oracle (shiftgrid's exact oracle, BabyAI's bot), or a trained agent's "
                        "run directory, .pt checkpoint or SB3 .zip (default: random)")
    p.add_argument("--noise", type=float, help="share of the oracle's or agent's actions replaced by random ones (default: 0.25)")
    p.add_argument("--demos", metavar="DATASET", help="train on the recorded episodes of a Minari dataset of this env "
                   "(shiftgrid demos --out DIR) instead of collecting; each step is then train_ratio replayed steps")
    p.add_argument("--steps", type=int, help="total environment steps collected (default: the preset's)")
    p.add_argument("--preset", help="size preset: tiny, small, medium, large (default: small)")
    p.add_argument("--seed", help="seed, or comma-separated seeds for one run each (default: 0)")
    p.add_argument("--n-envs", type=int, help="environments stepped side by side (default: the preset's)")
    p.add_argument("--device", help="torch device: auto (CUDA when present), cpu, cuda (default: auto)")
    p.add_argument("--run-dir", help="run directory (default: runs/wm-<model>-<env>-<time>)")
    p.add_argument("--config", type=Path, help="YAML file of config keys (over the presets)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for nested keys (repeatable): --set hyperparams.train_ratio=64")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from checkpoints/latest.pt")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    one_line_errors(p, "shiftgrid wm train")
    p.set_defaults(func=run, command="wm train")



def command_line(args: argparse.Namespace) -> dict[str, Any]:
    """The flags and ``--set`` as config keys (over the presets and ``--config``)."""
    from shiftgrid.agents.run.config import merge, parse_overrides

    flags: dict[str, Any] = {"algo": LEARNER, **{k: getattr(args, k) for k in RUN_FLAGS if getattr(args, k) is not None}}
    settings = {k: getattr(args, k) for k in SETTING_FLAGS if getattr(args, k) is not None}
    if settings:
        flags["hyperparams"] = settings
    if args.no_progress:
        flags["progress"] = False
    return merge(flags, parse_overrides(args.set))


def fresh_runs(args: argparse.Namespace) -> list:
    """(config, False) per seed of a new run: presets < --config < flags < --set, run dirs ``runs/wm-<model>-...``."""
    from shiftgrid.agents.run.config import load_yaml_file
    from shiftgrid.agents.run.presets import layered
    from shiftgrid.agents.run.rundir import default_run_dir
    from shiftgrid.scripts.train_cmd import new_runs, parse_seeds

    from_file = load_yaml_file(args.config) if args.config else {}
    merged = layered(from_file, command_line(args))
    if merged.get("algo") != LEARNER:
        raise UserError(f"shiftgrid wm train trains the {LEARNER} learner, got algo={merged.get('algo')!r}; "
                        "train agents with shiftgrid train")
    if merged.get("run_dir") is None:
        model = (merged.get("hyperparams") or {}).get("model", "rssm")
        merged["run_dir"] = str(default_run_dir(f"wm-{model}", str(merged.get("env", "shiftgrid/GoTo-v1"))).root)
    return new_runs(merged, parse_seeds(args.seed) if args.seed is not None else None)


def resumed_runs(args: argparse.Namespace) -> list:
    """(config, True) per run in ``--resume DIR`` (one run, or its ``seed*`` runs)."""
    from shiftgrid.agents.run.train import resume_config
    from shiftgrid.scripts.train_cmd import runs_to_resume

    given = [f"--{k.replace('_', '-')}" for k in (*RUN_FLAGS, *SETTING_FLAGS, "seed", "config")
             if k not in ("steps", "device", "model") and getattr(args, k) is not None] + (["--set"] if args.set else [])
    if given:
        raise UserError(f"--resume continues a run with its saved config; only --steps and --device may be given "
                        f"(got {', '.join(given)})")
    out = []
    for d in runs_to_resume(args.resume):
        config = resume_config(d, args.steps, args.device)
        if config.algo != LEARNER:
            raise UserError(f"cannot resume {d} as a world model: it is a {config.algo} run (resume it with shiftgrid train --resume)")
        saved = config.hyperparams.get("model")
        if args.model is not None and args.model != saved:
            raise UserError(f"cannot resume {d} as a {args.model} world model: it holds a {saved} one "
                            "(--resume continues the saved model; train a new run for another)")
        config.progress = not args.no_progress
        out.append((config, True))
    return out


def run(args: argparse.Namespace) -> int:
    from shiftgrid.scripts.train_cmd import train_all

    runs = resumed_runs(args) if args.resume is not None else fresh_runs(args)
    return train_all(runs, prog="shiftgrid wm train", nan_status=2)

"""``shiftgrid train``: train a learner, one run per seed, or resume an interrupted run.

Configuration layers, each overriding the one before: the TrainConfig defaults, the
algorithm's preset (presets/<algo>.yaml), the algorithm-and-environment preset
(presets/<algo>-<name>.yaml, e.g. ppo-GoTo.yaml), --config FILE, the flags, and
--set key=value (dotted keys, YAML values). Several seeds (--seed 0,1,2) run one after
the other in DIR/seed=0, DIR/seed=1, ...

Example:
    $ shiftgrid train --algo ppo --env shiftgrid/GoTo-v1 --steps 200000 --run-dir runs/goto
    $ shiftgrid train --algo dqn --env MiniGrid-Empty-5x5-v0 --seed 0,1,2 --set hyperparams.gamma=0.95
    $ shiftgrid train --resume runs/goto --steps 400000     # continue to 400k steps in total
    $ shiftgrid train --env shiftgrid/DoorKey-v1 --advice subgoal --set advice.fade_steps=500000
    $ shiftgrid train --env shiftgrid/DoorKey-v1 --teacher plr --teacher-set temperature=0.1
"""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

from shiftgrid.agents.run.config import TrainConfig, load_yaml_file, merge, parse_overrides
from shiftgrid.agents.run.presets import layered, preset_steps
from shiftgrid.agents.run.registry import STEP_CLOCK_NOTES, learner_names, steps_meaning
from shiftgrid.agents.run.rundir import CONFIG_FILE, RunDir, default_run_dir
from shiftgrid.envs.teacher.advice import GRANULARITIES
from shiftgrid.envs.teacher.curriculum import TEACHERS
from shiftgrid.scripts.cli import UserError, one_line_errors

#: Flags that map one-to-one onto config keys (flag dest -> key).
FLAG_KEYS = ("algo", "env", "split", "steps", "n_envs", "device", "vec_env", "run_dir", "demos", "init_from", "dream")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a learner ({', '.join(learner_names())}) and log to TensorBoard",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=steps_epilog())
    d = TrainConfig()
    p.add_argument("--algo", help=f"learner: {', '.join(learner_names())} (default: {d.algo})")
    p.add_argument("--env", help=f"shiftgrid, minigrid or BabyAI id (default: {d.env})")
    p.add_argument("--split", help="training split of a shiftgrid id (default: train)")
    p.add_argument("--steps", type=int, help=f"total steps of the run, counted as the learner's step clock says (below) "
                   f"(default: the presets' steps where they set them ({preset_steps()}), else {d.steps})")
    p.add_argument("--seed", help=f"seed, or comma-separated seeds for one run each (default: {d.seed})")
    p.add_argument("--n-envs", type=int, help=f"training environments stepped side by side (default: the preset's, else {d.n_envs})")
    p.add_argument("--vec-env", help=f"dummy (one process), subproc (one process per env) or tensor (the tensor engine: every env "
                   f"in one batch of torch tensors) (default: {d.vec_env})")
    p.add_argument("--device", help=f"torch device: auto (CUDA when present), cpu, cuda (default: {d.device})")
    p.add_argument("--run-dir", help="run directory (default: runs/<algo>-<env>-<time>)")
    p.add_argument("--demos", metavar="DIR", help="demonstrations dataset (shiftgrid demos --out DIR) for bc, dagger, expert")
    p.add_argument("--init-from", metavar="RUN", help="start from the policy weights of RUN (a run dir or .pt), "
                   "e.g. PPO fine-tuning a bc run")
    p.add_argument("--dream", metavar="WM_RUN", help="train an SB3 learner inside the world model of WM_RUN "
                   "(a shiftgrid wm train or Dreamer run), started from real first observations; evaluated in the real env")
    p.add_argument("--config", type=Path, help="YAML file of config keys (over the presets)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for nested keys (repeatable): --set hyperparams.gamma=0.95")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from checkpoints/latest.pt")
    p.add_argument("--advice", choices=GRANULARITIES, help="train with the oracle teacher's advice at this granularity "
                   "(settings: --set advice.when=always|every|deviation, advice.every=K, advice.budget=N, "
                   "advice.fade_steps=N); evaluation is always without advice")
    p.add_argument("--teacher", metavar="NAME", help=f"a curriculum teacher choosing every training level: "
                   f"{', '.join(TEACHERS)} (levels logged in RUN/teacher/levels.jsonl)")
    p.add_argument("--teacher-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a teacher option (repeatable): --teacher-set temperature=0.1; every teacher takes side_every "
                   "(training steps between side estimates of chosen levels' success, 0: none), side_levels, side_episodes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    one_line_errors(p, "shiftgrid train")
    p.set_defaults(func=run)



def steps_epilog(width: int = 100) -> str:
    """The ``--help`` account of what ``--steps`` counts, learner by learner."""
    by_meaning: dict[str, list[str]] = {}
    for name in learner_names():
        by_meaning.setdefault(steps_meaning(name), []).append(name)
    lines = ["what --steps counts, per learner:"]
    for meaning, names in by_meaning.items():
        lines += textwrap.wrap(meaning, width, initial_indent=f"  {', '.join(names)}: ", subsequent_indent="    ")
    return "\n".join(lines + textwrap.wrap(STEP_CLOCK_NOTES, width, initial_indent="  ", subsequent_indent="  "))


def parse_seeds(text: str | None) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (None -> ``[0]``)."""
    if text is None:
        return [0]
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise UserError(f"--seed expects integers separated by commas (e.g. 0,1,2), got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seed lists a seed twice: {text!r}")
    return seeds


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The merged config dict (before seeds and run dirs): defaults < presets < --config < flags < --set."""
    from_file = load_yaml_file(args.config) if args.config else {}
    flags = {k: getattr(args, k) for k in FLAG_KEYS if getattr(args, k) is not None}
    if args.no_progress:
        flags["progress"] = False
    if getattr(args, "advice", None) is not None:
        flags["advice"] = {"granularity": args.advice}
    if getattr(args, "teacher", None) is not None or getattr(args, "teacher_set", None):
        flags["teacher"] = {k: v for k, v in (("name", args.teacher), ("options", parse_overrides(args.teacher_set)))
                            if v is not None and v != {}}
    return layered(from_file, merge(flags, parse_overrides(args.set)))


def runs_to_resume(run_dir: Path) -> list[Path]:
    """``run_dir`` itself, or its ``seed*`` runs when it holds several seeds."""
    run = RunDir(run_dir)
    if run.holds_run():
        return [run_dir]
    seeds = [r.root for r in run.seeds()]
    if not seeds:
        raise UserError(f"cannot resume {run_dir}: it holds no {CONFIG_FILE} (nor seed*/{CONFIG_FILE})")
    return seeds


def configs(args: argparse.Namespace) -> list[tuple[TrainConfig, bool]]:
    """(config, resume) for each run the command asks for."""
    if args.resume is not None:
        if args.algo is not None:  # another learner cannot continue a run: say whose run it is
            from shiftgrid.agents.run.train import resume_config

            for d in runs_to_resume(args.resume):
                saved = resume_config(d).algo
                if saved != args.algo:
                    raise UserError(f"{d} is a run of {saved}; --resume continues it with {saved}, not --algo {args.algo} "
                                    f"(start a new run with --run-dir for {args.algo})")
        given = [f"--{k.replace('_', '-')}" for k in FLAG_KEYS + ("seed", "config") if k not in ("steps", "device")
                 and getattr(args, k) is not None] + (["--set"] if args.set else []) + (["--advice"] if getattr(args, "advice", None) else []) \
            + (["--teacher"] if getattr(args, "teacher", None) or getattr(args, "teacher_set", None) else [])
        if given:
            raise UserError(f"--resume continues a run with its saved config; only --steps and --device may be given (got {', '.join(given)})")
        from shiftgrid.agents.run.train import resume_config

        out = []
        for d in runs_to_resume(args.resume):
            config = resume_config(d, args.steps, args.device)
            config.progress = not args.no_progress
            out.append((config, True))
        return out
    merged = resolve_config(args)
    return new_runs(merged, parse_seeds(args.seed) if args.seed is not None else None)


def new_runs(merged: dict[str, Any], seeds: list[int] | None = None) -> list[tuple[TrainConfig, bool]]:
    """(config, False) for each seed of a fresh run of the merged config (``seeds`` None: the config's seed)."""
    from shiftgrid.agents.run.train import check_new_run_dir

    seeds = seeds or [merged.get("seed", 0)]
    base = merged.get("run_dir")
    if base is None and len(seeds) > 1:
        config = TrainConfig.from_dict(merged)
        base = str(default_run_dir(config.algo, config.env).root)
    out = []
    for seed in seeds:
        run_dir = base if len(seeds) == 1 else str(RunDir(cast(str, base)).seed(seed).root)  # set above
        config = TrainConfig.from_dict({**merged, "seed": seed, "run_dir": run_dir})
        if run_dir is not None:
            check_new_run_dir(run_dir)  # every seed's, before the first starts
        out.append((config, False))
    return out


def summary(result: Any, config: TrainConfig | None = None) -> str:
    """One line about a finished run (a :class:`~shiftgrid.agents.run.train.RunResult`), saying where it ended past ``config.steps``."""
    steps = f"{result.run_dir}: {result.num_timesteps} steps"
    if config is not None and result.num_timesteps > config.steps:
        steps += (f" ({result.num_timesteps - config.steps} past --steps {config.steps}; "
                  f"shiftgrid train --help says how {config.algo} counts steps)")
    parts = [steps, f"{result.sps:.0f} SPS"]
    if result.success is not None:
        parts.append(f"training success {result.success:.2f}")
    if result.best_success is not None:
        parts.append(f"best id success {result.best_success:.2f}")
    if result.target is not None:
        t = result.target
        parts.append(f"target {t['success']:.2f} over {t['episodes']} episodes met at step {t['steps']} "
                     f"after {t['wall_s'] / 60:.1f} min")
    return ", ".join(parts)


def train_all(runs: list[tuple[TrainConfig, bool]], prog: str = "shiftgrid train", nan_status: int = 1) -> int:
    """Train (or resume) each run in turn, printing one line per run; the exit status.

    ``prog`` is the command named in messages (``shiftgrid wm train`` reuses this); a run stopped
    by a NaN or infinite loss or weight exits with ``nan_status``.
    """
    from shiftgrid.agents.run.train import train

    for config, resume in runs:
        result = train(config, resume=resume)
        if result.interrupted is not None:
            name = signal.Signals(result.interrupted).name
            print(f"{prog}: stopped by {name} at step {result.num_timesteps}; checkpoint saved in "
                  f"{RunDir(result.run_dir).latest}; continue with: {prog} --resume {result.run_dir}",
                  file=sys.stderr)
            return 128 + result.interrupted
        if result.stop_reason == "nan":
            why = result.stop_detail or "a loss or weight became NaN or infinite"
            print(f"{prog}: {result.run_dir}: stopped at step {result.num_timesteps}: {why}; "
                  f"{RunDir(result.run_dir).latest} is the last good checkpoint", file=sys.stderr)
            return nan_status
        if result.stop_reason == "complete":
            print(f"{result.run_dir}: already complete at {result.num_timesteps} steps (config steps {config.steps}); "
                  "nothing to do (give --steps N to train further)")
            continue
        print(summary(result, config))
    return 0


def run(args: argparse.Namespace) -> int:
    return train_all(configs(args))

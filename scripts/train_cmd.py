"""``shiftgrid train``: train a learner, one run per seed, or resume an interrupted run.

Configuration layers, each overriding the one before: the TrainConfig defaults, the
algorithm's preset (presets/<algo>.yaml), the algorithm-and-environment preset
(presets/<algo>-<name>.yaml, e.g. ppo-GoTo.yaml), --config FILE, the flags, and
--set key=value (dotted keys, YAML values). Several seeds (--seed 0,1,2) run one after
the other in DIR/seed0, DIR/seed1, ...

Example:
    $ shiftgrid train --algo ppo --env shiftgrid/GoTo-v0 --steps 200000 --run-dir runs/goto
    $ shiftgrid train --algo dqn --env MiniGrid-Empty-5x5-v0 --seed 0,1,2 --set hyperparams.gamma=0.95
    $ shiftgrid train --resume runs/goto --steps 400000     # continue to 400k steps in total
"""

from __future__ import annotations

import argparse
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from shiftgrid.agents.checkpoint import CHECKPOINT_DIR, LATEST, CheckpointError
from shiftgrid.agents.config import ALGO_NAMES, ConfigError, TrainConfig, load_yaml, load_yaml_file, merge, parse_overrides
from shiftgrid.agents.train import CONFIG_FILE, RunResult, check_new_run_dir, default_run_dir, resume_config, train
from shiftgrid.scripts.cli import UserError

#: Flags that map one-to-one onto config keys (flag dest -> key).
FLAG_KEYS = ("algo", "env", "split", "steps", "n_envs", "device", "vec_env", "run_dir")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a learner (PPO, A2C, DQN, recurrent PPO) and log to TensorBoard",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", help=f"algorithm: {', '.join(ALGO_NAMES)} (default: ppo)")
    p.add_argument("--env", help="shiftgrid, minigrid or BabyAI id (default: shiftgrid/GoTo-v0)")
    p.add_argument("--split", help="training split of a shiftgrid id (default: train)")
    p.add_argument("--steps", type=int, help="total environment steps")
    p.add_argument("--seed", help="seed, or comma-separated seeds for one run each (default: 0)")
    p.add_argument("--n-envs", type=int, help="training environments stepped side by side")
    p.add_argument("--vec-env", help="dummy (one process, default) or subproc (one process per env)")
    p.add_argument("--device", help="torch device: auto (CUDA when present, default), cpu, cuda")
    p.add_argument("--run-dir", help="run directory (default: runs/<algo>-<env>-<time>)")
    p.add_argument("--config", type=Path, help="YAML file of config keys (over the presets)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for nested keys (repeatable): --set hyperparams.gamma=0.95")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from checkpoints/latest.pt")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.error = _one_line_error  # type: ignore[method-assign]  # bad flags: one line, exit 2, like other user errors
    p.set_defaults(func=run)


def _one_line_error(message: str) -> NoReturn:
    print(f"shiftgrid train: error: {message}", file=sys.stderr)
    sys.exit(2)


def preset_name(env_id: str) -> str:
    """The environment part of a preset file name: ``shiftgrid/GoTo-v0`` -> ``GoTo``.

    Example:
        >>> preset_name("shiftgrid/GoTo-v0"), preset_name("BabyAI-GoToLocal-v0")
        ('GoTo', 'BabyAI-GoToLocal')
    """
    name = env_id.split("/")[-1].split(":")[-1]
    return name.rsplit("-v", 1)[0] if name.rsplit("-v", 1)[-1].isdigit() else name


def presets(algo: str, env_id: str) -> dict[str, Any]:
    """``<algo>.yaml`` merged with ``<algo>-<name>.yaml`` (each only where it exists)."""
    folder = resources.files("shiftgrid.scripts") / "presets"
    out: dict[str, Any] = {}
    for name in (f"{algo}.yaml", f"{algo}-{preset_name(env_id)}.yaml"):
        file = folder / name
        if file.is_file():
            data = load_yaml(file.read_text(), f"preset {name}") or {}
            out = merge(out, data)
    return out


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
    command_line = merge(flags, parse_overrides(args.set))
    chosen = merge(from_file, command_line)
    defaults = TrainConfig()
    algo, env = chosen.get("algo", defaults.algo), chosen.get("env", defaults.env)
    if not isinstance(algo, str) or not isinstance(env, str):
        raise ConfigError(f"algo and env must be strings, got {algo!r} and {env!r}")
    if algo not in ALGO_NAMES:
        raise ConfigError(f"unknown algo {algo!r}; valid: {', '.join(ALGO_NAMES)}")
    return merge(merge(presets(algo, env), from_file), command_line)


def runs_to_resume(run_dir: Path) -> list[Path]:
    """``run_dir`` itself, or its ``seed*`` runs when it holds several seeds."""
    if (run_dir / CONFIG_FILE).is_file():
        return [run_dir]
    seeds = sorted(p for p in run_dir.glob("seed*") if (p / CONFIG_FILE).is_file())
    if not seeds:
        raise UserError(f"cannot resume {run_dir}: it holds no {CONFIG_FILE} (nor seed*/{CONFIG_FILE})")
    return seeds


def configs(args: argparse.Namespace) -> list[tuple[TrainConfig, bool]]:
    """(config, resume) for each run the command asks for."""
    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in FLAG_KEYS + ("seed", "config") if k not in ("steps", "device")
                 and getattr(args, k) is not None] + (["--set"] if args.set else [])
        if given:
            raise UserError(f"--resume continues a run with its saved config; only --steps and --device may be given (got {', '.join(given)})")
        out = []
        for d in runs_to_resume(args.resume):
            config = resume_config(d, args.steps, args.device)
            config.progress = not args.no_progress
            out.append((config, True))
        return out
    merged = resolve_config(args)
    seeds = parse_seeds(args.seed) if args.seed is not None else [merged.get("seed", 0)]
    base = merged.get("run_dir")
    if base is None and len(seeds) > 1:
        base = default_run_dir(TrainConfig.from_dict(merged))
    out = []
    for seed in seeds:
        run_dir = base if len(seeds) == 1 else str(Path(base) / f"seed{seed}")
        config = TrainConfig.from_dict({**merged, "seed": seed, "run_dir": run_dir})
        if run_dir is not None:
            check_new_run_dir(run_dir)  # every seed's, before the first starts
        out.append((config, False))
    return out


def summary(result: RunResult) -> str:
    """One line about a finished run."""
    parts = [f"{result.run_dir}: {result.num_timesteps} steps", f"{result.sps:.0f} SPS"]
    if result.success is not None:
        parts.append(f"training success {result.success:.2f}")
    if result.best_success is not None:
        parts.append(f"best id success {result.best_success:.2f}")
    if result.target is not None:
        t = result.target
        parts.append(f"target {t['success']:.2f} over {t['episodes']} episodes met at step {t['steps']} "
                     f"after {t['wall_s'] / 60:.1f} min")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    try:
        for config, resume in configs(args):
            result = train(config, resume=resume)
            if result.interrupted is not None:
                name = signal.Signals(result.interrupted).name
                print(f"shiftgrid train: stopped by {name} at step {result.num_timesteps}; checkpoint saved in "
                      f"{result.run_dir / CHECKPOINT_DIR / LATEST}; continue with: shiftgrid train --resume {result.run_dir}",
                      file=sys.stderr)
                return 128 + result.interrupted
            print(summary(result))
    except (ConfigError, CheckpointError) as e:
        raise UserError(str(e)) from None
    return 0

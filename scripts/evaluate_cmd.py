"""``shiftgrid evaluate``: evaluate trained runs on every shift split and write the shift report.

One path is one run (a run directory or a checkpoint in it); several paths are several seeds
of one configuration, summarized together (IQM and 95% bootstrap intervals across them). The
report (results.json/.csv/.md and plots) goes to ``<run dir>/eval`` for one run, or to
``--out DIR`` (required for several runs). Evaluation starts at reset seed 0; the evaluations
during training (which chose ``best.pt``) used their own validation seeds, so the report never
scores a checkpoint on the levels it was selected on. A run trained with ``env_kwargs`` is
evaluated with the same ``env_kwargs`` (the report says which).

A path may also be an SB3 model saved by ``model.save`` (a ``.zip``: PPO, A2C, DQN or
RecurrentPPO, told from the zip or by ``--algo``), with ``--env ID`` (the zip does not record
the shiftgrid id) and ``--wrapper`` (how the model saw the env; default ``tokens``, as
shiftgrid trains); its report goes to ``<zip folder>/<zip name>-eval`` unless ``--out``.
The API behind this command is :func:`shiftgrid.agents.evaluate_policy`.

Example:
    $ shiftgrid evaluate runs/goto-ppo-s0 --episodes 200
    $ shiftgrid evaluate runs/goto-ppo-s0 runs/goto-ppo-s1 runs/goto-ppo-s2 --out reports/goto-ppo
    $ shiftgrid evaluate runs/goto-ppo-s0/checkpoints/latest.pt --splits id,size/near,size/far --stochastic
    $ shiftgrid evaluate model.zip --env shiftgrid/GoTo-v0 --wrapper image --episodes 200
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.agents.evaluation.episodes import splits_to_evaluate
from shiftgrid.agents.evaluation.policies import WRAPPERS, observation_wrapper
from shiftgrid.agents.evaluation.scoring import Candidate, check_observation_space, evaluate_agents
from shiftgrid.agents.run.rundir import BEST, LATEST, RunDir
from shiftgrid.agents.sb3.zip_model import ZIP_ALGOS, load_zip
from shiftgrid.scripts.cli import UserError

#: Config keys that do not change what a run learns (ignored when telling whether two runs are the same).
_INCIDENTAL = ("run_dir", "progress", "device", "vec_env", "torch_threads", "version")


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
    p.add_argument("--stochastic", action="store_true",
                   help="sample actions from the policy (seeded) instead of taking the most likely one")
    p.add_argument("--env", default=None, metavar="ID", help="environment of .zip models (required for them)")
    p.add_argument("--algo", default=None, choices=ZIP_ALGOS,
                   help="algorithm of .zip models; when None, told from the zip's data")
    p.add_argument("--wrapper", default="tokens", metavar="|".join(WRAPPERS) + "|MODULE:CALLABLE",
                   help="how .zip models saw the env: tokens (shiftgrid's view, as it trains), image (ImgObsWrapper), "
                        "flat (FlatObsWrapper), or a callable env -> env")
    p.set_defaults(func=run)


def load(path: Path, device: str) -> tuple[Any, dict, dict]:
    """``(agent, config, checkpoint description)`` of a run directory or checkpoint (see :func:`describe_checkpoint`)."""
    import torch

    from shiftgrid.agents.run.checkpoint import build_learner, find_checkpoint, read_checkpoint

    torch.set_num_threads(1)  # small networks: extra threads only slow each forward pass (as in training)
    file = find_checkpoint(path)
    checkpoint = read_checkpoint(file)
    return build_learner(checkpoint, device), checkpoint.config, describe_checkpoint(file, checkpoint)


def describe_checkpoint(file: Path, checkpoint: Any) -> dict[str, Any]:
    """Which checkpoint was evaluated (file, steps) and how it was chosen.

    A checkpoint is the run's best when it was saved at the step its ``best`` record names
    (whatever the file is called now); the number of evaluations it was chosen among is the
    whole run's, read from the run's latest checkpoint when there is one.
    """
    from shiftgrid.agents.run.checkpoint import read_checkpoint

    best = checkpoint.best
    if best is not None and best.get("step", checkpoint.num_timesteps if file.name == BEST else None) != checkpoint.num_timesteps:
        best = None  # a later checkpoint that only carries the run's best record along
    if best is None:
        chosen = "the run's last checkpoint" if file.name == LATEST else "given as a file"
    else:
        seeds = best.get("seeds")
        where = f" on validation seeds {seeds[0]}..{seeds[1]}" if seeds else ""
        latest = file.parent / LATEST
        history = read_checkpoint(latest).history if latest.is_file() and latest != file else checkpoint.history
        n = len(history)
        count = f" among {n} evaluation{'s' * (n != 1)}" if n else ""
        chosen = f"best `{best['split']}` success ({best['success']:.3f}){where}{count}, at step {checkpoint.num_timesteps}"
    return {"file": f"{file.parent.name}/{file.name}", "steps": checkpoint.num_timesteps, "chosen": chosen,
            "validation_seeds": None if best is None else best.get("seeds")}


def parse_splits(text: str) -> str | list[str]:
    """``all`` or the list of comma-separated names."""
    if text.strip() == "all":
        return "all"
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UserError(f"--splits {text!r} names no split; give 'all' or names such as id,size/near")
    return names


def check_counts(n_paths: int, episodes: int, n_envs: int, out: Path | None, what: str = "runs") -> None:
    """The counts must be positive, and several paths need ``--out``."""
    if episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {episodes}")
    if n_envs < 1:
        raise UserError(f"--n-envs must be >= 1, got {n_envs}")
    if n_paths > 1 and out is None:
        raise UserError(f"{n_paths} {what} given: pass --out DIR for their joint report")


def check_arguments(paths: Sequence[Path], episodes: int, n_envs: int, out: Path | None) -> list[RunDir]:
    """Validate what can be checked before loading any agent; return the run directories."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"no such run directory or checkpoint: {', '.join(missing)}")
    runs = distinct_runs(paths)
    check_counts(len(paths), episodes, n_envs, out)
    return runs


def distinct_runs(paths: Sequence[Path]) -> list[RunDir]:
    """The run directories of ``paths`` (dirs or checkpoints); a :class:`UserError` if two are the same run."""
    runs = [RunDir.of(p) for p in paths]
    seen: dict[Path, Path] = {}
    for path, rd in zip(paths, runs):
        if rd.root.resolve() in seen:
            raise UserError(f"{seen[rd.root.resolve()]} and {path} are the same run; several paths must be different seeds")
        seen[rd.root.resolve()] = path
    return runs


def training_record(run: RunDir, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What the report says of a run's training: the evaluated checkpoint (file, steps, choice), the met target
    and the teacher's cost (None without a teacher)."""
    from shiftgrid.agents.run.services import TEACHER_COST_FILE

    cost = run.teacher / TEACHER_COST_FILE
    return {"steps": checkpoint.get("steps"), "checkpoint": checkpoint,
            "target": json.loads(run.target.read_text()) if run.target.is_file() else None,
            "teacher": json.loads(cost.read_text()) if cost.is_file() else None}


def check_same_configuration(paths: Sequence[Path], configs: list[dict]) -> None:
    """Several runs must be seeds of one configuration: same environment, algorithm and env_kwargs."""
    for key in ("env", "algo", "env_kwargs"):
        values = [c.get(key) or {} if key == "env_kwargs" else c.get(key) for c in configs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            listing = ", ".join(f"{p} ({key}={v})" for p, v in zip(paths, values))
            raise UserError(f"runs with a different {key} cannot be summarized together: {listing}")


def not_independent(paths: Sequence[Path], configs: list[dict]) -> list[str]:
    """Warnings for runs with the same seed and config: they are repeats, not independent seeds."""
    key = [json.dumps({k: v for k, v in c.items() if k not in _INCIDENTAL}, sort_keys=True, default=str) for c in configs]
    out = []
    for i in range(len(configs)):
        for j in range(i + 1, len(configs)):
            if key[i] == key[j]:
                out.append(f"{paths[i]} and {paths[j]} have the same seed ({configs[i].get('seed')}) and config: "
                           "they are not independent seeds")
    return out


def evaluate_runs(paths: Sequence[Path], *, splits: str | list[str] = "all", episodes: int = 1000, seed: int = 0,
                  out: Path | None = None, n_envs: int = 4, device: str = "auto", stochastic: bool = False) -> dict[str, Path]:
    """Evaluate the runs (or checkpoints) at ``paths`` and write their shift report; returns the files written."""
    paths = [Path(p) for p in paths]
    runs = check_arguments(paths, episodes, n_envs, out)
    loaded = [load(p, device) for p in paths]
    configs = [config for _, config, _ in loaded]
    check_same_configuration(paths, configs)
    splits_to_evaluate(configs[0]["env"], splits)  # bad split names fail before any episode runs
    labels = [rd.root.name for rd in runs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in paths]
    notes = not_independent(paths, configs)
    for note in notes:
        print(f"shiftgrid evaluate: warning: {note}", file=sys.stderr)
    candidates = [Candidate(label, agent, config, training_record(rd, checkpoint), rd.tb if rd.tb.is_dir() else None)
                  for label, rd, (agent, config, checkpoint) in zip(labels, runs, loaded)]
    return evaluate_agents(candidates, out if out is not None else runs[0].eval, splits=splits, episodes=episodes, seed=seed,
                           n_envs=n_envs, stochastic=stochastic, notes=notes).paths


def evaluate_zips(paths: Sequence[Path], env_id: str | None, *, algo: str | None = None, wrapper: str = "tokens",
                  splits: str | list[str] = "all", episodes: int = 1000, seed: int = 0, out: Path | None = None,
                  n_envs: int = 4, device: str = "auto", stochastic: bool = False) -> dict[str, Path]:
    """Evaluate SB3 ``.zip`` models (seeds of one configuration) on ``env_id`` and write their shift report."""
    if env_id is None:
        raise UserError(f"{paths[0]} is an SB3 model: pass --env ID (a .zip does not record the shiftgrid id), "
                        "e.g. --env shiftgrid/GoTo-v0")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"no such model file: {', '.join(missing)}")
    if len(set(p.resolve() for p in paths)) < len(paths):
        raise UserError("the same .zip is given twice; several paths must be different seeds")
    check_counts(len(paths), episodes, n_envs, out, "models")
    import torch

    torch.set_num_threads(1)  # small networks: extra threads only slow each forward pass (as for runs)
    try:
        wrap = observation_wrapper(wrapper)
        names = splits_to_evaluate(env_id, splits)
        loaded = [load_zip(p, algo, device) for p in paths]
        algos = {name for _, name in loaded}
        if len(algos) > 1:
            raise UserError("models of different algorithms cannot be summarized together: "
                            + ", ".join(f"{p} ({name})" for p, (_, name) in zip(paths, loaded)))
        for p, (model, _) in zip(paths, loaded):
            check_observation_space(model, env_id, names, None, wrap, who=str(p))
    except ValueError as e:  # ZipModelError, a wrapper that cannot load, spaces that differ
        raise UserError(str(e)) from None
    labels = [p.stem for p in paths] if len({p.stem for p in paths}) == len(paths) else [str(p) for p in paths]
    candidates = [Candidate(label, model, {"env": env_id, "algo": name, "file": str(p)},
                            {"checkpoint": {"file": p.name, "steps": int(model.num_timesteps), "chosen": "given as an SB3 .zip"},
                             "steps": int(model.num_timesteps)})
                  for label, p, (model, name) in zip(labels, paths, loaded)]
    target = out if out is not None else paths[0].with_name(f"{paths[0].stem}-eval")
    return evaluate_agents(candidates, target, splits=names, episodes=episodes, seed=seed, n_envs=n_envs,
                           stochastic=stochastic, wrapper=wrap).paths


def run(args: argparse.Namespace) -> int:
    zips = [p for p in args.paths if p.suffix == ".zip"]
    common = dict(splits=parse_splits(args.splits), episodes=args.episodes, seed=args.seed, out=args.out, n_envs=args.n_envs,
                  device=args.device, stochastic=args.stochastic)
    if zips and len(zips) < len(args.paths):
        raise UserError(f"cannot mix SB3 .zip models ({', '.join(map(str, zips))}) with shiftgrid runs in one report")
    if zips:
        paths = evaluate_zips(zips, args.env, algo=args.algo, wrapper=args.wrapper, **common)
    else:
        given = [f"--{flag} {v}" for flag, v in (("env", args.env), ("algo", args.algo)) if v is not None]
        given += [f"--wrapper {args.wrapper}"] if args.wrapper != "tokens" else []
        if given:
            raise UserError(f"{' '.join(given)} is for SB3 .zip models; a shiftgrid run records its env, algo and view")
        paths = evaluate_runs(args.paths, **common)
    print(paths["md"].read_text())
    print(f"report written to {paths['md'].parent}: {', '.join(p.name for p in paths.values())}")
    return 0

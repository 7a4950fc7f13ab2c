"""Evaluating trained runs: what ``shiftgrid evaluate`` (agents) and ``shiftgrid wm evaluate`` (world models) share.

Several runs given together are seeds of one configuration, summarised in one report. Before any
episode is played the run set is checked once, the same way for both commands: every count is
positive, several runs have somewhere to write (``out``), no run is given twice, the runs share
their configuration, and each has a label (its run directory's name, or its path where names repeat).
:func:`evaluate_runs` and :func:`evaluate_zips` compose an agents' evaluation from them;
:func:`~shiftgrid.agents.evaluation.world_model.evaluate_world_model_runs` a world models'.

Example:
    >>> from pathlib import Path
    >>> check_counts(2, Path("out"), episodes=10, n_envs=4)
    >>> try:
    ...     check_counts(2, None, episodes=10)
    ... except EvaluationError as e:
    ...     print(e)
    2 runs given: pass --out DIR for their joint report
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.agents.evaluation.engine_episodes import check_backend
from shiftgrid.agents.evaluation.episodes import splits_to_evaluate
from shiftgrid.agents.evaluation.policies import observation_wrapper
from shiftgrid.agents.evaluation.scoring import Candidate, check_observation_space, evaluate_agents
from shiftgrid.agents.run.rundir import BEST, CHECKPOINTS, LATEST, RunDir
from shiftgrid.envs.errors import UserInputError

#: Which checkpoint of a run directory is evaluated: ``best`` (``best.pt`` where there is one, else ``latest.pt``) or ``latest``.
#: Config keys that do not change what a run learns (ignored when telling whether two runs are the same).
INCIDENTAL = ("run_dir", "progress", "device", "vec_env", "torch_threads", "version")


class EvaluationError(UserInputError, ValueError):
    """A set of runs that cannot be evaluated as asked (the CLI prints it as one line and exits 2)."""


def check_counts(n_paths: int, out: Path | None, what: str = "runs", **counts: int) -> None:
    """Every count (``episodes=...``, ``n_envs=...``, named as their flags) must be >= 1, and several paths need ``out``."""
    for name, value in counts.items():
        if value < 1:
            raise EvaluationError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if n_paths > 1 and out is None:
        raise EvaluationError(f"{n_paths} {what} given: pass --out DIR for their joint report")


def check_reference_episodes(reference_episodes: int | None, episodes: int) -> None:
    """The references play the first ``reference_episodes`` of the evaluated levels: 0 (none) to ``episodes``; None: all."""
    if reference_episodes is not None and not 0 <= reference_episodes <= episodes:
        raise EvaluationError(f"--reference-episodes must be in 0..{episodes} (--episodes: the references play the same "
                              f"levels), got {reference_episodes}")


def distinct_runs(paths: Sequence[Path]) -> list[RunDir]:
    """The run directories of ``paths`` (dirs or checkpoints, which must exist); no run may be given twice."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise EvaluationError(f"no such run directory or checkpoint: {', '.join(missing)}")
    runs = [RunDir.of(p) for p in paths]
    seen: dict[Path, Path] = {}
    for path, rd in zip(paths, runs):
        if rd.root.resolve() in seen:
            raise EvaluationError(f"{seen[rd.root.resolve()]} and {path} are the same run; several paths must be different seeds")
        seen[rd.root.resolve()] = path
    return runs


def run_labels(runs: Sequence[RunDir], paths: Sequence[Path]) -> list[str]:
    """Each run's name in the report: its directory's name, or its path where two names are the same."""
    labels = [rd.root.name for rd in runs]
    return labels if len(set(labels)) == len(labels) else [str(p) for p in paths]


def config_value(config: dict[str, Any], dotted: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"`` (None where a part is missing)."""
    value: Any = config
    for part in dotted.split("."):
        value = (value or {}).get(part)
    return value


def check_same_configuration(paths: Sequence[Path], configs: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Several runs must be seeds of one configuration: the same value of every (dotted) key in ``keys``."""
    for key in keys:
        values = [config_value(c, key) or ({} if key == "env_kwargs" else None) for c in configs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            listing = ", ".join(f"{p} ({key}={v})" for p, v in zip(paths, values))
            raise EvaluationError(f"runs with a different {key} cannot be summarised together: {listing}")


def not_independent(paths: Sequence[Path], configs: list[dict]) -> list[str]:
    """Warnings for runs with the same seed and config: they are repeats, not independent seeds."""
    key = [json.dumps({k: v for k, v in c.items() if k not in INCIDENTAL}, sort_keys=True, default=str) for c in configs]
    out = []
    for i in range(len(configs)):
        for j in range(i + 1, len(configs)):
            if key[i] == key[j]:
                out.append(f"{paths[i]} and {paths[j]} have the same seed ({configs[i].get('seed')}) and config: "
                           "they are not independent seeds")
    return out


def engine_device(device: str) -> Any:
    """The tensor engine's device for an evaluation on ``device`` (``auto``: CUDA when present)."""
    from shiftgrid.world_models.device import resolve_device

    return resolve_device(device)


def load_run(path: Path, device: str) -> tuple[Any, dict, dict]:
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


def training_record(run: RunDir, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What the report says of a run's training: the evaluated checkpoint (file, steps, choice), the met target
    and the teacher's cost (None without a teacher)."""
    from shiftgrid.agents.run.services import TEACHER_COST_FILE

    cost = run.teacher / TEACHER_COST_FILE
    return {"steps": checkpoint.get("steps"), "checkpoint": checkpoint,
            "target": json.loads(run.target.read_text()) if run.target.is_file() else None,
            "teacher": json.loads(cost.read_text()) if cost.is_file() else None}


def chosen_checkpoints(paths: Sequence[Path], checkpoint: str | None) -> list[Path]:
    """``paths`` with each run directory replaced by its ``checkpoint``: ``best`` (``best.pt`` where there is one, else
    ``latest.pt``, as a run directory alone is read) or ``latest``; None leaves them as given.

    Raises:
        EvaluationError: an unknown choice, or a choice given with a checkpoint file (which names its checkpoint itself).
    """
    if checkpoint is None:
        return list(paths)
    if checkpoint not in CHECKPOINTS:
        raise EvaluationError(f"--checkpoint {checkpoint!r} is not valid; valid: {', '.join(CHECKPOINTS)}")
    files = [str(p) for p in paths if Path(p).is_file()]
    if files:
        raise EvaluationError(f"--checkpoint {checkpoint} picks a run directory's checkpoint; {', '.join(files)} "
                              "is a checkpoint file already (give the run directory, or drop --checkpoint)")
    return [RunDir(p).latest if checkpoint == "latest" and Path(p).is_dir() else Path(p) for p in paths]


def evaluate_runs(paths: Sequence[Path], *, splits: str | list[str] = "all", episodes: int = 1000, seed: int = 0,
                  out: Path | None = None, n_envs: int = 4, device: str = "auto", stochastic: bool = False,
                  checkpoint: str | None = None, reference_episodes: int | None = None, backend: str = "auto",
                  ) -> dict[str, Path]:
    """Evaluate the runs (or checkpoints) at ``paths`` and write their shift report; returns the files written.

    ``checkpoint`` picks each run directory's checkpoint (:func:`chosen_checkpoints`); ``reference_episodes``
    how many of the same levels the references play (None: all; see
    :func:`~shiftgrid.agents.evaluation.scoring.evaluate_agents`); ``backend`` where episodes run (``auto``,
    ``engine``, ``minigrid``; the engine on ``device``).

    Raises:
        EvaluationError: a run set that cannot be evaluated together (see the module docstring).
    """
    paths = [Path(p) for p in paths]
    runs = distinct_runs(paths)
    paths = chosen_checkpoints(paths, checkpoint)
    check_counts(len(paths), out, episodes=episodes, n_envs=n_envs)
    check_reference_episodes(reference_episodes, episodes)
    check_backend(backend)
    loaded = [load_run(p, device) for p in paths]
    for path, (agent, config, _) in zip(paths, loaded):
        if not getattr(agent, "acts_itself", True):
            raise EvaluationError(f"{path} is a {config.get('algo')} run: a world model, which does not act (its predict "
                                  f"replays the behaviour that collected its data); score it with: shiftgrid wm evaluate {path}")
    configs = [config for _, config, _ in loaded]
    check_same_configuration(paths, configs, ("env", "algo", "env_kwargs"))
    splits_to_evaluate(configs[0]["env"], splits)  # bad split names fail before any episode runs
    notes = not_independent(paths, configs)
    for note in notes:
        print(f"shiftgrid evaluate: warning: {note}", file=sys.stderr)
    candidates = [Candidate(label, agent, config, training_record(rd, checkpoint), rd.tb if rd.tb.is_dir() else None)
                  for label, rd, (agent, config, checkpoint) in zip(run_labels(runs, paths), runs, loaded)]
    return evaluate_agents(candidates, out if out is not None else runs[0].eval, splits=splits, episodes=episodes, seed=seed,
                           n_envs=n_envs, stochastic=stochastic, notes=notes, reference_episodes=reference_episodes,
                           backend=backend, device=engine_device(device)).paths


def evaluate_zips(paths: Sequence[Path], env_id: str | None, *, algo: str | None = None, wrapper: str = "tokens",
                  splits: str | list[str] = "all", episodes: int = 1000, seed: int = 0, out: Path | None = None,
                  n_envs: int = 4, device: str = "auto", stochastic: bool = False,
                  reference_episodes: int | None = None, backend: str = "auto") -> dict[str, Path]:
    """Evaluate SB3 ``.zip`` models (seeds of one configuration) on ``env_id`` and write their shift report."""
    from shiftgrid.agents.sb3.zip_model import load_zip

    if env_id is None:
        raise EvaluationError(f"{paths[0]} is an SB3 model: pass --env ID (a .zip does not record the shiftgrid id), "
                              "e.g. --env shiftgrid/GoTo-v1")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise EvaluationError(f"no such model file: {', '.join(missing)}")
    if len(set(p.resolve() for p in paths)) < len(paths):
        raise EvaluationError("the same .zip is given twice; several paths must be different seeds")
    check_counts(len(paths), out, "models", episodes=episodes, n_envs=n_envs)
    check_reference_episodes(reference_episodes, episodes)
    check_backend(backend)
    import torch

    torch.set_num_threads(1)  # small networks: extra threads only slow each forward pass (as for runs)
    try:
        wrap = observation_wrapper(wrapper)
        names = splits_to_evaluate(env_id, splits)
        loaded = [load_zip(p, algo, device) for p in paths]
        algos = {name for _, name in loaded}
        if len(algos) > 1:
            raise EvaluationError("models of different algorithms cannot be summarised together: "
                                  + ", ".join(f"{p} ({name})" for p, (_, name) in zip(paths, loaded)))
        for p, (model, _) in zip(paths, loaded):
            check_observation_space(model, env_id, names, None, wrap, who=str(p))
    except EvaluationError:
        raise
    except ValueError as e:  # ZipModelError, a wrapper that cannot load, spaces that differ
        raise EvaluationError(str(e)) from None
    labels = [p.stem for p in paths] if len({p.stem for p in paths}) == len(paths) else [str(p) for p in paths]
    candidates = [Candidate(label, model, {"env": env_id, "algo": name, "file": str(p)},
                            {"checkpoint": {"file": p.name, "steps": int(model.num_timesteps), "chosen": "given as an SB3 .zip"},
                             "steps": int(model.num_timesteps)})
                  for label, p, (model, name) in zip(labels, paths, loaded)]
    target = out if out is not None else paths[0].with_name(f"{paths[0].stem}-eval")
    return evaluate_agents(candidates, target, splits=names, episodes=episodes, seed=seed, n_envs=n_envs,
                           stochastic=stochastic, wrapper=wrap, reference_episodes=reference_episodes, backend=backend,
                           device=engine_device(device)).paths

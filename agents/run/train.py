"""The training loop every learner shares: run dir, config, resume, signals, run services.

:func:`train` builds the registered learner of ``config.algo``, restores ``latest.pt`` when
resuming, opens the :class:`~shiftgrid.agents.run.services.RunServices` and hands them to the
learner's ``learn``, with what the run carries besides the learner (the extensions its training
env asks for through ``run_extensions(config)``, e.g. a curriculum teacher's state, restored before
the learner's first step when resuming); at the end it evaluates a last time and saves ``latest.pt``. The run
directory is laid out as :mod:`shiftgrid.agents.run.rundir` says. Resuming (``resume=True``)
continues ``latest.pt`` until ``config.steps`` in total; a finished run is left as it is.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig
    >>> config = TrainConfig(algo="ppo", steps=256, n_envs=2, device="cpu", progress=False,
    ...                      run_dir=tempfile.mkdtemp() + "/run", eval=EvalConfig(freq=0),
    ...                      hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    >>> result = train(config)
    >>> result.num_timesteps, result.interrupted, (result.run_dir / "checkpoints/latest.pt").exists()
    (256, None, True)
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from shiftgrid.agents.run.checkpoint import CheckpointError, check_compatible, read_checkpoint
from shiftgrid.agents.run.config import ConfigError, TrainConfig, load_config, save_config
from shiftgrid.agents.run.registry import Learner, get_learner
from shiftgrid.agents.run.rundir import CHECKPOINT_DIR, CONFIG_FILE, LATEST, RunDir, default_run_dir
from shiftgrid.agents.run.run_state import RunState, stop_on_signals
from shiftgrid.agents.run.services import RunExtension, RunServices
from shiftgrid.agents.run.warm_start import inherited_cost, warm_start


@dataclass
class RunResult:
    """How a run ended.

    Attributes:
        run_dir: the run directory.
        num_timesteps: environment steps taken in total (across resumes).
        interrupted: the signal that stopped the run early, or None.
        sps: environment steps per second of this call (training, evaluation and saving included).
        success: success rate over the last 100 training episodes (None if none ended).
        best_success: best ``id`` success at an evaluation (None without evaluations).
        target: the training-success target as met (steps, wall_s, ...; None if not met or not set).
        stop_reason: ``signal``, ``target``, ``nan`` (a non-finite loss or state: ``latest.pt`` is the
            last good one), ``steps`` (steps taken outside the learner's own, a curriculum's side estimates,
            reached the run's steps before the learner's batch ended), ``complete`` (a resumed run that
            had already taken its steps), or None.
        stop_detail: the learner's one-line account of the stop (e.g. which loss term was NaN), or None.
    """

    run_dir: Path
    num_timesteps: int
    interrupted: int | None
    sps: float
    success: float | None
    best_success: float | None
    target: dict | None = None
    stop_reason: str | None = None
    stop_detail: str | None = None


def check_new_run_dir(run_dir: str | Path) -> None:
    """Raise :class:`ConfigError` if ``run_dir`` already holds a run (a fresh run never overwrites one)."""
    if RunDir(run_dir).holds_run():
        raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --run-dir")


def resume_config(run_dir: str | Path, steps: int | None = None, device: str | None = None) -> TrainConfig:
    """The config a run was started with (its ``config.yaml``), with a new total ``steps`` / ``device``.

    Raises:
        CheckpointError: ``run_dir`` holds no run, or one from an incompatible shiftgrid release.
    """
    run = RunDir(run_dir)
    if not run.holds_run():
        raise CheckpointError(f"cannot resume {run_dir}: no {CONFIG_FILE} there (is it a run directory?)")
    config = load_config(run.config)
    check_compatible(config.version, str(run_dir))
    config.run_dir = str(run_dir)
    if steps is not None:
        config.steps = steps
    if device is not None:
        config.device = device
    return config


Hook = Callable[[RunServices], None]


def train(config: TrainConfig, *, resume: bool = False, hooks: Sequence[Hook] = ()) -> RunResult:
    """Train the learner ``config.algo`` on ``config.env`` for ``config.steps`` steps in ``config.run_dir``.

    Args:
        config: the resolved configuration (saved to ``config.yaml``).
        resume: continue the run in ``config.run_dir`` from ``checkpoints/latest.pt``.
        hooks: callables given the run services after every reported batch of steps.

    Raises:
        ConfigError: a fresh run aimed at a directory that already holds one, or bad settings.
        CheckpointError: nothing (or nothing compatible) to resume from.
    """
    config.validate()
    run = RunDir(config.run_dir) if config.run_dir else default_run_dir(config.algo, config.env)
    config.run_dir = str(run.root)
    if not resume:
        check_new_run_dir(run.root)
    checkpoint = None
    if resume:
        if not run.latest.is_file():
            raise CheckpointError(f"cannot resume {run.root}: no {CHECKPOINT_DIR}/{LATEST} there")
        checkpoint = read_checkpoint(run.latest)
        if checkpoint.learner != config.algo:
            raise CheckpointError(f"{run.root}: checkpoint is for {checkpoint.learner} but config.yaml says {config.algo}")
        if checkpoint.num_timesteps >= config.steps:  # nothing to do: leave the run (and its logs) as they are
            return RunResult(run.root, checkpoint.num_timesteps, None, 0.0, None,
                             None if checkpoint.best is None else checkpoint.best["success"], checkpoint.target, "complete")
    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)
    state = RunState() if checkpoint is None else RunState.of(checkpoint)
    learner = get_learner(config.algo)(config, training=True)
    try:
        if checkpoint is not None:
            learner.load_state_dict(checkpoint.state)
        elif config.init_from:
            warm_start(learner, config.init_from)
        env: Any = getattr(learner, "env", None)  # a training env may add to the run (a curriculum's teacher state, its cost)
        extensions: list[RunExtension] = list(env.run_extensions(config)) if hasattr(env, "run_extensions") else []
        services = RunServices(config, run, learner, state, hooks, extensions)  # checks eval.splits
        if checkpoint is not None:
            for extension in extensions:  # before the learner's envs are first reset
                extension.resume(services)
        if config.init_from:  # the source run's teacher cost counts in this one's
            services.teacher_cost(**inherited_cost(config.init_from))
        run.root.mkdir(parents=True, exist_ok=True)  # only now: a run that cannot start leaves nothing behind
        save_config(config, run.config)
        return _learn(learner, services)
    finally:
        close = getattr(learner, "close", None)
        if close is not None:
            close()


def _learn(learner: Learner, run: RunServices) -> RunResult:
    config, state = run.config, run.state
    start_steps, start_time = run.num_timesteps, time.perf_counter()
    run.open()
    with stop_on_signals(state):
        try:
            learner.learn(config.steps - run.num_timesteps, run)
        except KeyboardInterrupt:  # a second Ctrl-C: keep what was learned
            state.signum, state.stop_reason = state.signum or signal.SIGINT, "signal"
        except (EOFError, BrokenPipeError, ConnectionError):
            if state.signum is None:
                raise  # a subprocess env died by itself
            # else: the signal also reached the subprocess envs, which exited
        finally:
            if run.bar is not None:
                run.bar.close()
        run.finish()
    run.close()
    steps = int(learner.num_timesteps)
    sps = (steps - start_steps) / max(time.perf_counter() - start_time, 1e-9)
    return RunResult(Path(config.run_dir or ""), steps, state.signum, sps, run.success(), state.best_success, state.target,
                     state.stop_reason, state.detail)

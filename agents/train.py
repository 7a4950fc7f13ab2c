"""Train an SB3 learner on a shiftgrid, minigrid or BabyAI environment; resume an interrupted run.

A run directory holds::

    config.yaml             the resolved TrainConfig (with the shiftgrid version)
    checkpoints/latest.pt   saved every checkpoint_freq steps, at the end, and on Ctrl-C / SIGTERM
    checkpoints/best.pt     the best model by success on held-out in-distribution levels (``id``)
    target.json             steps and wall-clock to the training-success target, once met (``target``)
    tb/                     TensorBoard: rollout/success_rate, rollout/ep_rew_mean, time/sps,
                            train/*, eval/<split>/success|return|length, eval/<split>/episode

Resuming (``resume=True``) continues ``latest.pt``: weights, optimizer state and step counters
are restored and training runs until ``config.steps`` in total. An interrupted on-policy run
(PPO, A2C, RecurrentPPO) is saved as of its last update: the steps of the unfinished rollout
are not counted, so the resumed run collects them again. See
:mod:`shiftgrid.agents.checkpoint` for what is not restored. The resumed environments are
seeded with ``seed + num_timesteps``, so they do not replay the first run's levels.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.config import EvalConfig
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
from typing import Sequence

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from shiftgrid.agents.algos import build_model, make_vec
from shiftgrid.agents.callbacks import (
    CheckpointCallback,
    EvalCallback,
    ProgressCallback,
    RunState,
    StopOnSignal,
    TargetCallback,
    stop_on_signals,
)
from shiftgrid.agents.checkpoint import CHECKPOINT_DIR, LATEST, CheckpointError, check_compatible, read_checkpoint, restore
from shiftgrid.agents.config import ConfigError, TrainConfig, load_config, save_config

CONFIG_FILE = "config.yaml"


@dataclass
class RunResult:
    """How a run ended.

    Attributes:
        run_dir: the run directory.
        num_timesteps: environment steps taken in total (across resumes).
        interrupted: the signal that stopped the run early, or None if it finished.
        sps: environment steps per second of this call (training, evaluation and saving included).
        success: success rate over the last 100 training episodes (None if none ended).
        best_success: best ``id`` success at an evaluation (None without evaluations).
        target: the training-success target as met (steps, wall_s, ...; None if not met or not set).
    """

    run_dir: Path
    num_timesteps: int
    interrupted: int | None
    sps: float
    success: float | None
    best_success: float | None
    target: dict | None = None


def default_run_dir(config: TrainConfig) -> str:
    """``runs/<algo>-<env name>-<YYYYmmdd-HHMMSS>``."""
    name = config.env.split("/")[-1]
    return f"runs/{config.algo}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_new_run_dir(run_dir: str | Path) -> None:
    """Raise :class:`ConfigError` if ``run_dir`` already holds a run (a fresh run never overwrites one)."""
    if (Path(run_dir) / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --run-dir")


def resume_config(run_dir: str | Path, steps: int | None = None, device: str | None = None) -> TrainConfig:
    """The config a run was started with (its ``config.yaml``), with a new total ``steps`` / ``device``.

    Raises:
        CheckpointError: ``run_dir`` holds no run, or one from an incompatible shiftgrid release.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"cannot resume {run_dir}: no {CONFIG_FILE} there (is it a run directory?)")
    config = load_config(path)
    check_compatible(config.version, str(run_dir))
    config.run_dir = str(run_dir)
    if steps is not None:
        config.steps = steps
    if device is not None:
        config.device = device
    return config


def _restore_run(model: BaseAlgorithm, config: TrainConfig, run_dir: Path, state: RunState) -> None:
    ckpt = read_checkpoint(run_dir / CHECKPOINT_DIR / LATEST)
    if ckpt["algo"] != config.algo:
        raise CheckpointError(f"{run_dir}: checkpoint is for {ckpt['algo']} but config.yaml says {config.algo}")
    restore(model, ckpt)
    state.best_success, state.eval = ckpt["best_success"], dict(ckpt["eval"])
    state.elapsed_before, state.target = float(ckpt.get("elapsed_s", 0.0)), ckpt.get("target")
    if config.algo == "dqn":  # the replay buffer was not saved: refill it before updating again
        model.learning_starts = model.num_timesteps + model.learning_starts


def train(config: TrainConfig, *, resume: bool = False, callbacks: Sequence[BaseCallback] = ()) -> RunResult:
    """Train ``config.algo`` on ``config.env`` for ``config.steps`` steps in ``config.run_dir``.

    Args:
        config: the resolved configuration (saved to ``config.yaml``).
        resume: continue the run in ``config.run_dir`` from ``checkpoints/latest.pt``.
        callbacks: extra SB3 callbacks, run after the built-in ones.

    Raises:
        ConfigError: a fresh run aimed at a directory that already holds one, or bad settings.
        CheckpointError: nothing (or nothing compatible) to resume from.
    """
    config.validate()
    run_dir = Path(config.run_dir or default_run_dir(config))
    config.run_dir = str(run_dir)
    if not resume:
        check_new_run_dir(run_dir)
    if resume and not (run_dir / CHECKPOINT_DIR / LATEST).is_file():
        raise CheckpointError(f"cannot resume {run_dir}: no {CHECKPOINT_DIR}/{LATEST} there")
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    state = RunState()
    progress = ProgressCallback(config.steps, config.progress)
    saver = CheckpointCallback(config, run_dir, state)
    others = [StopOnSignal(state), TargetCallback(config, run_dir, state), EvalCallback(config, run_dir, state), *callbacks]  # checks eval.splits
    env = make_vec(config)
    try:
        model = build_model(config, env)
        if resume:
            _restore_run(model, config, run_dir, state)
            model.set_random_seed(config.seed + model.num_timesteps)  # also reseeds the envs
        run_dir.mkdir(parents=True, exist_ok=True)  # only now: a run that cannot start leaves nothing behind
        save_config(config, run_dir / CONFIG_FILE)
        model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
        return _learn(model, config, state, resume, progress, saver, others)
    finally:
        try:
            env.close()
        except (EOFError, BrokenPipeError, ConnectionError):  # subprocess workers already gone (Ctrl-C)
            pass


def _learn(model: BaseAlgorithm, config: TrainConfig, state: RunState, resume: bool, progress: ProgressCallback,
           saver: CheckpointCallback, others: list[BaseCallback]) -> RunResult:
    start_steps, start_time = model.num_timesteps, time.perf_counter()
    state.started = start_time
    remaining = config.steps - model.num_timesteps
    if remaining <= 0:  # resumed a finished run: nothing to do
        return RunResult(Path(config.run_dir), int(model.num_timesteps), None, 0.0, None, state.best_success, state.target)
    with stop_on_signals(state):
        try:
            model.learn(remaining, callback=[progress, saver, *others], log_interval=config.log_interval,
                        reset_num_timesteps=not resume)
        except KeyboardInterrupt:  # a second Ctrl-C: keep what was learned
            state.signum = state.signum or signal.SIGINT
        except (EOFError, BrokenPipeError, ConnectionError):
            if state.signum is None:
                raise  # a subprocess env died by itself
            # else: the signal also reached the subprocess envs, which exited
        finally:
            if progress.bar is not None:
                progress.bar.close()
    if state.signum is None:
        saver.save()
    else:
        saver.save_interrupted()
    model.logger.close()
    sps = (model.num_timesteps - start_steps) / max(time.perf_counter() - start_time, 1e-9)
    return RunResult(Path(config.run_dir), int(model.num_timesteps), state.signum, sps, progress.success(), state.best_success,
                     state.target)

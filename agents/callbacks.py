"""SB3 callbacks of a training run: progress bar and SPS, periodic checkpoints, evaluation, signals.

The callbacks share one :class:`RunState` (best success so far, last evaluation, stop request).
Checkpoints and evaluations happen at rollout starts, right after a model update, so a saved
or evaluated model has consumed every step it has counted.

Example:
    >>> state = RunState()
    >>> with stop_on_signals(state):
    ...     pass  # model.learn(..., callback=[StopOnSignal(state), ...])
    >>> state.signum is None
    True
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from tqdm import tqdm

from shiftgrid.agents.checkpoint import BEST, CHECKPOINT_DIR, LATEST, save_checkpoint
from shiftgrid.agents.config import TARGET_FILE, TrainConfig
from shiftgrid.agents.envs import has_splits
from shiftgrid.agents.evaluation import IN_DISTRIBUTION, run_episodes, splits_to_evaluate
from shiftgrid.agents.render import episode_frames, frame_grid

#: Logger formats an image must not reach (only TensorBoard shows images).
_NOT_IMAGES = ("stdout", "log", "json", "csv")


@dataclass
class RunState:
    """What the callbacks of one run share.

    Attributes:
        best_success: best success on the ``id`` split so far (None before any evaluation).
        eval: split -> success at the last evaluation.
        signum: the signal (SIGINT/SIGTERM) that asked the run to stop, if any.
        elapsed_before: seconds of training before this call (earlier calls of a resumed run).
        started: ``time.perf_counter()`` when this call started training.
        target: the training-success target as met (see :class:`TargetCallback`), or None.
    """

    best_success: float | None = None
    eval: dict[str, float] = field(default_factory=dict)
    signum: int | None = None
    elapsed_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    target: dict[str, Any] | None = None

    def elapsed(self) -> float:
        """Wall-clock seconds the run has trained, over all its calls (evaluations included)."""
        return self.elapsed_before + time.perf_counter() - self.started

    def checkpoint_extra(self) -> dict[str, Any]:
        """What a checkpoint keeps of this state."""
        return {"best_success": self.best_success, "eval": self.eval, "elapsed_s": self.elapsed(), "target": self.target}


@contextlib.contextmanager
def stop_on_signals(state: RunState) -> Iterator[RunState]:
    """Turn SIGINT / SIGTERM into a stop request (``state.signum``) while the block runs.

    The run then stops at its next step and saves a checkpoint. A second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread (where Python cannot install
    handlers) signals keep their usual behaviour.
    """
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if state.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        state.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class StopOnSignal(BaseCallback):
    """End ``learn`` at the next step once a stop was requested (see :func:`stop_on_signals`)."""

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def _on_step(self) -> bool:
        return self.state.signum is None


class ProgressCallback(BaseCallback):
    """A tqdm bar (steps, SPS, recent success) and the ``time/sps`` log value.

    Args:
        total: the run's total steps (the bar's end).
        enabled: show the bar (``time/sps`` is logged either way).
    """

    def __init__(self, total: int, enabled: bool = True):
        super().__init__()
        self.total, self.enabled = total, enabled
        self.bar: tqdm | None = None
        self.start_time = self.start_steps = 0.0
        self.last_postfix = 0.0

    def sps(self) -> float:
        """Steps per second since this ``learn`` call started."""
        return (self.num_timesteps - self.start_steps) / max(time.perf_counter() - self.start_time, 1e-9)

    def success(self) -> float | None:
        """Success rate over SB3's recent-episode buffer (None before any episode ended)."""
        buffer = self.model.ep_success_buffer
        return float(np.mean(buffer)) if len(buffer) else None

    def _on_training_start(self) -> None:
        self.start_time, self.start_steps = time.perf_counter(), self.num_timesteps
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", dynamic_ncols=True,
                        disable=not self.enabled, desc="train")

    def _on_step(self) -> bool:
        if self.num_timesteps > self.bar.total:  # on-policy runs end on a whole rollout
            self.bar.total = self.num_timesteps
        self.bar.update(self.num_timesteps - self.bar.n)
        now = time.perf_counter()
        if now - self.last_postfix > 1.0:
            self.last_postfix = now
            success = self.success()
            self.bar.set_postfix(sps=f"{self.sps():.0f}", success="-" if success is None else f"{success:.2f}", refresh=False)
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record("time/sps", int(self.sps()))

    def _on_training_end(self) -> None:
        self.bar.close()


class CheckpointCallback(BaseCallback):
    """Save ``checkpoints/latest.pt`` every ``freq`` steps (0: only when the run ends)."""

    def __init__(self, config: TrainConfig, run_dir: Path, state: RunState):
        super().__init__()
        self.config, self.path, self.state = config, run_dir / CHECKPOINT_DIR / LATEST, state
        self.last = self.rollout_start = 0

    def save(self) -> Path:
        return save_checkpoint(self.model, self.config, self.path, **self.state.checkpoint_extra())

    def save_interrupted(self) -> Path:
        """Save after a stop request. An on-policy model has not learned from its unfinished rollout:
        its step count goes back to that rollout's start, so a resumed run collects it again."""
        if isinstance(self.model, OnPolicyAlgorithm):
            self.model.num_timesteps = self.rollout_start
        return self.save()

    def _on_training_start(self) -> None:
        self.last = self.rollout_start = self.num_timesteps

    def _on_rollout_start(self) -> None:
        self.rollout_start = self.num_timesteps
        if self.config.checkpoint_freq and self.num_timesteps - self.last >= self.config.checkpoint_freq:
            self.last = self.num_timesteps
            self.save()

    def _on_step(self) -> bool:
        return True


class EvalCallback(BaseCallback):
    """Evaluate on held-out splits every ``config.eval.freq`` steps and at the end of training.

    Logs ``eval/<split>/success``, ``eval/<split>/return`` and ``eval/<split>/length`` (``<split>``
    is ``id``, ``size/near``, ...) and, with ``config.eval.render``, ``eval/<split>/episode``: one
    deterministic episode rendered as a grid of frames. ``checkpoints/best.pt`` is saved when
    success on ``id`` (held-out levels of the training distribution) improves: the choice of
    checkpoint never looks at a shifted split.
    """

    def __init__(self, config: TrainConfig, run_dir: Path, state: RunState):
        super().__init__()
        self.config, self.run_dir, self.state = config, run_dir, state
        self.splits = splits_to_evaluate(config.env, config.eval.splits)
        if IN_DISTRIBUTION not in self.splits:
            self.splits.insert(0, IN_DISTRIBUTION)  # the split best.pt is chosen on
        self.last = 0

    def evaluate(self) -> None:
        """Run one evaluation now, log it, and save ``best.pt`` on a new best ``id`` success."""
        ev, agent = self.config.eval, self.model
        for name in self.splits:
            if self.state.signum is not None:
                return  # asked to stop: do not hold the exit up
            split = name if has_splits(self.config.env) else None
            results = run_episodes(agent, self.config.env, split, ev.episodes, seed=ev.seed, n_envs=ev.n_envs,
                                   deterministic=ev.deterministic)
            success = float(np.mean([r.success for r in results]))
            self.state.eval[name] = success
            self.logger.record(f"eval/{name}/success", success)
            self.logger.record(f"eval/{name}/return", float(np.mean([r.ret for r in results])))
            self.logger.record(f"eval/{name}/length", float(np.mean([r.length for r in results])))
            if ev.render:
                frames = episode_frames(agent, self.config.env, split, seed=ev.seed)
                self.logger.record(f"eval/{name}/episode", Image(frame_grid(frames), "HWC"), exclude=_NOT_IMAGES)
        self.logger.dump(self.num_timesteps)
        success = self.state.eval[IN_DISTRIBUTION]
        if self.state.best_success is None or success > self.state.best_success:
            self.state.best_success = success
            save_checkpoint(agent, self.config, self.run_dir / CHECKPOINT_DIR / BEST, **self.state.checkpoint_extra())

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.config.eval.freq and self.num_timesteps - self.last >= self.config.eval.freq:
            self.last = self.num_timesteps
            self.evaluate()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.config.eval.freq and self.state.signum is None and self.num_timesteps > self.last:
            self.last = self.num_timesteps
            self.evaluate()


class TargetCallback(BaseCallback):
    """Record when training success first reaches ``config.target.success`` (and stop there if asked).

    Success is taken over the last ``config.target.episodes`` finished training episodes (the
    window must be full; a resumed run refills it). When the target is met, ``target.json`` in
    the run directory gets the steps and wall-clock seconds it took (over all calls of a resumed
    run, evaluations included), and TensorBoard gets ``target/steps`` and ``target/wall_s``.
    """

    def __init__(self, config: TrainConfig, run_dir: Path, state: RunState):
        super().__init__()
        self.target, self.run_dir, self.state = config.target, run_dir, state
        self.window: deque[bool] = deque(maxlen=self.target.episodes)

    def _on_step(self) -> bool:
        if self.target.success is None:
            return True
        if self.state.target is None:
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done:
                    self.window.append(bool(info.get("is_success", False)))
            rate = float(np.mean(self.window)) if len(self.window) == self.window.maxlen else 0.0
            if rate >= self.target.success:
                self._met(rate)
        return self.state.target is None or not self.target.stop

    def _met(self, rate: float) -> None:
        self.state.target = {
            "success": self.target.success,
            "episodes": self.target.episodes,
            "rate": rate,
            "steps": int(self.num_timesteps),
            "wall_s": round(self.state.elapsed(), 1),
        }
        (self.run_dir / TARGET_FILE).write_text(json.dumps(self.state.target, indent=2) + "\n")
        self.logger.record("target/steps", self.state.target["steps"])
        self.logger.record("target/wall_s", self.state.target["wall_s"])

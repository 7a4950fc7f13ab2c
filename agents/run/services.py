"""Run services: what every training loop calls, whatever the learner.

A learner's ``learn(steps, run)`` reports to :class:`RunServices` and obeys its answer:

- ``run.on_step(num_timesteps, episodes)`` after each batch of environment steps: the progress
  bar (steps, SPS, recent success), the training-success target (``target.json``,
  ``target/steps``, ``target/wall_s``) and stop requests (Ctrl-C / SIGTERM, a met target with
  ``stop``). False means: stop now.
- ``run.on_update(num_timesteps, metrics)`` whenever the learner's state is consistent (after an
  update): a non-finite metric stops the run (the last good checkpoint is kept); every
  ``checkpoint_freq`` steps ``checkpoints/latest.pt`` is saved; every ``eval.freq`` steps the
  learner is evaluated on the validation seeds, ``eval/<split>/success|return|length`` (and a
  rendered ``eval/<split>/episode``) are logged and ``checkpoints/best.pt`` is saved when ``id``
  success improves. With ``log=True`` it also writes ``rollout/ep_rew_mean``,
  ``rollout/ep_len_mean``, ``rollout/success_rate``, ``time/sps`` and the metrics to TensorBoard
  (SB3 learners log those themselves, through the same ``run.logger``).
- ``run.logger``: the run's TensorBoard logger (:class:`~shiftgrid.agents.run.logger.RunLogger`),
  opened by :meth:`RunServices.open`: the learner's own, where it has a ``make_logger(directory)``
  method (SB3's learners), else torch's TensorBoard writer.
- ``run.teacher_cost(demo_steps=..., labels=...)`` whenever a teacher's cost grows: ``teacher/*``
  in TensorBoard, ``teacher/cost.json``, and in ``target.json`` when the target is met.

What a run carries besides its learner (a curriculum teacher choosing its levels) is a
:class:`RunExtension`: restored on resume before the learner takes a step, told of every update
(where it may take steps of its own, counted in the learner's ``num_timesteps``) and of every
save of ``latest.pt``, and asked for scalars at every TensorBoard write.

A resume keeps what the services report from (:class:`~shiftgrid.agents.run.run_state.RunState`,
saved in every checkpoint; see :mod:`shiftgrid.agents.run.run_state`): the count of training
episodes, the last :data:`~shiftgrid.agents.run.run_state.RECENT` of them (``rollout/*``, the progress bar),
the training-success target's window and whether it was met, every evaluation (their schedule
goes on from the last one), how ``best.pt`` was chosen, the wall-clock trained and the teacher's
cost. A learner that goes back to its last update (an on-policy rollout cut short by a signal)
calls ``run.rollback(num_timesteps)``, so the episodes of the steps it will take again are not
counted twice.

Example:
    >>> from shiftgrid.agents.run.checkpoint import Checkpoint
    >>> RunState.of(Checkpoint("ppo", {}, {}, 0, None, [], {}, 0.0, None)).episodes
    0
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from shiftgrid.agents.evaluation.engine_episodes import split_episodes
from shiftgrid.agents.evaluation.episodes import IN_DISTRIBUTION, first_reset_seed, splits_to_evaluate
from shiftgrid.agents.run.checkpoint import Checkpoint, save_checkpoint
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.logger import RunLogger, TensorBoardLogger
from shiftgrid.agents.run.render import episode_frames, frame_grid
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.run_state import Episode, RunState
from shiftgrid.envs.learner_env import has_splits

#: The teacher's cost (running totals by name), in the run dir's ``teacher/`` folder.
TEACHER_COST_FILE = "cost.json"


class RunExtension:
    """Something a run carries besides its learner (see the module docstring); the defaults do nothing."""

    def resume(self, run: "RunServices") -> None:
        """A resumed run, before its learner takes any step (and before its envs' first reset)."""

    def on_update(self, run: "RunServices") -> None:
        """The learner is at a consistent state (after an update), before the services checkpoint and evaluate."""

    def on_save(self, run: "RunServices") -> None:
        """``checkpoints/latest.pt`` was just saved."""

    def scalars(self) -> Mapping[str, float]:
        """TensorBoard tag -> value, recorded at every write."""
        return {}


def finite(values: Iterable[Any]) -> bool:
    """Whether every number (or tensor) in ``values`` is finite.

    Example:
        >>> finite([1.0, 2]), finite([float("nan")])
        (True, False)
    """
    import torch

    for v in values:
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                return False
        elif isinstance(v, (int, float)) and not math.isfinite(v):
            return False
    return True


def _tensors(state: Any) -> Iterator[Any]:
    """Every leaf of a nested state dict."""
    if isinstance(state, Mapping):
        for v in state.values():
            yield from _tensors(v)
    elif isinstance(state, (list, tuple)):
        for v in state:
            yield from _tensors(v)
    else:
        yield state


class RunServices:
    """The services of one training run (see the module docstring).

    Args:
        config: the run's config.
        run_dir: its directory.
        learner: the learner being trained (saved, and evaluated through its ``predict``).
        state: what earlier calls of a resumed run left (a fresh :class:`RunState` otherwise).
        hooks: callables run with these services after every ``on_step`` (tests, teachers, ...).
        extensions: what the run carries besides its learner (:class:`RunExtension`).
    """

    def __init__(self, config: TrainConfig, run_dir: RunDir, learner: Any, state: RunState,
                 hooks: Sequence[Callable[["RunServices"], None]] = (), extensions: Sequence[RunExtension] = ()):
        self.config, self.run_dir, self.learner, self.state, self.hooks = config, run_dir, learner, state, list(hooks)
        self.extensions = list(extensions)
        self.splits = splits_to_evaluate(config.env, config.eval.splits)
        if IN_DISTRIBUTION not in self.splits:
            self.splits.insert(0, IN_DISTRIBUTION)  # the split best.pt is chosen on
        self.num_timesteps = self.start_steps = int(learner.num_timesteps)
        self.last_save = self.num_timesteps
        self.last_eval = int(state.history[-1]["step"]) if state.history else 0  # evaluations keep their schedule on resume
        state.window = deque(state.window, maxlen=config.target.episodes)
        self._at_update: tuple[int, tuple[int, list[Episode], list[bool]] | None] = (self.num_timesteps, None)
        self.logger: RunLogger | None = None
        self.bar: tqdm | None = None
        self._postfix_at = 0.0

    # -- lifetime ---------------------------------------------------------------------------
    def open(self) -> None:
        """Start the clock, the TensorBoard logger and the progress bar."""
        self.state.started = time.perf_counter()
        make_logger = getattr(self.learner, "make_logger", TensorBoardLogger)
        self.logger = make_logger(self.run_dir.tb)
        for name, value in self.state.teacher.items():  # reported before the logger opened
            self.logger.record(f"teacher/{name}", value)
        self.bar = tqdm(total=self.config.steps, initial=self.num_timesteps, unit="step", dynamic_ncols=True,
                        disable=not self.config.progress, desc="train")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.logger is not None:
            self.logger.close()

    @property
    def stopping(self) -> bool:
        return self.state.stop_reason is not None

    def sps(self) -> float:
        """Steps per second since this call started."""
        return (self.num_timesteps - self.start_steps) / max(time.perf_counter() - self.state.started, 1e-9)

    @property
    def recent(self) -> deque[Episode]:
        """The last :data:`RECENT` training episodes of the run (resumes included)."""
        return self.state.recent

    @property
    def window(self) -> deque[bool]:
        """The training-success target's window (successes of the last ``target.episodes`` unadvised episodes)."""
        return self.state.window

    @property
    def episodes(self) -> int:
        """Training episodes ended over the run, resumes included (logged as ``rollout/episodes``)."""
        return self.state.episodes

    def success(self) -> float | None:
        """Success rate over the last :data:`RECENT` training episodes (None before any ended)."""
        return float(np.mean([e.success for e in self.recent])) if self.recent else None

    # -- what a training loop calls ---------------------------------------------------------
    def on_step(self, num_timesteps: int, episodes: Iterable[Episode] = ()) -> bool:
        """Progress, target and stop requests after a batch of steps; False: stop now."""
        self.num_timesteps = int(num_timesteps)
        for e in episodes:
            if self._at_update[1] is None:  # the first episode since the last update: keep what rollback() returns to
                self._at_update = (self._at_update[0], (self.episodes, list(self.recent), list(self.window)))
            self.recent.append(e)
            self.state.episodes += 1
            if self.config.target.success is not None and self.state.target is None and not e.advised:
                self.window.append(bool(e.success))
                self._check_target()
        self._progress()
        for hook in self.hooks:
            hook(self)
        return not self.stopping

    def on_update(self, num_timesteps: int, metrics: Mapping[str, float] | None = None, *, log: bool = True) -> bool:
        """Checks, checkpoints and evaluations at a consistent state; False: stop now."""
        self.num_timesteps = int(num_timesteps)
        self._at_update = (self.num_timesteps, None)
        metrics = dict(metrics or {})
        if not finite(metrics.values()):
            self.state.stop_reason = "nan"
            return False
        for extension in self.extensions:
            extension.on_update(self)
        if log:
            self.log(metrics)
        if self.config.checkpoint_freq and self.num_timesteps - self.last_save >= self.config.checkpoint_freq:
            self.save_latest()
        if self.config.eval.freq and self.num_timesteps - self.last_eval >= self.config.eval.freq and not self.stopping:
            self.evaluate()
        self._at_update = (self.num_timesteps, None)
        return not self.stopping

    def rollback(self, num_timesteps: int) -> None:
        """The learner went back to its state at its last :meth:`on_update` (an on-policy rollout cut short).

        The episodes that ended since are forgotten, so the checkpoint saved next counts exactly the
        episodes of the steps it has learned from (a resumed run plays those steps again).
        ``num_timesteps`` is the learner's step count now; where it is not the last update's, the
        episodes are left as they are.
        """
        step, kept = self._at_update
        if kept is not None and int(num_timesteps) == step:
            self.state.episodes = kept[0]
            self.recent.clear()
            self.recent.extend(kept[1])
            self.window.clear()
            self.window.extend(kept[2])
            self._at_update = (step, None)
        self.num_timesteps = int(num_timesteps)

    def log(self, metrics: Mapping[str, float] = {}) -> None:
        """Write ``rollout/*``, ``time/sps`` and ``metrics`` (full tags) to TensorBoard at the current step."""
        assert self.logger is not None
        if self.recent:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([e.ret for e in self.recent])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([e.length for e in self.recent])))
            self.logger.record("rollout/success_rate", float(np.mean([e.success for e in self.recent])))
            self.logger.record("rollout/episodes", self.episodes)
        self.logger.record("time/sps", int(self.sps()))
        self.record_extensions()
        for tag, value in metrics.items():
            self.logger.record(tag, value)
        self.logger.dump(self.num_timesteps)

    def record_extensions(self) -> None:
        """Record the extensions' scalars for the next TensorBoard write (SB3 learners write through the same logger)."""
        assert self.logger is not None
        for extension in self.extensions:
            for tag, value in extension.scalars().items():
                self.logger.record(tag, value)

    def say(self, message: str) -> None:
        """One line to stderr, above the progress bar (what a learner wants its user to know, e.g. a resume's cost)."""
        tqdm.write(message, file=sys.stderr)

    def take_steps(self, steps: int) -> None:
        """Count ``steps`` environment steps taken outside the learner's own (an extension's) in its ``num_timesteps``.

        They count in the run's ``steps``: once those are reached the run stops (stop reason ``steps``;
        it is evaluated and saved as a finished run), whatever is left of the learner's batch.
        """
        self.learner.num_timesteps = int(self.learner.num_timesteps) + int(steps)
        self.num_timesteps = int(self.learner.num_timesteps)
        if self.num_timesteps >= self.config.steps and not self.stopping:
            self.state.stop_reason = "steps"

    # -- services ---------------------------------------------------------------------------
    def log_image(self, tag: str, image: np.ndarray) -> None:
        """Record an ``HxWx3`` uint8 image under ``tag``; it is written (to TensorBoard only) at the next log write."""
        assert self.logger is not None
        self.logger.record_image(tag, image)

    def checkpoint(self) -> Checkpoint:
        """The learner's envelope now."""
        return Checkpoint(self.config.algo, self.config.to_dict(), self.learner.state_dict(), int(self.learner.num_timesteps),
                          self.state.best, list(self.state.history), dict(self.state.eval), self.state.elapsed(),
                          self.state.target, episodes=self.state.episodes_record())

    def save(self, path: Any) -> bool:
        """Save the envelope to ``path``, unless the learner's state is not finite (then stop; False)."""
        checkpoint = self.checkpoint()
        if not finite(_tensors(checkpoint.state)):
            self.state.stop_reason = "nan"
            return False
        save_checkpoint(checkpoint, path)
        return True

    def save_latest(self) -> bool:
        self.last_save = self.num_timesteps
        saved = self.save(self.run_dir.latest)
        if saved:
            for extension in self.extensions:
                extension.on_save(self)  # may report the teacher's cost as of this save
        self._write_teacher_cost()
        return saved

    def teacher_cost(self, **totals: float) -> None:
        """Record the teacher's cost so far, as running totals (``demo_steps=...``, ``labels=...``, ``advice_tokens=...``).

        The one place a teacher's cost goes, whatever the teacher: each total is logged as
        ``teacher/<name>`` at the next TensorBoard write, kept in ``teacher/cost.json`` (with
        every checkpoint) and written into ``target.json`` when the target is met. The counts
        are the learner's (or teacher's) to keep across resumes: report them again after one.
        """
        self.state.teacher.update({k: float(v) for k, v in totals.items()})
        if self.logger is not None:
            for name, value in totals.items():
                self.logger.record(f"teacher/{name}", value)

    def validation_seeds(self) -> tuple[int, int]:
        """First and last reset seed of every evaluation during training."""
        first = first_reset_seed(self.config.env, self.config.eval.seed)
        return first, first + self.config.eval.episodes - 1

    def engine_device(self) -> Any:
        """Where evaluation episodes on the tensor engine run: the run's device."""
        from shiftgrid.world_models.device import resolve_device

        return resolve_device(self.config.device)

    def evaluate(self) -> None:
        """Evaluate on the validation seeds now, log it, and save ``best.pt`` on a new best ``id`` success."""
        assert self.logger is not None
        self.last_eval = self.num_timesteps
        ev, step = self.config.eval, int(self.learner.num_timesteps)
        done: dict[str, float] = {}
        for name in self.splits:
            if self.stopping:
                return  # asked to stop: do not hold the exit up
            split = name if has_splits(self.config.env) else None
            results = split_episodes(self.learner, self.config.env, split, ev.episodes, seed=ev.seed, n_envs=ev.n_envs,
                                     deterministic=ev.deterministic, env_kwargs=self.config.env_kwargs,
                                     backend=ev.backend, device=self.engine_device())
            done[name] = float(np.mean([r.success for r in results]))
            self.logger.record(f"eval/{name}/success", done[name])
            self.logger.record(f"eval/{name}/return", float(np.mean([r.ret for r in results])))
            self.logger.record(f"eval/{name}/length", float(np.mean([r.length for r in results])))
            if ev.render:
                frames = episode_frames(self.learner, self.config.env, split, seed=ev.seed,
                                       env_kwargs=self.config.env_kwargs)
                self.log_image(f"eval/{name}/episode", frame_grid(frames))
        self.logger.dump(self.num_timesteps)
        self.state.eval = done
        self.state.history.append({"step": step, "success": done})
        success = done[IN_DISTRIBUTION]
        if self.state.best is None or success > self.state.best["success"]:
            first, last = self.validation_seeds()
            self.state.best = {"split": IN_DISTRIBUTION, "success": success, "step": step, "seeds": [first, last]}
            self.save(self.run_dir.best)

    def finish(self) -> None:
        """End of ``learn``: a last evaluation (if the run was not stopped early) and ``latest.pt``."""
        interrupted = self.stopping and self.state.stop_reason not in ("target", "steps")
        if self.config.eval.freq and not interrupted and self.learner.num_timesteps > self.last_eval:
            self.num_timesteps = int(self.learner.num_timesteps)
            self.evaluate()
        if self.state.stop_reason != "nan":
            self.save_latest()

    # -- internals --------------------------------------------------------------------------
    def _write_teacher_cost(self) -> None:
        if self.state.teacher:
            self.run_dir.teacher.mkdir(parents=True, exist_ok=True)
            (self.run_dir.teacher / TEACHER_COST_FILE).write_text(json.dumps(self.state.teacher, indent=2) + "\n")

    def _check_target(self) -> None:
        t = self.config.target
        if t.success is None or len(self.window) < t.episodes or float(np.mean(self.window)) < t.success:
            return
        self.state.target = {"success": t.success, "episodes": t.episodes, "rate": float(np.mean(self.window)),
                             "steps": self.num_timesteps, "wall_s": round(self.state.elapsed(), 1)}
        if self.state.teacher:
            self.state.target["teacher"] = dict(self.state.teacher)
        self.run_dir.target.write_text(json.dumps(self.state.target, indent=2) + "\n")
        assert self.logger is not None
        self.logger.record("target/steps", self.state.target["steps"])
        self.logger.record("target/wall_s", self.state.target["wall_s"])
        if t.stop:
            self.state.stop_reason = "target"

    def _progress(self) -> None:
        assert self.bar is not None
        if self.bar.total is not None and self.num_timesteps > self.bar.total:  # on-policy runs end on a whole rollout
            self.bar.total = self.num_timesteps
        self.bar.update(self.num_timesteps - self.bar.n)
        now = time.perf_counter()
        if now - self._postfix_at > 1.0:
            self._postfix_at = now
            success = self.success()
            self.bar.set_postfix(sps=f"{self.sps():.0f}", success="-" if success is None else f"{success:.2f}", refresh=False)

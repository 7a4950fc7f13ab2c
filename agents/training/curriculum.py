"""Curriculum teachers in training: the SB3 vector-env wrapper, the training vector env, the run extension, the SB3 callback.

:func:`curriculum_vec` builds the training vector env of a config whose ``teacher.name`` is set:
SB3's ``DummyVecEnv`` or ``SubprocVecEnv`` of monitored :class:`~shiftgrid.envs.teacher.curriculum.wrapper.CurriculumEnv`
sub-envs, wrapped in :class:`CurriculumVecEnv`, which drives the teacher in this process (see
:mod:`shiftgrid.envs.teacher.curriculum.driver` for why no reset can bypass it) and logs every
level to ``<run>/teacher/levels.jsonl``. Any learner that trains on
:func:`~shiftgrid.agents.training.envs.make_vec` gets the curriculum's levels; outcome and oracle
teachers need nothing else.

:class:`CurriculumExtension` is the run's side of a curriculum, for every learner (a
:class:`~shiftgrid.agents.run.services.RunExtension`, which :func:`~shiftgrid.agents.run.train.train`
adds): the teacher's state (``teacher/curriculum.json``, with the levels it had chosen and not
yet played) saved with every ``latest.pt`` and restored on resume before the first reset, so
the first levels of a resumed run are the restored teacher's; the ``teacher/*`` diagnostics and
cost; and the side estimates of :mod:`shiftgrid.envs.teacher.curriculum.side`
(``teacher/learnable_share_side``), whose steps are the teacher's ``side_steps`` and are counted
in the learner's ``num_timesteps``, so in every step figure (``target.json``, evaluations, the
curriculum benchmark). Each estimate is logged to ``teacher/side.jsonl``.

:class:`CurriculumCallback` adds, for SB3 learners, what needs the learner's internals: PLR's
scores from the rollout buffer's advantages and PLR⊥'s updates on replayed levels only.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> config = TrainConfig.from_dict({"algo": "ppo", "n_envs": 2, "device": "cpu", "teacher": {"name": "uniform"}})
    >>> env = curriculum_vec(config, log=None)
    >>> _ = env.reset(); env.driver.choices, env.env_method("pending_levels")
    (4, [1, 1])
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Protocol, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from shiftgrid.agents.evaluation.episodes import run_levels
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.services import RunExtension, RunServices
from shiftgrid.envs.learner_env import make_env
from shiftgrid.envs.teacher.curriculum import Curriculum, LevelSpace, make_curriculum
from shiftgrid.envs.teacher.curriculum.base import learnable_share
from shiftgrid.envs.teacher.curriculum.driver import CurriculumDriver
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError
from shiftgrid.envs.teacher.curriculum.log import LEVELS_FILE, LevelLog
from shiftgrid.envs.teacher.curriculum.side import sample_levels, split_options
from shiftgrid.envs.teacher.curriculum.wrapper import CurriculumEnv

#: Where :func:`curriculum_vec` logs levels unless told otherwise: ``<run>/teacher/levels.jsonl``.
DEFAULT_LOG = "run"
#: The teacher's state, saved beside every ``latest.pt`` (and at the end): ``<run>/teacher/curriculum.json``.
STATE_FILE = "curriculum.json"
#: The side estimates, one JSON line each: ``<run>/teacher/side.jsonl``.
SIDE_FILE = "side.jsonl"
#: Stream of the side estimates' own random numbers (their sample of levels, their episodes' seeds), beside the run's seed.
SIDE_STREAM = 5150


class CurriculumVecEnv(VecEnvWrapper):
    """An SB3 vector env of :class:`CurriculumEnv` sub-envs whose every reset (auto-resets included) plays its teacher's level."""

    def __init__(self, venv: VecEnv, teacher: Curriculum, log: LevelLog | None = None):
        super().__init__(venv)
        self.driver = CurriculumDriver(teacher, venv.num_envs, lambda batch: venv.env_method("assign_levels", batch), log)
        self.scored = False  # set by the learner's glue that feeds the teacher the learner's scores
        self._checked = False

    @property
    def teacher(self) -> Curriculum:
        return self.driver.teacher

    def reset(self) -> VecEnvObs:
        return self.driver.reset_all(lambda: (self.venv.reset(), self.venv.reset_infos))

    def step_wait(self) -> VecEnvStepReturn:
        if not self._checked:  # a learner-tier teacher without its scores would quietly play uniform levels
            self._checked = True
            if "advantages" in type(self.teacher).needs and not self.scored:
                raise ConfigError(f"teacher {self.teacher.name} scores levels by the learner's advantages, which this "
                                  f"learner does not report (SB3 on-policy learners do: ppo, a2c, recurrent-ppo)")
        obs, rewards, dones, infos = self.venv.step_wait()
        events = []
        for i in np.flatnonzero(dones):  # SB3 resets a finished sub-env within its step
            events += [(int(i), infos[i], False), (int(i), self.venv.reset_infos[i], True)]
        self.driver.after_step(events)
        return obs, rewards, dones, infos

    def run_extensions(self, config: TrainConfig) -> list[RunExtension]:
        """What this env adds to the run it trains in (:func:`~shiftgrid.agents.run.train.train` asks): the curriculum's side."""
        return [CurriculumExtension(self, config)]

    def close(self) -> None:
        self.driver.close()
        self.venv.close()


def _sub_env(make: Callable[[], Any], index: int, seed: int) -> Monitor:
    env = Monitor(CurriculumEnv(make(), index))
    env.action_space.seed(seed + index)
    return env


def build_teacher(config: TrainConfig) -> Curriculum:
    """The curriculum of ``config.teacher`` over its env's training split (bad names, options or envs: :class:`ConfigError`)."""
    probe = make_env(config.env, config.split, **config.env_kwargs)
    try:
        return make_curriculum(str(config.teacher.name), LevelSpace.of_env(probe), config.teacher.options, seed=config.seed)
    except CurriculumError as e:
        raise ConfigError(str(e)) from None
    finally:
        probe.close()


def curriculum_vec(config: TrainConfig, n_envs: int | None = None, seed: int | None = None,
                   log: LevelLog | None | str = DEFAULT_LOG, teacher: Curriculum | None = None) -> CurriculumVecEnv:
    """The training vector env of ``config`` with its teacher choosing every level.

    ``log``: default the run's level log; ``teacher``: default the one ``config.teacher`` names.
    """
    teacher = teacher or build_teacher(config)
    seed = config.seed if seed is None else seed
    make = functools.partial(make_env, config.env, config.split, advice=config.advice, **config.env_kwargs)
    fns: list[Callable[[], gym.Env]] = [functools.partial(_sub_env, make, i, seed) for i in range(n_envs or config.n_envs)]
    venv = SubprocVecEnv(fns) if config.vec_env == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    if log == DEFAULT_LOG:
        log = LevelLog(RunDir(config.run_dir or ".").teacher / LEVELS_FILE) if config.run_dir else None
    return CurriculumVecEnv(venv, teacher, log)  # type: ignore[arg-type]  # a LevelLog or None: DEFAULT_LOG was replaced above


def segments(levels: list[list[tuple[int, str, int]]]) -> list[tuple[int, str, list[tuple[int, int]]]]:
    """Per sub-env column of a rollout's ``(level_seed, level_hash, choice)`` per step: one entry per episode segment,
    ``(level_seed, level_hash, [(step, sub_env), ...])``.

    Example:
        >>> segments([[(5, "a", 0)], [(5, "a", 0)], [(9, "b", 1)]])
        [(5, 'a', [(0, 0), (1, 0)]), (9, 'b', [(2, 0)])]
    """
    out: list[tuple[int, str, list[tuple[int, int]]]] = []
    for env in range(len(levels[0]) if levels else 0):
        last = None
        for step, row in enumerate(levels):
            if row[env] != last:
                last = row[env]
                out.append((row[env][0], row[env][1], []))
            out[-1][2].append((step, env))
    return out


class CurriculumCallback(BaseCallback):
    """The learner's side of a curriculum for SB3 learners: PLR's scores and PLR⊥'s updates (see the module docstring)."""

    def __init__(self, env: CurriculumVecEnv, run: Any):
        super().__init__()
        self.env, self.run, self.skip = env, run, False
        self.levels: list[list[tuple[int, str, int]]] = []
        self.replayed: list[list[bool]] = []

    @property
    def teacher(self) -> Curriculum:
        return self.env.teacher

    def _on_training_start(self) -> None:
        scored = "advantages" in type(self.teacher).needs
        self.env.scored = scored
        buffer = getattr(self.model, "rollout_buffer", None)
        if (scored or self.teacher.robust) and buffer is None:
            raise ConfigError(f"teacher {self.teacher.name} scores levels from an on-policy rollout buffer; "
                              f"{type(self.model).__name__} has none (use ppo, a2c or recurrent-ppo)")
        if self.teacher.robust:
            if hasattr(buffer, "hidden_states_pi") or hasattr(self.model, "_last_lstm_states"):
                raise ConfigError("plr-robust updates on replayed transitions only, which breaks recurrent sequences; "
                                  "use ppo or a2c")
            model = cast(OnPolicyAlgorithm, self.model)  # it has a rollout buffer (checked above)
            train = model.train

            def robust_train() -> None:  # PLR⊥: no update from a rollout without replayed levels
                if not self.skip:
                    train()

            model.train = robust_train  # type: ignore[method-assign]  # PLR⊥ wraps the update in place

    def _on_rollout_start(self) -> None:
        self.levels, self.replayed = [], []

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        self.levels.append([(int(i["level_seed"]), str(i["level_hash"]), int(i["curriculum_choice"])) for i in infos])
        self.replayed.append([bool(i["curriculum_replayed"]) for i in infos])
        return True

    def _on_rollout_end(self) -> None:
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is not None and len(self.levels) == buffer.buffer_size:
            if "advantages" in type(self.teacher).needs:
                self.teacher.observe_scores([(seed, h, {"advantages": [buffer.advantages[t, e] for t, e in where]})
                                             for seed, h, where in segments(self.levels)])
            if self.teacher.robust:
                self.skip = not keep_replayed(buffer, np.asarray(self.replayed), self.teacher.rng)


class Driven(Protocol):
    """A training vector env whose levels a :class:`CurriculumDriver` hands out (SB3's, the tensor engine's)."""

    driver: CurriculumDriver


class CurriculumExtension(RunExtension):
    """The run's side of a curriculum, for every learner training on a :class:`CurriculumVecEnv` or the tensor engine's
    :class:`~shiftgrid.agents.training.tensor_curriculum.CurriculumTensorEnv` (see the module docstring).

    Side estimates play the learner's policy with sampled actions (not its most likely one: on one
    level a deterministic policy plays the same episode every time, so its success rate would be
    0 or 1), on a separate env of the run's training split made as training makes its own, from
    torch's generators seeded per estimate (the learner's own CPU and CUDA generators are left as they were).
    """

    def __init__(self, env: Driven, config: TrainConfig):
        try:
            self.side = split_options(config.teacher.options)[0]
        except CurriculumError as e:
            raise ConfigError(str(e)) from None
        self.env, self.config = env, config
        self.side_steps = self.side_at = 0  # steps taken, training steps at the last estimate
        self.side_share: float | None = None
        self.rng = np.random.default_rng([config.seed, SIDE_STREAM])

    @property
    def driver(self) -> CurriculumDriver:
        return self.env.driver

    def resume(self, run: RunServices) -> None:
        """Restore the teacher, its queued levels and the side estimates' counts (before the envs' first reset).

        Raises:
            CheckpointError: a saved state that is not one (unreadable, missing fields, another vector env's), naming the file.
        """
        from shiftgrid.agents.run.checkpoint import CheckpointError

        path = run.run_dir.teacher / STATE_FILE
        if not path.is_file():  # stopped before its first save: a fresh teacher, as the run's first session had
            return
        try:
            state = json.loads(path.read_text())
            self.driver.load_state_dict(state)
            side = state.get("side")
            if side is not None:
                self.side_steps, self.side_at = int(side["steps"]), int(side["at"])
                self.side_share = side["share"]
                self.rng.bit_generator.state = side["rng"]
        except (ValueError, KeyError, TypeError, AttributeError, CurriculumError) as e:  # JSONDecodeError is a ValueError
            raise CheckpointError(f"cannot resume the curriculum from {path}: {type(e).__name__}: {e}") from None
        self.driver.steps = int(run.learner.num_timesteps) - self.side_steps  # an unsaved rollout's steps are taken again
        self.report(run)  # the restored totals, before a first update (a target met earlier still shows them)

    def on_update(self, run: RunServices) -> None:
        if self.side.every and self.driver.steps - self.side_at >= self.side.every and self.driver.recent_levels:
            self.estimate(run)
        self.report(run)

    def on_save(self, run: RunServices) -> None:
        self.report(run)
        side = {"steps": self.side_steps, "at": self.side_at, "share": self.side_share,
                "rng": self.rng.bit_generator.state}
        path = run.run_dir.teacher / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.driver.state_dict(), "side": side}))

    def scalars(self) -> dict[str, float]:
        out = {f"teacher/{name}": value for name, value in self.driver.diagnostics().items()}
        if self.side_share is not None:
            out["teacher/learnable_share_side"] = self.side_share
        return out

    def report(self, run: RunServices) -> None:
        """The teacher's cost so far: levels chosen and side steps (totals over the run, resumes included)."""
        run.teacher_cost(levels_chosen=float(self.driver.choices), side_steps=float(self.side_steps))

    def estimate(self, run: RunServices) -> None:
        """One side estimate now: play the sampled levels, log the share, count the steps in the learner's clock."""
        sampled = sample_levels(list(self.driver.recent_levels), self.side.levels, self.rng)
        levels = list(dict.fromkeys(sampled))
        c = self.config
        results = run_levels(run.learner, c.env, c.split, [seed for seed, _ in levels], self.side.episodes,
                             seed=int(self.rng.integers(2**31)), n_envs=c.eval.n_envs, deterministic=False,
                             env_kwargs=c.env_kwargs)
        rates = {}
        for j, (seed, level_hash) in enumerate(levels):
            played = results[j * self.side.episodes:(j + 1) * self.side.episodes]
            hashes = {r.level_hash for r in played}
            if hashes != {level_hash}:
                raise CurriculumError(f"side estimate: level seed {seed} played level hashes {sorted(map(str, hashes))}, "
                                      f"not the training level {level_hash} chosen at that seed")
            rates[seed] = float(np.mean([r.success for r in played]))
        steps = sum(r.length for r in results)
        self.side_share = learnable_share([rates[seed] for seed, _ in sampled])
        self.side_steps += steps
        self.side_at = self.driver.steps
        run.take_steps(steps)
        log = LevelLog(run.run_dir.teacher / SIDE_FILE)
        log.write({"step": run.num_timesteps, "training_steps": self.driver.steps, "steps": steps, "share": self.side_share,
                   "levels": [{"level_seed": seed, "level_hash": h, "success": rates[seed], "episodes": self.side.episodes}
                              for seed, h in levels], "sampled": [seed for seed, _ in sampled]})
        log.close()


def curriculum_callbacks(env: Any, run: Any) -> list[BaseCallback]:
    """``[CurriculumCallback]`` when ``env`` is a curriculum's vector env, else ``[]``."""
    return [CurriculumCallback(env, run)] if isinstance(env, CurriculumVecEnv) else []


def keep_replayed(buffer: Any, replayed: np.ndarray, rng: np.random.Generator) -> bool:
    """Make an on-policy rollout buffer hold only transitions of replayed levels (PLR⊥); False: it has none.

    Each transition of a new level is overwritten by a copy of a replayed one drawn uniformly, so
    the update that follows learns from replayed levels only, with the batch size unchanged.
    """
    keep = np.argwhere(replayed)
    if len(keep) == 0:
        return False
    drop = np.argwhere(~replayed)
    if len(drop):
        src = keep[rng.integers(len(keep), size=len(drop))]
        (ts, es), (tk, ek) = drop.T, src.T
        fields = ["actions", "rewards", "returns", "episode_starts", "values", "log_probs", "advantages"]
        observations = buffer.observations
        arrays = [getattr(buffer, f) for f in fields] + (list(observations.values()) if isinstance(observations, dict)
                                                         else [observations])
        for a in arrays:
            a[ts, es] = a[tk, ek]
    return True

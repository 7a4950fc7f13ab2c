"""Curriculum teachers in training: the SB3 vector-env wrapper, the training vector env, the SB3 callback.

:func:`curriculum_vec` builds the training vector env of a config whose ``teacher.name`` is set:
SB3's ``DummyVecEnv`` or ``SubprocVecEnv`` of monitored :class:`~shiftgrid.envs.teacher.curriculum.wrapper.CurriculumEnv`
sub-envs, wrapped in :class:`CurriculumVecEnv`, which drives the teacher in this process (see
:mod:`shiftgrid.envs.teacher.curriculum.driver` for why no reset can bypass it) and logs every
level to ``<run>/teacher/levels.jsonl``. Any learner that trains on
:func:`~shiftgrid.agents.algos.make_vec` gets the curriculum's levels; outcome and oracle
teachers need nothing else. :class:`CurriculumCallback` adds, for SB3 learners, what needs the
learner: PLR's scores from the rollout buffer's advantages, PLR⊥'s updates on replayed levels
only, the ``teacher/*`` diagnostics and cost, and the teacher's state (``teacher/curriculum.json``,
saved with every ``latest.pt``, restored on resume; the first resets of a resumed run are chosen
before it is restored).

Example:
    >>> from shiftgrid.agents.config import TrainConfig
    >>> config = TrainConfig.from_dict({"algo": "ppo", "n_envs": 2, "device": "cpu", "teacher": {"name": "uniform"}})
    >>> env = curriculum_vec(config, log=None)
    >>> _ = env.reset(); env.driver.choices, env.env_method("pending_levels")
    (4, [1, 1])
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

from shiftgrid.agents.config import ConfigError, TrainConfig
from shiftgrid.agents.envs import make_env
from shiftgrid.agents.rundir import RunDir
from shiftgrid.agents.services import TEACHER_COST_FILE
from shiftgrid.envs.teacher.curriculum import Curriculum, LevelSpace, make_curriculum
from shiftgrid.envs.teacher.curriculum.driver import CurriculumDriver
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError
from shiftgrid.envs.teacher.curriculum.log import LEVELS_FILE, LevelLog
from shiftgrid.envs.teacher.curriculum.wrapper import CurriculumEnv

#: Where :func:`curriculum_vec` logs levels unless told otherwise: ``<run>/teacher/levels.jsonl``.
DEFAULT_LOG = "run"
#: The teacher's state, saved beside every ``latest.pt`` (and at the end): ``<run>/teacher/curriculum.json``.
STATE_FILE = "curriculum.json"


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

    def reset(self):
        self.driver.refill()
        obs = self.venv.reset()
        for i in range(self.num_envs):
            self.driver.on_reset(i, self.venv.reset_infos[i])
        self.driver.refill()
        return obs

    def step_wait(self):
        if not self._checked:  # a learner-tier teacher without its scores would quietly play uniform levels
            self._checked = True
            if "advantages" in type(self.teacher).needs and not self.scored:
                raise ConfigError(f"teacher {self.teacher.name} scores levels by the learner's advantages, which this "
                                  f"learner does not report (SB3 on-policy learners do: ppo, a2c, recurrent-ppo)")
        obs, rewards, dones, infos = self.venv.step_wait()
        self.driver.steps += self.num_envs
        for i in np.flatnonzero(dones):
            self.driver.on_episode_end(int(i), infos[i])
            self.driver.on_reset(int(i), self.venv.reset_infos[i])  # SB3 resets a finished sub-env within its step
        self.driver.refill()
        return obs, rewards, dones, infos

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
    fns = [functools.partial(_sub_env, make, i, seed) for i in range(n_envs or config.n_envs)]
    venv = SubprocVecEnv(fns) if config.vec_env == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    if log == DEFAULT_LOG:
        log = LevelLog(RunDir(config.run_dir or ".").teacher / LEVELS_FILE) if config.run_dir else None
    return CurriculumVecEnv(venv, teacher, log)  # type: ignore[arg-type]


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
    """The learner's side of a curriculum for SB3 learners (see the module docstring)."""

    def __init__(self, env: CurriculumVecEnv, run: Any):
        super().__init__()
        self.env, self.run, self.skip = env, run, False
        self.levels: list[list[tuple[int, str, int]]] = []
        self.replayed: list[list[bool]] = []

    @property
    def teacher(self) -> Curriculum:
        return self.env.teacher

    def _on_training_start(self) -> None:
        self.chosen_before = 0.0
        saved = self.run.run_dir.teacher / TEACHER_COST_FILE
        if self.num_timesteps and saved.is_file():  # a resumed run continues its count
            self.chosen_before = float(json.loads(saved.read_text()).get("levels_chosen", 0.0))
        self.state_file, self.saved_at = self.run.run_dir.teacher / STATE_FILE, self.run.last_save
        if self.num_timesteps and self.state_file.is_file():  # and its teacher continues what it had learned
            self.teacher.load_state_dict(json.loads(self.state_file.read_text()))
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
            train = self.model.train

            def robust_train() -> None:  # PLR⊥: no update from a rollout without replayed levels
                if not self.skip:
                    train()

            self.model.train = robust_train  # type: ignore[method-assign]

    def _on_rollout_start(self) -> None:
        self.levels, self.replayed = [], []
        if self.run.last_save != self.saved_at:  # latest.pt was just saved: save the teacher beside it
            self.save_teacher()

    def _on_training_end(self) -> None:
        self.save_teacher()

    def save_teacher(self) -> None:
        self.saved_at = self.run.last_save
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.teacher.state_dict()))

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
        for name, value in self.env.driver.diagnostics().items():
            self.logger.record(f"teacher/{name}", value)
        self.run.teacher_cost(levels_chosen=self.chosen_before + self.env.driver.choices, side_steps=0)


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

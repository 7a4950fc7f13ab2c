"""Curriculum teachers on the tensor engine: every reset of every engine env plays the level its teacher chose.

:class:`CurriculumTensorEnv` wraps the engine's vector env (:class:`~shiftgrid.envs.engine.vector.TensorVectorEnv`)
and drives the teacher through the same :class:`~shiftgrid.envs.teacher.curriculum.driver.CurriculumDriver`
as SB3's and gymnasium's vector envs. The teacher names levels by level seed; each choice is turned
into a store row of the engine (the bank's row of that level, or the level from the generator,
added to the store: :meth:`~shiftgrid.envs.engine.vector.TensorVectorEnv.rows_for_level_seeds`)
and set as that env's next level, one reset ahead, so the engine's next-step auto-reset plays it
with no host round trip inside the step. After each step the wrapper reads back which envs ended
an episode or were reset (one host transfer) and runs a Python loop over those envs only: it
checks that each reset played the row it had queued (a reset with nothing queued, or on another
row, raises :class:`~shiftgrid.envs.teacher.curriculum.levels.CurriculumError`), and hands the
resets and the ended episodes to the driver, which logs them and asks the teacher for the next
levels. The teacher's new levels are drawn from the levels the engine's own resets draw from (the
bank: :meth:`~shiftgrid.envs.teacher.curriculum.levels.LevelSpace.of_bank`), so ``uniform`` plays
the level distribution plain training plays.

What a teacher needs from the learner is one call, :meth:`CurriculumTensorEnv.after_rollout`:
the learner hands over the GAE advantages of the env's last ``T`` steps, the teacher gets per-level
scores (PLR), and the learner gets back which of those steps its update may learn from (all valid
steps, or for PLR⊥ only those on replayed levels). A learner that cannot give advantages leaves
:attr:`CurriculumTensorEnv.scored` False, and a teacher that needs them stops the run at its first step.

The run's side (teacher state saved with checkpoints and restored on resume, ``teacher/*``,
side estimates, cost) is :class:`~shiftgrid.agents.training.curriculum.CurriculumExtension`, as for
every learner.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> from shiftgrid.envs.engine.vector import make_tensor_vec
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
    >>> config = TrainConfig.from_dict({"algo": "tensor-ppo", "env": "shiftgrid/GoTo-v1", "n_envs": 4,
    ...                                 "teacher": {"name": "uniform"}})
    >>> env = curriculum_tensor_env(config, make_tensor_vec("shiftgrid/GoTo-v1", 4, bank=bank), log=None)
    >>> obs, infos = env.reset()
    >>> env.driver.choices, env.pending_levels()
    (8, [1, 1, 1, 1])
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import torch

from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.services import RunExtension
from shiftgrid.agents.training.curriculum import DEFAULT_LOG, CurriculumExtension, build_teacher, segments
from shiftgrid.envs.engine.levels import int_to_hash
from shiftgrid.envs.engine.vector import TensorVectorEnv
from shiftgrid.envs.teacher.curriculum import Curriculum
from shiftgrid.envs.teacher.curriculum.driver import CurriculumDriver
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError
from shiftgrid.envs.teacher.curriculum.log import LEVELS_FILE, LevelLog


class Queued(NamedTuple):
    """A choice handed to an engine env: its store row, the level seed the teacher asked for, whether it is a replay."""

    row: int
    requested: int
    replayed: bool


class CurriculumTensorEnv:
    """The engine's vector env with a teacher choosing the level of every reset (see the module docstring).

    Args:
        venv: the engine's vector env (a shiftgrid split's).
        teacher: the curriculum (its level space should be the bank's: :func:`curriculum_tensor_env` builds it so).
        log: the level log (None: no log).
    """

    def __init__(self, venv: TensorVectorEnv, teacher: Curriculum, log: LevelLog | None = None):
        self.venv, self.num_envs, self.device = venv, venv.num_envs, venv.device
        self.queues: list[deque[Queued]] = [deque() for _ in range(self.num_envs)]
        self.resets = np.zeros(self.num_envs, dtype=np.int64)  # resets played per env (its current choice is resets - 1)
        self.row = np.full(self.num_envs, -1, dtype=np.int64)  # each env's current level (store row)
        self.requested = np.full(self.num_envs, -1, dtype=np.int64)
        self.replayed = np.zeros(self.num_envs, dtype=bool)
        self.ending = np.zeros(self.num_envs, dtype=bool)  # envs whose episode ended: the next step resets them
        self.ret = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self.length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.records: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per step: (row, choice, replayed)
        self.scored = False  # set by a learner that hands its advantages to after_rollout
        self._checked = False
        self._seed: int | None = None  # the engine's draws at the next reset (reseed)
        self.driver = CurriculumDriver(teacher, self.num_envs, self.assign, log)

    @property
    def teacher(self) -> Curriculum:
        return self.driver.teacher

    @property
    def engine(self) -> Any:
        return self.venv.engine

    @property
    def recording(self) -> bool:
        """Whether the teacher needs the learner's advantages or updates (per-step levels are then kept)."""
        return "advantages" in type(self.teacher).needs or self.teacher.robust

    # -- levels -----------------------------------------------------------------------------------
    def assign(self, batch: dict[int, tuple[int, bool]]) -> None:
        """Queue the driver's choices ``{env: (level_seed, replayed)}`` and set each env's next reset to its first one."""
        order = sorted(batch)
        rows = self.venv.rows_for_level_seeds([int(batch[i][0]) for i in order])
        for i, row in zip(order, rows):
            seed, replayed = batch[i]
            self.queues[i].append(Queued(int(row), int(seed), bool(replayed)))
        self._set_next()

    def _set_next(self) -> None:
        self.venv.set_next_levels(torch.tensor([q[0].row if q else -1 for q in self.queues], dtype=torch.int64))

    def pending_levels(self) -> list[int]:
        """Choices queued per env and not yet played."""
        return [len(q) for q in self.queues]

    def _played(self, envs: np.ndarray, level: torch.Tensor, info: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        """Check that envs ``envs`` were each reset on their first queued row, take it off, and give each one's reset info."""
        index = torch.as_tensor(envs, device=self.device)
        played = torch.stack([level.index_select(0, index), info["level_seed"].index_select(0, index),
                              info["level_hash"].index_select(0, index)]).cpu().numpy()
        infos = []
        for k, i in enumerate(envs):
            row, seed, level_hash = (int(v) for v in played[:, k])
            if not self.queues[i]:
                raise CurriculumError(f"engine env {i} was reset (on store row {row}) with no level assigned by its teacher "
                                      f"(after {self.resets[i]} resets): every reset must play a level the curriculum chose")
            choice = self.queues[i].popleft()
            if row != choice.row:
                raise CurriculumError(f"engine env {i} was reset on store row {row}, not the row {choice.row} its teacher "
                                      f"chose (level seed {choice.requested}): a reset bypassed the teacher")
            self.row[i], self.requested[i], self.replayed[i] = row, choice.requested, choice.replayed
            infos.append({"curriculum_choice": int(self.resets[i]), "curriculum_requested": choice.requested,
                          "curriculum_replayed": choice.replayed, "level_seed": seed, "level_hash": int_to_hash(level_hash)})
            self.resets[i] += 1
        return infos

    # -- the vector env ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
        """Start every env on its teacher's level (``seed``: the engine's draws from here on, e.g. slips; ``options``
        are refused: the teacher names the levels). Returns the observations and each env's reset info."""
        if options:
            raise CurriculumError(f"reset options {sorted(options)} are not taken with a curriculum: its teacher names the levels")
        out: dict[str, Any] = {}
        seed, self._seed = (self._seed if seed is None else seed), None

        def reset() -> tuple[Any, list[dict[str, Any]]]:
            missing = [i for i, q in enumerate(self.queues) if not q]
            if missing:
                raise CurriculumError(f"engine envs {missing} were reset with no level assigned by their teacher")
            rows = torch.tensor([q[0].row for q in self.queues], dtype=torch.int64)
            out["obs"], info = self.venv.reset(seed=seed, options={"levels": rows})
            out["infos"] = self._played(np.arange(self.num_envs), self.engine.state["level"], info)
            return out["obs"], out["infos"]

        self.driver.reset_all(reset)
        self.ending[:] = False
        self.ret.zero_()
        self.length.zero_()
        self.records = []
        return out["obs"], out["infos"]

    def step(self, actions: Any, check: bool = True
             ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One engine step (see :meth:`TensorVectorEnv.step`), then the teacher's accounting of the envs that ended or reset."""
        if not self._checked:  # a learner-tier teacher without its scores would quietly play uniform levels
            self._checked = True
            if "advantages" in type(self.teacher).needs and not self.scored:
                raise ConfigError(f"teacher {self.teacher.name} scores levels by the learner's advantages, which this "
                                  "learner does not hand over (tensor-ppo does)")
        if self.recording:
            self.records.append((self.row.copy(), self.resets - 1, self.replayed.copy()))
        obs, reward, terminated, truncated, info = self.venv.step(actions, check=check)
        resetting = np.flatnonzero(self.ending)  # next-step auto-reset: these envs were reset by this step
        acting = torch.as_tensor(~self.ending, device=self.device)
        self.ret += reward.to(torch.float64) * acting
        self.length += acting.to(torch.int64)
        ending = (terminated | truncated).cpu().numpy()
        ended = np.flatnonzero(ending)
        events: list[tuple[int, dict[str, Any], bool]] = []
        if len(resetting):
            events += [(int(i), d, True) for i, d in zip(resetting, self._played(resetting, info["level_index"], info))]
            self.ret[torch.as_tensor(resetting, device=self.device)] = 0.0
            self.length[torch.as_tensor(resetting, device=self.device)] = 0
        if len(ended):
            index = torch.as_tensor(ended, device=self.device)
            figures = torch.stack([info[k].index_select(0, index).to(torch.float64) for k in ("success", "optimal_return")]
                                  + [self.ret.index_select(0, index), self.length.index_select(0, index).to(torch.float64)])
            ids = torch.stack([info["level_seed"].index_select(0, index), info["level_hash"].index_select(0, index)])
            figures_np, ids_np = figures.cpu().numpy(), ids.cpu().numpy()
            for k, i in enumerate(ended):
                success, optimal, ret, length = figures_np[:, k]
                events.append((int(i), {"success": bool(success), "optimal_return": float(optimal), "curriculum_return": float(ret),
                                        "curriculum_length": int(length), "level_seed": int(ids_np[0, k]),
                                        "level_hash": int_to_hash(int(ids_np[1, k])),
                                        "curriculum_replayed": bool(self.replayed[i])}, False))
        self.driver.after_step(events, steps=self.num_envs - len(resetting))  # its refill sets the next levels (assign)
        self.ending = ending
        return obs, reward, terminated, truncated, info

    # -- what the teacher needs from the learner -----------------------------------------------------
    def after_rollout(self, advantages: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Hand the teacher the learner's GAE ``advantages`` of the env's last ``T`` steps (``(T, N)``; ``valid``: the
        steps an agent acted in); returns the ``(T, N)`` mask of steps the learner's update may learn from.

        Scoring teachers (PLR) get each episode segment's advantages over its valid steps. ``plr-robust``
        (PLR⊥) lets the update learn only from steps on replayed levels (an all-False mask: no update).
        """
        steps = int(advantages.shape[0])
        if not self.recording:
            return valid
        if len(self.records) < steps:
            raise CurriculumError(f"after_rollout got advantages of {steps} steps, but the env recorded {len(self.records)} "
                                  "since the last rollout: hand over the advantages of every step, once per rollout")
        records, self.records = self.records[-steps:], []
        rows, choices, replayed = (np.stack(x) for x in zip(*records))
        if "advantages" in type(self.teacher).needs:
            adv, ok = advantages.detach().cpu().numpy(), valid.cpu().numpy()
            seeds = self.engine.store.arrays["seed"].cpu().numpy()
            hashes = self.engine.store.arrays["hash"].cpu().numpy()
            levels = [[(int(seeds[r]), int_to_hash(int(hashes[r])), int(c)) for r, c in zip(row, choice)]
                      for row, choice in zip(rows, choices)]
            scores = []
            for seed, level_hash, where in segments(levels):
                acted = [adv[t, e] for t, e in where if ok[t, e]]
                if acted:
                    scores.append((seed, level_hash, {"advantages": acted}))
            self.teacher.observe_scores(scores)
        if self.teacher.robust:
            return valid & torch.as_tensor(replayed, device=valid.device)
        return valid

    # -- the run ------------------------------------------------------------------------------------
    def run_extensions(self, config: TrainConfig) -> list[RunExtension]:
        """What this env adds to the run it trains in: the curriculum's side (:class:`CurriculumExtension`)."""
        return [CurriculumExtension(self, config)]

    def reseed(self, seed: int) -> None:
        """Draw the engine's random numbers (slips) from ``seed`` from the next reset on (a resumed run's fresh episodes)."""
        self._seed = int(seed)

    def distinct_levels(self) -> int:
        return self.venv.distinct_levels()

    def close(self) -> None:
        self.driver.close()
        self.venv.close()


def curriculum_tensor_env(config: TrainConfig, venv: TensorVectorEnv, log: LevelLog | None | str = DEFAULT_LOG,
                          teacher: Curriculum | None = None) -> CurriculumTensorEnv:
    """``venv`` (the engine's training envs of ``config``) with ``config.teacher`` choosing every level; its new levels
    are drawn from the levels ``venv`` draws from (:meth:`LevelSpace.of_bank`). ``log``: default the run's level log;
    ``teacher``: default the one ``config`` names (:func:`~shiftgrid.agents.training.curriculum.build_teacher`)."""
    teacher = teacher or build_teacher(config)
    pool = venv.store.pool.cpu().numpy()
    teacher.levels = teacher.levels.of_bank(venv.store.arrays["seed"].cpu().numpy()[pool])
    if log == DEFAULT_LOG:
        log = LevelLog(RunDir(config.run_dir).teacher / LEVELS_FILE) if config.run_dir else None
    return CurriculumTensorEnv(venv, teacher, log)  # type: ignore[arg-type]  # a LevelLog or None: DEFAULT_LOG was replaced

"""The teacher's side of the reset plumbing, in the main process, whatever the vector env.

A :class:`CurriculumDriver` keeps every sub-env one level ahead: before any step can end an
episode, the sub-env already holds (in its :class:`~shiftgrid.envs.teacher.curriculum.wrapper.CurriculumEnv`
queue, or the tensor engine's next level: ``shiftgrid.agents.training.tensor_curriculum``) the level its next
reset will play. An auto-reset happens inside the vector env's step
(SB3's vector envs, in this process or a subprocess) or at the next step (gymnasium's), where
the teacher cannot be asked; so the teacher chooses ahead, at the previous reset. The cost of
this: a sub-env's next level is chosen before its current episode's outcome is known (the
outcomes of every other finished episode are). After every step the vector-env wrapper reports
the resets it saw (:meth:`on_reset`) and the episodes that ended (:meth:`on_episode_end`), and
:meth:`refill` chooses a level for each sub-env whose queue is empty.

Each reset's info says which of its sub-env's choices it plays (``curriculum_choice``); the
driver checks that this is the next choice it made for that sub-env, so a reset it did not see,
or a level it did not choose, fails loudly (:class:`CurriculumError`) instead of passing silently.

A resumed run continues the driver (:meth:`state_dict`, :meth:`load_state_dict`): the teacher's
state, and the choices it had made and queued but not yet played, which the first resets after
the restore play (they are handed to the sub-envs at once, so no reset can come first).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> from shiftgrid.envs.teacher.curriculum import LevelSpace, make_curriculum
    >>> from shiftgrid.envs.teacher.curriculum.wrapper import CurriculumEnv
    >>> env = CurriculumEnv(gym.make("shiftgrid/GoTo-v1"), index=0)
    >>> teacher = make_curriculum("uniform", LevelSpace.of_env(env), seed=0)
    >>> driver = CurriculumDriver(teacher, 1, env.assign_levels)
    >>> driver.refill(); _, info = env.reset(); driver.on_reset(0, info); driver.refill()
    >>> driver.choices, env.pending_levels(), driver.diagnostics()["unique_levels"]
    (2, 1, 1.0)
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.base import RECENT, Curriculum, LevelChoice, Outcome
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, numeric_factors
from shiftgrid.envs.teacher.curriculum.log import LevelLog

Assign = Callable[[dict[int, tuple[int, bool]]], object]  # what it returns is ignored


class CurriculumDriver:
    """Choose, hand out and account for every sub-env's levels (see the module docstring).

    Args:
        teacher: the curriculum.
        n_envs: sub-envs of the vector env.
        assign: sends ``{sub_env: (level_seed, replayed)}`` to the sub-envs (``env_method`` / ``call``).
        log: the level log (None: no log).
    """

    def __init__(self, teacher: Curriculum, n_envs: int, assign: Assign, log: LevelLog | None = None):
        self.teacher, self.n_envs, self.assign, self.log = teacher, n_envs, assign, log
        self.pending: list[deque[LevelChoice]] = [deque() for _ in range(n_envs)]
        self.played = [0] * n_envs  # resets seen per sub-env
        self.current: list[dict[str, Any] | None] = [None] * n_envs
        self.steps = 0
        self.hashes: set[str] = set()
        self.factors: deque[dict[str, float]] = deque(maxlen=RECENT)
        self.recent_levels: deque[tuple[int, str]] = deque(maxlen=RECENT)  # (level_seed, level_hash) as played

    def refill(self) -> None:
        """Choose a level for every sub-env that holds none, and send the choices in one call."""
        batch = {}
        for i in range(self.n_envs):
            if not self.pending[i]:
                choice = self.teacher.choose(i)
                self.pending[i].append(choice)
                batch[i] = (choice.level_seed, choice.replayed)
        if batch:
            self.assign(batch)

    def on_reset(self, i: int, info: Mapping[str, Any]) -> None:
        """Sub-env ``i`` was reset with ``info``: match it to the choice it plays, and log the level."""
        index, requested = info.get("curriculum_choice"), info.get("curriculum_requested")
        expected = self.pending[i][0].level_seed if self.pending[i] else None
        if index != self.played[i] or requested != expected:
            raise CurriculumError(f"sub-env {i} played choice {index!r} (level seed {requested!r}) but the teacher's next "
                                  f"choice for it is {self.played[i]} (level seed {expected!r}): a reset bypassed the teacher")
        choice = self.pending[i].popleft()
        self.played[i] += 1
        seed, level_hash = int(info["level_seed"]), str(info["level_hash"])
        factors = self.teacher.levels.factors_of(seed)
        self.current[i] = {"level_seed": seed, "level_hash": level_hash, "replayed": choice.replayed}
        self.hashes.add(level_hash)
        self.recent_levels.append((seed, level_hash))
        self.factors.append(numeric_factors(factors))
        if self.log is not None:
            self.log.write({"step": self.steps, "sub_env": i, "choice": index, "level_seed": seed,
                            "requested_seed": choice.level_seed, "level_hash": level_hash, "factors": factors,
                            "replayed": choice.replayed, "score": choice.score})

    def on_episode_end(self, i: int, info: Mapping[str, Any]) -> None:
        """Sub-env ``i`` ended an episode (``info`` of its last step): the teacher observes the outcome."""
        knowledge = {"success": bool(info.get("success", False)), "return": float(info["curriculum_return"]),
                     "length": int(info["curriculum_length"])}
        if "optimal_return" in info:
            knowledge["optimal_return"] = float(info["optimal_return"])
        self.teacher.observe(Outcome(i, int(info["level_seed"]), str(info["level_hash"]),
                                     bool(info.get("curriculum_replayed", False)), knowledge))

    def reset_all(self, reset: Callable[[], tuple[Any, Sequence[Mapping[str, Any]]]]) -> Any:
        """Reset every sub-env with ``reset`` (its result and each sub-env's info), every one playing a chosen level.

        Returns what ``reset`` returned first (the observations).
        """
        self.refill()
        obs, infos = reset()
        for i, info in enumerate(infos):
            self.on_reset(i, info)
        self.refill()
        return obs

    def after_step(self, events: Iterable[tuple[int, Mapping[str, Any], bool]], steps: int | None = None) -> None:
        """Count one step of every sub-env (or ``steps``: those the learner acted in), then account for its
        ``(sub_env, info, is_reset)`` events in order: an episode that ended (``is_reset`` False) or a reset (True);
        then choose the levels now needed."""
        self.steps += self.n_envs if steps is None else int(steps)
        for i, info, is_reset in events:
            if is_reset:
                self.on_reset(i, info)
            else:
                self.on_episode_end(i, info)
        self.refill()

    @property
    def choices(self) -> int:
        """Levels chosen so far (the teacher counts every choice, and restores the count on resume)."""
        return self.teacher.chosen

    def diagnostics(self) -> dict[str, float]:
        """``teacher/*`` figures: unique levels played, levels chosen, the teacher's own, mean factors of recent levels."""
        out = {"unique_levels": float(len(self.hashes)), "levels_chosen": float(self.choices), **self.teacher.diagnostics()}
        names = sorted({k for f in self.factors for k in f})
        for name in names:
            out[f"factor/{name}"] = float(np.mean([f[name] for f in self.factors if name in f]))
        return out

    def state_dict(self) -> dict[str, Any]:
        """The teacher's state, plus the choices queued for each sub-env and the steps counted so far."""
        pending = [[[c.level_seed, c.replayed, c.score] for c in q] for q in self.pending]
        return {**self.teacher.state_dict(), "driver": {"pending": pending, "steps": self.steps}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` before any reset: the teacher's state, and its queued choices sent to the sub-envs.

        A state without a ``driver`` part (teacher only) restores the teacher; the first resets then ask it anew.
        """
        if any(self.pending) or any(self.played):
            raise CurriculumError("a curriculum's state is restored before its vector env's first reset; this one "
                                  f"already holds or played choices ({sum(map(len, self.pending))} queued, {sum(self.played)} played)")
        self.teacher.load_state_dict(state)
        driver = state.get("driver")
        if driver is None:
            return
        if len(driver["pending"]) != self.n_envs:
            raise CurriculumError(f"the saved curriculum state queues levels for {len(driver['pending'])} sub-envs; "
                                  f"this vector env has {self.n_envs}")
        self.steps = int(driver["steps"])
        for i, queue in enumerate(driver["pending"]):
            self.pending[i].extend(LevelChoice(int(seed), bool(replayed), score) for seed, replayed, score in queue)
        for depth in range(max(map(len, self.pending), default=0)):  # in order: a sub-env plays its queue first to last
            self.assign({i: (q[depth].level_seed, q[depth].replayed) for i, q in enumerate(self.pending) if len(q) > depth})

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

"""The curriculum teacher interface: choose the next level of a sub-environment, learn from what happened.

A :class:`Curriculum` is a :class:`~shiftgrid.envs.teacher.knowledge.Teacher`: it declares a
knowledge tier and reads everything through :meth:`~shiftgrid.envs.teacher.knowledge.Teacher.read`,
so a teacher that needs more than its tier gives fails with ``KnowledgeError`` when it is built
(from :attr:`Curriculum.needs`) and whenever it reads. It answers:

- :meth:`Curriculum.next_level` ``(sub_env)`` -> :class:`LevelChoice`: the level seed this
  sub-environment plays at its next reset, and whether it is a replay of a level already played;
- :meth:`Curriculum.observe` ``(outcome)``: a finished episode (the level as played, and the
  knowledge items of its episode: ``success``, ``return``, ``length``, ``optimal_return``);
- :meth:`Curriculum.observe_scores` ``(scores)``: the learner's scores of levels (value errors of
  the latest rollout; tier ``learner``).

Example:
    >>> import numpy as np
    >>> class First(Curriculum):
    ...     def next_level(self, sub_env):
    ...         return self.new_level()
    >>> import gymnasium as gym, shiftgrid.envs
    >>> teacher = First(LevelSpace.of_env(gym.make("shiftgrid/GoTo-v1")), seed=0)
    >>> choice = teacher.next_level(0)
    >>> teacher.levels.contains(choice.level_seed), choice.replayed
    (True, False)
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, LevelSpace
from shiftgrid.envs.teacher.knowledge import Teacher, Tier

#: Chosen levels the recent diagnostics (replay share, factor means, learnable share) are taken over.
RECENT = 200
#: A level is "learnable" for the diagnostics when its success rate is in this range ...
LEARNABLE = (0.1, 0.9)
#: ... over at least this many of its recent episodes (levels with fewer are not counted).
MIN_EPISODES = 3


def learnable_share(rates: Sequence[float]) -> float:
    """The share of success ``rates`` inside :data:`LEARNABLE` (the training-episode and the side estimates alike).

    Example:
        >>> learnable_share([0.5, 1.0, 0.0, 0.25])
        0.5
    """
    if not rates:
        raise CurriculumError("a learnable share needs at least one level's success rate")
    lo, hi = LEARNABLE
    return float(np.mean([lo <= r <= hi for r in rates]))


@dataclass(frozen=True)
class LevelChoice:
    """A teacher's choice for one reset: the level seed, whether it replays a known level, and its score then."""

    level_seed: int
    replayed: bool = False
    score: float | None = None


@dataclass(frozen=True)
class Outcome:
    """A finished episode on a curriculum's level.

    ``level_seed`` and ``level_hash`` are the level as played (the seed the env settled on);
    ``knowledge`` holds the items the episode gave (``success``, ``return``, ``length`` and, from
    the oracle, ``optimal_return``), read by teachers only through their tier.
    """

    sub_env: int
    level_seed: int
    level_hash: str
    replayed: bool
    knowledge: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LevelStats:
    """What a teacher has seen of one level: its episodes' successes and returns, its score, when it was last chosen."""

    level_seed: int
    level_hash: str = ""
    successes: deque = field(default_factory=lambda: deque(maxlen=20))
    returns: deque = field(default_factory=lambda: deque(maxlen=20))
    optimal_return: float | None = None
    score: float = 0.0
    last_chosen: int = 0
    episodes: int = 0

    def success_estimate(self) -> float:
        """Posterior mean of the level's success under a uniform prior: (s + 1) / (n + 2)."""
        return (sum(self.successes) + 1.0) / (len(self.successes) + 2.0)


class Curriculum(Teacher, abc.ABC):
    """Base of every curriculum teacher (see the module docstring).

    Args:
        levels: the training split it chooses in.
        seed: seed of its own random choices.
        tier: a knowledge tier replacing the class's (an experimental variable; too low a tier for
            :attr:`needs` raises ``KnowledgeError`` here).
    """

    #: Knowledge items the teacher needs; checked against its tier when it is built.
    needs: ClassVar[tuple[str, ...]] = ()
    #: Update the learner only on replayed levels (PLR⊥); the learner's glue honours it.
    robust: ClassVar[bool] = False

    def __init__(self, levels: LevelSpace, seed: int = 0, tier: str | None = None):
        if tier is not None:
            self.tier = Tier.parse(tier)
        for item in self.needs:
            self.require(item)
        self.levels, self.rng = levels, np.random.default_rng(seed)
        self.stats: dict[int, LevelStats] = {}
        self.chosen = 0
        self.recent: deque[tuple[LevelChoice, float | None]] = deque(maxlen=RECENT)

    # -- what the vector-env driver calls -------------------------------------------------------
    @abc.abstractmethod
    def next_level(self, sub_env: int) -> LevelChoice:
        """The level sub-environment ``sub_env`` plays at its next reset."""

    def choose(self, sub_env: int) -> LevelChoice:
        """:meth:`next_level`, counted and checked to be inside the training split."""
        choice = self.next_level(sub_env)
        if not self.levels.contains(choice.level_seed):
            lo, hi = self.levels.seed_range
            raise CurriculumError(f"{self.name} chose level seed {choice.level_seed} outside the training range [{lo}, {hi})")
        self.chosen += 1
        known = self.stats.get(choice.level_seed)
        if known is not None:
            known.last_chosen = self.chosen
        measured = known is not None and len(known.successes) >= MIN_EPISODES
        self.recent.append((choice, float(np.mean(known.successes)) if known is not None and measured else None))
        return choice

    def observe(self, outcome: Outcome) -> None:
        """Learn from a finished episode (the base keeps the per-level outcomes every teacher may read)."""
        s = self.level(outcome.level_seed, outcome.level_hash)
        s.episodes += 1
        s.successes.append(float(bool(self.read("success", outcome.knowledge))))
        s.returns.append(float(self.read("return", outcome.knowledge)))

    def observe_scores(self, scores: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None:
        """Learn from the learner's scores: ``(level_seed, level_hash, knowledge)`` per scored level (default: ignored)."""

    # -- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the teacher has learned, as plain JSON values (:meth:`load_state_dict` restores it)."""
        levels = [{"seed": s.level_seed, "hash": s.level_hash, "successes": list(s.successes), "returns": list(s.returns),
                   "optimal_return": s.optimal_return, "score": s.score, "last_chosen": s.last_chosen, "episodes": s.episodes}
                  for s in self.stats.values()]
        return {"teacher": self.name, "chosen": self.chosen, "rng": self.rng.bit_generator.state, "levels": levels}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (of a teacher of the same class)."""
        if state.get("teacher") != self.name:
            raise CurriculumError(f"cannot restore {self.name} from the state of {state.get('teacher')!r}")
        self.chosen = int(state["chosen"])
        self.rng.bit_generator.state = state["rng"]
        self.stats = {}
        for d in state["levels"]:
            s = self.level(int(d["seed"]), d["hash"])
            s.successes.extend(d["successes"])
            s.returns.extend(d["returns"])
            s.optimal_return, s.score, s.last_chosen, s.episodes = d["optimal_return"], d["score"], d["last_chosen"], d["episodes"]

    # -- shared helpers -------------------------------------------------------------------------
    def level(self, seed: int, level_hash: str = "") -> LevelStats:
        """The stats of the level at ``seed`` (created on first sight)."""
        s = self.stats.get(seed)
        if s is None:
            s = self.stats[seed] = LevelStats(seed, level_hash, last_chosen=self.chosen)
        elif level_hash and not s.level_hash:
            s.level_hash = level_hash
        return s

    def new_level(self) -> LevelChoice:
        """A fresh level drawn uniformly from the training split."""
        return LevelChoice(self.levels.new_seed(self.rng), replayed=False)

    def diagnostics(self) -> dict[str, float]:
        """Over the last :data:`RECENT` choices: replay share and learnable share (the share of chosen levels with at
        least :data:`MIN_EPISODES` recent episodes whose success rate is in :data:`LEARNABLE`, from training outcomes;
        the estimate on the side is :mod:`~shiftgrid.envs.teacher.curriculum.side`'s); and levels known."""
        out: dict[str, float] = {"levels_known": float(len(self.stats))}
        if not self.recent:
            return out
        out["replay_share"] = float(np.mean([c.replayed for c, _ in self.recent]))
        estimates = [p for _, p in self.recent if p is not None]
        if estimates:
            out["learnable_share"] = learnable_share(estimates)
        return out

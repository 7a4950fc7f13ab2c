"""``expert``: BabyAI's intelligent expert -- demonstrate exactly the missions the learner fails.

Each round: clone the demonstrations so far (``epochs`` passes), let the learner play
``probe_episodes`` fresh held-out levels of the *training* split, and have the oracle teacher
demonstrate each level the learner failed (the same reset seed, so the same level and mission;
at most ``max_new_demos`` a round), then repeat. The first round starts from ``--demos DIR``, or
from ``initial_demos`` teacher demonstrations.

Probes play on the tensor engine where it plays the split as the minigrid env would (``eval.backend``,
``auto`` by default: the same episodes either way), and on the minigrid env when the run's last steps
would end a round's probes early. Probe levels reset with seeds from :data:`PROBE_SEED` on (each used once, in order): disjoint
from the initial demonstrations' seeds (``seed``, ``seed + 1``, ...), from the validation seeds
of checkpoint selection and from ``shiftgrid evaluate``'s (which score held-out splits; on ids
without splits evaluation's reset seeds start at 10^9 and the probes' at 10^9 + PROBE_SEED).

The step clock: ``num_timesteps`` counts every environment step, the learner's probe episodes
and the teacher's demonstrations alike (cloning takes none). ``teacher/demo_episodes`` and
``teacher/demo_steps`` are the teacher's share (a demonstration the teacher fails is
not kept, but its steps count: ``teacher/failed_demo_steps``); the probe episodes are the training episodes the
run reports (``rollout/success_rate``, the training-success target). The run stops at its steps:
once they are taken no new probe episode or demonstration starts (the episodes under way finish,
so a run ends at most ``eval.n_envs`` episodes past them) and the learner is fitted a last time
on the demonstrations it has.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> result = train(TrainConfig(algo="expert", steps=50, device="cpu", progress=False,
    ...                            hyperparams={"initial_demos": 3, "probe_episodes": 4, "epochs": 1},
    ...                            run_dir=tempfile.mkdtemp() + "/run", eval=EvalConfig(freq=0)))
    >>> result.num_timesteps >= 50
    True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

from shiftgrid.agents.evaluation.engine_episodes import split_episodes
from shiftgrid.agents.evaluation.episodes import EpisodeResult, first_reset_seed, run_episodes
from shiftgrid.agents.imitation.cloning import CloningConfig, CloningLearner
from shiftgrid.agents.imitation.datasets import Episode as Demonstration
from shiftgrid.agents.imitation.datasets import default_teacher, read_episodes, record_episode, recording_env
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.services import Episode, RunServices
from shiftgrid.envs.learner_env import has_splits

#: Demonstrations the teacher records before the first round when neither ``--demos`` nor ``initial_demos`` says.
INITIAL_DEMOS = 100
#: First probe seed (before :func:`~shiftgrid.agents.evaluation.episodes.first_reset_seed`'s offset on ids without splits).
PROBE_SEED = 500_000_000


@dataclass
class ExpertConfig(CloningConfig):
    """The intelligent expert's settings (``hyperparams``), besides the supervised update's."""

    initial_demos: int | None = None
    """Demonstrations before the first round: the dataset's first ones with ``--demos`` (None: all of them), else
    recorded by the teacher (None: 100)."""
    probe_episodes: int = 200
    """Fresh training-split levels the learner plays each round."""
    max_new_demos: int | None = None
    """Most failed missions demonstrated a round (None: every one)."""
    epochs: int = 5
    """Passes over the demonstrations each round."""
    max_demos: int | None = None
    """Most demonstrations in all (initial ones included): a round adds at most what is left, and once the total
    is reached the learner is fitted on it one last time and the run ends (None: run for the steps given)."""
    max_rounds: int | None = None
    """Most rounds: the run ends after them, whatever its steps (None: run for the steps given)."""


@dataclass(frozen=True)
class Round:
    """One round of the expert: the learner's probe episodes, their reset seeds, and the demonstrations added."""

    probes: list[EpisodeResult]
    seeds: list[int]
    demos: list[Demonstration]

    @property
    def failed_seeds(self) -> list[int]:
        return [s for s, r in zip(self.seeds, self.probes) if not r.success]


class ExpertLearner(CloningLearner):
    """The intelligent expert (see the module docstring)."""

    settings_class = ExpertConfig
    settings: ExpertConfig  # built from settings_class

    def __init__(self, config: TrainConfig, *, training: bool):
        super().__init__(config, training=training)
        s: ExpertConfig = self.settings
        if s.probe_episodes < 1 or s.epochs < 1:
            raise ConfigError(f"expert needs probe_episodes and epochs >= 1, got {s.probe_episodes}, {s.epochs}")
        if min(s.max_demos or 1, s.max_rounds or 1) < 1:
            raise ConfigError(f"expert needs max_demos and max_rounds >= 1 (or None), got {s.max_demos}, {s.max_rounds}")
        self.rounds = self.probed = 0
        self.failed_steps = 0  # steps of teacher demonstrations that failed, not yet counted
        self.env: Any = None
        if not training:
            return
        self.teacher_model = default_teacher()
        self.env, self.split = recording_env(config.env, config.split, config.env_kwargs)

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "rounds": int(self.rounds), "probed": int(self.probed)}

    def demos_left(self) -> int | None:
        """Demonstrations still allowed by ``max_demos`` (None: no limit)."""
        s: ExpertConfig = self.settings
        return None if s.max_demos is None else max(0, s.max_demos - int(self.teacher.get("demo_episodes", 0)))

    def demonstrate(self, seed: int) -> Demonstration | None:
        """The teacher's demonstration of the level ``reset(seed=seed)`` gives (None where the teacher fails it)."""
        rec = record_episode(self.env, seed, self.teacher_model)
        if rec.success:
            return rec.episode()
        self.failed_steps += len(rec.actions)  # counted at the next _add: every step the teacher takes is a step
        return None

    def teach(self, agent: Any, step_budget: int | None = None) -> Round:
        """Probe ``agent`` on the next ``probe_episodes`` fresh training levels and demonstrate the ones it failed.

        With ``step_budget``, no probe episode or demonstration starts once the round has taken that many steps.
        """
        s: ExpertConfig = self.settings
        seed = PROBE_SEED + self.probed
        probes = split_episodes(agent, self.config.env, self.split, s.probe_episodes, seed=seed, n_envs=self.config.eval.n_envs,
                                env_kwargs=self.config.env_kwargs, backend=self.config.eval.backend)
        if step_budget is not None and sum(r.length for r in probes) > step_budget:  # the budget binds: stop in time
            probes = run_episodes(agent, self.config.env, self.split, s.probe_episodes, seed=seed,
                                  n_envs=self.config.eval.n_envs, env_kwargs=self.config.env_kwargs, step_budget=step_budget)
        first = first_reset_seed(self.config.env, PROBE_SEED + self.probed)
        seeds = [first + i for i in range(len(probes))]
        self.probed += s.probe_episodes  # levels probed, or passed over for the budget, are not probed again
        left = [n for n in (s.max_new_demos, self.demos_left()) if n is not None]
        failed = [seed for seed, r in zip(seeds, probes) if not r.success][:min(left, default=None)]
        budget = None if step_budget is None else step_budget - sum(r.length for r in probes)
        return Round(probes, seeds, self.demonstrate_all(failed, budget))

    def demonstrate_all(self, seeds: Iterable[int], step_budget: int | None = None) -> list[Demonstration]:
        """The teacher's demonstrations of the levels of ``seeds``, in order, starting none once ``step_budget`` steps are taken."""
        demos: list[Demonstration] = []
        failed_before = self.failed_steps
        for seed in seeds:
            if step_budget is not None and sum(len(d) for d in demos) + self.failed_steps - failed_before >= step_budget:
                break
            demo = self.demonstrate(seed)
            if demo is not None:
                demos.append(demo)
        return demos

    def _add(self, run: RunServices, demos: list[Demonstration]) -> None:
        for d in demos:
            self.data.add_episode(d, self.settings.gamma)
        steps, failed = sum(len(d) for d in demos), self.failed_steps
        self.num_timesteps += steps + failed
        self.failed_steps = 0
        self.report_teacher(run, demo_episodes=len(demos), demo_steps=steps, **({"failed_demo_steps": failed} if failed else {}))

    def learn(self, steps: int, run: RunServices) -> None:
        s: ExpertConfig = self.settings
        end = self.num_timesteps + steps
        run.teacher_cost(**self.teacher)
        if not len(self.data):
            if self.config.demos is not None:
                split = (self.config.split or "train") if has_splits(self.config.env) else None
                demos = list(itertools.islice(read_episodes(self.config.demos, env_id=self.config.env, split=split,
                                                            env_kwargs=self.config.env_kwargs), s.initial_demos))
            else:
                first, count = self.config.seed, INITIAL_DEMOS if s.initial_demos is None else s.initial_demos
                demos = self.demonstrate_all(range(first, first + min(count, s.max_demos or count)), end - self.num_timesteps)
            self._add(run, demos)
            if not demos:
                raise ConfigError("the expert has no demonstrations to start from (initial_demos = 0 and no --demos)")
            if self.num_timesteps >= end:  # the initial demonstrations took the steps: learn them, then stop
                run.on_update(self.num_timesteps, self.fit(s.epochs))
                return
        while self.num_timesteps < end:
            metrics = self.fit(s.epochs)
            round_ = self.teach(self, end - self.num_timesteps)
            self.num_timesteps += sum(r.length for r in round_.probes)
            self._add(run, round_.demos)
            self.rounds += 1
            success = sum(r.success for r in round_.probes) / len(round_.probes)
            if not run.on_step(self.num_timesteps, [Episode(r.success, r.ret, r.length) for r in round_.probes]):
                return
            if not run.on_update(self.num_timesteps, {**metrics, "train/probe_success": success, "train/round": self.rounds,
                                                      "train/new_demos": len(round_.demos), "train/dataset": len(self.data)}):
                return
            if self.demos_left() == 0 or self.rounds == s.max_rounds or self.num_timesteps >= end:
                run.on_update(self.num_timesteps, self.fit(s.epochs))  # learn the last demonstrations, then stop
                return

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def EXPERT(config: TrainConfig, *, training: bool) -> Any:
    """The registry entry of ``expert``."""
    return ExpertLearner(config, training=training)

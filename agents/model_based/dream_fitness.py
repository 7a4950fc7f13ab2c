"""Whether a world model can teach in a dream: its rewards and episode ends, one step ahead, on held-out real episodes.

A learner trained only in a dream (``shiftgrid train --dream RUN``) learns from the model's
reward and continuation heads. Where those sit at the base rate of a sparse signal (rewarded
steps are well under 1% of what a model replays), the dream pays a smear and never ends an
episode, and the learner trains on noise. So before it trains, the model's **reward F1** and
**termination F1** one step ahead (:mod:`shiftgrid.world_models.scoring`: context 1, horizon 1,
as a dream starts from one real observation) are measured on real episodes of the ``id`` split
played on the evaluation seeds (held out from training and validation), with its direction
accuracy reported beside them. The episodes are played by the oracle, a quarter of its actions
random, where the env has one (so they hold rewards and ends), else by the run's own behaviour
(what ``shiftgrid wm evaluate`` plays for it).

Example:
    >>> fitness = DreamFitness(reward_f1=0.1, termination_f1=0.9, direction_accuracy=0.5, episodes=50,
    ...                        behaviour="oracle, 0.25 of actions random")
    >>> fitness.shortfalls(0.5)
    ['reward F1 0.10 < 0.5']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import gymnasium as gym

from shiftgrid.agents.evaluation.world_model import record_splits
from shiftgrid.agents.model_based.behaviour import Behaviour, make_behaviour
from shiftgrid.agents.model_based.run_model import ScoredRun, load_scored_run
from shiftgrid.agents.run.errors import ConfigError
from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.scoring import score_splits

#: Reward and termination F1 (one step ahead) below which a dream refuses to train a learner.
DEFAULT_MIN_F1 = 0.5
#: Held-out real episodes the figures are measured on.
DEFAULT_EPISODES = 50
#: Share of the oracle's actions taken at random (so the episodes also hold steps off the optimal path).
ORACLE_NOISE = 0.25


@dataclass(frozen=True)
class DreamFitness:
    """One step ahead on held-out real episodes: reward F1, termination F1 (NaN: no positive, real or
    predicted, to score) and direction accuracy."""

    reward_f1: float
    termination_f1: float
    direction_accuracy: float
    episodes: int
    behaviour: str

    def shortfalls(self, min_f1: float) -> list[str]:
        """The F1 figures below ``min_f1`` (or not measurable), in words; empty where the model may teach."""
        out = []
        for name, value in (("reward F1", self.reward_f1), ("termination F1", self.termination_f1)):
            if math.isnan(value):
                out.append(f"{name} not measurable (no rewarded or ending step, real or predicted)")
            elif value < min_f1:
                out.append(f"{name} {value:.2f} < {min_f1:g}")
        return out

    def __str__(self) -> str:
        return (f"reward F1 {self.reward_f1:.2f}, termination F1 {self.termination_f1:.2f}, direction accuracy "
                f"{self.direction_accuracy:.2f} (one step ahead, {self.episodes} held-out real episodes of {self.behaviour})")


def _playing(run: ScoredRun, env_id: str, env_kwargs: Mapping[str, Any], seed: int) -> tuple[Behaviour, str]:
    """The oracle with :data:`ORACLE_NOISE` where ``env_id`` has one, else the run's own behaviour."""
    oracle = make_behaviour("oracle", noise=ORACLE_NOISE, seed=seed)
    envs = gym.vector.SyncVectorEnv([lambda: make_env(env_id, None, **dict(env_kwargs))])
    try:
        oracle.check(envs)
        return oracle, f"the oracle, {ORACLE_NOISE:g} of actions random"
    except ConfigError:
        return run.behaviour(seed=seed), run.describe_behaviour()
    finally:
        envs.close()


def dream_fitness(run_dir: str, env_id: str, *, episodes: int = DEFAULT_EPISODES, seed: int = 0, device: str = "auto",
                  env_kwargs: Mapping[str, Any] | None = None) -> DreamFitness:
    """The :class:`DreamFitness` of the world model of ``run_dir`` on ``env_id`` (see the module docstring).

    Raises:
        CheckpointError: ``run_dir`` holds no world model, or one of another environment.
    """
    run = load_scored_run(run_dir, device, env=env_id)
    behaviour, words = _playing(run, env_id, env_kwargs or {}, seed)
    played = record_splits(behaviour, env_id, "id", episodes, seed, env_kwargs=env_kwargs, progress=False)
    scores = score_splits(run.model, played, context=1, horizons=(1,), seed=seed, progress=False)["id"]
    return DreamFitness(scores["reward_f1@1"], scores["termination_f1@1"], scores["direction_accuracy@1"], episodes, words)

"""The world model of a run, and what plays the real episodes it is scored on (``shiftgrid wm evaluate``).

A run's world model is loaded through the learner that owns it
(:func:`~shiftgrid.agents.run.world_model.load_run_world_model`, ``learner.world_model``).
What plays real episodes for it depends on the learner: a learner that collects with a
behaviour policy (the world-model trainer of ``shiftgrid wm train``: its ``behaviour``) is
scored on episodes of that behaviour, rebuilt with the evaluation's seed (its ``policy`` and
``noise``, :func:`~shiftgrid.agents.model_based.behaviour.make_behaviour`); a learner that acts
itself (Dreamer) plays its own episodes through its ``predict``, most likely actions unless
asked to sample, as ``shiftgrid evaluate`` plays it.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> config = TrainConfig(algo="dreamer", env="MiniGrid-Empty-5x5-v0", steps=16, n_envs=2, device="cpu",
    ...                      progress=False, run_dir=tempfile.mkdtemp() + "/dreamer", eval=EvalConfig(freq=0),
    ...                      hyperparams={"preset": "tiny", "prefill": 8, "replay_capacity": 1000,
    ...                                   "actor_critic": {"hidden": 32}})
    >>> run = load_scored_run(train(config).run_dir, device="cpu")
    >>> run.learner, run.family, run.acts_itself, type(run.behaviour(seed=0).agent).__name__
    ('dreamer', 'rssm (tiny)', True, 'Dreamer')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from shiftgrid.agents.evaluation.world_model import ONE_STEP_CURVE
from shiftgrid.agents.model_based.behaviour import Behaviour, make_behaviour
from shiftgrid.agents.run.world_model import LoadedWorldModel, load_run_world_model
from shiftgrid.world_models.interface import ObsSpec

#: The learning curve of a learner that acts itself: TensorBoard tag and the words of its axis.
AGENT_CURVE = ("world_model/cell_accuracy", "world-model cell accuracy (posterior, training batches)")


@dataclass
class ScoredRun(LoadedWorldModel):
    """A run's world model (:class:`~shiftgrid.agents.run.world_model.LoadedWorldModel`) and what plays for it."""

    @property
    def acts_itself(self) -> bool:
        """True where the run's learner is an agent that plays its own episodes (no behaviour policy of its own)."""
        return getattr(self.agent, "behaviour", None) is None

    def behaviour(self, seed: int, *, deterministic: bool = True) -> Behaviour:
        """What plays real episodes for this model: the run's own agent (most likely actions unless not
        ``deterministic``), or the run's behaviour policy (its own, so ``deterministic`` is moot).
        ``seed`` seeds its random actions; agents act on the CPU."""
        if self.acts_itself:
            return make_behaviour(str(self.file), noise=0.0, seed=seed, deterministic=deterministic)
        hp = self.config.hyperparams
        return make_behaviour(hp["policy"], noise=hp["noise"], seed=seed)

    @property
    def behaviour_key(self) -> str:
        """Runs with equal keys play the same episodes under one seed (an agent that acts itself is its run's own)."""
        if self.acts_itself:
            return f"{self.learner}:{self.file.resolve()}"
        hp = self.config.hyperparams
        return json.dumps(["policy", hp["policy"], hp["noise"]])

    @property
    def curve(self) -> tuple[str, str]:
        """The TensorBoard tag of the report's learning curves, and the words of their axis."""
        return AGENT_CURVE if self.acts_itself else ONE_STEP_CURVE

    def describe_behaviour(self, deterministic: bool = True, whose: str = "the run's") -> str:
        """The behaviour in words, for reports (``whose``: of an agent that acts itself, e.g. ``each run's``)."""
        if self.acts_itself:
            actions = "most likely actions, as shiftgrid evaluate plays it" if deterministic else "actions sampled from its actor"
            return f"{whose} own {self.learner.capitalize()} agent (its actor through predict, {actions})"
        policy, noise = self.config.hyperparams["policy"], self.config.hyperparams["noise"]
        return f"{policy}" + ("" if policy == "random" else f", {noise:g} of actions random")


def load_scored_run(run_dir: str | Path, device: str = "auto", checkpoint: str = "latest", *,
                    env: str | None = None, spec: ObsSpec | None = None) -> ScoredRun:
    """:func:`~shiftgrid.agents.run.world_model.load_run_world_model`, with what plays real episodes for the model.

    Example:
        >>> run = load_scored_run("runs/dreamer-goto/runs/seed=0", env="shiftgrid/GoTo-v1")  # doctest: +SKIP
        >>> run.learner, run.describe_behaviour()  # doctest: +SKIP
        ('dreamer', "the run's own Dreamer agent (its actor through predict, most likely actions, ...)")
    """
    loaded = load_run_world_model(run_dir, device, checkpoint, env=env, spec=spec)
    return ScoredRun(**{f.name: getattr(loaded, f.name) for f in fields(loaded)})

"""The world model of a run, and what plays the real episodes it is scored on (``shiftgrid wm evaluate``).

A run's world model is loaded through the learner that owns it
(:func:`~shiftgrid.agents.run.world_model.load_run_world_model`, ``learner.world_model``).
What plays real episodes for it depends on the learner: a learner that collects with a
behaviour policy (the world-model trainer of ``shiftgrid wm train``: its ``behaviour``) is
scored on episodes of that behaviour, rebuilt with the evaluation's seed (its ``policy`` and
``noise``, :func:`~shiftgrid.agents.model_based.behaviour.make_behaviour`); a learner that acts
itself (Dreamer) plays its own episodes through its ``predict``, most likely actions unless
asked to sample, as ``shiftgrid evaluate`` plays it; a model trained from demonstrations is scored
on episodes of the demonstrator (the oracle teacher ``shiftgrid demos`` records). The user may
choose any behaviour instead (``random``, ``oracle``, a trained agent's run): :meth:`ScoredRun.playing`.

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
from shiftgrid.agents.model_based.behaviour import KINDS, Behaviour, make_behaviour
from shiftgrid.agents.run.world_model import LoadedWorldModel, load_run_world_model
from shiftgrid.world_models.interface import ObsSpec

#: The learning curve of a learner that acts itself: TensorBoard tag and the words of its axis.
AGENT_CURVE = ("world_model/cell_accuracy", "world-model cell accuracy (posterior, training batches)")


@dataclass
class ScoredRun(LoadedWorldModel):
    """A run's world model (:class:`~shiftgrid.agents.run.world_model.LoadedWorldModel`) and what plays for it."""

    @property
    def acts_itself(self) -> bool:
        """True where the run's learner is an agent that plays its own episodes (a learner that declares
        ``acts_itself = False``, the world-model trainer, is played by its behaviour policy)."""
        return bool(getattr(self.agent, "acts_itself", True))

    def playing(self, policy: str | None = None) -> tuple[str | None, float]:
        """``(policy, noise)`` of what plays real episodes: ``policy`` where given (``random``, ``oracle`` or a
        trained agent's run, played without added noise); else the run's own: its agent (``(None, 0)``) where it
        acts itself, the oracle teacher that records demonstrations for a model trained from them, or the
        behaviour policy that collected its data."""
        if policy is not None:
            return policy, 0.0
        if self.acts_itself:
            return None, 0.0
        if self.config.demos is not None:
            return "oracle", 0.0
        hp = self.config.hyperparams
        return hp["policy"], float(hp["noise"])

    def behaviour(self, seed: int, *, deterministic: bool = True, policy: str | None = None) -> Behaviour:
        """What plays real episodes for this model (:meth:`playing`); an agent takes its most likely actions unless
        not ``deterministic``. ``seed`` seeds its random actions; agents act on the CPU."""
        kind, noise = self.playing(policy)
        if kind is None:
            return make_behaviour(str(self.file), noise=0.0, seed=seed, deterministic=deterministic)
        as_collected = policy is None  # the run's own behaviour policy acts as it collected (an agent's actions sampled)
        return make_behaviour(kind, noise=noise, seed=seed, deterministic=deterministic and not as_collected)

    def agent_plays(self, policy: str | None = None) -> bool:
        """Whether an agent whose actions ``--stochastic`` could sample plays: the run's own, or one chosen by path."""
        kind, _ = self.playing(policy)
        return kind is None or (policy is not None and kind not in KINDS)

    def behaviour_key(self, policy: str | None = None) -> str:
        """Runs with equal keys play the same episodes under one seed (an agent that acts itself is its run's own)."""
        kind, noise = self.playing(policy)
        if kind is None:
            return f"{self.learner}:{self.file.resolve()}"
        return json.dumps(["policy", kind, noise])

    @property
    def curve(self) -> tuple[str, str]:
        """The TensorBoard tag of the report's learning curves, and the words of their axis."""
        return AGENT_CURVE if self.acts_itself else ONE_STEP_CURVE

    def describe_behaviour(self, deterministic: bool = True, whose: str = "the run's", policy: str | None = None) -> str:
        """The behaviour in words, for reports (``whose``: of an agent that acts itself, e.g. ``each run's``)."""
        kind, noise = self.playing(policy)
        actions = "most likely actions, as shiftgrid evaluate plays it" if deterministic else "actions sampled from its policy"
        if kind is None:
            return f"{whose} own {self.learner.capitalize()} agent (its actor through predict, {actions})"
        if kind not in KINDS:
            what = f"the trained agent {kind} ({'actions sampled from its policy' if policy is None else actions})"
        else:
            what = kind + ("" if kind == "random" else f", {noise:g} of actions random" if noise else ", no random actions")
        if policy is not None:
            return f"{what}, chosen with --behaviour"
        if self.config.demos is not None:
            return (f"{what}: the demonstrator (shiftgrid demos records the oracle teacher), as this model was trained "
                    f"from the demonstrations in {self.config.demos}; choose another with --behaviour")
        return what


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

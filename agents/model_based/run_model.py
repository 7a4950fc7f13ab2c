"""The world model of a run of either kind, and the behaviour that plays the real episodes it is scored on.

Two learners leave a world model in their checkpoints: the world-model trainer (``shiftgrid wm
train``, learner ``world-model``) and Dreamer (``shiftgrid train --algo dreamer``, learner
``dreamer``). :func:`load_run_world_model` tells them apart by the checkpoint's learner and
returns a :class:`RunWorldModel`: the model (eval mode), the run's config, and
:meth:`RunWorldModel.behaviour`, what plays real episodes for it. For a ``wm train`` run that
is the behaviour policy it was trained with (its ``policy`` and ``noise``,
:func:`~shiftgrid.agents.model_based.behaviour.make_behaviour`); for a Dreamer run it is the run's
own agent (its actor, through its ``predict``, most likely actions unless asked to sample, as
``shiftgrid evaluate`` plays it). ``shiftgrid wm evaluate`` and ``shiftgrid train --dream RUN``
load their runs through it, so both take either kind.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> config = TrainConfig(algo="dreamer", env="MiniGrid-Empty-5x5-v0", steps=16, n_envs=2, device="cpu",
    ...                      progress=False, run_dir=tempfile.mkdtemp() + "/dreamer", eval=EvalConfig(freq=0),
    ...                      hyperparams={"preset": "tiny", "prefill": 8, "replay_capacity": 1000,
    ...                                   "actor_critic": {"hidden": 32}})
    >>> run = load_run_world_model(train(config).run_dir, device="cpu")
    >>> run.learner, run.family, type(run.model).__name__, type(run.behaviour(seed=0).agent).__name__
    ('dreamer', 'rssm (tiny)', 'RSSM', 'Dreamer')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from shiftgrid.agents.evaluation.world_model import ONE_STEP_CURVE
from shiftgrid.agents.model_based.behaviour import Behaviour, make_behaviour
from shiftgrid.agents.model_based.world_model import LEARNER, WorldModelSettings, checkpoint_file, world_model_of
from shiftgrid.agents.run.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.world_models.interface import ObsSpec, WorldModel

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

#: The registry name of the Dreamer learner (its checkpoints hold a world model and the agent acting in it).
DREAMER = "dreamer"


@dataclass
class RunWorldModel:
    """A run's world model (eval mode), the run's config, and what plays real episodes for it.

    Attributes:
        model: the world model.
        config: the run's config (``device`` the one asked for).
        learner: ``world-model`` (a ``shiftgrid wm train`` run) or ``dreamer``.
        file: the checkpoint read.
        family: model family and preset, e.g. ``rssm (tiny)``.
        steps: environment steps the checkpoint had trained for.
    """

    model: WorldModel
    config: TrainConfig
    learner: str
    file: Path
    family: str
    steps: int

    @property
    def is_dreamer(self) -> bool:
        return self.learner == DREAMER

    def behaviour(self, seed: int, *, deterministic: bool = True) -> Behaviour:
        """What plays real episodes for this model: a Dreamer's own agent (most likely actions unless not
        ``deterministic``), or a ``wm train`` run's behaviour policy (its own, so ``deterministic`` is moot).
        ``seed`` seeds its random actions; agents act on the CPU."""
        if self.is_dreamer:
            return make_behaviour(str(self.file), noise=0.0, seed=seed, deterministic=deterministic)
        hp = self.config.hyperparams
        return make_behaviour(hp["policy"], noise=hp["noise"], seed=seed)

    @property
    def behaviour_key(self) -> str:
        """Runs with equal keys play the same episodes under one seed (a Dreamer's agent is its run's own)."""
        if self.is_dreamer:
            return f"{DREAMER}:{self.file.resolve()}"
        return json.dumps(["policy", self.config.hyperparams["policy"], self.config.hyperparams["noise"]])

    @property
    def curve(self) -> tuple[str, str]:
        """The TensorBoard tag of the report's learning curves, and the words of their axis."""
        if self.is_dreamer:
            return ("world_model/cell_accuracy", "world-model cell accuracy (posterior, training batches)")
        return ONE_STEP_CURVE

    def describe_behaviour(self, deterministic: bool = True, whose: str = "the run's") -> str:
        """The behaviour in words, for reports (``whose``: of a Dreamer's agent, e.g. ``each run's``)."""
        if self.is_dreamer:
            actions = "most likely actions, as shiftgrid evaluate plays it" if deterministic else "actions sampled from its actor"
            return f"{whose} own Dreamer agent (its actor through predict, {actions})"
        policy, noise = self.config.hyperparams["policy"], self.config.hyperparams["noise"]
        return f"{policy}" + ("" if policy == "random" else f", {noise:g} of actions random")


def _dreamer_world_model(ckpt: Checkpoint, file: Path, device: str, env: str | None,
                         spec: ObsSpec | None) -> tuple[WorldModel, TrainConfig, str]:
    from shiftgrid.agents.model_based.dreamer import dreamer_config, dreamer_world_model_of

    try:
        model, config = dreamer_world_model_of(ckpt, file, device)
    except RuntimeError as e:  # load_state_dict: the model the env's spec builds now has other shapes
        raise CheckpointError(f"{file}: the Dreamer's world model does not fit what its env observes now "
                              f"({str(e).strip().splitlines()[-1].strip()})") from None
    hp = dreamer_config(config)
    family = f"{hp.model} ({hp.preset})"
    if env is not None and config.env != env:
        raise CheckpointError(f"{file} holds a Dreamer's {hp.model}/{hp.preset} world model of {config.env}, "
                              f"but one of {env} was asked for: another environment")
    if spec is not None and model.spec != spec:
        raise CheckpointError(f"{file}: the Dreamer's world model observes {model.spec}, but what was asked for observes "
                              f"{spec}: another observation spec")
    return model, config, family


def load_run_world_model(run_dir: str | Path, device: str = "auto", checkpoint: str = "latest", *,
                         env: str | None = None, spec: ObsSpec | None = None) -> RunWorldModel:
    """The world model of a ``shiftgrid wm train`` run or of a Dreamer run (told apart by the checkpoint's learner).

    Args:
        run_dir: a run directory, or a checkpoint file in one.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
        checkpoint: ``latest``, ``best``, or a checkpoint path (used when ``run_dir`` is a directory).
        env, spec: what the caller needs (None: anything); a model of another environment or
            observation spec is refused.

    Raises:
        CheckpointError: no such checkpoint, one of a learner without a world model, or one whose
            environment or observation spec is not what is needed, in one line.

    Example:
        >>> run = load_run_world_model("runs/dreamer-goto/runs/seed=0", env="shiftgrid/GoTo-v0")  # doctest: +SKIP
        >>> run.learner, run.describe_behaviour()  # doctest: +SKIP
        ('dreamer', "the run's own Dreamer agent (its actor through predict, most likely actions, ...)")
    """
    file = checkpoint_file(run_dir, checkpoint)
    ckpt = read_checkpoint(file)
    learner, steps = ckpt.learner, int(ckpt.num_timesteps)
    if learner == LEARNER:
        model, config = world_model_of(ckpt, file, device, env=env, spec=spec)
        settings = WorldModelSettings.of(config)
        family = f"{settings.model} ({settings.preset})"
    elif learner == DREAMER:
        model, config, family = _dreamer_world_model(ckpt, file, device, env, spec)
    else:
        raise CheckpointError(f"{file} is a checkpoint of learner {learner!r}, not a world model (train one with "
                              f"shiftgrid wm train, or a Dreamer with shiftgrid train --algo {DREAMER})")
    return RunWorldModel(model, config, learner, file, family, steps)


def dream_vec_env(run_dir: str, env_id: str, split: str | None, num_envs: int, *, seed: int = 0,
                  device: str = "auto", env_kwargs: Mapping[str, Any] | None = None, sample: bool = True) -> VecEnv:
    """The SB3 training env of ``shiftgrid train --dream RUN``: the world model of run ``run_dir`` (a
    ``shiftgrid wm train`` run or a Dreamer run, its ``latest`` checkpoint) dreaming ``num_envs``
    episodes from real starts of ``env_id`` / ``split``, monitored (episode returns, success).

    Raises:
        CheckpointError: ``run_dir`` holds no world model, or one of another environment or observation spec.
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from shiftgrid.world_models.dream_env import DreamSB3VecEnv, DreamVecEnv, RealStarts

    starts = RealStarts(env_id, split, env_kwargs, seed=seed)
    spec = ObsSpec.from_spaces(starts.observation_space, starts.action_space)
    model = load_run_world_model(run_dir, device, env=env_id, spec=spec).model
    return VecMonitor(DreamSB3VecEnv(DreamVecEnv(model, starts, num_envs, sample=sample, seed=seed)))

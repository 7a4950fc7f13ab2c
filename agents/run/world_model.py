"""The world model a run's learner owns, loaded from the run's checkpoint.

A learner that owns a world model exposes it as its ``world_model`` attribute (the world-model
trainer of ``shiftgrid wm train`` and Dreamer do). Loading goes through the learner registry and
that attribute, so any learner that exposes one, a plugin's included, is loaded the same way and
no loader knows a learner's name. ``shiftgrid wm evaluate``, ``shiftgrid train --dream RUN`` and
:func:`load_world_model` load their runs through :func:`load_run_world_model`.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> config = TrainConfig(algo="dreamer", env="MiniGrid-Empty-5x5-v0", steps=16, n_envs=2, device="cpu",
    ...                      progress=False, run_dir=tempfile.mkdtemp() + "/dreamer", eval=EvalConfig(freq=0),
    ...                      hyperparams={"preset": "tiny", "prefill": 8, "replay_capacity": 1000,
    ...                                   "actor_critic": {"hidden": 32}})
    >>> run = load_run_world_model(train(config).run_dir, device="cpu")
    >>> run.learner, run.family, type(run.model).__name__
    ('dreamer', 'rssm (tiny)', 'RSSM')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shiftgrid.agents.run.checkpoint import Checkpoint, CheckpointError, build_learner, checkpoint_file, read_checkpoint
from shiftgrid.agents.run.config import TrainConfig

if TYPE_CHECKING:
    from shiftgrid.world_models.interface import ObsSpec, WorldModel


@dataclass
class LoadedWorldModel:
    """A run's world model (eval mode) with what is known of the run.

    Attributes:
        model: the world model.
        config: the run's config (``device`` the one asked for).
        learner: the registry name of the run's learner (``world-model``, ``dreamer``...).
        agent: the learner itself, rebuilt from the checkpoint (it acts through ``predict``).
        file: the checkpoint read.
        family: model family and preset, e.g. ``rssm (tiny)``.
        steps: environment steps the checkpoint had trained for.
    """

    model: WorldModel
    config: TrainConfig
    learner: str
    agent: Any
    file: Path
    family: str
    steps: int


def world_model_of(ckpt: Checkpoint, file: Path, device: str = "auto", *, env: str | None = None,
                   model: str | None = None, spec: ObsSpec | None = None) -> LoadedWorldModel:
    """:func:`load_run_world_model` of a checkpoint already read from ``file`` (which errors name)."""
    agent = build_learner(ckpt, device, load_state=False)
    if getattr(agent, "world_model", None) is None:
        close = getattr(agent, "close", None)
        if close is not None:
            close()
        raise CheckpointError(f"{file} is a checkpoint of learner {ckpt.learner!r}, not a world model (train one with "
                              "shiftgrid wm train, or a Dreamer with shiftgrid train --algo dreamer)")
    try:
        agent.load_state_dict(ckpt.state)
    except RuntimeError as e:  # load_state_dict: the model the env's spec builds now has other shapes
        raise CheckpointError(f"{file}: the {ckpt.learner} learner's world model does not fit what its env observes now "
                              f"({str(e).strip().splitlines()[-1].strip()})") from None
    world_model = agent.world_model
    config: TrainConfig = agent.config
    family = f"{world_model.family} ({world_model.preset})"
    holds = f"{file} holds a {ckpt.learner} run's {world_model.family}/{world_model.preset} world model"
    if model is not None and world_model.family != model:
        raise CheckpointError(f"{holds}, but a {model} one was asked for: another model family")
    if env is not None and config.env != env:
        raise CheckpointError(f"{holds} of {config.env}, but one of {env} was asked for: another environment")
    if spec is not None and world_model.spec != spec:
        raise CheckpointError(f"{holds}, which observes {world_model.spec}, but what was asked for observes {spec}: "
                              "another observation spec")
    return LoadedWorldModel(world_model.eval(), config, ckpt.learner, agent, file, family, int(ckpt.num_timesteps))


def load_run_world_model(run_dir: str | Path, device: str = "auto", checkpoint: str = "latest", *,
                         env: str | None = None, model: str | None = None, spec: ObsSpec | None = None) -> LoadedWorldModel:
    """The world model of a run whose learner owns one (``learner.world_model``).

    Args:
        run_dir: a run directory, or a checkpoint file in one.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
        checkpoint: ``latest``, ``best``, or a checkpoint path (used when ``run_dir`` is a directory).
        env, model, spec: what the caller needs (None: anything); a world model of another
            environment, model family or observation spec is refused.

    Raises:
        CheckpointError: no such checkpoint, one of a learner without a world model, or one whose
            environment, family or observation spec is not what is needed (or no longer what its
            environment observes), in one line.
    """
    file = checkpoint_file(run_dir, checkpoint)
    return world_model_of(read_checkpoint(file), file, device, env=env, model=model, spec=spec)


def load_world_model(run_dir: str | Path, device: str = "auto", checkpoint: str = "latest", *,
                     env: str | None = None, model: str | None = None,
                     spec: ObsSpec | None = None) -> tuple[WorldModel, TrainConfig]:
    """The trained world model of a run (in eval mode, on ``device``) and the run's config.

    A ``shiftgrid wm train`` run, a Dreamer run, or any run whose learner exposes ``world_model``;
    arguments and errors as :func:`load_run_world_model`'s.

    Example:
        >>> model, config = load_world_model("runs/wm-rssm-GoTo-v1")  # doctest: +SKIP
        >>> states, out = model.observe(batch)  # doctest: +SKIP
    """
    loaded = load_run_world_model(run_dir, device, checkpoint, env=env, model=model, spec=spec)
    return loaded.model, loaded.config

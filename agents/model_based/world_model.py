"""The world-model trainer as a learner of the run machinery (registry entry ``world-model``).

:class:`WorldModelLearner` collects real transitions with a behaviour policy
(:func:`~shiftgrid.agents.model_based.behaviour.make_behaviour`) from a ``SyncVectorEnv`` of
``config.n_envs`` copies of ``config.env`` (gymnasium's next-step auto-reset), keeps them in a
:class:`~shiftgrid.world_models.replay.SequenceReplay` on the model's device, and trains the
model with :func:`~shiftgrid.world_models.train_step.train_step` on uniform ``B x T`` sequences,
``train_ratio`` replayed steps per environment step. With ``config.demos`` (a Minari dataset
of the same environment, :mod:`shiftgrid.agents.model_based.demos`) it trains on recorded episodes
instead and steps no environment: each run step is then ``train_ratio`` replayed steps of the
dataset. Everything else is the run machinery's
(:func:`shiftgrid.agents.run.train.train`): run directory, resolved ``config.yaml``, checkpoints,
``--resume``, Ctrl-C / SIGTERM, progress bar, NaN stop and TensorBoard. Its settings are
``config.hyperparams`` (:class:`WorldModelSettings`; the resolved ones are written back, so
``config.yaml`` holds every one).

TensorBoard (every ``log_every`` updates): ``train/<term>`` for each loss term (``obs``,
``reward``, ``cont``, ``dyn``, ``rep``), ``train/loss``, ``train/kl``, ``train/grad_norm``,
``train/cell_accuracy`` (posterior reconstruction), ``train/one_step/<metric>`` (one-step
prediction from the prior, :func:`~shiftgrid.world_models.metrics.one_step_accuracy`: cells, direction,
reward and termination F1 where the batch has a rewarded or ending step), and
``rollout/*``; every ``openloop_every`` updates, and at the end of training, ``openloop/prediction`` (an
image: real / predicted / where they differ, labelled, :mod:`shiftgrid.world_models.openloop`) and
``openloop/cell_accuracy``.

A non-finite loss or gradient stops the run before the update: the parameters are the last
good ones, so ``latest.pt`` is saved from them (a state that is itself not finite is not
saved: the last periodic ``latest.pt`` stays). The checkpoint holds the model, optimiser,
replay (``save_replay``), the behaviour's and sampler's random-number states and the counters,
so a resumed run continues on the same data; its environments restart (seeded with ``seed +
num_timesteps``) and the unfinished episodes' last observations are dropped.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> config = TrainConfig(algo="world-model", env="MiniGrid-Empty-5x5-v0", steps=64, n_envs=2, device="cpu",
    ...                      progress=False, run_dir=tempfile.mkdtemp() + "/wm", eval=EvalConfig(freq=0),
    ...                      hyperparams={"preset": "tiny", "batch_size": 2, "seq_len": 8, "learning_starts": 32})
    >>> result = train(config)
    >>> model, config = load_world_model(result.run_dir, device="cpu")
    >>> type(model).__name__, result.num_timesteps
    ('RSSM', 64)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from shiftgrid.agents.model_based.behaviour import Behaviour, make_behaviour
from shiftgrid.agents.model_based.demos import demo_replay
from shiftgrid.agents.run.checkpoint import CheckpointError
from shiftgrid.agents.run.config import ConfigError, TrainConfig, from_mapping
from shiftgrid.agents.run.services import Episode, RunServices
from shiftgrid.agents.run.world_model import load_world_model
from shiftgrid.envs.episodes import EpisodeCounter
from shiftgrid.envs.learner_env import env_spaces, has_splits, make_env
from shiftgrid.world_models.device import resolve_device
from shiftgrid.world_models.interface import ObsSpec, WorldModel
from shiftgrid.world_models.metrics import one_step_accuracy
from shiftgrid.world_models.models import build_model, check_model
from shiftgrid.world_models.openloop import replay_open_loop
from shiftgrid.world_models.replay import SequenceReplay
from shiftgrid.world_models.train_ratio import TrainRatio
from shiftgrid.world_models.train_step import NonFiniteLossError, make_optimizer, train_step

#: The registry name of this learner (checkpoints of a world model carry it).
LEARNER = "world-model"


@dataclass
class WorldModelSettings:
    """The world-model trainer's settings (``config.hyperparams``); defaults suit the ``small`` preset on a CPU."""

    model: str = "rssm"
    """World-model family (:func:`~shiftgrid.world_models.models.model_names`): ``rssm``, ``transformer`` or ``mechanism``."""
    preset: str = "small"
    """Size preset of the family: ``tiny`` (tests), ``small`` (CPU), ``medium``, ``large`` (GPU)."""
    model_overrides: dict = field(default_factory=dict)
    """Fields of the family's config to replace (``lr``, ``bf16``, ``compile``, ``deter``...)."""
    policy: str = "random"
    """Behaviour policy: ``random``, ``oracle``, or a trained agent's run / checkpoint / ``.zip``."""
    noise: float = 0.25
    """Share of the oracle's (or agent's) actions replaced by uniform random ones."""
    replay_capacity: int = 100_000
    """Steps the replay keeps (oldest overwritten); about 200 B per step with mission tokens."""
    save_replay: bool = True
    """Save the replay (its filled part) with each checkpoint, so a resumed run continues on the same data."""
    batch_size: int = 16
    """Sequences per update (B)."""
    seq_len: int = 64
    """Steps per sequence (T)."""
    train_ratio: float = 32.0
    """Replayed steps (B x T per update) per environment step."""
    learning_starts: int = 1024
    """Environment steps collected before the first update."""
    log_every: int = 20
    """Updates between TensorBoard writes of the losses and accuracies."""
    openloop_every: int = 200
    """Updates between open-loop prediction images (0: none)."""
    openloop_context: int = 5
    """Real steps the model filters before predicting open-loop (C)."""
    openloop_horizon: int = 15
    """Steps predicted open-loop from the real actions (k)."""
    openloop_sequences: int = 4
    """Replayed sequences drawn in each open-loop image."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a bad value (naming it and what is valid)."""
        try:
            check_model(self.model)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        for name in ("replay_capacity", "batch_size", "seq_len", "log_every", "openloop_context", "openloop_horizon",
                     "openloop_sequences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"hyperparams.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_starts", "openloop_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"hyperparams.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.train_ratio > 0 and math.isfinite(self.train_ratio)):
            raise ConfigError(f"hyperparams.train_ratio must be a positive number, got {self.train_ratio}")
        if not 0 <= self.noise <= 1:
            raise ConfigError(f"hyperparams.noise must be in [0, 1], got {self.noise}")

    @classmethod
    def of(cls, config: TrainConfig) -> "WorldModelSettings":
        settings = from_mapping(cls, config.hyperparams, "hyperparams.")
        settings.validate()
        return settings


def observation_spec(config: TrainConfig) -> ObsSpec:
    """What a model of ``config.env`` (its split and ``env_kwargs``) observes."""
    try:
        return ObsSpec.from_spaces(*env_spaces(config.env, config.split, **config.env_kwargs))
    except TypeError as e:
        raise ConfigError(f"{config.env}: {e}") from None


def _spec_dict(spec: ObsSpec) -> dict[str, Any]:
    return {"image_shape": list(spec.image_shape), "num_actions": spec.num_actions,
            "token_lengths": [[k, n] for k, n in spec.token_lengths], "vocab_size": spec.vocab_size}


def _spec_of(data: dict[str, Any]) -> ObsSpec:
    return ObsSpec(tuple(data["image_shape"]), int(data["num_actions"]),
                   tuple((str(k), int(n)) for k, n in data["token_lengths"]), int(data["vocab_size"]))


def _describe(identity: dict[str, Any]) -> str:
    return f"a {identity['family']}/{identity['preset']} world model of {identity['env']}"


def build_world_model(settings: WorldModelSettings, spec: ObsSpec, device: torch.device) -> WorldModel:
    """The model ``settings`` name, for ``spec``, on ``device`` (bad family, preset or override: :class:`ConfigError`)."""
    try:
        model = build_model(settings.model, settings.preset, spec, **settings.model_overrides)
    except (ValueError, TypeError) as e:  # unknown family or preset; an override that is not a config field
        raise ConfigError(f"world model {settings.model}/{settings.preset} (overrides {settings.model_overrides}): {e}") from None
    except ImportError as e:
        raise ConfigError(f"world model {settings.model!r} cannot be loaded: {e}") from None
    return model.to(device)


class WorldModelLearner:
    """A world model trained from a behaviour policy's transitions; see the module docstring.

    Args:
        config: the run's config; ``config.hyperparams`` as :class:`WorldModelSettings` (written back resolved).
        training: build the environments, replay and optimiser (False: the model and behaviour only).

    Raises:
        ConfigError: bad settings, an unknown device or CUDA asked for but absent, a behaviour
            that cannot act on this env, a trained agent of another env.
    """

    #: A world model does not act: its ``predict`` plays the behaviour policy that collected its data, which is not
    #: an agent to score (``shiftgrid evaluate`` refuses it; ``shiftgrid wm evaluate`` scores the model).
    acts_itself = False

    def __init__(self, config: TrainConfig, *, training: bool):
        self.config, self.training = config, training
        self.settings = s = WorldModelSettings.of(config)
        config.hyperparams = dataclasses.asdict(s)  # the resolved settings go into config.yaml and the checkpoints
        if config.vec_env != "dummy" and config.demos is None:
            raise ConfigError(f"vec_env={config.vec_env!r}: the world-model trainer steps its envs in one process "
                              "(the oracle reads them); use vec_env=dummy")
        self.device = resolve_device(config.device)
        self.spec = observation_spec(config)
        torch.manual_seed(config.seed)
        self.model = build_world_model(s, self.spec, self.device)
        self.identity = {"family": s.model, "preset": s.preset, "overrides": dict(s.model_overrides),
                         "spec": _spec_dict(self.spec), "env": config.env}
        self._behaviour: Behaviour | None = None
        self._behaviour_state: dict[str, Any] | None = None
        if training:  # a model loaded to be used (training=False) needs its behaviour only if it is asked to act
            behaviour = self.behaviour
            if behaviour.env is not None and behaviour.env != config.env:
                raise ConfigError(f"--policy {s.policy} was trained on {behaviour.env}, not on {config.env}")
            if config.eval.freq and behaviour.needs_envs:
                raise ConfigError(f"eval.freq={config.eval.freq} evaluates the behaviour policy, and the {s.policy} behaviour "
                                  "cannot act from observations alone; set eval.freq=0")
        self.num_timesteps, self.updates = 0, 0
        self.ratio = TrainRatio(s.train_ratio, s.batch_size, s.seq_len)
        self.sampler = torch.Generator().manual_seed(config.seed)
        self.reporter = torch.Generator().manual_seed(config.seed + 1)
        self.envs: gym.vector.SyncVectorEnv | None = None
        if training:
            self.optimizer = make_optimizer(self.model)
            if config.demos is not None:
                split = (config.split or "train") if has_splits(config.env) else None
                self.replay, self.demo_episodes = demo_replay(config.demos, config.env, split, config.env_kwargs,
                                                              s.replay_capacity, self.spec.image_shape,
                                                              dict(self.spec.token_lengths), self.device)
                if len(self.replay) < s.seq_len:
                    raise ConfigError(f"dataset {config.demos} holds {len(self.replay)} steps, fewer than one sequence "
                                      f"(hyperparams.seq_len={s.seq_len})")
            else:
                self.envs = self._make_envs()
                self.behaviour.check(self.envs)
                self.replay = SequenceReplay.for_space(self.envs.single_observation_space, num_envs=config.n_envs,
                                                       capacity=max(s.replay_capacity, config.n_envs), mode="next_step",
                                                       device=self.device)

    @property
    def world_model(self) -> WorldModel:
        """The model this learner trains (what every world-model loader reads)."""
        return self.model

    @property
    def behaviour(self) -> Behaviour:
        """The behaviour policy that collects the real transitions (built when first needed)."""
        if self._behaviour is None:
            s = self.settings
            self._behaviour = make_behaviour(s.policy, noise=s.noise, seed=self.config.seed, device="cpu")
            if self._behaviour_state is not None:
                self._behaviour.load_state_dict(self._behaviour_state)
                self._behaviour_state = None
        return self._behaviour

    def _make_envs(self) -> gym.vector.SyncVectorEnv:
        c = self.config
        fn = functools.partial(make_env, c.env, c.split, **c.env_kwargs)
        return gym.vector.SyncVectorEnv([fn] * c.n_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)

    # ---- training ------------------------------------------------------------------------------

    def learn(self, steps: int, run: RunServices) -> None:
        """Collect ``steps`` more environment steps, training as ``train_ratio`` says (see the module docstring)."""
        if self.config.demos is not None:
            return self._learn_offline(steps, run)
        assert self.envs is not None, "built with training=False"
        n, envs = self.config.n_envs, self.envs
        obs, _ = envs.reset(seed=self.config.seed + self.num_timesteps)
        if self.num_timesteps and not len(self.replay):
            run.say(f"world model: resumed at step {self.num_timesteps:,} without a replay (hyperparams.save_replay was "
                    f"false): {n * self.settings.seq_len:,} environment steps are collected again before training goes on")
        self.replay.reset(obs)
        counter = EpisodeCounter(n, next_step_reset=True)
        target = self.num_timesteps + steps
        while self.num_timesteps < target:
            actions = self.behaviour.act(envs, obs)
            obs, reward, terminated, truncated, info = envs.step(actions)
            self.replay.add(actions, obs, reward, terminated, truncated, info)
            self.num_timesteps += n
            episodes = []
            for i in counter.step(reward, terminated, truncated):
                success = bool(info["success"][i]) if "success" in info else bool(terminated[i] and reward[i] > 0)
                episodes.append(Episode(success, float(counter.ended_returns[i]), int(counter.ended_lengths[i])))
            if not run.on_step(self.num_timesteps, episodes):
                return
            if not self._train(run):
                return
        self._last_open_loop(run)

    def _learn_offline(self, steps: int, run: RunServices) -> None:
        """Train on the dataset's episodes: ``n_envs`` run steps at a time, as if they had been collected."""
        target = self.num_timesteps + steps
        while self.num_timesteps < target:
            self.num_timesteps += self.config.n_envs
            if not run.on_step(self.num_timesteps) or not self._train(run):
                return
        self._last_open_loop(run)

    def _last_open_loop(self, run: RunServices) -> None:
        """At the end of training, the open-loop image of the model as it ends, unless the last update drew it
        (so a run shorter than ``openloop_every`` updates logs one too)."""
        s = self.settings
        if s.openloop_every and self.updates and self.updates % s.openloop_every:
            run.on_update(self.num_timesteps, replay_open_loop(self.model, self.replay, s.openloop_context, s.openloop_horizon,
                                                               s.openloop_sequences, run.log_image, generator=self.reporter))

    def _trainable(self, length: int) -> bool:
        return bool((self.replay.size >= length).any())

    def _train(self, run: RunServices) -> bool:
        """The updates owed for the steps so far; False: stop."""
        s = self.settings
        if (self.config.demos is None and self.num_timesteps < s.learning_starts) or not self._trainable(s.seq_len):
            return True
        self.ratio.add(self.config.n_envs)
        while self.ratio.take():
            batch = self.replay.sample(s.batch_size, s.seq_len, generator=self.sampler)
            try:
                metrics = train_step(self.model, self.optimizer, batch)
            except NonFiniteLossError as e:
                run.state.detail = str(e)
                run.save_latest()  # the parameters were not updated (refused if they are themselves not finite)
                run.state.stop_reason = "nan"
                return False
            self.updates += 1
            tags = {f"train/{k}": v for k, v in metrics.items()}
            log = self.updates % s.log_every == 0
            if log:
                tags.update({f"train/one_step/{k}": v for k, v in one_step_accuracy(self.model, batch).items()
                             if math.isfinite(v)})  # changed-cell accuracy is NaN where no cell changed
            if s.openloop_every and self.updates % s.openloop_every == 0:
                tags.update(replay_open_loop(self.model, self.replay, s.openloop_context, s.openloop_horizon,
                                             s.openloop_sequences, run.log_image, generator=self.reporter))
                log = True
            if not run.on_update(self.num_timesteps, tags, log=log):
                return False
        return True

    # ---- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Model, optimiser, replay (``save_replay``), random-number states and counters (``weights_only``-safe)."""
        state: dict[str, Any] = {
            "world_model": dict(self.identity), "model": self.model.state_dict(),
            "behaviour": self.behaviour.state_dict() if self._behaviour is not None else self._behaviour_state,
            "sampler": self.sampler.get_state(),
            "reporter": self.reporter.get_state(), "torch_rng": torch.get_rng_state(),
            "counters": {"num_timesteps": int(self.num_timesteps), "updates": int(self.updates),
                         "credit": float(self.ratio.credit)},
        }
        if self.training:
            state["optimizer"] = self.optimizer.state_dict()
            state["replay"] = self.replay.state_dict() if self.settings.save_replay else None
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            CheckpointError: the state is of another model family, preset, observation spec or env.
        """
        check_identity(state.get("world_model"), self.identity, "this run")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:  # same family, preset and overrides, other weights: saved by another version of the model
            first = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e)).rstrip(".")
            raise CheckpointError(f"the checkpoint holds {_describe(self.identity)} whose weights this version of the model "
                                  f"does not take ({first}): it was saved by an earlier version; train it again, or set "
                                  "the model overrides that version used (hyperparams.model_overrides)") from None
        if self._behaviour is not None:
            self._behaviour.load_state_dict(state["behaviour"])
        else:
            self._behaviour_state = state["behaviour"]
        self.sampler.set_state(state["sampler"])
        self.reporter.set_state(state["reporter"])
        torch.set_rng_state(state["torch_rng"])
        c = state["counters"]
        self.num_timesteps, self.updates, self.ratio.credit = int(c["num_timesteps"]), int(c["updates"]), float(c["credit"])
        if self.training:
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("replay") is not None:
                try:
                    self.replay.load_state_dict(state["replay"])
                except ValueError as e:
                    raise CheckpointError(f"the checkpoint's replay does not fit this run: {e}") from None

    # ---- acting --------------------------------------------------------------------------------

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        """The behaviour policy's actions at ``observation`` (a world model does not act itself)."""
        return self.behaviour.act(None, observation), None

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()


def check_identity(theirs: Any, mine: dict[str, Any], what: str) -> None:
    """Raise :class:`CheckpointError` in one line where a checkpoint's world model is not ``mine``."""
    if not isinstance(theirs, dict) or "family" not in theirs:
        raise CheckpointError(f"the checkpoint holds no world model (it cannot be loaded into {what})")
    for key, label in (("family", "model family"), ("preset", "preset"), ("env", "environment"),
                       ("overrides", "model overrides")):
        if theirs.get(key) != mine.get(key):
            raise CheckpointError(f"the checkpoint holds {_describe(theirs)} (overrides {theirs.get('overrides')}), but {what} "
                                  f"is {_describe(mine)} (overrides {mine.get('overrides')}): another {label}")
    if _spec_of(theirs["spec"]) != _spec_of(mine["spec"]):
        raise CheckpointError(f"the checkpoint's world model observes {_spec_of(theirs['spec'])}, but {what} observes "
                              f"{_spec_of(mine['spec'])}: another observation spec")


__all__ = ["LEARNER", "WorldModelLearner", "WorldModelSettings", "build_world_model", "check_identity", "load_world_model",
           "observation_spec"]

"""Dreamer: a world model learned from replay, and an actor-critic trained inside it (``--algo dreamer``).

The loop, top to bottom (:meth:`Dreamer.learn`):

1. **Collect.** One vector step of the training envs. The actor acts batched across them on the
   model's device, conditioned on the model state (filtered from every observation so far, so
   it carries the mission, and advice when present); uniform random actions until ``prefill``
   steps are in. Steps go into a :class:`~shiftgrid.world_models.replay.SequenceReplay` on the
   device (SB3's auto-reset convention: the terminal step keeps its reward and real last
   observation, the reset observation is marked first).
2. **Train**, ``train_ratio`` replayed steps per environment step (the speed / sample-efficiency
   knob; one update replays ``batch_size x seq_len`` steps): a world-model step
   (:func:`~shiftgrid.world_models.train_step.train_step`, its own optimiser), then the posterior
   states of that training pass, every one of them and detached (DreamerV3's way: the batch is
   not filtered a second time), start imagined rollouts that train the actor and critic
   (:class:`~shiftgrid.agents.model_based.actor_critic.ActorCritic`, their own optimisers).
3. **Report** to the run services: finished episodes after every step (progress bar, target,
   ``rollout/*``), metrics after updates (``world_model/*`` losses and accuracies, ``world_model/one_step/*``
   one-step prediction with reward and termination F1 at each write, ``train/*``:
   actor entropy, return scale, imagined return ``train/imagined_return`` next to the real
   ``rollout/ep_rew_mean``; TensorBoard every ``log_every`` steps, open-loop prediction images
   every ``openloop_every``), which also checkpoint, evaluate and stop on signals or NaN.

Settings are ``hyperparams`` (:class:`DreamerConfig`, with nested ``world_model`` overrides of
the model preset and ``actor_critic``). The checkpoint holds the world model, actor, critic, slow
critic, return scale, the three optimisers, counters, and the replay (the part of it filled) when
``save_replay`` (the default). A resumed run without a saved replay says so in one line and collects
``prefill`` steps again (with the actor) before it trains again.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> config = TrainConfig(algo="dreamer", env="MiniGrid-Empty-5x5-v0", n_envs=2, device="cpu",
    ...                      hyperparams={"preset": "tiny", "actor_critic": {"hidden": 32}})
    >>> agent = DREAMER(config, training=False)
    >>> obs = {"image": np.zeros((2, 7, 7, 3), np.uint8), "direction": np.zeros(2, np.int64),
    ...        "mission": np.zeros((2, 40), np.int64)}
    >>> actions, state = agent.predict(obs, deterministic=True)
    >>> actions.shape, sorted(agent.state_dict())[:3]
    ((2,), ['actor_critic', 'counters', 'model'])
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from shiftgrid.agents.model_based.actor_critic import ActorCritic, ActorCriticConfig
from shiftgrid.agents.run.config import ConfigError, TrainConfig, from_mapping
from shiftgrid.agents.run.services import RunServices
from shiftgrid.agents.sb3.callbacks import finished_episodes
from shiftgrid.agents.training.envs import make_vec
from shiftgrid.envs.learner_env import close_quietly, env_spaces
from shiftgrid.world_models.device import resolve_device
from shiftgrid.world_models.interface import LatentState, ObsSpec, WorldModel
from shiftgrid.world_models.metrics import one_step_accuracy
from shiftgrid.world_models.models import build_model, model_names
from shiftgrid.world_models.openloop import replay_open_loop
from shiftgrid.world_models.replay import SequenceReplay
from shiftgrid.world_models.train_ratio import TrainRatio
from shiftgrid.world_models.train_step import NonFiniteLossError, make_optimizer, train_step_with_states

#: Open-loop images: real steps filtered before predicting (the horizon is imagination's), and sequences drawn.
OPENLOOP_CONTEXT, OPENLOOP_SEQUENCES = 5, 4
#: Replayed sequences of the one-step prediction report (rewarded steps are rare: a training batch may hold none).
REPORT_SEQUENCES = 64


@dataclass(frozen=True)
class DreamerConfig:
    """Dreamer's ``hyperparams``."""

    model: str = "rssm"
    """World-model family: ``rssm``, ``transformer`` or ``mechanism``."""
    preset: str = "small"
    """World-model size preset (``tiny``, ``small``, ...)."""
    world_model: dict = field(default_factory=dict)
    """Fields of the model preset to replace (``lr``, ``deter``, ``reward_bins``...)."""
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """Actor and critic settings (horizon, discount, learning rates, entropy...)."""
    batch_size: int = 16
    """Replayed sequences per update."""
    seq_len: int = 32
    """Steps per replayed sequence."""
    train_ratio: float = 64.0
    """Replayed steps per environment step (``batch_size * seq_len`` per update)."""
    prefill: int = 2000
    """Environment steps in replay before training starts (uniform random actions for a fresh run)."""
    replay_capacity: int = 500_000
    """Steps the replay keeps (oldest overwritten)."""
    save_replay: bool = True
    """Keep the replay in the checkpoint, its filled part only (a resumed run then trains at once; without
    it, a resumed run collects ``prefill`` steps again before it trains)."""
    log_every: int = 1000
    """Environment steps between TensorBoard writes (metrics averaged over the updates between)."""
    openloop_every: int = 10_000
    """Environment steps between open-loop prediction images (``openloop/prediction``, one more at the end of
    training; 0: never)."""

    def validate(self) -> None:
        if self.model not in model_names():
            raise ConfigError(f"hyperparams.model = {self.model!r}; valid: {', '.join(model_names())}")
        if self.openloop_every < 0:
            raise ConfigError(f"hyperparams.openloop_every must be >= 0, got {self.openloop_every}")
        for name in ("batch_size", "seq_len", "prefill", "replay_capacity", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"hyperparams.{name} must be >= 1, got {getattr(self, name)}")
        if self.train_ratio <= 0:
            raise ConfigError(f"hyperparams.train_ratio must be > 0, got {self.train_ratio}")
        try:
            self.actor_critic.validate()
        except ValueError as e:
            raise ConfigError(f"hyperparams.{e}") from None


def dreamer_config(config: TrainConfig) -> DreamerConfig:
    """The checked :class:`DreamerConfig` of a run's ``hyperparams`` (``ConfigError`` naming a bad key)."""
    if config.policy or config.extractor:
        raise ConfigError("dreamer takes no policy or extractor settings (they are SB3's); "
                          "set hyperparams.actor_critic or hyperparams.world_model instead")
    dc = from_mapping(DreamerConfig, dict(config.hyperparams), "hyperparams.")
    dc.validate()
    return dc


def _obs_tensors(obs: Mapping[str, Any], keys: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(obs[k])).to(device) for k in keys}


class Dreamer:
    """The Dreamer learner (see the module docstring); ``env`` replaces the training envs (tests)."""

    def __init__(self, config: TrainConfig, training: bool, env: VecEnv | None = None):
        self.config, self.hp = config, dreamer_config(config)
        self.device = resolve_device(config.device)
        self.env = (env or make_vec(config)) if training else None
        if self.env is not None:
            obs_space, act_space = self.env.observation_space, self.env.action_space
        else:
            obs_space, act_space = env_spaces(config.env, config.split, **config.env_kwargs)
        self.spec = ObsSpec.from_spaces(obs_space, act_space)
        self.obs_keys = ["image", "direction", *(k for k, _ in self.spec.token_lengths)]
        torch.manual_seed(config.seed)
        try:
            self.model: WorldModel = build_model(self.hp.model, self.hp.preset, self.spec, **self.hp.world_model).to(self.device)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"hyperparams world model: {e}") from None
        self.model_opt = make_optimizer(self.model)
        self.ac = ActorCritic(self.hp.actor_critic, self.model.features_dim, self.spec.num_actions).to(self.device)
        self.replay = (SequenceReplay.for_space(obs_space, self.env.num_envs, self.hp.replay_capacity, mode="sb3",
                                                device=self.device) if self.env is not None else None)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.device_generator = torch.Generator(self.device).manual_seed(config.seed)
        self.num_timesteps, self.updates = 0, 0
        self.ratio = TrainRatio(self.hp.train_ratio, self.hp.batch_size, self.hp.seq_len)

    @property
    def world_model(self) -> WorldModel:
        """The model this learner learns and acts in (what every world-model loader reads)."""
        return self.model

    # ---- acting --------------------------------------------------------------------------

    @torch.no_grad()
    def filter(self, state: LatentState | None, action: torch.Tensor | None, obs: Mapping[str, Any],
               is_first: Any) -> LatentState:
        """The model state after observing ``obs`` ``(N, ...)`` from ``state`` and the ``action`` taken there."""
        obs_t = _obs_tensors(obs, self.obs_keys, self.device)
        n = obs_t["image"].shape[0]
        if state is None:
            state, action, is_first = self.model.initial(n), torch.zeros(n, dtype=torch.long, device=self.device), True
        assert action is not None, "a state comes with the action taken in it"
        first = torch.as_tensor(np.broadcast_to(np.asarray(is_first, dtype=bool), (n,)).copy(), device=self.device)
        return self.model.obs_step(state, action, self.model.encoder(obs_t), first)[0]

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        """SB3's signature: the recurrent model state (and last action) is ``state``; ``episode_start`` resets it."""
        self.model.eval()
        latent, action = state if state is not None else (None, None)
        first = True if episode_start is None and state is None else (False if episode_start is None else episode_start)
        latent = self.filter(latent, action, observation, first)
        action = self.ac.actor.act(latent.features(), deterministic)
        return action.cpu().numpy(), (latent, action)

    # ---- training ------------------------------------------------------------------------

    def _update(self) -> dict[str, float]:
        """One world-model step and one actor-critic step on a replayed batch."""
        hp = self.hp
        assert self.replay is not None, "built with training=False"
        batch = self.replay.sample(hp.batch_size, hp.seq_len, generator=self.generator)
        wm, states = train_step_with_states(self.model, self.model_opt, batch)
        if states is None:  # the model's training pass is not its filter: filter the batch again
            with torch.no_grad():
                self.model.eval()
                states, _ = self.model.observe(batch)
        start = states.reshape(hp.batch_size * hp.seq_len).detach()
        start_cont = 1.0 - batch["terminated"].reshape(-1).float()
        metrics = self.ac.update(self.model, start, start_cont, generator=self.device_generator)
        self.updates += 1
        return {**{f"world_model/{k}": v for k, v in wm.items()}, **metrics}

    def _one_step_report(self) -> dict[str, float]:
        """``world_model/one_step/*``: one-step prediction (cells, direction, reward and termination F1) on
        :data:`REPORT_SEQUENCES` replayed sequences, drawn apart from the training batches' random stream."""
        assert self.replay is not None, "built with training=False"
        gen = torch.Generator().manual_seed(self.config.seed + self.updates)
        batch = self.replay.sample(REPORT_SEQUENCES, self.hp.seq_len, generator=gen)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            scores = one_step_accuracy(self.model, batch)  # its latent draws leave training's random stream alone
        return {f"world_model/one_step/{k}": v for k, v in scores.items() if math.isfinite(v)}

    def learn(self, steps: int, run: RunServices) -> None:
        env, hp = self.env, self.hp
        assert env is not None and self.replay is not None, "built with training=False"
        n, target = env.num_envs, self.num_timesteps + steps
        env.seed(self.config.seed + self.num_timesteps)  # a resumed run does not replay the first run's levels
        obs = cast(dict[str, np.ndarray], env.reset())  # Dict observations (ObsSpec.from_spaces checked)
        if self.num_timesteps and not len(self.replay):
            run.say(f"dreamer: resumed at step {self.num_timesteps:,} without a replay (hyperparams.save_replay was false): "
                    f"{max(hp.prefill, n * hp.seq_len):,} environment steps are collected again before training goes on")
        self.replay.reset(obs)
        rng = np.random.default_rng(self.config.seed + self.num_timesteps)
        latent, action, first = None, None, np.ones(n, dtype=bool)
        sums: dict[str, float] = {}
        count, last_log, last_image = 0, self.num_timesteps, self.num_timesteps
        while self.num_timesteps < target:
            latent = self.filter(latent, action, obs, first)
            if self.num_timesteps < hp.prefill:
                action = torch.as_tensor(rng.integers(self.spec.num_actions, size=n), device=self.device)
            else:
                action = self.ac.actor.act(latent.features(), generator=self.device_generator)
            actions = action.cpu().numpy()
            stepped, reward, done, infos = env.step(actions)
            obs = cast(dict[str, np.ndarray], stepped)
            self.replay.add(actions, obs, reward, done, infos)
            self.num_timesteps += n
            first = np.asarray(done, dtype=bool)
            if not run.on_step(self.num_timesteps, finished_episodes(infos, done)):
                return
            if len(self.replay) < max(hp.prefill, n * hp.seq_len):
                continue
            self.ratio.add(n)
            updated = False
            while self.ratio.take():
                try:
                    metrics = self._update()
                except NonFiniteLossError as e:
                    print(f"shiftgrid train: dreamer: {e}", file=sys.stderr)
                    run.state.stop_reason = "nan"
                    return
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count, updated = count + 1, True
            if not updated:
                continue
            log = self.num_timesteps - last_log >= hp.log_every
            mean = {k: v / count for k, v in sums.items()} if log else {}
            if log:
                mean["train/updates"] = float(self.updates)
                mean.update(self._one_step_report())
                sums, count, last_log = {}, 0, self.num_timesteps
                if hp.openloop_every and self.num_timesteps - last_image >= hp.openloop_every:
                    mean.update(replay_open_loop(self.model, self.replay, OPENLOOP_CONTEXT, hp.actor_critic.horizon,
                                                 OPENLOOP_SEQUENCES, run.log_image, generator=self.generator))
                    last_image = self.num_timesteps
            if not run.on_update(self.num_timesteps, mean, log=log):
                return
        if hp.openloop_every and self.updates and last_image != self.num_timesteps:  # a short run draws one too
            run.on_update(self.num_timesteps, replay_open_loop(self.model, self.replay, OPENLOOP_CONTEXT, hp.actor_critic.horizon,
                                                               OPENLOOP_SEQUENCES, run.log_image, generator=self.generator))

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": self.model.state_dict(), "actor_critic": self.ac.state_dict(),
            "optimizers": {"model": self.model_opt.state_dict(), **self.ac.optim_state()},
            "counters": {"num_timesteps": int(self.num_timesteps), "updates": int(self.updates),
                         "credit": float(self.ratio.credit)},
        }
        if self.hp.save_replay and self.replay is not None:
            state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ac.load_state_dict(state["actor_critic"])
        self.model_opt.load_state_dict(state["optimizers"]["model"])
        self.ac.load_optim_state(state["optimizers"])
        c = state["counters"]
        self.num_timesteps, self.updates, self.ratio.credit = int(c["num_timesteps"]), int(c["updates"]), float(c["credit"])
        if "replay" in state and self.replay is not None:
            self.replay.load_state_dict(state["replay"])

    def close(self) -> None:
        close_quietly(self.env)


def DREAMER(config: TrainConfig, *, training: bool) -> Dreamer:
    """The registry entry: a :class:`Dreamer` for ``config``."""
    return Dreamer(config, training)

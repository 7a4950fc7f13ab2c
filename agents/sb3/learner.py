"""The stable-baselines3 learners (PPO, A2C, DQN, RecurrentPPO) as registry entries.

The learner state is SB3's policy and optimizer state dicts, its step and episode counters,
and its episode buffers (``ep_info_buffer``, ``ep_success_buffer``: what SB3's ``rollout/ep_rew_mean``,
``ep_len_mean`` and ``success_rate`` average over), so a resumed run's curves go on from where they
stood. SB3's own ``time/iterations`` and ``time/time_elapsed`` count from the start of each call (the
run's wall-clock total is the run services'). What is not saved: the environments' state (a resumed run starts fresh episodes), the random-number
generators, RecurrentPPO's LSTM state between rollouts (it restarts from zeros), and DQN's
replay buffer (a resumed DQN run refills ``learning_starts`` transitions before its next
update; its exploration rate follows the schedule from the restored ``num_timesteps``). An
interrupted on-policy run is saved as of its last update: the steps of the unfinished rollout
are not counted, so the resumed run collects them again. The resumed environments are seeded
with ``seed + num_timesteps``, so they do not replay the first run's levels.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> learner = A2C(TrainConfig(algo="a2c", n_envs=2, device="cpu"), training=False)
    >>> sorted(learner.state_dict()), learner.num_timesteps
    (['counters', 'episode_buffers', 'optimizer', 'policy'], 0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from sb3_contrib import RecurrentPPO
from stable_baselines3 import A2C as _A2C
from stable_baselines3 import DQN as _DQN
from stable_baselines3 import PPO as _PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.services import RunServices, finite
from shiftgrid.agents.sb3.build import build_model
from shiftgrid.agents.sb3.callbacks import ServicesCallback
from shiftgrid.agents.sb3.logger import SB3RunLogger
from shiftgrid.agents.training.curriculum import curriculum_callbacks
from shiftgrid.agents.training.envs import make_vec
from shiftgrid.envs.learner_env import close_quietly


class SB3Learner:
    """An SB3 model behind the :class:`~shiftgrid.agents.run.registry.Learner` interface (``model`` is the SB3 object)."""

    def __init__(self, config: TrainConfig, training: bool):
        self.config, self.training = config, training
        self.env = make_vec(config) if training else None
        self.model: BaseAlgorithm = build_model(config, self.env)

    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    @num_timesteps.setter
    def num_timesteps(self, value: int) -> None:
        self.model.num_timesteps = int(value)

    def make_logger(self, directory: Any) -> SB3RunLogger:
        """The run's logger: SB3's own, so the model's ``train/*`` and the services' tags are written together."""
        return SB3RunLogger(directory)

    def learn(self, steps: int, run: RunServices) -> None:
        resumed = self.model.num_timesteps > 0
        if resumed:
            self.model.set_random_seed(self.config.seed + self.model.num_timesteps)  # also reseeds the envs
            if self.env is not None and self.env.has_attr("set_training_step"):  # a fading teacher: from the first reset on
                self.env.env_method("set_training_step", self.model.num_timesteps)
        assert isinstance(run.logger, SB3RunLogger), "the run services open the learner's own logger before it learns"
        self.model.set_logger(run.logger.sb3)
        callback = ServicesCallback(run)
        callbacks = [callback] + curriculum_callbacks(self.env, run)
        try:
            self.model.learn(steps, callback=callbacks, log_interval=self.config.log_interval, reset_num_timesteps=not resumed)
        except (ValueError, RuntimeError):  # NaN logits: refused by the distribution's checks (ValueError), or by
            # sampling (RuntimeError) where they are off, as after any torch.compile; the weights decide
            if finite(self.model.policy.parameters()):
                raise
            run.state.stop_reason = "nan"
        finally:
            if run.stopping and run.state.stop_reason != "target" and isinstance(self.model, OnPolicyAlgorithm):
                self.model.num_timesteps = callback.rollout_start  # the unfinished rollout was not learned from
                if callback.buffers_at_start is not None:  # nor are its episodes counted
                    self.model.ep_info_buffer, self.model.ep_success_buffer = callback.buffers_at_start
                run.rollback(callback.rollout_start)

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "policy": m.policy.state_dict(),
            "optimizer": m.policy.optimizer.state_dict(),
            "counters": {"num_timesteps": int(m.num_timesteps), "n_updates": int(getattr(m, "_n_updates", 0)),
                         "episode_num": int(m._episode_num), "n_calls": int(getattr(m, "_n_calls", 0))},
            "episode_buffers": episode_buffers(m),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        m, counters = self.model, state["counters"]
        m.policy.load_state_dict(state["policy"])
        m.policy.optimizer.load_state_dict(state["optimizer"])
        m.num_timesteps, m._episode_num = counters["num_timesteps"], counters["episode_num"]
        if hasattr(m, "_n_updates"):
            m._n_updates = counters["n_updates"]
        if hasattr(m, "_n_calls"):
            m._n_calls = counters["n_calls"]
        if "episode_buffers" in state:
            load_episode_buffers(m, state["episode_buffers"])
        if self.training and hasattr(m, "learning_starts") and m.num_timesteps:  # DQN: refill the unsaved buffer first
            m.learning_starts = m.num_timesteps + m.learning_starts

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

    def close(self) -> None:
        close_quietly(self.env)


def episode_buffers(model: BaseAlgorithm) -> dict[str, list]:
    """SB3's episode buffers as plain lists: ``r``, ``l``, ``t`` of each ``ep_info_buffer`` entry, and ``success``.

    Example:
        >>> from collections import deque
        >>> model = A2C(TrainConfig(algo="a2c", n_envs=2, device="cpu"), training=False).model
        >>> model.ep_info_buffer, model.ep_success_buffer = deque([{"r": 0.5, "l": 9, "t": 1.0}]), deque([True])
        >>> episode_buffers(model)
        {'r': [0.5], 'l': [9], 't': [1.0], 'success': [True]}
    """
    infos = list(model.ep_info_buffer or [])
    return {"r": [float(i["r"]) for i in infos], "l": [int(i["l"]) for i in infos], "t": [float(i.get("t", 0.0)) for i in infos],
            "success": [bool(x) for x in (model.ep_success_buffer or [])]}


def load_episode_buffers(model: BaseAlgorithm, buffers: dict[str, list]) -> None:
    """Restore :func:`episode_buffers` into ``model`` (SB3's ``learn`` keeps them when it does not reset its counters)."""
    size = model._stats_window_size
    model.ep_info_buffer = deque(({"r": r, "l": n, "t": t} for r, n, t in zip(buffers["r"], buffers["l"], buffers["t"])),
                                 maxlen=size)
    model.ep_success_buffer = deque(buffers["success"], maxlen=size)


@dataclass(frozen=True)
class SB3Factory:
    """A registry entry: the SB3 algorithm class and its policy for Dict observations."""

    algorithm: type[BaseAlgorithm]
    policy: str

    def __call__(self, config: TrainConfig, *, training: bool) -> SB3Learner:
        return SB3Learner(config, training)


PPO = SB3Factory(_PPO, "MultiInputPolicy")
A2C = SB3Factory(_A2C, "MultiInputPolicy")
DQN = SB3Factory(_DQN, "MultiInputPolicy")
RECURRENT_PPO = SB3Factory(RecurrentPPO, "MultiInputLstmPolicy")

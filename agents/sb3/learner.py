"""The stable-baselines3 learners (PPO, A2C, DQN, RecurrentPPO) as registry entries.

The learner state is SB3's policy and optimizer state dicts plus its step counters. What is
not saved: the environments' state (a resumed run starts fresh episodes), the random-number
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
    (['counters', 'optimizer', 'policy'], 0)
"""

from __future__ import annotations

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

    def learn(self, steps: int, run: RunServices) -> None:
        resumed = self.model.num_timesteps > 0
        if resumed:
            self.model.set_random_seed(self.config.seed + self.model.num_timesteps)  # also reseeds the envs
            if self.env is not None and self.env.has_attr("set_training_step"):  # a fading teacher: from the first reset on
                self.env.env_method("set_training_step", self.model.num_timesteps)
        assert run.logger is not None, "the run services open the logger before a learner learns"
        self.model.set_logger(run.logger)
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

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "policy": m.policy.state_dict(),
            "optimizer": m.policy.optimizer.state_dict(),
            "counters": {"num_timesteps": int(m.num_timesteps), "n_updates": int(getattr(m, "_n_updates", 0)),
                         "episode_num": int(m._episode_num), "n_calls": int(getattr(m, "_n_calls", 0))},
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
        if self.training and hasattr(m, "learning_starts") and m.num_timesteps:  # DQN: refill the unsaved buffer first
            m.learning_starts = m.num_timesteps + m.learning_starts

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

    def close(self) -> None:
        close_quietly(self.env)


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

"""A deliberately small non-SB3 learner: tabular Q-learning over hashed observations.

It exists to prove the run machinery: this module plus one registry entry
(``register_learner("tabular", "tabular_learner:TabularLearner")``) is all it takes for it to
train, checkpoint, resume, log to TensorBoard and be evaluated by ``shiftgrid train`` and
``shiftgrid evaluate``. Settings (``hyperparams``): ``lr``, ``gamma``, ``epsilon``, ``update_every``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shiftgrid.agents.run.services import Episode, RunServices
from shiftgrid.envs.learner_env import make_env

N_ACTIONS = 3  # minigrid's left, right, forward


def key(image: Any, direction: Any) -> str:
    return np.asarray(image, dtype=np.uint8).tobytes().hex() + f":{int(direction)}"


class TabularLearner:
    def __init__(self, config: Any, *, training: bool):
        hp = {"lr": 0.5, "gamma": 0.9, "epsilon": 0.2, "update_every": 64, **config.hyperparams}
        self.lr, self.gamma, self.epsilon, self.update_every = float(hp["lr"]), float(hp["gamma"]), float(hp["epsilon"]), int(hp["update_every"])
        self.seed, self.num_timesteps, self.q = config.seed, 0, {}
        self.env = make_env(config.env, config.split, **config.env_kwargs) if training else None

    def values(self, k: str) -> list[float]:
        return self.q.setdefault(k, [1.0] * N_ACTIONS)  # optimistic: untried actions get tried

    def learn(self, steps: int, run: RunServices) -> None:
        rng = np.random.default_rng(self.seed + self.num_timesteps)
        obs, _ = self.env.reset(seed=self.seed + self.num_timesteps)
        ret, length, td = 0.0, 0, 0.0
        for _ in range(steps):
            k = key(obs["image"], obs["direction"])
            a = int(rng.integers(N_ACTIONS)) if rng.random() < self.epsilon else int(np.argmax(self.values(k)))
            obs, reward, terminated, truncated, info = self.env.step(a)
            future = 0.0 if terminated else self.gamma * max(self.values(key(obs["image"], obs["direction"])))
            td = reward + future - self.values(k)[a]
            self.values(k)[a] += self.lr * td
            self.num_timesteps, ret, length = self.num_timesteps + 1, ret + reward, length + 1
            episodes = []
            if terminated or truncated:
                episodes, ret, length = [Episode(bool(info["success"]), ret, length)], 0.0, 0
                obs, _ = self.env.reset()
            if not run.on_step(self.num_timesteps, episodes):
                return
            if self.num_timesteps % self.update_every == 0 and not run.on_update(self.num_timesteps, {"train/td_error": abs(td)}):
                return

    def state_dict(self) -> dict[str, Any]:
        values = torch.tensor(list(self.q.values()), dtype=torch.float64).reshape(-1, N_ACTIONS)
        return {"keys": list(self.q), "values": values, "num_timesteps": self.num_timesteps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q = dict(zip(state["keys"], state["values"].tolist()))
        self.num_timesteps = int(state["num_timesteps"])

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> tuple[np.ndarray, None]:
        keys = [key(i, d) for i, d in zip(observation["image"], observation["direction"])]
        return np.array([int(np.argmax(self.q[k])) if k in self.q else 2 for k in keys]), None

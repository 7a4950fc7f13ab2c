"""Cloning PPO's policy from a teacher's actions: the transitions, the supervised update, the shared learner.

The imitation learners (``bc``, ``dagger``, ``expert``) all train the very network PPO trains
(:class:`~shiftgrid.agents.sb3.extractor.BabyAIExtractor` and SB3's actor-critic heads, built by
:func:`~shiftgrid.agents.sb3.build.build_model` from the run's ``extractor`` and ``policy``
settings), so their ``policy`` state loads into PPO (``shiftgrid train --algo ppo --init-from
RUN``); ``bc`` with ``memory`` trains recurrent-ppo's (the extractor, then an LSTM) and loads into it. The update is the cross-entropy of the teacher's action (minus an entropy bonus), plus,
where the return-to-go of the step is known (demonstrations), a value regression that gives a
fine-tuning PPO a critic to start from.

Their state (``policy``, ``optimizer``, ``counters``, ``teacher`` and, for learners that gather
data, ``data``) is weights-only; the learners' settings come from ``hyperparams`` and are
checked by name and type.

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> learner = CloningLearner(TrainConfig(algo="bc", device="cpu"), training=False)
    >>> sorted(learner.state_dict())
    ['counters', 'data', 'optimizer', 'policy', 'teacher']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, TypeVar, cast

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from shiftgrid.agents.imitation.datasets import Episode
from shiftgrid.agents.run.config import ConfigError, TrainConfig, from_mapping
from shiftgrid.agents.sb3.build import build_model

#: The learner-facing observation keys a cloned policy reads.
OBS_KEYS = ("image", "direction", "mission")


@dataclass
class CloningConfig:
    """Settings of the supervised update (``hyperparams`` of every imitation learner)."""

    learning_rate: float = 1e-3
    """Adam's step size."""
    batch_size: int = 256
    """Transitions per update."""
    entropy_coef: float = 0.0
    """Weight of the policy-entropy bonus."""
    value_coef: float = 0.5
    """Weight of the value regression on the return-to-go (where known; 0: leave the critic alone)."""
    gamma: float = 0.99
    """Discount of the return-to-go the critic learns."""
    max_grad_norm: float = 1.0
    """Gradient norm clip."""
    log_every: int = 20
    """Updates between TensorBoard writes."""


S = TypeVar("S", bound=CloningConfig)


def settings(cls: type[S], config: TrainConfig) -> S:
    """``config.hyperparams`` as the learner's settings dataclass (unknown names and wrong types raise)."""
    s = from_mapping(cls, config.hyperparams, "hyperparams.")
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"hyperparams.{f.name} must be >= 0, got {value}")
    if s.batch_size < 1 or s.log_every < 1:
        raise ConfigError(f"hyperparams.batch_size and log_every must be >= 1, got {s.batch_size}, {s.log_every}")
    return s


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return from each step to the episode's end.

    Example:
        >>> returns_to_go(np.array([0.0, 0.0, 1.0]), 0.5).tolist()
        [0.25, 0.5, 1.0]
    """
    out = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


class Transitions:
    """Observations (learner-facing: image codes, direction, mission tokens), teacher actions, returns-to-go.

    ``known`` is False where the return is unknown (a label on the learner's own trajectory; stored as 0).

    Example:
        >>> t = Transitions()
        >>> t.add({"image": np.zeros((2, 7, 7, 3), np.uint8), "direction": np.zeros(2), "mission": np.ones((2, 40))}, [2, 1])
        >>> len(t), t.batch(np.array([1]))[1].tolist()
        (2, [1])
    """

    def __init__(self) -> None:
        self._chunks: list[dict[str, np.ndarray]] = []
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return sum(len(c["actions"]) for c in self._chunks)

    def add(self, observations: Mapping[str, Any], actions: Iterable[int], returns: Iterable[float] | None = None) -> None:
        """Append a batch of (observation, action[, return-to-go]) transitions."""
        acts = np.asarray(list(actions), dtype=np.int64)
        n = len(acts)
        chunk: dict[str, np.ndarray] = {"image": np.asarray(observations["image"], dtype=np.uint8).reshape(n, *np.shape(observations["image"])[1:]),
                                        "direction": np.asarray(observations["direction"], dtype=np.int64).reshape(n),
                                        "mission": np.asarray(observations["mission"], dtype=np.int64).reshape(n, -1),
                                        "actions": acts,
                                        "returns": np.zeros(n, np.float32) if returns is None else np.asarray(list(returns), np.float32),
                                        "known": np.full(n, returns is not None)}
        self._chunks.append(chunk)
        self._arrays = None

    def add_episode(self, episode: Episode, gamma: float) -> None:
        """Every step of a recorded episode (its last observation, after the end, is not a decision)."""
        obs = {k: episode.observations[k][:-1] for k in OBS_KEYS}
        self.add(obs, episode.actions, returns_to_go(episode.rewards, gamma))

    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            if not self._chunks:
                raise ValueError("no transitions yet")
            self._arrays = {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}
            self._chunks = [self._arrays]
        return self._arrays

    def batch(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(observations, actions, returns) at ``indices``; a return is NaN where it is unknown."""
        a = self.arrays()
        return {k: a[k][indices] for k in OBS_KEYS}, a["actions"][indices], np.where(a["known"][indices], a["returns"][indices], np.nan)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Compact tensors (weights-only-loadable)."""
        if not self._chunks:
            return {}
        a = self.arrays()
        return {"image": torch.from_numpy(a["image"].copy()), "direction": torch.from_numpy(a["direction"].astype(np.int8)),
                "mission": torch.from_numpy(a["mission"].astype(np.int16)), "actions": torch.from_numpy(a["actions"].astype(np.int8)),
                "returns": torch.from_numpy(a["returns"].copy()), "known": torch.from_numpy(a["known"].copy())}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self._chunks, self._arrays = [], None
        if state:
            self._chunks = [{"image": state["image"].numpy(), "direction": state["direction"].numpy().astype(np.int64),
                             "mission": state["mission"].numpy().astype(np.int64), "actions": state["actions"].numpy().astype(np.int64),
                             "returns": state["returns"].numpy(), "known": state["known"].numpy()}]


def stack(observations: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """A batch (dict of arrays) from single observations.

    Example:
        >>> stack([{"a": np.zeros(2)}, {"a": np.ones(2)}])["a"].shape
        (2, 2)
    """
    return {k: np.stack([np.asarray(o[k]) for o in observations]) for k in observations[0]}


def acting_config(config: TrainConfig, memory: bool = False) -> TrainConfig:
    """The PPO config whose network an imitation learner trains: the same env, extractor and policy settings
    (``memory``: recurrent-ppo's, the extractor followed by an LSTM)."""
    return TrainConfig.from_dict({**config.to_dict(), "algo": "recurrent-ppo" if memory else "ppo", "hyperparams": {},
                                  "demos": None, "init_from": None})


class CloningLearner:
    """PPO's policy trained by supervised cloning on :attr:`data`; the base of ``bc``, ``dagger`` and ``expert``.

    Subclasses implement ``learn``; they count ``num_timesteps`` as their docstrings say and
    report the teacher's cost through :meth:`report_teacher`.
    """

    settings_class: type[CloningConfig] = CloningConfig
    #: Whether :attr:`data` is part of the state (learners that gather it; ``bc`` rereads its dataset).
    saves_data = True

    def __init__(self, config: TrainConfig, *, training: bool):
        self.config, self.training = config, training
        self.settings = settings(self.settings_class, config)
        self.model = build_model(acting_config(config, self.memory), None)
        self.policy = cast(ActorCriticPolicy, self.model.policy)  # the acting config's SB3 on-policy algorithm
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.settings.learning_rate)
        self.policy.optimizer = self.optimizer
        self.data = Transitions()
        self.num_timesteps = 0
        self.updates = 0
        self.teacher: dict[str, float] = {}

    @property
    def memory(self) -> bool:
        """Whether the cloned policy has memory (an LSTM after the extractor; learned from whole episodes)."""
        return False

    # -- the update ---------------------------------------------------------------------------
    def update(self, indices: np.ndarray, sequences: int | None = None, mask: np.ndarray | None = None) -> dict[str, float]:
        """One gradient step on the transitions at ``indices``; returns ``train/*`` metrics.

        With ``sequences``, ``indices`` are that many episodes' steps in order (each padded to one length, the
        padding left out by ``mask``), read through the policy's memory from a blank state.
        """
        obs, actions, returns = self.data.batch(indices)
        obs_t, _ = self.policy.obs_to_tensor(obs)
        actions_t = torch.as_tensor(actions, device=self.policy.device)
        self.policy.set_training_mode(True)
        dist, values = self._forward(obs_t) if sequences is None else self._forward_sequences(obs_t, sequences)
        keep = torch.ones(len(indices), dtype=torch.bool, device=self.policy.device) if mask is None else \
            torch.as_tensor(mask, device=self.policy.device)
        policy_loss = -dist.log_prob(actions_t)[keep].mean()
        entropy_mean = dist.entropy()[keep].mean()
        loss = policy_loss - self.settings.entropy_coef * entropy_mean
        known = torch.as_tensor(np.isfinite(returns), device=self.policy.device) & keep
        value_loss = torch.zeros((), device=self.policy.device)
        if self.settings.value_coef > 0 and bool(known.any()):
            target = torch.as_tensor(np.nan_to_num(returns), device=self.policy.device)
            value_loss = ((values.flatten() - target) ** 2)[known].mean()
            loss = loss + self.settings.value_coef * value_loss
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        self.policy.set_training_mode(False)
        self.updates += 1
        accuracy = (dist.distribution.probs.argmax(dim=1) == actions_t)[keep].float().mean()
        return {"train/loss": loss.item(), "train/policy_loss": policy_loss.item(), "train/value_loss": value_loss.item(),
                "train/entropy": entropy_mean.item(), "train/accuracy": accuracy.item(), "train/n_updates": self.updates}

    def _forward(self, obs: Any) -> tuple[Any, torch.Tensor]:
        """The action distribution and values of a batch, in one pass (what SB3's ``evaluate_actions`` computes)."""
        features = self.policy.extract_features(obs)
        if self.policy.share_features_extractor:
            latent_pi, latent_vf = self.policy.mlp_extractor(features)
        else:
            pi_features, vf_features = features
            latent_pi, latent_vf = self.policy.mlp_extractor.forward_actor(pi_features), self.policy.mlp_extractor.forward_critic(vf_features)
        return self.policy._get_action_dist_from_latent(latent_pi), self.policy.value_net(latent_vf)

    def _forward_sequences(self, obs: Any, sequences: int) -> tuple[Any, torch.Tensor]:
        """:meth:`_forward` through the recurrent policy's LSTMs, ``sequences`` episodes each from a blank memory."""
        policy: Any = self.policy
        features = policy.extract_features(obs)
        pi_features, vf_features = (features, features) if policy.share_features_extractor else features
        starts = torch.zeros(len(pi_features), device=policy.device)  # each sequence starts from the blank state given

        def blank(lstm: torch.nn.LSTM) -> tuple[torch.Tensor, torch.Tensor]:
            zeros = torch.zeros(lstm.num_layers, sequences, lstm.hidden_size, device=policy.device)
            return zeros, zeros.clone()

        latent_pi, _ = policy._process_sequence(pi_features, blank(policy.lstm_actor), starts, policy.lstm_actor)
        if policy.lstm_critic is not None:
            latent_vf, _ = policy._process_sequence(vf_features, blank(policy.lstm_critic), starts, policy.lstm_critic)
        elif policy.shared_lstm:
            latent_vf = latent_pi.detach()
        else:
            latent_vf = policy.critic(vf_features)
        latent_pi, latent_vf = policy.mlp_extractor.forward_actor(latent_pi), policy.mlp_extractor.forward_critic(latent_vf)
        return policy._get_action_dist_from_latent(latent_pi), policy.value_net(latent_vf)

    def minibatches(self, epoch: int, start: int = 0) -> Iterable[np.ndarray]:
        """The minibatch indices of pass ``epoch`` over :attr:`data` from position ``start`` (seeded by the run's seed)."""
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.data))
        for i in range(start, len(order), self.settings.batch_size):
            yield order[i:i + self.settings.batch_size]

    def fit(self, epochs: int) -> dict[str, float]:
        """``epochs`` passes over :attr:`data` (off the step clock: updates take no environment steps); the last metrics."""
        metrics: dict[str, float] = {}
        for _ in range(epochs):
            for indices in self.minibatches(self.updates):
                metrics = self.update(indices)
        return metrics

    def report_teacher(self, run: Any, **totals: float) -> None:
        """Add to the teacher's running totals and report them (``teacher/*``, ``teacher/cost.json``, ``target.json``)."""
        for k, v in totals.items():
            self.teacher[k] = self.teacher.get(k, 0.0) + float(v)
        run.teacher_cost(**self.teacher)

    # -- the learner interface ----------------------------------------------------------------
    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

    def counters(self) -> dict[str, int]:
        return {"num_timesteps": int(self.num_timesteps), "updates": int(self.updates)}

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "counters": self.counters(),
                "teacher": dict(self.teacher), "data": self.data.state_dict() if self.saves_data else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, value in state["counters"].items():
            setattr(self, name, int(value))
        self.teacher = {k: float(v) for k, v in state.get("teacher", {}).items()}
        if self.saves_data and state.get("data"):
            self.data.load_state_dict(state["data"])

    def close(self) -> None:
        """Nothing to release here (learners with environments close them)."""

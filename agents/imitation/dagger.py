"""``dagger``: the teacher labels the learner's own states; a mixing schedule decides who acts.

Each rollout steps ``n_envs`` environments ``rollout_steps`` times. At every step the oracle
teacher (:class:`~shiftgrid.envs.teacher.OracleTeacher`, planning from the state the learner
has reached) labels the state with its next optimal action; the teacher's action is taken with
probability ``beta_i = beta * beta_decay ** i`` at rollout ``i``, the learner's otherwise (DAgger's
mixture policy: ``beta = 1, beta_decay = 0`` is the original "teacher first, then learner"). Every
labelled state joins the aggregated dataset, on which ``updates`` minibatch updates follow each
rollout. ``--demos DIR`` optionally seeds the dataset with demonstrations.

The step clock: ``num_timesteps`` counts every environment step, whoever acted; the last rollout
is cut short to end at the run's steps (rounded up to a multiple of ``n_envs``). The teacher's
cost is reported as ``teacher/labels`` (every labelled step), ``teacher/teacher_steps`` (steps the
teacher's action was taken) and, with ``--demos``, ``teacher/demo_episodes`` / ``demo_steps``.

The training episodes the run reports (``rollout/*``, the progress bar, the training success
``shiftgrid train`` prints, the training-success target) are the learner's own: those in which
every action taken was the learner's (the teacher never acted, or acted only where it chose the
learner's action). The mixture's success, over every episode that ended in a rollout, is
``train/mixture_success``.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> result = train(TrainConfig(algo="dagger", steps=32, n_envs=2, device="cpu", progress=False,
    ...                            hyperparams={"rollout_steps": 16, "updates": 2},
    ...                            run_dir=tempfile.mkdtemp() + "/run", eval=EvalConfig(freq=0)))
    >>> result.num_timesteps
    32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shiftgrid.agents.imitation.cloning import CloningConfig, CloningLearner, stack
from shiftgrid.agents.imitation.datasets import default_teacher, read_episodes
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.services import Episode, RunServices
from shiftgrid.envs.learner_env import has_splits, make_env


@dataclass
class DaggerConfig(CloningConfig):
    """DAgger's settings (``hyperparams``), besides the supervised update's."""

    rollout_steps: int = 128
    """Steps per environment in each rollout."""
    updates: int = 32
    """Minibatch updates on the aggregated dataset after each rollout."""
    beta: float = 1.0
    """Probability the teacher acts at the first rollout."""
    beta_decay: float = 0.5
    """Factor on ``beta`` after each rollout."""
    deterministic: bool = True
    """The learner acts with its most likely action (False: samples from its policy)."""


def mixing(beta: float, decay: float, rollout: int) -> float:
    """The probability the teacher acts at ``rollout``.

    Example:
        >>> [mixing(1.0, 0.5, i) for i in range(3)], mixing(1.0, 0.0, 1)
        ([1.0, 0.5, 0.25], 0.0)
    """
    return float(beta * decay ** rollout)


class DaggerLearner(CloningLearner):
    """DAgger (see the module docstring)."""

    settings_class = DaggerConfig
    settings: DaggerConfig  # built from settings_class

    def __init__(self, config: TrainConfig, *, training: bool):
        super().__init__(config, training=training)
        s: DaggerConfig = self.settings
        if s.beta > 1 or s.beta_decay > 1 or s.rollout_steps < 1:
            raise ConfigError(f"dagger needs beta and beta_decay in [0, 1] and rollout_steps >= 1, got {s.beta}, "
                              f"{s.beta_decay}, {s.rollout_steps}")
        self.rollouts = 0
        self.envs: list = []
        self.demo_episodes = self.demo_steps = 0
        if not training:
            return
        self.teacher_model = default_teacher()
        self.envs = [make_env(config.env, config.split, **config.env_kwargs) for _ in range(config.n_envs)]
        if config.demos is not None:
            split = (config.split or "train") if has_splits(config.env) else None
            for episode in read_episodes(config.demos, env_id=config.env, split=split, env_kwargs=config.env_kwargs):
                self.data.add_episode(episode, s.gamma)
                self.demo_episodes, self.demo_steps = self.demo_episodes + 1, self.demo_steps + len(episode)

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "rollouts": int(self.rollouts)}

    def label(self, env: Any) -> int | None:
        """The teacher's action in ``env``'s current state (None where the learner made the mission impossible)."""
        try:
            return int(self.teacher_model.act(env))
        except (ValueError, RuntimeError):  # UnsolvableLevel is a RuntimeError; a finished mission a ValueError
            return None

    def learn(self, steps: int, run: RunServices) -> None:
        s: DaggerConfig = self.settings
        if self.demo_steps and "demo_steps" not in self.teacher:
            self.teacher.update(demo_episodes=float(self.demo_episodes), demo_steps=float(self.demo_steps))
        run.teacher_cost(**self.teacher)
        n, end = len(self.envs), self.num_timesteps + steps
        obs = [env.reset(seed=self.config.seed + self.num_timesteps + j)[0] for j, env in enumerate(self.envs)]
        ret, length = [0.0] * n, [0] * n
        overridden = [False] * n  # the teacher took an action the learner would not have, this episode
        while self.num_timesteps < end:
            beta = mixing(s.beta, s.beta_decay, self.rollouts)
            rng = np.random.default_rng([self.config.seed, self.rollouts])
            labelled_obs, labels, finished, mixture, acted = [], [], [], [], 0
            rollout_length = min(s.rollout_steps, -(-(end - self.num_timesteps) // n))  # the last rollout ends at the steps
            for _ in range(rollout_length):
                mine, _ = self.predict(stack(obs), deterministic=s.deterministic)
                teacher_acts = rng.random(n) < beta
                for j, env in enumerate(self.envs):
                    label = self.label(env)
                    action = int(mine[j])
                    if label is not None:
                        labelled_obs.append(obs[j])
                        labels.append(label)
                        if teacher_acts[j]:
                            action, acted = label, acted + 1
                    overridden[j] = overridden[j] or action != int(mine[j])
                    obs[j], reward, terminated, truncated, info = env.step(action)
                    ret[j], length[j] = ret[j] + float(reward), length[j] + 1
                    if terminated or truncated:
                        mixture.append(bool(info.get("success")))
                        if not overridden[j]:  # the learner's own episode
                            finished.append(Episode(bool(info.get("success")), ret[j], length[j]))
                        obs[j], ret[j], length[j], overridden[j] = env.reset()[0], 0.0, 0, False
            self.num_timesteps += n * rollout_length
            if labels:
                self.data.add(stack(labelled_obs), labels)
            self.report_teacher(run, labels=len(labels), teacher_steps=acted)
            if not run.on_step(self.num_timesteps, finished):
                return
            metrics: dict[str, float] = {}
            for _ in range(s.updates if len(self.data) else 0):
                metrics = self.update(np.random.default_rng([self.config.seed, self.rollouts, self.updates])
                                      .integers(len(self.data), size=min(s.batch_size, len(self.data))))
            self.rollouts += 1
            metrics.update({"train/beta": beta, "train/dataset": len(self.data)})
            if mixture:
                metrics["train/mixture_success"] = float(np.mean(mixture))
            if not run.on_update(self.num_timesteps, metrics):
                return

    def close(self) -> None:
        for env in self.envs:
            env.close()


def DAGGER(config: TrainConfig, *, training: bool) -> Any:
    """The registry entry of ``dagger``."""
    return DaggerLearner(config, training=training)

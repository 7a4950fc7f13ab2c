"""What ``tensor-ppo`` takes: its ``hyperparams`` (:class:`Settings`) and the config it refuses (:func:`check_supported`).

Example:
    >>> Settings(n_steps=32, batch_size=256).check(n_envs=128)
    >>> Settings(batch_size=0).check(n_envs=8)
    Traceback (most recent call last):
    ...
    shiftgrid.agents.run.errors.ConfigError: hyperparams.batch_size=0 makes an empty minibatch or one larger than a rollout; valid: 1..512 (n_envs 8 x n_steps 64)
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.training.kickstart import NOT_PLANNED
from shiftgrid.agents.training.tensor_vec import ENGINE_OPTIONS
from shiftgrid.envs.learner_env import has_splits


@dataclass
class Settings:
    """``hyperparams`` of ``tensor-ppo`` (names as SB3's PPO where the meaning is the same)."""

    n_steps: int = 64
    """Steps per env in a rollout (a rollout is ``n_envs * n_steps`` steps)."""
    batch_size: int = 1024
    """Minibatch size of an update (at most one rollout)."""
    n_epochs: int = 4
    """Passes over each rollout."""
    learning_rate: float | dict = 5e-4
    """Adam's step size: a number, or ``{linear: [start, end]}`` over the run's ``steps``."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    clip_range: float = 0.2
    """PPO's ratio clip."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    target_kl: float | None = None
    """Stop a rollout's epochs early once the approximate KL passes this (None: never)."""
    network: str = "cheap"
    """``cheap`` (bag-of-words cells, small conv, one FiLM) or ``babyai`` (SB3 ppo's extractor); its
    keywords go in the config's ``extractor``."""
    hidden: int = 64
    """Units of the policy's and the value's hidden layer."""
    memory: int = 0
    """Units of a GRU between the encoder and the heads, carried from step to step within an episode
    (0: none, a feedforward policy). With memory, ``batch_size`` is whole env trajectories of a
    rollout: a multiple of ``n_steps``."""

    def check(self, n_envs: int) -> None:
        """Raise :class:`ConfigError` on values no run could use (an empty minibatch, a rollout of no steps, ...)."""
        rollout = n_envs * self.n_steps
        if self.n_steps < 1 or self.n_epochs < 1:
            raise ConfigError(f"hyperparams.n_steps and n_epochs must be >= 1, got {self.n_steps} and {self.n_epochs}")
        if not 1 <= self.batch_size <= rollout:
            raise ConfigError(f"hyperparams.batch_size={self.batch_size} makes an empty minibatch or one larger than a rollout; "
                              f"valid: 1..{rollout} (n_envs {n_envs} x n_steps {self.n_steps})")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1 or self.clip_range <= 0:
            raise ConfigError(f"hyperparams: gamma must be in (0, 1], gae_lambda in [0, 1], clip_range > 0; got "
                              f"{self.gamma}, {self.gae_lambda}, {self.clip_range}")
        if self.hidden < 1 or self.memory < 0:
            raise ConfigError(f"hyperparams.hidden must be >= 1 and memory >= 0 (0: no memory), got {self.hidden} and {self.memory}")
        if self.memory and self.batch_size % self.n_steps:
            raise ConfigError(f"hyperparams.batch_size={self.batch_size} with memory={self.memory}: a recurrent minibatch is whole "
                              f"env trajectories of a rollout, so batch_size must be a multiple of n_steps ({self.n_steps}); "
                              f"valid: {', '.join(str(self.n_steps * k) for k in range(1, min(n_envs, 4) + 1))}"
                              f"{', ...' if n_envs > 4 else ''} up to {rollout}")


def check_supported(config: TrainConfig) -> None:
    """Refuse what ``tensor-ppo`` does not take (yet), naming the learner that does."""
    advice = config.advice
    if advice.enabled and advice.protocol in ("distill", "observation"):
        s = config.hyperparams
        if s.get("network", "cheap") != "cheap" or s.get("memory", 0):
            raise ConfigError(f"advice.protocol={advice.protocol} reads the words with a feedforward cheap network; got "
                              f"hyperparams.network={s.get('network', 'cheap')!r}, memory={s.get('memory', 0)!r} "
                              "(valid: network cheap, memory 0)")
    if advice.enabled and (advice.when != "always" or advice.budget is not None):
        raise ConfigError(f"tensor-ppo's teacher speaks at every step of the watched envs (advice.watched_envs); got "
                          f"advice.when={advice.when!r}, budget={advice.budget!r} (valid: when always, no budget; "
                          "--algo ppo takes the others)")
    unsupported = [name for name, given in (("--dream", config.dream), ("--demos", config.demos)) if given]
    if unsupported:
        raise ConfigError(f"tensor-ppo does not take {', '.join(unsupported)}; --algo ppo does")
    if config.advice.enabled and not has_splits(config.env):  # before a bank is built
        raise ConfigError(NOT_PLANNED.format(env=config.env))
    unknown = sorted(set(config.engine) - set(ENGINE_OPTIONS) | ({"device"} & set(config.engine)))
    if unknown:
        raise ConfigError(f"tensor-ppo does not take engine options {unknown}; valid: bank_size, workers, compile "
                          "(the engine runs on the run's --device)")
    if config.policy:
        raise ConfigError(f"tensor-ppo has no SB3 policy settings (got policy: {config.policy}); "
                          "set hyperparams.network, hyperparams.hidden and extractor.* instead")

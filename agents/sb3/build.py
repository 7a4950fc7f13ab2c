"""From a :class:`~shiftgrid.agents.run.config.TrainConfig` to an SB3 model.

One place builds models, for training, for resuming and for :func:`~shiftgrid.agents.run.checkpoint.load_agent`,
so a checkpoint always loads into the network it was saved from. The SB3 class and policy of
each algorithm come from its registry entry (:mod:`shiftgrid.agents.sb3.learner`).

Example:
    >>> from shiftgrid.agents.run.config import TrainConfig
    >>> from shiftgrid.agents.training.envs import make_vec
    >>> config = TrainConfig(algo="a2c", n_envs=2, device="cpu")
    >>> env = make_vec(config)
    >>> model = build_model(config, env)
    >>> type(model).__name__, model.n_envs
    ('A2C', 2)
"""

from __future__ import annotations

import inspect
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.sb3.extractor import BabyAIExtractor
from shiftgrid.envs.learner_env import env_spaces
from shiftgrid.world_models.device import resolve_device


def sb3_algorithm(name: str) -> tuple[type[BaseAlgorithm], str]:
    """(SB3 class, policy name) of the registered SB3 learner ``name``.

    Example:
        >>> sb3_algorithm("recurrent-ppo")[1]
        'MultiInputLstmPolicy'
    """
    from shiftgrid.agents.run.registry import get_learner

    factory: Any = get_learner(name)  # an SB3 learner's factory also has .algorithm and .policy
    if not hasattr(factory, "algorithm"):
        raise ConfigError(f"learner {name!r} is not a stable-baselines3 algorithm")
    return factory.algorithm, factory.policy

#: Constructor arguments set here, not through ``hyperparams``.
RESERVED = ("policy", "env", "policy_kwargs", "device", "seed", "verbose", "tensorboard_log", "_init_setup_model")


def _check_keys(what: str, given: dict, fn: Any, reserved: tuple[str, ...] = ()) -> None:
    valid = [p for p in inspect.signature(fn).parameters if p not in reserved + ("self", "observation_space")]
    for key in given:
        if key not in valid:
            raise ConfigError(f"unknown {what} {key!r}; valid: {', '.join(valid)}")


def schedule(name: str, value: Any) -> Any:
    """A hyperparameter value, with ``{linear: [start, end]}`` made into an SB3 linear schedule.

    The schedule goes from ``start`` at the first step to ``end`` at the last step of the run
    (``steps``; a resumed run keeps the same ramp). SB3 takes schedules for ``learning_rate`` and,
    in PPO, ``clip_range``.

    Example:
        >>> lr = schedule("learning_rate", {"linear": [1e-3, 0.0]})
        >>> lr(1.0), lr(0.5), lr(0.0)  # SB3 passes the fraction of training left
        (0.001, 0.0005, 0.0)
        >>> schedule("gamma", 0.99)
        0.99
    """
    if not isinstance(value, dict):
        return value
    ramp = value.get("linear")
    if len(value) != 1 or not (isinstance(ramp, list) and len(ramp) == 2 and all(isinstance(v, (int, float)) for v in ramp)):
        raise ConfigError(f"hyperparameter {name}: expected a number or {{linear: [start, end]}}, got {value!r}")
    return LinearSchedule(float(ramp[0]), float(ramp[1]), end_fraction=1.0)


def algo_kwargs(config: TrainConfig) -> dict[str, Any]:
    """``config.hyperparams`` checked against the algorithm's constructor (unknown names raise)."""
    cls, _ = sb3_algorithm(config.algo)
    _check_keys(f"{config.algo} hyperparameter", config.hyperparams, cls.__init__, RESERVED)
    return {name: schedule(name, value) for name, value in config.hyperparams.items()}


def policy_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Policy keyword arguments: the BabyAI extractor (codes unnormalised) plus ``config.policy``."""
    cls, policy = sb3_algorithm(config.algo)
    reserved = ("action_space", "lr_schedule", "features_extractor_class", "features_extractor_kwargs")
    _check_keys(f"{config.algo} policy setting", config.policy, cls.policy_aliases[policy].__init__, reserved)
    _check_keys("extractor setting", config.extractor, BabyAIExtractor.__init__)
    return {
        "features_extractor_class": BabyAIExtractor,
        "features_extractor_kwargs": dict(config.extractor),
        "normalize_images": False,
        **config.policy,
    }


def build_model(config: TrainConfig, env: VecEnv | None, **overrides: Any) -> BaseAlgorithm:
    """A fresh SB3 model for ``config`` on ``env``; ``overrides`` replace hyperparameters.

    With ``env=None`` the model is built for acting only: its spaces come from one environment
    made and closed here (no training envs, no replay buffer).

    Raises:
        ConfigError: an unknown hyperparameter, policy or extractor setting, or device, or a
            value the algorithm rejects.
    """
    cls, policy = sb3_algorithm(config.algo)
    kwargs = {**algo_kwargs(config), **overrides}
    pkw, device = policy_kwargs(config), resolve_device(config.device)
    try:
        if env is not None:
            return cls(policy, env, policy_kwargs=pkw, device=device, seed=config.seed, verbose=0, **kwargs)
        if "buffer_size" in inspect.signature(cls.__init__).parameters:
            kwargs["buffer_size"] = 1  # acting needs no replay buffer
        # every SB3 algorithm takes _init_setup_model; their common type, BaseAlgorithm, does not declare it
        model = cls(policy, None, policy_kwargs=pkw, device=device, seed=config.seed, verbose=0, _init_setup_model=False, **kwargs)  # type: ignore[call-arg]
        model.observation_space, model.action_space = env_spaces(config.env, config.split, silent_advice=config.advice.enabled,
                                                                 **config.env_kwargs)
        model.n_envs = 1
        model._setup_model()
        return model
    except (AssertionError, ValueError, TypeError) as e:  # SB3 checks its arguments with these
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{config.algo} rejected its settings: {reason}") from None

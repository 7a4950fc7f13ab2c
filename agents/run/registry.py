"""The learner registry: the one list of learner names, each imported only when used.

An entry maps a name to ``"module:attribute"``, a :class:`LearnerFactory`: it builds a
:class:`Learner` from a :class:`~shiftgrid.agents.run.config.TrainConfig`. A learner trains for a
number of steps calling the run services (:class:`~shiftgrid.agents.run.services.RunServices`),
hands over its checkpointable state as a weights-only dict, and acts like an SB3 model
(``predict``). Everything else (run dir, config, checkpoints, resume, signals, progress,
periodic evaluation, target, TensorBoard) is the run machinery's, so a new learner is one
module plus one entry, registered here, from outside with :func:`register_learner`, or by an
installed package through the ``shiftgrid.learners`` entry-point group (name = ``module:attribute``).

Example:
    >>> learner_names()[:4]
    ['ppo', 'a2c', 'dqn', 'recurrent-ppo']
    >>> register_learner("ppo", "shiftgrid.agents.sb3.learner:PPO")
    Traceback (most recent call last):
    ...
    shiftgrid.agents.run.errors.ConfigError: learner 'ppo' is already registered (shiftgrid.agents.sb3.learner:PPO)
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any, Protocol

from shiftgrid.agents.run.errors import ConfigError
from shiftgrid.envs.targets import import_target

if TYPE_CHECKING:
    from shiftgrid.agents.run.config import TrainConfig
    from shiftgrid.agents.run.services import RunServices

#: Built-in learners: name -> ``module:attribute`` of its factory.
_ENTRIES: dict[str, str] = {
    "ppo": "shiftgrid.agents.sb3.learner:PPO",
    "a2c": "shiftgrid.agents.sb3.learner:A2C",
    "dqn": "shiftgrid.agents.sb3.learner:DQN",
    "recurrent-ppo": "shiftgrid.agents.sb3.learner:RECURRENT_PPO",
    "bc": "shiftgrid.agents.imitation.bc:BC",
    "dagger": "shiftgrid.agents.imitation.dagger:DAGGER",
    "expert": "shiftgrid.agents.imitation.expert:EXPERT",
    "world-model": "shiftgrid.agents.model_based.world_model:WorldModelLearner",
    "dreamer": "shiftgrid.agents.model_based.dreamer:DREAMER",
    "tensor-ppo": "shiftgrid.agents.tensor_ppo.ppo:TENSOR_PPO",
}

#: What ``steps`` (``shiftgrid train --steps``) counts for each built-in learner, and where its last batch may end.
STEP_CLOCKS: dict[str, str] = {
    "ppo": "environment steps, summed over the n_envs environments; it learns from whole rollouts of "
           "n_steps x n_envs, so the last one may end past the steps asked",
    "dqn": "environment steps, summed over the environments; collected train_freq x n_envs at a time, so the last "
           "batch may end past the steps asked",
    "bc": "demonstration transitions learned from, one per transition per pass over the dataset; exactly the steps asked",
    "dagger": "environment steps, whoever acted (learner or teacher); the last rollout is cut short to end at the steps "
              "asked (rounded up to a multiple of n_envs)",
    "expert": "environment steps of the learner's probe episodes and of the teacher's demonstrations; none starts "
              "once the steps are taken (those under way finish: at most eval.n_envs episodes past)",
    "world-model": "environment steps collected, n_envs at a time; with --demos, run steps standing for the dataset "
                   "steps replayed (train_ratio replayed steps each)",
    "dreamer": "environment steps collected (the random prefill included), n_envs at a time",
}
STEP_CLOCKS["a2c"] = STEP_CLOCKS["recurrent-ppo"] = STEP_CLOCKS["ppo"]
#: What counts in ``steps`` whatever the learner (the other half of ``shiftgrid train --help``'s account).
STEP_CLOCK_NOTES = ("A curriculum teacher's side estimates count in the steps: the run stops once they reach them "
                    "(an estimate under way finishes). With --dream, the steps are the world model's imagined steps. "
                    "A run that ends past its steps says so when it finishes.")

_BUILTIN = tuple(_ENTRIES)
#: The built-in learners that are stable-baselines3 models (what an SB3 ``.zip`` can be loaded as).
SB3_LEARNERS = tuple(n for n, target in _ENTRIES.items() if target.startswith("shiftgrid.agents.sb3.learner:"))
#: Entry-point group through which installed packages add learners.
ENTRY_POINT_GROUP = "shiftgrid.learners"
_plugins_loaded = False


def _load_plugins() -> None:
    """Add the learners of installed packages (once; a name already taken stays as it is)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _ENTRIES.setdefault(ep.name, ep.value)


class Learner(Protocol):
    """What the run machinery asks of a learner."""

    num_timesteps: int
    """Environment steps the learner's state has learned from."""

    def learn(self, steps: int, run: "RunServices") -> None:
        """Train for ``steps`` more environment steps (or until a ``run`` call answers stop).

        Per batch of environment steps call ``run.on_step(num_timesteps, episodes)``; whenever
        the state is consistent (after an update) call ``run.on_update(num_timesteps, metrics)``;
        stop as soon as either returns False. Log through ``run.logger`` (a
        :class:`~shiftgrid.agents.run.logger.RunLogger`; a learner with a ``make_logger(directory)``
        method supplies its own, as SB3's learners do).
        """

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors and plain Python values (``weights_only``-safe)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (``num_timesteps`` included)."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[Any, Any]:
        """Batched actions, SB3's signature."""


class LearnerFactory(Protocol):
    """A registry entry's target: builds a learner for a config."""

    def __call__(self, config: "TrainConfig", *, training: bool) -> Learner:
        """A fresh learner; ``training=False`` builds only what acting needs (no training envs)."""


def learner_names() -> list[str]:
    """Registered learner names, built-ins first."""
    _load_plugins()
    return list(_ENTRIES)


def check_learner(name: str) -> None:
    """Raise :class:`ConfigError` naming the valid learners if ``name`` is not registered."""
    _load_plugins()
    if name not in _ENTRIES:
        raise ConfigError(f"unknown algo {name!r}; valid: {', '.join(_ENTRIES)}")


def register_learner(name: str, target: str) -> None:
    """Register the factory at ``target`` (``"package.module:attribute"``) under ``name``.

    Raises:
        ConfigError: ``name`` is taken, or ``target`` is not of the ``module:attribute`` form.
    """
    if name in _ENTRIES:
        raise ConfigError(f"learner {name!r} is already registered ({_ENTRIES[name]})")
    module, sep, attr = target.partition(":")
    if not (sep and module and attr):
        raise ConfigError(f"learner target must be 'module:attribute', got {target!r}")
    _ENTRIES[name] = target


def unregister_learner(name: str) -> None:
    """Remove a learner registered with :func:`register_learner` (built-ins stay)."""
    check_learner(name)
    if name in _BUILTIN:
        raise ConfigError(f"learner {name!r} is built in and cannot be unregistered")
    _ENTRIES.pop(name)


def steps_meaning(name: str) -> str:
    """What ``steps`` counts for learner ``name`` (see :data:`STEP_CLOCKS`).

    Example:
        >>> steps_meaning("bc")
        'demonstration transitions learned from, one per transition per pass over the dataset; exactly the steps asked'
    """
    check_learner(name)
    return STEP_CLOCKS.get(name, "environment steps, as the learner's own documentation says")


def get_learner(name: str) -> LearnerFactory:
    """Import and return the factory registered as ``name``.

    Example:
        >>> get_learner("a2c").algorithm.__name__
        'A2C'
    """
    check_learner(name)
    try:
        obj = import_target(_ENTRIES[name])
    except (ImportError, AttributeError) as e:
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in ("torch", "stable_baselines3", "sb3_contrib"):
            raise  # a missing extra: the CLI says which one to install
        raise ConfigError(f"learner {name!r} is registered as {_ENTRIES[name]!r}, which cannot be loaded: {e}") from None
    return obj

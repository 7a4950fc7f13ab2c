"""Behaviour policies that collect real transitions for a world model, from a gymnasium vector env.

:func:`make_behaviour` ``(kind_or_run, *, noise, seed)`` gives one of:

- ``random``: uniform over the action space (``noise`` is moot).
- ``oracle``: the exact next optimal action from each sub-env's live state: on shiftgrid ids
  :func:`shiftgrid.envs.oracle.solve_from`, on minigrid's BabyAI ids minigrid's ``BabyAIBot``
  (one bot per episode, told the action actually taken). Plain minigrid ids have neither: a
  clear error. Where the level can no longer be solved (a random action toggled its object
  away) or the bot gives up, that step's action is random.
- a trained agent: a run directory, a ``.pt`` checkpoint of any registered learner, or an SB3
  ``.zip``, loaded as ``shiftgrid evaluate`` loads it; actions are sampled from its policy
  (``deterministic=True``: its most likely ones, as ``shiftgrid evaluate`` plays it; this is
  how ``shiftgrid wm evaluate`` plays a Dreamer run's own agent).

For ``oracle`` and agents, each action is replaced, with probability ``noise``, by a uniform
random one (:attr:`Behaviour.last_random` says which were), so the data covers competent and
exploratory behaviour. ``seed`` seeds the choice of random actions (restored on resume through
:meth:`Behaviour.state_dict`).

:meth:`Behaviour.act` ``(envs, obs)`` takes a ``gymnasium.vector.SyncVectorEnv`` (the oracle
reads its sub-envs' live state; an agent reads which sub-envs start an episode) and the batch
of observations it returned, and answers one action per sub-env. ``random`` and agents also
act from observations alone (``envs=None``); the oracle cannot.

The world-model trainer keeps its behaviour in ``config.hyperparams`` (``policy``, ``noise``)
with ``config.seed``: ``make_behaviour(hp["policy"], noise=hp["noise"], seed=config.seed)``
rebuilds the same one (``shiftgrid wm evaluate`` does).

Example:
    >>> import gymnasium as gym
    >>> from shiftgrid.envs.learner_env import make_env
    >>> envs = gym.vector.SyncVectorEnv([lambda: make_env("shiftgrid/GoTo-v1")] * 2)
    >>> obs, _ = envs.reset(seed=0)
    >>> behaviour = make_behaviour("oracle", noise=0.25, seed=0)
    >>> actions = behaviour.act(envs, obs)
    >>> actions.shape, behaviour.last_random.dtype
    ((2,), dtype('bool'))
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from shiftgrid.agents.run.config import ConfigError

#: The behaviour kinds by name (anything else must be a path to a trained agent).
KINDS = ("random", "oracle")


def _num_envs(envs: Any, obs: Any) -> int:
    return int(envs.num_envs) if envs is not None else len(np.asarray(obs["image"]))


def _num_actions(envs: Any) -> int | None:
    space = getattr(envs, "single_action_space", None)
    return None if space is None else int(space.n)


def episode_starts(envs: Any) -> np.ndarray:
    """Which sub-envs of a ``SyncVectorEnv`` stand at the first step of an episode (minigrid's ``step_count == 0``)."""
    return np.array([int(getattr(e.unwrapped, "step_count", 0)) == 0 for e in envs.envs])


class Behaviour(abc.ABC):
    """A behaviour policy (see the module docstring); subclasses implement :meth:`_act`.

    Attributes:
        kind: ``random``, ``oracle`` or the agent's path as given.
        noise: share of actions replaced by uniform random ones.
        last_random: which of the last :meth:`act`'s actions were random.
        env: the environment an agent was trained on (None for ``random`` / ``oracle`` / zips).
    """

    needs_envs = False
    env: str | None = None

    def __init__(self, kind: str, noise: float, seed: int, num_actions: int = 7):
        if not 0.0 <= noise <= 1.0:
            raise ConfigError(f"noise must be in [0, 1], got {noise!r}")
        self.kind, self.noise, self.num_actions = kind, float(noise), num_actions
        self.rng = np.random.default_rng(seed)
        self.last_random = np.zeros(0, dtype=bool)

    def act(self, envs: Any, obs: Any) -> np.ndarray:
        """One action per sub-env of ``envs`` (a ``SyncVectorEnv``, or None where the behaviour allows) at ``obs``."""
        if envs is None and self.needs_envs:
            raise ConfigError(f"the {self.kind} behaviour reads the live environment; it cannot act from observations alone")
        n = _num_envs(envs, obs)
        k = _num_actions(envs) or self.num_actions
        chosen, forced = self._act(envs, obs, n)
        noisy = forced | (self.rng.random(n) < self.noise)
        uniform = self.rng.integers(k, size=n)
        self.last_random = noisy
        actions = np.where(noisy, uniform, chosen).astype(np.int64)
        self._taken(actions)
        return actions

    @abc.abstractmethod
    def _act(self, envs: Any, obs: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(chosen actions, where the choice failed and a random action must stand in)."""

    def _taken(self, actions: np.ndarray) -> None:
        """What was actually done (bots that replan from the taken action keep it)."""

    def check(self, envs: Any) -> None:
        """Raise :class:`ConfigError` if this behaviour cannot act on ``envs`` (called before collecting)."""

    def state_dict(self) -> dict[str, Any]:
        """The random-number generator's state (plain values: ``weights_only``-safe)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class RandomBehaviour(Behaviour):
    """Uniform random actions."""

    def __init__(self, seed: int):
        super().__init__("random", 1.0, seed)

    def _act(self, envs: Any, obs: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)


class OracleBehaviour(Behaviour):
    """The exact oracle on shiftgrid ids, minigrid's ``BabyAIBot`` on BabyAI ids, with ``noise``."""

    needs_envs = True

    def __init__(self, noise: float, seed: int):
        super().__init__("oracle", noise, seed)
        self.bots: list[Any] = []
        self.fallbacks = 0
        """Steps where no optimal action could be had (unsolvable from here, bot gave up): random instead."""

    def check(self, envs: Any) -> None:
        if not hasattr(envs, "envs"):
            raise ConfigError(f"the oracle behaviour needs a gymnasium SyncVectorEnv (it reads each sub-env), got {type(envs).__name__}")
        from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

        u = envs.envs[0].unwrapped
        if not (hasattr(u, "optimal_plan_from_here") or isinstance(u, RoomGridLevel)):
            spec = getattr(u, "spec", None)
            name = spec.id if spec is not None else type(u).__name__
            raise ConfigError(f"--policy oracle needs a shiftgrid id (exact oracle) or a BabyAI id (minigrid's BabyAIBot); "
                              f"{name} has neither; use --policy random or a trained agent's run")

    def _act(self, envs: Any, obs: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        self.check(envs)
        if len(self.bots) != n:
            self.bots = [None] * n
        chosen, failed = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        starts = episode_starts(envs)
        for i, env in enumerate(envs.envs):
            action = self._shiftgrid(env) if hasattr(env.unwrapped, "optimal_plan_from_here") else self._bot(i, env, starts[i])
            if action is None:
                failed[i] = True
                self.fallbacks += 1
            else:
                chosen[i] = action
        return chosen, failed

    @staticmethod
    def _shiftgrid(env: Any) -> int | None:
        from shiftgrid.envs.oracle import UnsolvableLevel, solve_from

        u = env.unwrapped
        if u.progress.complete:
            return None  # the episode is over: this step resets the env, its action is ignored
        try:
            plan = solve_from(env)
        except UnsolvableLevel:
            return None
        return int(plan.actions[0]) if plan.actions else None

    def _bot(self, i: int, env: Any, start: bool) -> int | None:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        if start or self.bots[i] is None:
            self.bots[i] = (BabyAIBot(env.unwrapped), None)
        bot, taken = self.bots[i]
        try:
            action = int(bot.replan(taken))
        except Exception:  # noqa: BLE001  # the bot's planner asserts or fails on states it did not expect
            self.bots[i] = None  # a fresh bot plans from the next step
            return None
        return action

    def _taken(self, actions: np.ndarray) -> None:
        for i, entry in enumerate(self.bots):
            if entry is not None:
                self.bots[i] = (entry[0], int(actions[i]))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fallbacks": self.fallbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.fallbacks = int(state.get("fallbacks", 0))


class AgentBehaviour(Behaviour):
    """A trained agent's actions (SB3's ``predict``, recurrent state kept across steps), with ``noise``.

    Sampled from its policy unless ``deterministic`` (its most likely actions, as ``shiftgrid evaluate`` plays it).
    """

    def __init__(self, path: str, noise: float, seed: int, device: str = "cpu", deterministic: bool = False):
        super().__init__(path, noise, seed)
        self.agent, self.env = load_behaviour_agent(path, device)
        self.deterministic = deterministic
        self.state: Any = None

    def _act(self, envs: Any, obs: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        starts = episode_starts(envs) if envs is not None and hasattr(envs, "envs") else np.zeros(n, dtype=bool)
        actions, self.state = self.agent.predict(obs, state=self.state, episode_start=starts,
                                                 deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(n), np.zeros(n, dtype=bool)


def load_behaviour_agent(path: str, device: str = "cpu") -> tuple[Any, str | None]:
    """``(agent, env id it was trained on or None)`` of a run directory, ``.pt`` checkpoint or SB3 ``.zip``.

    Raises:
        ConfigError: a world model's run (not an agent), or anything ``shiftgrid evaluate`` cannot load.
    """
    from shiftgrid.agents.run.checkpoint import CheckpointError, build_learner, find_checkpoint, read_checkpoint
    from shiftgrid.agents.sb3.zip_model import ZipModelError, load_zip

    try:
        if Path(path).suffix == ".zip":
            return load_zip(path, device=device)[0], None
        checkpoint = read_checkpoint(find_checkpoint(path))
        agent = build_learner(checkpoint, device)
        if getattr(agent, "behaviour", None) is not None:  # a world-model trainer acts with its behaviour policy
            raise ConfigError(f"--policy {path} is a world model's run, not a trained agent's")
        return agent, checkpoint.config.get("env")
    except (CheckpointError, ZipModelError) as e:
        raise ConfigError(f"--policy {path}: {e}") from None


def make_behaviour(kind_or_run: str, *, noise: float, seed: int, device: str = "cpu",
                   deterministic: bool = False) -> Behaviour:
    """The behaviour policy ``kind_or_run``: ``random``, ``oracle``, or a trained agent's run / checkpoint / ``.zip``.

    Args:
        kind_or_run: see the module docstring.
        noise: share of actions replaced by uniform random ones (``oracle`` and agents).
        seed: seeds the random actions.
        device: torch device a trained agent is loaded on.
        deterministic: a trained agent takes its most likely actions (default: sampled from its policy).

    Raises:
        ConfigError: an unknown kind (and no such path), a noise outside [0, 1], an agent that cannot be loaded.

    Example:
        >>> make_behaviour("random", noise=0.0, seed=1).act(None, {"image": np.zeros((3, 7, 7, 3))}).shape
        (3,)
        >>> make_behaviour("greedy", noise=0.0, seed=1)
        Traceback (most recent call last):
        ...
        shiftgrid.agents.run.errors.ConfigError: unknown policy 'greedy'; valid: random, oracle, or a trained agent (run directory, .pt checkpoint or SB3 .zip)
    """
    if kind_or_run == "random":
        behaviour: Behaviour = RandomBehaviour(seed)
    elif kind_or_run == "oracle":
        behaviour = OracleBehaviour(noise, seed)
    elif Path(kind_or_run).exists():
        behaviour = AgentBehaviour(kind_or_run, noise, seed, device, deterministic)
    else:
        raise ConfigError(f"unknown policy {kind_or_run!r}; valid: {', '.join(KINDS)}, or a trained agent "
                          "(run directory, .pt checkpoint or SB3 .zip)")
    if not 0.0 <= noise <= 1.0:
        raise ConfigError(f"noise must be in [0, 1], got {noise!r}")
    return behaviour

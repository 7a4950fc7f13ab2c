"""Presets: the YAML settings each learner (and learner-and-environment pair) starts from.

A run's config is layered, each layer overriding the one before: the :class:`TrainConfig`
defaults < ``presets/<algo>.yaml`` < ``presets/<algo>-<env name>.yaml`` (e.g. ``ppo-GoTo.yaml``)
< a ``--config`` file < the command line (flags and ``--set``). ``shiftgrid train``, ``shiftgrid
wm train``, ``shiftgrid main`` and every sweep point resolve their configs through :func:`layered`.

Example:
    >>> config = layered({}, {"algo": "ppo", "env": "shiftgrid/GoTo-v1", "n_envs": 4})
    >>> config["steps"], config["hyperparams"]["n_steps"], config["n_envs"]   # ppo-GoTo.yaml, ppo.yaml, the command line
    (1000000, 128, 4)
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from shiftgrid.agents.run.config import ConfigError, TrainConfig, load_yaml, merge
from shiftgrid.agents.run.registry import check_learner


def preset_folder() -> Any:
    """The folder of the preset YAML files (package data of :mod:`shiftgrid.agents`)."""
    return resources.files("shiftgrid.agents") / "presets"


def preset_steps() -> str:
    """The ``steps`` the presets set, for ``--help``: ``ppo-GoTo 1000000, ...``."""
    found = []
    for file in sorted(preset_folder().iterdir(), key=lambda f: f.name):
        if file.name.endswith(".yaml"):
            steps = (load_yaml(file.read_text(), f"preset {file.name}") or {}).get("steps")
            if steps is not None:
                found.append(f"{file.name[:-5]}: {steps}")
    return ", ".join(found) or "none"


def preset_name(env_id: str) -> str:
    """The environment part of a preset file name: ``shiftgrid/GoTo-v1`` -> ``GoTo``.

    Example:
        >>> preset_name("shiftgrid/GoTo-v1"), preset_name("BabyAI-GoToLocal-v0")
        ('GoTo', 'BabyAI-GoToLocal')
    """
    name = env_id.split("/")[-1].split(":")[-1]
    return name.rsplit("-v", 1)[0] if name.rsplit("-v", 1)[-1].isdigit() else name


#: Learners that train another learner's network (the imitation learners train PPO's policy): they start from that
#: learner's presets for the network's keys, so that ``--init-from`` carries weights between them with no flags.
NETWORK_OF = {"bc": "ppo", "dagger": "ppo", "expert": "ppo"}
#: The config keys that shape a learner's network.
NETWORK_KEYS = ("policy", "extractor")


def presets(algo: str, env_id: str) -> dict[str, Any]:
    """``<algo>.yaml`` merged with ``<algo>-<name>.yaml`` (each only where it exists), over the network keys of the
    presets of the learner whose network ``algo`` trains (:data:`NETWORK_OF`).

    Example:
        >>> presets("bc", "shiftgrid/GoTo-v1")["policy"] == presets("ppo", "shiftgrid/GoTo-v1")["policy"]
        True
    """
    folder = preset_folder()
    network = presets(NETWORK_OF[algo], env_id) if algo in NETWORK_OF else {}
    out: dict[str, Any] = {k: v for k, v in network.items() if k in NETWORK_KEYS}
    for name in (f"{algo}.yaml", f"{algo}-{preset_name(env_id)}.yaml"):
        file = folder / name
        if file.is_file():
            data = load_yaml(file.read_text(), f"preset {name}") or {}
            out = merge(out, data)
    return out


def layered(from_file: dict[str, Any], command_line: dict[str, Any]) -> dict[str, Any]:
    """Presets of the chosen learner and env < ``from_file`` < ``command_line``.

    Raises:
        ConfigError: ``algo`` or ``env`` is not a string, or ``algo`` names no registered learner.
    """
    chosen = merge(from_file, command_line)
    defaults = TrainConfig()
    algo, env = chosen.get("algo", defaults.algo), chosen.get("env", defaults.env)
    if not isinstance(algo, str) or not isinstance(env, str):
        raise ConfigError(f"algo and env must be strings, got {algo!r} and {env!r}")
    check_learner(algo)
    return merge(merge(presets(algo, env), from_file), command_line)

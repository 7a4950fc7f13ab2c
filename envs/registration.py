"""Registering families (and their splits) as gymnasium environments.

``import shiftgrid.envs`` registers the built-in families as ``shiftgrid/<Family>-v<N>``.
Another project registers its own family, or its own splits over an existing family, under
its own namespace:

Example:
    >>> import gymnasium as gym
    >>> from shiftgrid.envs import GOTO, register_family
    >>> env_id = register_family(GOTO, namespace="mylab", splits={
    ...     "version": 0, "train": {"size": 6, "num_distractors": 1},
    ...     "axes": {"size": {"far": {"size": 12}}}})
    >>> env_id
    'mylab/GoTo-v0'
    >>> env = gym.make(env_id, split="size/far")
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import gymnasium as gym

from shiftgrid.envs.family import Family
from shiftgrid.envs.shift.split import SplitError, SplitSet, load_splits

_SPLITS: dict[str, SplitSet] = {}
_FAMILIES: dict[str, Family] = {}


class UnknownEnvError(ValueError):
    """An environment id or family name that is not registered."""


def register_family(
    family: Family,
    *,
    namespace: str = "shiftgrid",
    splits: str | Path | Mapping | SplitSet | None = None,
    **env_kwargs,
) -> str:
    """Register ``family`` with gymnasium as ``<namespace>/<name>-v<version>``; return the id.

    ``splits`` is a YAML path, a mapping in the YAML layout, or None for the family's own
    ``envs/shift/<name>.yaml``. Extra keyword arguments become the environment's defaults.
    """
    env_id = family.env_id(namespace)
    split_set = splits if isinstance(splits, SplitSet) else load_splits(family, splits)
    _SPLITS[env_id] = split_set
    _FAMILIES[env_id] = family
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(
        id=env_id,
        entry_point="shiftgrid.envs.env:ShiftGridEnv",
        kwargs={"family": family, "splits": split_set, **env_kwargs},
        disable_env_checker=True,  # check_env passes on every split; the per-step checker costs throughput
    )
    return env_id


def splits_for(env_id: str) -> SplitSet:
    """The :class:`SplitSet` registered with ``env_id``."""
    try:
        return _SPLITS[env_id]
    except KeyError:
        raise UnknownEnvError(f"unknown shiftgrid environment {env_id!r}; valid: {', '.join(_SPLITS)}") from None


def registered_ids(namespace: str | None = None) -> list[str]:
    """Ids registered through :func:`register_family` (optionally only one namespace)."""
    return [i for i in _SPLITS if namespace is None or i.startswith(namespace + "/")]


def family_splits(name_or_id: str) -> SplitSet:
    """Splits of a built-in family by name (``"GoTo"``) or of any registered id."""
    if "/" in name_or_id:
        return splits_for(name_or_id)
    for env_id, fam in _FAMILIES.items():
        if fam.name == name_or_id and env_id.startswith("shiftgrid/"):
            return _SPLITS[env_id]
    names = sorted({f.name for f in _FAMILIES.values()})
    raise UnknownEnvError(f"unknown family {name_or_id!r}; valid: {', '.join(names)}")


__all__ = ["register_family", "splits_for", "registered_ids", "family_splits", "UnknownEnvError", "SplitError"]

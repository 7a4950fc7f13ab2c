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
    'mylab/GoTo-v1'
    >>> env = gym.make(env_id, split="size/far")

A registered spec holds JSON values only: the family as an import path (``module:name``) and
the splits as given (None for the family's own YAML, a YAML path, or a mapping), so
``gym.spec(env_id).to_json()`` works and ``gym.make(EnvSpec.from_json(...))`` rebuilds the
env in any process that can import the family's module:

    >>> gym.spec("shiftgrid/GoTo-v1").kwargs["family"]
    'shiftgrid.envs.families.goto:FAMILY'
    >>> spec = gym.envs.registration.EnvSpec.from_json(gym.spec(env_id).to_json())
    >>> gym.make(spec, split="size/far").reset(seed=0)[1]["success"]
    False
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym

from shiftgrid.envs.errors import UserInputError
from shiftgrid.envs.family import Family
from shiftgrid.envs.shift.split import SplitError, SplitSet, load_splits

ENTRY_POINT = "shiftgrid.envs.env:ShiftGridEnv"
#: The batched torch engine behind ``gym.make_vec`` (gymnasium's default for ids that have one).
VECTOR_ENTRY_POINT = "shiftgrid.envs.engine:shiftgrid_vector_env"

#: env id -> the JSON kwargs it was registered with (family reference, splits source, defaults).
_REGISTERED: dict[str, dict[str, Any]] = {}
#: family reference -> the family object it names in this process.
_FAMILIES: dict[str, Family] = {}
#: (family reference, splits source) as JSON -> the built split set.
_SPLIT_SETS: dict[str, SplitSet] = {}


class UnknownEnvError(UserInputError, ValueError):
    """An environment id or family name that is not registered."""


class RegistrationError(UserInputError, ValueError):
    """An id registered twice with different families, splits or defaults, or values a spec cannot hold."""


def family_ref(family: Family, caller_module: str | None = None) -> str:
    """The import path (``module:name``) of a module-level name bound to ``family``.

    Looks in the module of the generator, of the factors class and of the caller. A family
    bound to no module-level name gets ``module:<Name id>``, which only this process resolves.

    Example:
        >>> from shiftgrid.envs import GOTO
        >>> family_ref(GOTO)
        'shiftgrid.envs.families.goto:FAMILY'
    """
    candidates = (getattr(family.generate, "__module__", None), family.factors.__module__, caller_module)
    for name in dict.fromkeys(c for c in candidates if c):
        module = sys.modules.get(name)
        for attr, value in (vars(module).items() if module is not None else ()):
            if value is family and not attr.startswith("_"):
                return f"{name}:{attr}"
    return f"{family.factors.__module__}:<{family.name} {id(family):x}>"


def resolve_family(ref: Family | str) -> Family:
    """The family a reference names: a :class:`Family`, or ``module:name`` (importing the module).

    Example:
        >>> resolve_family("shiftgrid.envs.families.goto:FAMILY").name
        'GoTo'
    """
    if isinstance(ref, Family):
        return ref
    if ref in _FAMILIES:
        return _FAMILIES[ref]
    module_name, _, attr = str(ref).partition(":")
    hint = ("define the family at module level in an importable module (e.g. mylab.py on sys.path or "
            "PYTHONPATH) and register it there, then use the id 'mylab:<namespace>/<Name>-v<N>'")
    if not attr or not attr.isidentifier():
        raise UnknownEnvError(f"family {ref!r} is not bound to a module-level name, so no other process can "
                              f"import it; {hint}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UnknownEnvError(f"cannot import the module of family {ref!r}: {e}; {hint}") from None
    family = getattr(module, attr, None)
    if not isinstance(family, Family):
        where = ("the main script or an interactive session, which another process does not run"
                 if module_name in ("__main__", "__mp_main__") else f"module {module_name!r}")
        raise UnknownEnvError(f"family {ref!r} is not defined in {where} (got {type(family).__name__}); {hint}")
    _FAMILIES[ref] = family
    return family


def _splits_source(family: Family, splits: str | Path | Mapping | SplitSet | None) -> str | dict | None:
    """The JSON form of a splits argument: None, an absolute YAML path, or a plain mapping."""
    if splits is None:
        return None
    if isinstance(splits, (str, Path)):
        return str(Path(splits).resolve())
    if isinstance(splits, SplitSet):
        splits = splits.to_mapping()
    try:
        return json.loads(json.dumps(splits))
    except (TypeError, ValueError) as e:
        raise RegistrationError(f"splits for {family.name} must hold plain values (numbers, strings, lists, "
                                f"mappings) so the spec is JSON: {e}") from None


def resolve_splits(family: Family | str, splits: SplitSet | str | Path | Mapping | None = None) -> tuple[Family, SplitSet]:
    """The family and split set that spec kwargs ``family`` and ``splits`` name (split sets are cached).

    Example:
        >>> family, splits = resolve_splits("shiftgrid.envs.families.goto:FAMILY")
        >>> family.name, "size/far" in splits
        ('GoTo', True)
    """
    fam = resolve_family(family)
    if isinstance(splits, SplitSet):
        return fam, splits
    if isinstance(family, Family):  # a family object, not a reference: nothing to cache by
        return fam, load_splits(fam, splits)
    source = _splits_source(fam, splits)
    key = json.dumps([family, source], sort_keys=True)
    if key not in _SPLIT_SETS:
        _SPLIT_SETS[key] = load_splits(fam, source)
    return fam, _SPLIT_SETS[key]


def register_family(
    family: Family | str,
    *,
    namespace: str = "shiftgrid",
    splits: str | Path | Mapping | SplitSet | None = None,
    **env_kwargs: Any,
) -> str:
    """Register ``family`` with gymnasium as ``<namespace>/<name>-v<version>``; return the id.

    ``family`` is a :class:`Family` (bound to a module-level name, so other processes can
    import it) or its import path ``"module:name"``. ``splits`` is a YAML path, a mapping in
    the YAML layout, or None for the family's own ``envs/shift/<name>.yaml``. Extra keyword
    arguments (JSON values) become the environment's defaults.

    Registering an id again with the same family, splits and defaults does nothing (a module
    may be imported twice); with anything different it raises :class:`RegistrationError`.
    """
    caller = sys._getframe(1).f_globals.get("__name__")
    fam = resolve_family(family)
    ref = family if isinstance(family, str) else family_ref(fam, caller)
    env_id = fam.env_id(namespace)
    source = _splits_source(fam, splits)
    try:
        json.dumps(env_kwargs)
    except (TypeError, ValueError) as e:
        raise RegistrationError(f"default keyword arguments of {env_id} must be JSON values: {e}") from None
    kwargs = {"family": ref, "splits": source, **env_kwargs}
    if env_id in _REGISTERED:
        if _REGISTERED[env_id] == kwargs and _FAMILIES.get(ref) is fam:
            return env_id
        if _REGISTERED[env_id] != kwargs:  # equal kwargs, another object: its module was reloaded
            raise RegistrationError(
                f"{env_id} is already registered with {_REGISTERED[env_id]}; registering it with {kwargs} would "
                f"change it: use another namespace, or bump the family's version")
    elif env_id in gym.registry:
        raise RegistrationError(f"{env_id} is already registered by another package (entry point "
                                f"{gym.registry[env_id].entry_point}); use another namespace")
    _FAMILIES[ref] = fam
    key = json.dumps([ref, source], sort_keys=True)
    _SPLIT_SETS[key] = splits if isinstance(splits, SplitSet) else load_splits(fam, source)
    _REGISTERED[env_id] = kwargs
    if env_id not in gym.registry:
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=kwargs,
            disable_env_checker=True,  # check_env passes on every split; the per-step checker costs throughput
        )
    return env_id


def bare_id(env_id: str) -> str:
    """``env_id`` without gymnasium's ``module:`` prefix, importing that module (which registers its ids).

    Example:
        >>> bare_id("shiftgrid.envs:shiftgrid/GoTo-v1")
        'shiftgrid/GoTo-v1'
    """
    module, sep, rest = env_id.partition(":")
    if not sep:
        return env_id
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise UnknownEnvError(f"cannot import module {module!r} named in the id {env_id!r}: {e}") from None
    return rest


def splits_for(env_id: str) -> SplitSet:
    """The :class:`SplitSet` registered with ``env_id`` (``module:`` prefixes are imported first)."""
    kwargs = _REGISTERED.get(bare_id(env_id))
    if kwargs is None:
        raise UnknownEnvError(f"unknown shiftgrid environment {env_id!r}; valid: {', '.join(_REGISTERED)}")
    return resolve_splits(kwargs["family"], kwargs["splits"])[1]


def registered_id(family: Family | str, splits: Any = None) -> str | None:
    """The id registered with this family reference and splits source, if any (the vector engine learns its id so).

    Example:
        >>> from shiftgrid.envs.registration import registered_id  # the registry the ids were registered in
        >>> registered_id("shiftgrid.envs.families.goto:FAMILY")
        'shiftgrid/GoTo-v1'
    """
    ref = family if isinstance(family, str) else None
    for env_id, kwargs in _REGISTERED.items():
        same = kwargs["family"] == ref if ref is not None else _FAMILIES.get(kwargs["family"]) is family
        if same and kwargs["splits"] == (splits if not isinstance(splits, SplitSet) else kwargs["splits"]):
            return env_id
    return None


def registered_ids(namespace: str | None = None, *, superseded: bool = False) -> list[str]:
    """Ids registered through :func:`register_family` (optionally only one namespace).

    An id whose family is also registered under a higher version is superseded: it stays
    makeable (gymnasium warns that it is out of date) and is listed only with ``superseded=True``.

    Example:
        >>> from shiftgrid.envs import registered_ids
        >>> "shiftgrid/GoTo-v1" in registered_ids("shiftgrid"), "shiftgrid/GoTo-v0" in registered_ids("shiftgrid")
        (True, False)
        >>> "shiftgrid/GoTo-v0" in registered_ids("shiftgrid", superseded=True)
        True
    """
    ids = [i for i in _REGISTERED if namespace is None or i.startswith(namespace + "/")]
    return ids if superseded else [i for i in ids if _is_latest(i)]


def _is_latest(env_id: str) -> bool:
    """Whether no higher version of ``env_id``'s name is registered (gymnasium's own rule for its warning)."""
    ns, name, version = gym.envs.registration.parse_env_id(env_id)
    return version == gym.envs.registration.find_highest_version(ns, name)


def family_splits(name_or_id: str) -> SplitSet:
    """Splits of a built-in family by name (``"GoTo"``) or of any registered id."""
    if "/" in name_or_id:
        return splits_for(name_or_id)
    for env_id in registered_ids("shiftgrid"):
        split_set = splits_for(env_id)
        if split_set.family.name == name_or_id:
            return split_set
    names = sorted({splits_for(i).family.name for i in _REGISTERED})
    raise UnknownEnvError(f"unknown family {name_or_id!r}; valid: {', '.join(names)}")


__all__ = [
    "register_family", "splits_for", "registered_ids", "registered_id", "family_splits", "resolve_family", "resolve_splits",
    "family_ref", "bare_id", "UnknownEnvError", "RegistrationError", "SplitError",
]

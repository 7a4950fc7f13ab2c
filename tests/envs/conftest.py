"""Shared parametrization and helpers for the generic environment tests.

Parametrization is discovered at collection time from the registry, so a family added to
``shiftgrid.envs.BUILTIN_FAMILIES`` is covered by every test here with no edits. A test asks
for it by fixture name:

``env_id``
    every id registered under the ``shiftgrid`` namespace.
``env_id`` + ``split_name``
    every split of every such id.
``case``
    every distinct level distribution of every id (a :class:`SplitCase`): splits that alias
    another (``size/id`` draws exactly the levels of ``id``) are folded into it, and families
    with an ``exposure`` override get an extra ``train`` case drawn with ``exposure=1``.
    ``held_out_case`` and ``exposure_case`` are the held-out ones and the exposure ones.

A test that parametrizes one of these names itself keeps its own values.

``fixed_level_env`` makes a :class:`ShiftGridEnv` whose every level is one hand-built level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import shiftgrid.envs as sg
from shiftgrid.envs.factors import Factors
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Level, level_hash
from shiftgrid.envs.shift.split import hash_extra, is_reserved, load_splits


def shiftgrid_ids() -> list[str]:
    return sg.registered_ids("shiftgrid")


@dataclass(frozen=True)
class SplitCase:
    """One distinct level distribution: a split of an id, optionally with training exposure."""

    env_id: str
    split_name: str
    exposure: float = 0.0
    aliases: tuple[str, ...] = ()

    @property
    def splits(self):
        return sg.splits_for(self.env_id)

    @property
    def family(self) -> Family:
        return self.splits.family

    @property
    def split(self):
        return self.splits[self.split_name]

    @property
    def label(self) -> str:
        name = self.env_id.split("/", 1)[1] + "/" + self.split_name
        return name + (f"@exposure={self.exposure:g}" if self.exposure else "")

    def make_kwargs(self) -> dict:
        kw = {"split": self.split_name}
        if self.exposure:
            kw["exposure"] = self.exposure
        return kw

    def draw(self, rng: np.random.Generator) -> Factors:
        """Factors as ``sample_level`` draws them for this case (exposure overrides always applied)."""
        overrides = self.family.exposure if self.exposure else None
        return self.split.draw_factors(self.family.factors, rng, overrides)


def _factor_key(factors) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in factors.items()))


def split_cases() -> list[SplitCase]:
    cases = []
    for env_id in shiftgrid_ids():
        splits = sg.splits_for(env_id)
        seen: dict[tuple, list[str]] = {}
        for name in splits:
            s = splits[name]
            seen.setdefault((_factor_key(s.factors), s.seed_start, s.seed_count, s.held_out), []).append(name)
        for names in seen.values():
            cases.append(SplitCase(env_id, names[0], 0.0, tuple(names[1:])))
        if splits.family.exposure:
            cases.append(SplitCase(env_id, "train", 1.0))
    return cases


def _explicitly_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0]
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",")]
        if name in argnames:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = [n for n in metafunc.fixturenames if not _explicitly_parametrized(metafunc, n)]
    for name, keep in (
        ("case", lambda c: True),
        ("held_out_case", lambda c: c.split.held_out),
        ("exposure_case", lambda c: c.exposure > 0),
    ):
        if name in names:
            cases = [c for c in split_cases() if keep(c)]
            metafunc.parametrize(name, cases, ids=[c.label for c in cases])
            return
    if "env_id" in names and "split_name" in names:
        pairs = [(i, s) for i in shiftgrid_ids() for s in sg.splits_for(i)]
        metafunc.parametrize(("env_id", "split_name"), pairs, ids=[f"{i.split('/', 1)[1]}/{s}" for i, s in pairs])
    elif "env_id" in names:
        ids = shiftgrid_ids()
        metafunc.parametrize("env_id", ids, ids=[i.split("/", 1)[1] for i in ids])


def make_fixed_level_env(build: Callable[[], Level], *, slip: float = 0.0, palette: str = "identity", view: int = 7,
                         **env_kwargs) -> sg.ShiftGridEnv:
    """An env whose every episode is the level ``build()`` returns (it must return a fresh level each call).

    The level is served from ``train`` or ``id``, whichever hash bucket its hash falls in.
    """
    grid = build().grid
    family = Family(name="FixedLevelForTests", factors=Factors, generate=lambda f, rng: build(),
                    grid_size=lambda f: (grid.width, grid.height))
    splits = load_splits(family, {"version": 0, "train": {"slip": slip, "palette": palette, "view": view}})
    f = Factors(slip=slip, palette=palette, view=view)
    split = "id" if is_reserved(level_hash(build(), hash_extra(f))) else "train"
    return sg.ShiftGridEnv(family, split=split, splits=splits, **env_kwargs)


@pytest.fixture
def fixed_level_env():
    """Factory: ``fixed_level_env(build, slip=..., palette=..., view=..., **ShiftGridEnv_kwargs)``."""
    envs = []

    def make(build, **kwargs):
        env = make_fixed_level_env(build, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()

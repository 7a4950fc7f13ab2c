"""Splits as data, and the sampler that enforces them.

A family's splits are declared in YAML (``envs/shift/<family>.yaml``)::

    version: 0
    train:                       # the training distribution: factor -> value or list of values
      size: [6, 7, 8]
    axes:
      size:
        near: {size: [10, 11]}   # overrides of the training factors
        far:  {size: [14, 16]}

Every axis gets ``<axis>/id`` (the training factors on held-out levels), ``<axis>/near`` and
``<axis>/far``; ``train`` is the default and ``id`` is an alias of the in-distribution split.

Disjointness is by construction: a level whose canonical hash falls in the reserved bucket
(one hash in eight) is never used for training, and every test split uses only such levels.
Test splits also draw from their own seed ranges.

Example:
    >>> from shiftgrid.envs import family_splits
    >>> s = family_splits("GoTo")
    >>> s["size/far"].level, s["train"].held_out
    ('far', False)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from shiftgrid.envs.factors import FactorError, Factors
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Level, LevelError, level_hash
from shiftgrid.envs.oracle import Plan, UnsolvableLevel, solve

TRAIN_SEEDS = (0, 2**30)
TEST_SEED_BASE, TEST_SEED_COUNT = 2**30, 10**6
LEVELS = ("id", "near", "far")
HASH_BUCKETS = 8


class SplitError(ValueError):
    """An unknown split, a malformed split declaration, or a split that leaves no levels."""


def is_reserved(h: str) -> bool:
    """Whether a level hash falls in the bucket reserved for test splits (one in eight)."""
    return int(h[:8], 16) % HASH_BUCKETS == 0


@dataclass(frozen=True)
class Split:
    """One named distribution over levels.

    Attributes:
        name: ``train``, ``id`` or ``<axis>/<id|near|far>``.
        factors: factor -> value, or list of values drawn uniformly per level.
        seed_start, seed_count: the range level seeds are drawn from.
        axis, level: the axis of shift and ``train``/``id``/``near``/``far``.
        description: what changes, in words.
    """

    name: str
    factors: Mapping[str, Any]
    seed_start: int
    seed_count: int
    axis: str | None = None
    level: str = "train"
    description: str = ""

    @property
    def held_out(self) -> bool:
        return self.level != "train"

    def draw_factors(self, factors_cls: type[Factors], rng: np.random.Generator, overrides: Mapping | None = None) -> Factors:
        """Draw one factor assignment: each listed factor uniformly from its values."""
        values = {}
        for name, v in {**self.factors, **(overrides or {})}.items():
            values[name] = v[int(rng.integers(len(v)))] if isinstance(v, (list, tuple)) else v
        return factors_cls(**values)


@dataclass
class Sample:
    """A sampled level with its factors, seed, hash and (if computed) optimal plan."""

    level: Level
    factors: Factors
    level_seed: int
    level_hash: str
    plan: Plan | None


def hash_extra(f: Factors) -> tuple:
    """Factors that change dynamics or observations without changing the grid: part of the hash."""
    return (f.slip, f.palette, f.view)


def sample_level(
    family: Family,
    split: Split,
    rng: np.random.Generator,
    *,
    exposure: float = 0.0,
    level_seed: int | None = None,
    oracle: bool = True,
    max_steps: int | None = None,
    max_tries: int = 200,
) -> Sample:
    """Draw a level of ``split``: seeds are tried in turn until a generated level is admissible.

    Admissible: generated without ``LevelError``, in the right hash bucket (reserved for test
    splits, excluded from training), and (with ``oracle``) solvable within the episode limit.
    """
    if level_seed is None:
        level_seed = split.seed_start + int(rng.integers(split.seed_count))
    offset = level_seed - split.seed_start
    last = "no level was generated"
    for t in range(max_tries):
        seed = split.seed_start + (offset + t) % split.seed_count
        grng = np.random.default_rng(seed)
        overrides = None
        if exposure > 0 and family.exposure and grng.random() < exposure:
            overrides = family.exposure
        factors = split.draw_factors(family.factors, grng, overrides)
        try:
            level = family.generate(factors, grng)
        except LevelError as e:
            last = f"generator: {e}"
            continue
        h = level_hash(level, hash_extra(factors))
        if is_reserved(h) != split.held_out:
            last = "hash bucket"
            continue
        plan = None
        if oracle:
            try:
                plan = solve(level, slip=factors.slip)
            except UnsolvableLevel as e:
                last = f"oracle: {e}"
                continue
            if plan.steps > (max_steps or family.max_steps(factors)):
                last = "optimal plan longer than the episode limit"
                continue
        return Sample(level, factors, seed, h, plan)
    raise SplitError(
        f"split {split.name!r} of {family.name} leaves no levels: {max_tries} seeds from {level_seed} "
        f"were rejected (last reason: {last}); check its factors {dict(split.factors)}"
    )


class SplitSet(Mapping[str, Split]):
    """All splits of one family, by name; unknown names raise :class:`SplitError` listing the valid ones."""

    def __init__(self, family: Family, splits: dict[str, Split], version: int):
        self.family, self._splits, self.version = family, splits, version

    def __getitem__(self, name: str) -> Split:
        try:
            return self._splits[name]
        except KeyError:
            raise SplitError(
                f"unknown split {name!r} for {self.family.name}; valid: {', '.join(self._splits)}"
            ) from None

    def __iter__(self):
        return iter(self._splits)

    def __len__(self) -> int:
        return len(self._splits)

    @property
    def axes(self) -> list[str]:
        """Axis names, in declaration order."""
        return list(dict.fromkeys(s.axis for s in self._splits.values() if s.axis))

    def canonical(self, name: str) -> str:
        """The name a split's levels go by: ``<axis>/id`` is an alias of ``id`` (same levels).

        Example:
            >>> from shiftgrid.envs import family_splits
            >>> family_splits("GoTo").canonical("size/id"), family_splits("GoTo").canonical("size/far")
            ('id', 'size/far')
        """
        return "id" if self[name].level == "id" else name

    def test_splits(self) -> list[str]:
        """Every held-out split once, by canonical name: ``id`` then each ``<axis>/near|far``.

        Example:
            >>> from shiftgrid.envs import family_splits
            >>> family_splits("GoTo").test_splits()[:3]
            ['id', 'size/near', 'size/far']
        """
        return list(dict.fromkeys(self.canonical(n) for n, s in self._splits.items() if s.held_out))

    def is_shift(self, name: str) -> bool:
        """Whether ``name`` shifts the training distribution (``near``/``far``), as opposed to ``train``/``id``."""
        return self[name].level in ("near", "far")

    def axis_layout(self, evaluated: Any = None) -> dict[str, dict[str, str]]:
        """Axis -> {``id``/``near``/``far`` -> canonical split name}, over the ``evaluated`` names (None: all).

        An axis appears when one of its shifted splits is among ``evaluated``; its ``id`` row is
        the shared ``id`` split, when that was evaluated too.

        Example:
            >>> from shiftgrid.envs import family_splits
            >>> family_splits("GoTo").axis_layout(["id", "size/far"])
            {'size': {'id': 'id', 'far': 'size/far'}}
        """
        chosen = set(self.test_splits() if evaluated is None else (self.canonical(n) for n in evaluated))
        layout: dict[str, dict[str, str]] = {}
        for axis in self.axes:
            rows = {s.level: n for n, s in self._splits.items() if s.axis == axis and s.level != "id" and n in chosen}
            if rows:
                rows = {"id": "id", **rows} if "id" in chosen else rows
                layout[axis] = {level: rows[level] for level in LEVELS if level in rows}
        return layout


def _check_factors(family: Family, where: str, factors: Mapping[str, Any]) -> None:
    if not isinstance(factors, Mapping):
        raise SplitError(f"{where}: expected a mapping of factor -> values, got {factors!r}")
    for name, values in factors.items():
        seq = values if isinstance(values, (list, tuple)) else [values]
        if len(seq) == 0:
            raise SplitError(f"{where}: factor {name!r} has no values, so the split leaves no levels")
        try:
            for v in seq:
                family.factors.check(name, v)
        except FactorError as e:
            raise SplitError(f"{where}: {e}") from None


def build_splits(family: Family, spec: Mapping[str, Any]) -> SplitSet:
    """Validate a split declaration (parsed YAML) and build the family's :class:`SplitSet`."""
    if not isinstance(spec, Mapping) or "train" not in spec:
        raise SplitError(f"split declaration for {family.name} needs a 'train' mapping; got keys {list(spec or {})}")
    unknown = set(spec) - {"version", "train", "axes", "descriptions"}
    if unknown:
        raise SplitError(f"split declaration for {family.name}: unknown keys {sorted(unknown)}; valid: version, train, axes")
    version = int(spec.get("version", family.version))
    if version != family.version:
        raise SplitError(f"splits are for {family.name}-v{version} but the family is v{family.version}")
    train = dict(spec["train"] or {})
    _check_factors(family, f"{family.name} train", train)
    splits: dict[str, Split] = {"train": Split("train", train, *TRAIN_SEEDS, description="training distribution")}
    k = 0

    def test_split(name: str, factors: dict, axis: str | None, level: str, desc: str) -> Split:
        nonlocal k
        k += 1
        return Split(name, factors, TEST_SEED_BASE + k * TEST_SEED_COUNT, TEST_SEED_COUNT, axis, level, desc)

    in_dist = test_split("id", train, None, "id", "training distribution, held-out levels")
    splits["id"] = in_dist
    for axis, levels in (spec.get("axes") or {}).items():
        if not isinstance(levels, Mapping) or set(levels) - {"near", "far", "description"}:
            raise SplitError(f"{family.name} axis {axis!r}: expected near/far mappings, got {levels!r}")
        splits[f"{axis}/id"] = Split(f"{axis}/id", train, in_dist.seed_start, in_dist.seed_count, axis, "id", in_dist.description)
        for level in ("near", "far"):
            if level not in levels:
                continue
            over = dict(levels[level] or {})
            desc = over.pop("description", "")
            _check_factors(family, f"{family.name} {axis}/{level}", over)
            splits[f"{axis}/{level}"] = test_split(f"{axis}/{level}", {**train, **over}, axis, level, desc)
    return SplitSet(family, splits, version)


def load_splits(family: Family, source: str | Path | Mapping | None = None) -> SplitSet:
    """Load a family's splits from a YAML path, a mapping, or (None) ``envs/shift/<name>.yaml``."""
    if source is None:
        path = Path(__file__).with_name(f"{family.name.lower()}.yaml")
        if not path.exists():
            return build_splits(family, {"version": family.version, "train": {}})
        source = path
    if isinstance(source, (str, Path)):
        try:
            source = yaml.safe_load(Path(source).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise SplitError(f"cannot read splits for {family.name} from {source}: {e}") from None
    return build_splits(family, source)

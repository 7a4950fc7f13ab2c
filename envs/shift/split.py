"""Splits as data, and the sampler that enforces them.

A family's splits are declared in YAML (``envs/shift/<family>.yaml``)::

    version: 1                   # the version of these splits' levels (see "Stable levels")
    train:                       # the training distribution: factor -> value or list of values
      size: [6, 7, 8]
    axes:
      size:
        near: {size: [10, 11]}   # overrides of the training factors
        far:  {size: [14, 16]}

Every axis gets ``<axis>/id`` (the training factors on held-out levels), ``<axis>/near`` and
``<axis>/far``; ``train`` is the default and ``id`` is an alias of the in-distribution split.

Disjointness is by construction: a level whose canonical hash falls in the reserved bucket
(one hash in three) is never used for training, and every test split uses only such levels.
Test splits also draw from their own seed ranges.

Stable levels: ``version`` is the version of the splits' levels (bumped whenever a change
to the sampler, a generator or the declaration changes which levels a split draws; not the
environment id's version). A split's levels are a function of the family name, that version
and the split's name and factors alone: a held-out split's seed range comes from a stable
hash of (family, version, name), so adding, removing or reordering axes changes no other
split, and factors are drawn in the order the family declares them, whatever the mapping's
order. The ``exposure`` coin of a training level is drawn from its own stream, derived from
the level seed, so levels it leaves unexposed are the levels drawn without exposure.

Example:
    >>> from shiftgrid.envs import family_splits
    >>> s = family_splits("GoTo")
    >>> s["size/far"].level, s["train"].held_out
    ('far', False)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import yaml

from shiftgrid.envs.errors import UserInputError
from shiftgrid.envs.factors import FactorError, Factors
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Level, LevelError, level_hash
from shiftgrid.envs.oracle import Plan, UnsolvableLevel, solve

TRAIN_SEEDS = (0, 2**30)
#: A held-out split draws ``TEST_SEED_COUNT`` seeds from ``TEST_SEED_BASE + slot * TEST_SEED_COUNT``,
#: its slot (one of ``TEST_SEED_SLOTS``) a stable hash of its name: see :func:`held_out_seed_start`.
TEST_SEED_BASE, TEST_SEED_COUNT, TEST_SEED_SLOTS = 2**30, 10**6, 2**40
LEVELS = ("id", "near", "far")
#: One level hash in ``HASH_BUCKETS`` is reserved for test splits. With a reserved fraction p a
#: training level takes 1/(1-p) generations on average and a test level 1/p: p = 1/3 keeps a
#: held-out reset under twice the cost of a training reset.
HASH_BUCKETS = 3
#: Spawn key of the stream the exposure coin is drawn from (the level is drawn from the seed itself).
EXPOSURE_STREAM = 1
#: Held-out samples remembered per process, so evaluating the same levels again regenerates one level each.
CACHE_SIZE = 2**14


class SplitError(UserInputError, ValueError):
    """An unknown split, a malformed split declaration, or a split that leaves no levels."""


def is_reserved(h: str) -> bool:
    """Whether a level hash falls in the bucket reserved for test splits (one in three).

    Example:
        >>> is_reserved("0000000000000000"), is_reserved("0000000100000000")
        (True, False)
    """
    return int(h[:8], 16) % HASH_BUCKETS == 0


def held_out_seed_start(family: str, version: int, split: str) -> int:
    """First level seed of held-out split ``split``: a stable hash of (family, splits version, split name).

    Not Python's ``hash`` (salted per process) and not the split's position in the YAML, so the
    range never moves when other splits are added, removed or reordered. Ranges of different
    names overlap with probability about one in 10**12.

    Example:
        >>> a = held_out_seed_start("GoTo", 1, "size/far")
        >>> a == held_out_seed_start("GoTo", 1, "size/far") != held_out_seed_start("GoTo", 2, "size/far")
        True
        >>> TRAIN_SEEDS[1] <= a < 2**62
        True
    """
    digest = hashlib.sha256(f"{family}/{version}/{split}".encode()).digest()
    return TEST_SEED_BASE + int.from_bytes(digest[:8], "big") % TEST_SEED_SLOTS * TEST_SEED_COUNT


def is_exposed(level_seed: int, exposure: float) -> bool:
    """Whether the training level at ``level_seed`` is drawn as a held-out combination, at rate ``exposure``.

    The coin comes from its own stream (spawned from the level seed), never from the level's
    generator, so the levels it leaves unexposed are exactly the levels drawn with exposure 0.

    Example:
        >>> is_exposed(7, 0.0), is_exposed(7, 1.0)
        (False, True)
    """
    if exposure <= 0:
        return False
    stream = np.random.SeedSequence(level_seed, spawn_key=(EXPOSURE_STREAM,))
    return bool(np.random.default_rng(stream).random() < exposure)


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

    @cached_property
    def key(self) -> tuple:
        """Everything that decides this split's levels, hashable (for caching samples)."""
        values = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in self.factors.items()))
        return self.name, self.seed_start, self.seed_count, self.level, values

    def draw_factors(self, factors_cls: type[Factors], rng: np.random.Generator, overrides: Mapping | None = None) -> Factors:
        """Draw one factor assignment: each listed factor uniformly from its values.

        Factors are drawn in the order ``factors_cls`` declares them, never in the mapping's
        order, so reordering a YAML's factors leaves its levels as they were.
        """
        given = {**self.factors, **(overrides or {})}
        names = [n for n in factors_cls.names() if n in given] + [n for n in given if n not in factors_cls.names()]
        values = {}
        for name in names:
            v = given[name]
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
    exposed: bool = False


def hash_extra(f: Factors) -> tuple:
    """Factors that change dynamics or observations without changing the grid: part of the hash."""
    return (f.slip, f.palette, f.view)


def _draw(family: Family, split: Split, seed: int, exposure: float) -> tuple[Factors, np.random.Generator, bool]:
    """The factors of the level at ``seed``, the generator's rng (positioned after them), and the exposure coin."""
    exposed = bool(family.exposure) and is_exposed(seed, exposure)
    grng = np.random.default_rng(seed)
    return split.draw_factors(family.factors, grng, family.exposure if exposed else None), grng, exposed


_ACCEPTED: OrderedDict[tuple, tuple[int, bool, Factors, str, Plan | None]] = OrderedDict()


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
    Held-out samples are remembered per process (:data:`CACHE_SIZE` of them): drawing the same
    level seed again regenerates only the level that was accepted.

    Example:
        >>> from shiftgrid.envs import family_splits
        >>> splits = family_splits("GoTo")
        >>> s = sample_level(splits.family, splits["id"], np.random.default_rng(0))
        >>> is_reserved(s.level_hash), splits["id"].seed_start <= s.level_seed
        (True, True)
    """
    if level_seed is None:
        level_seed = split.seed_start + int(rng.integers(split.seed_count))
    key = (family, split.key, level_seed, exposure, oracle, max_steps, max_tries) if split.held_out else None
    try:
        hit = _ACCEPTED.get(key) if key is not None else None
    except TypeError:  # a family (or factor value) that cannot be hashed: sampled afresh every time
        key = hit = None
    if hit is not None and key is not None:
        seed, exposed, factors, h, plan = hit
        again, grng, _ = _draw(family, split, seed, exposure)
        level = family.generate(again, grng)
        if again == factors and level_hash(level, hash_extra(factors)) == h:
            _ACCEPTED.move_to_end(key)
            return Sample(level, factors, seed, h, plan, exposed)
        del _ACCEPTED[key]  # a generator that is not a function of its seed: sample afresh
    offset = level_seed - split.seed_start
    last = "no level was generated"
    for t in range(max_tries):
        seed = split.seed_start + (offset + t) % split.seed_count
        out = try_seed(family, split, seed, exposure=exposure, oracle=oracle, max_steps=max_steps)
        if isinstance(out, str):
            last = out
            continue
        if key is not None:
            _ACCEPTED[key] = (seed, out.exposed, out.factors, out.level_hash, out.plan)
            if len(_ACCEPTED) > CACHE_SIZE:
                _ACCEPTED.popitem(last=False)
        return out
    raise SplitError(
        f"split {split.name!r} of {family.name} leaves no levels: {max_tries} seeds from {level_seed} "
        f"were rejected (last reason: {last}); check its factors {dict(split.factors)}"
    )


def try_seed(family: Family, split: Split, seed: int, *, exposure: float = 0.0, oracle: bool = True,
             max_steps: int | None = None) -> Sample | str:
    """The level at ``seed`` if it is admissible for ``split`` (see :func:`sample_level`), else why not.

    Example:
        >>> from shiftgrid.envs import family_splits
        >>> splits = family_splits("GoTo")
        >>> [type(try_seed(splits.family, splits["train"], s)).__name__ for s in range(4)]
        ['Sample', 'str', 'Sample', 'Sample']
    """
    factors, grng, exposed = _draw(family, split, seed, exposure)
    try:
        level = family.generate(factors, grng)
    except LevelError as e:
        return f"generator: {e}"
    h = level_hash(level, hash_extra(factors))
    if is_reserved(h) != split.held_out:
        return "hash bucket"
    plan = None
    if oracle:
        try:
            plan = solve(level, slip=factors.slip)
        except UnsolvableLevel as e:
            return f"oracle: {e}"
        if plan.steps > (max_steps or family.max_steps(factors)):
            return "optimal plan longer than the episode limit"
    return Sample(level, factors, seed, h, plan, exposed)


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

    def __iter__(self) -> Iterator[str]:
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

    def to_mapping(self) -> dict[str, Any]:
        """The YAML layout (plain values) that :func:`build_splits` rebuilds this split set from.

        Example:
            >>> from shiftgrid.envs import family_splits
            >>> splits = family_splits("GoTo")
            >>> rebuilt = build_splits(splits.family, splits.to_mapping())
            >>> key = lambda s: (s.name, s.factors, s.seed_start, s.axis, s.level, s.description)
            >>> [key(rebuilt[n]) for n in rebuilt] == [key(splits[n]) for n in splits]
            True
        """
        plain = lambda factors: {k: list(v) if isinstance(v, tuple) else v for k, v in factors.items()}
        axes: dict[str, dict] = {}
        for s in self._splits.values():
            if s.axis and s.level in LEVELS[1:]:
                axes.setdefault(s.axis, {})[s.level] = {**plain(s.factors), "description": s.description}
        return {"version": self.version, "train": plain(self._splits["train"].factors), "axes": axes}

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
    version = spec.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise SplitError(f"split declaration for {family.name}: version={version!r} is not valid; valid: a whole number >= 0")
    train = dict(spec["train"] or {})
    _check_factors(family, f"{family.name} train", train)
    splits: dict[str, Split] = {"train": Split("train", train, *TRAIN_SEEDS, description="training distribution")}

    def test_split(name: str, factors: dict, axis: str | None, level: str, desc: str) -> Split:
        start = held_out_seed_start(family.name, version, name)
        return Split(name, factors, start, TEST_SEED_COUNT, axis, level, desc)

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
            return build_splits(family, {"version": 0, "train": {}})
        source = path
    if not isinstance(source, (str, Path)):
        return build_splits(family, source)
    try:
        data = yaml.safe_load(Path(source).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SplitError(f"cannot read splits for {family.name} from {source}: {e}") from None
    return build_splits(family, data)

"""Level banks: a split's levels generated once, stored as arrays with each level's seed, hash and oracle figures.

A bank holds the first ``count`` admissible levels of a split, in seed order from the split's
first seed: the same generators and sampler as the minigrid env (the split's seed range, its
hash bucket, the oracle's solvability check), so train and test banks are disjoint exactly as
the splits are. Each level is a row of :mod:`~shiftgrid.envs.engine.levels` with its seed, hash,
mission tokens, ``optimal_steps`` and ``optimal_exact``. A minigrid id's bank holds the levels
of ``reset(seed=0..count-1)`` (:mod:`~shiftgrid.envs.engine.minigrid_levels`).

Generation uses every core, with a progress bar. A bank is a compressed ``.npz`` keyed by
(family and its version, split, splits version, count), in a cache directory
(``$SHIFTGRID_CACHE``, default ``~/.cache/shiftgrid``) unless a path is given; loading refuses
a bank of another splits version, family version or format, and a corrupt file, in one line.
Files are written whole or not at all. A bank grows by generating on from where it stopped.

Example:
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
    >>> len(bank), bank.meta["split"], bool((bank.rows["optimal_steps"] > 0).all())
    (20, 'train', True)
    >>> new = bank.grow(5, workers=1, progress=False); len(bank)
    25
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import zipfile
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from shiftgrid.envs.engine.errors import BankError
from shiftgrid.envs.engine.levels import Layout, empty, fields, row_from_sample, stack
from shiftgrid.envs.family import Family
from shiftgrid.envs.keywords import split_with_factors
from shiftgrid.envs.registration import UnknownEnvError, bare_id, registered_ids, splits_for
from shiftgrid.envs.shift.split import Split, SplitError, sample_level, try_seed
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN

#: Version of the file layout (bumped when the stored fields change).
BANK_FORMAT = 1
#: Keys of :attr:`Bank.meta` about this copy in memory (where it was read from), not saved.
TRANSIENT = ("path", "loaded")
#: Seeds one worker task tries.
BLOCK = 256


def cache_dir() -> Path:
    """Where banks are kept unless a path is given: ``$SHIFTGRID_CACHE/banks`` (default ``~/.cache/shiftgrid/banks``)."""
    root = os.environ.get("SHIFTGRID_CACHE") or Path.home() / ".cache" / "shiftgrid"
    return Path(root) / "banks"


def _factors_key(factors: Mapping[str, Any]) -> str:
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(factors.items())}
    return json.dumps(plain, sort_keys=True)


class SplitSource:
    """A split of a registered shiftgrid id as a source of level rows: level seeds are offsets in its range."""

    kind = "split"

    def __init__(self, env_id: str, split: str = "train", factors: Mapping[str, Any] | None = None):
        self.env_id = env_id
        self.splits = splits_for(env_id)
        self.family: Family = self.splits.family
        s = self.splits[split]  # SplitError naming the valid splits
        if factors:
            s, rest = split_with_factors(self.family, s, factors)
            if rest:
                raise SplitError(f"{', '.join(rest)} are not factors of {self.family.name}; valid: "
                                 f"{', '.join(self.family.factors.names())}")
        self.split_name, self.split, self.factors = split, s, dict(factors) if factors else None
        w, h = self.family.largest_grid(dict(s.factors))
        self.canvas = (h, w)
        self.seed_count = s.seed_count
        self.label = f"{env_id} {split}"

    def seed_of(self, offset: int) -> int:
        return self.split.seed_start + offset

    def generate(self, start: int, n: int) -> dict | None:
        """The rows of the admissible levels among seed offsets ``start .. start + n - 1``, in seed order."""
        rows, (h, w) = [], self.canvas
        for offset in range(start, min(start + n, self.seed_count)):
            out = try_seed(self.family, self.split, self.seed_of(offset))
            if not isinstance(out, str):
                rows.append(row_from_sample(out, self.family.max_steps(out.factors), Layout(h, w)))
        if not rows:
            return None
        return stack(rows, Layout(h, w, max(r["obj_cell"].shape[0] for r in rows), max(r["verb"].shape[0] for r in rows)))

    def row_for_seed(self, seed: int, max_steps: int | None = None) -> dict[str, np.ndarray]:
        """The row of the level ``gym.make(id, split=...).reset(seed=seed)`` starts."""
        from gymnasium.utils.seeding import np_random

        s = sample_level(self.family, self.split, np_random(seed)[0], max_steps=max_steps)
        return row_from_sample(s, max_steps or self.family.max_steps(s.factors), Layout(*self.canvas))

    def first_seed_of_reset(self, seed: int) -> int:
        """The first level seed ``reset(seed=seed)`` tries (the sampler walks on from it to an admissible one)."""
        from gymnasium.utils.seeding import np_random

        return int(np_random(seed)[0].integers(self.seed_count))

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "env_id": self.env_id, "family": self.family.name, "family_version": self.family.version,
                "split": self.split_name, "splits_version": self.splits.version, "canvas": list(self.canvas),
                "factors_override": self.factors}

    def check(self, meta: dict, path: Any) -> None:
        if meta.get("family") != self.family.name or meta.get("family_version") != self.family.version:
            raise BankError(f"bank {path} holds {meta.get('family')} v{meta.get('family_version')} levels; {self.env_id} is "
                            f"{self.family.name} v{self.family.version}: build it again")
        if meta.get("splits_version") != self.splits.version:
            raise BankError(f"bank {path} was built from {self.family.name}'s splits version {meta.get('splits_version')}; the "
                            f"splits are now version {self.splits.version}: build it again (shiftgrid bank build --env "
                            f"{self.env_id} --split {meta.get('split')} --count {meta.get('count')})")
        if meta.get("split") != self.split_name or (meta.get("factors_override") or None) != self.factors:
            raise BankError(f"bank {path} holds split {meta.get('split')!r} (factors {meta.get('factors_override')}), "
                            f"not {self.split_name!r} (factors {self.factors})")

    def make_env(self, seed: int, **kwargs: Any) -> Any:
        """A minigrid env of this split reset on the level of ``seed`` (a level seed of this split)."""
        import gymnasium as gym

        env = gym.make(self.env_id, split=self.split_name, **(self.factors or {}), **kwargs)
        env.reset(options={"level_seed": seed})
        return env


def source_for(env_id: str, split: str = "train", factors: Mapping[str, Any] | None = None) -> Any:
    """The source of levels of ``env_id``: a shiftgrid split, or a minigrid id the engine can express.

    Raises ``UnknownEnvError`` naming what the engine runs, and ``SplitError`` for a split the id lacks.
    """
    from shiftgrid.envs.engine import minigrid_levels

    name = bare_id(env_id)
    if name in registered_ids(superseded=True):  # an older version stays runnable, to reproduce results
        return SplitSource(name, split, factors)
    if minigrid_levels.supported(name):
        if split != "train" or factors:
            raise SplitError(f"{name} is one of minigrid's own ids: it has no splits or factors; valid: split='train'")
        return minigrid_levels.MinigridSource(name)
    raise UnknownEnvError(f"the tensor engine cannot run {env_id!r}; it runs: {', '.join(registered_ids())}, and "
                          f"minigrid's {minigrid_levels.describe_supported()}")


def bank_name(source: Any, count: int) -> str:
    """The cache file name of a bank: the id (family and version, split, splits version), the count (and factor overrides).

    Example:
        >>> bank_name(source_for("shiftgrid/GoTo-v1", "size/far"), 1000)
        'GoTo-v1-size_far-splits1-n1000.npz'
    """
    meta = source.meta()
    if meta["kind"] == "minigrid":
        return f"{meta['env_id']}-minigrid{meta['minigrid_version']}-import{meta['import_version']}-n{count}.npz"
    factors = meta.get("factors_override")
    tail = f"-f{hashlib.sha1(_factors_key(factors).encode()).hexdigest()[:8]}" if factors else ""
    return (f"{meta['family']}-v{meta['family_version']}-{meta['split'].replace('/', '_')}-splits{meta['splits_version']}"
            f"-n{count}{tail}.npz")


def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else (os.cpu_count() or 1))


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Processes that generate levels. Fork where there is one: workers generate with numpy and Python only (no
    torch), and a user's script needs no ``if __name__ == "__main__"`` guard."""
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=get_context(method))


def seed_row(source: Any, max_steps: int | None, seed: int) -> dict[str, np.ndarray]:
    """The row of the level ``gym.make(id, split=...).reset(seed=seed)`` starts, for a split or a minigrid id."""
    return source.row_for_seed(seed, max_steps) if source.kind == "split" else source.row_for_seed(seed)


def seed_rows(source: Any, max_steps: int | None, seeds: list[int], workers: int | None = None) -> list[dict[str, np.ndarray]]:
    """:func:`seed_row` of every seed, in order, in parallel where there are many (a seeded reset of a large batch)."""
    n = min(_workers(workers), max(1, len(seeds) // 16))
    if n == 1:
        return [seed_row(source, max_steps, s) for s in seeds]
    with process_pool(n) as pool:
        return list(pool.map(partial(seed_row, source, max_steps), seeds, chunksize=8))


def seeded_name(source: Any, first_seed: int, count: int, max_steps: int | None) -> str:
    """The cache file name of the levels of reset seeds ``first_seed .. first_seed + count - 1`` (:func:`seeded_bank`).

    Example:
        >>> seeded_name(source_for("shiftgrid/GoTo-v1", "id"), 0, 1000, None)
        'GoTo-v1-id-splits1-n1000-reset0.npz'
    """
    return f"{bank_name(source, count)[:-4]}-reset{first_seed}{f'-max{max_steps}' if max_steps else ''}.npz"


def seeded_bank(env_id: str, split: str = "train", first_seed: int = 0, count: int = 1000, *,
                factors: Mapping[str, Any] | None = None, max_steps: int | None = None, workers: int | None = None,
                cache: bool = True) -> "Bank":
    """The levels ``gym.make(env_id, split=split, **factors, max_steps=...).reset(seed=s)`` starts, for
    ``s = first_seed .. first_seed + count - 1``, in that order: row ``i`` is reset seed ``first_seed + i``'s level.

    What an evaluation on the engine plays: the very levels the minigrid env's evaluation resets on.
    Generated in parallel and cached (beside the banks) unless ``cache`` is False.

    Example:
        >>> bank = seeded_bank("shiftgrid/GoTo-v1", "id", 5, 3, workers=1, cache=False)
        >>> import gymnasium as gym; _, info = gym.make("shiftgrid/GoTo-v1", split="id").reset(seed=6)
        >>> from shiftgrid.envs.engine.levels import int_to_hash
        >>> int_to_hash(int(bank.rows["hash"][1])) == info["level_hash"]
        True
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise BankError(f"count={count!r} is not valid; valid: an integer >= 1")
    source = source_for(env_id, split, factors)
    path = cache_dir() / seeded_name(source, first_seed, count, max_steps)
    if cache and path.exists():
        bank = Bank.load(path, source)
        if len(bank) == count:
            return bank
    raw = seed_rows(source, max_steps, list(range(first_seed, first_seed + count)), workers)
    rows = [{k: v[None] for k, v in r.items()} for r in raw]
    h, w = source.canvas
    layout = Layout(h, w, max(r["obj_cell"].shape[1] for r in rows), max(r["verb"].shape[1] for r in rows),
                    max(DEFAULT_MAX_LEN, max(r["tokens"].shape[1] for r in rows)))
    bank = Bank(stack(rows, layout), {**source.meta(), "count": count, "next_seed": 0, "reset_seeds": [first_seed, count],
                                      "max_steps": max_steps}, source)
    if cache:
        bank.save(path)
    return bank


class Bank:
    """Level rows (:attr:`rows`) with what made them (:attr:`meta`) and where more come from (:attr:`source`)."""

    def __init__(self, rows: dict[str, np.ndarray], meta: dict[str, Any], source: Any):
        self.rows, self.meta, self.source = rows, meta, source

    def __len__(self) -> int:
        return len(self.rows["codes"])

    @property
    def layout(self) -> Layout:
        h, w = self.meta["canvas"]
        return Layout(h, w, self.rows["obj_cell"].shape[1], self.rows["verb"].shape[1], self.rows["tokens"].shape[1])

    def _blocks(self, workers: int | None) -> Iterator[dict | None]:
        """Row blocks from seed offset :attr:`meta` ``["next_seed"]`` on, in seed order (generated in parallel)."""
        n, offset, end = _workers(workers), self.meta["next_seed"], self.source.seed_count
        if n == 1:
            while offset < end:
                yield self.source.generate(offset, BLOCK)
                offset += BLOCK
            return
        with process_pool(n) as pool:
            pending: list[Future] = []
            try:
                while True:
                    while len(pending) < 2 * n and offset < end:
                        pending.append(pool.submit(self.source.generate, offset, BLOCK))
                        offset += BLOCK
                    if not pending:
                        return
                    yield pending.pop(0).result()
            finally:
                for f in pending:
                    f.cancel()

    def grow(self, count: int, workers: int | None = None, progress: bool = True) -> dict[str, np.ndarray]:
        """Generate the next ``count`` levels (the split's next seeds) and append them; returns the new rows."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise BankError(f"count={count!r} is not valid; valid: an integer >= 1")
        blocks, need = [], int(count)
        with tqdm(total=count, desc=f"bank {self.source.label}", unit="level", disable=not progress, file=sys.stderr,
                  leave=False) as bar:
            for rows in self._blocks(workers):
                if rows is None:
                    continue
                rows = {k: v[:need] for k, v in rows.items()}
                blocks.append(rows)
                need -= len(rows["codes"])
                bar.update(len(rows["codes"]))
                if need == 0:
                    break
        if need > 0:
            raise BankError(f"{self.source.label} has only {len(self) + count - need} admissible levels in its "
                            f"{self.source.seed_count} seeds; asked for {len(self) + count}")
        last = int(blocks[-1]["seed"][-1])
        self.meta["next_seed"] = last - self.source.seed_of(0) + 1
        h, w = self.meta["canvas"]
        layout = Layout(h, w, max(b["obj_cell"].shape[1] for b in blocks), max(b["verb"].shape[1] for b in blocks),
                        max(DEFAULT_MAX_LEN, max(b["tokens"].shape[1] for b in blocks)))
        new = stack(blocks, layout)
        self.rows = stack([self.rows, new], self.layout.union(layout)) if len(self) else new
        self.meta["count"] = len(self)
        return new

    def index_of_seed(self, seed: int) -> int | None:
        """The row holding level seed ``seed``, if the bank has it."""
        seeds = self.rows["seed"]
        at = int(np.searchsorted(seeds, seed))
        return at if at < len(seeds) and int(seeds[at]) == seed else None

    # -- files --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bank to ``path`` atomically (a half-written file is never left behind)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            kept = {k: v for k, v in self.meta.items() if k not in TRANSIENT}
            meta = json.dumps({**kept, "format": BANK_FORMAT})
            with open(tmp, "wb") as f:
                arrays: dict[str, Any] = {"__meta__": np.frombuffer(meta.encode(), dtype=np.uint8), **self.rows}
                np.savez_compressed(f, **arrays)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a bank is an ordinary file
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, source: Any = None) -> "Bank":
        """Read a bank; refuses another format, a corrupt file, and (against ``source``, default the one it
        records) another family, splits or minigrid version."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["__meta__"]).decode())
                rows = {k: data[k] for k in data.files if k != "__meta__"}
        except FileNotFoundError:
            raise BankError(f"no bank at {path}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
            why = str(e).split(". ")[0].splitlines()[0][:100] if str(e) else type(e).__name__
            raise BankError(f"bank {path} is corrupt or not a bank ({why}); delete it and build it again") from None
        if not isinstance(meta, dict) or meta.get("format") != BANK_FORMAT:
            got = meta.get("format") if isinstance(meta, dict) else None
            raise BankError(f"bank {path} has format {got!r}; this shiftgrid reads format {BANK_FORMAT}: build it again")
        try:
            missing = set(fields(Layout(*meta["canvas"]))) - set(rows)
        except (KeyError, TypeError):
            missing = {"canvas"}
        if missing or any(len(v) != len(rows["codes"]) for v in rows.values()):
            raise BankError(f"bank {path} is corrupt or not a bank (fields {sorted(missing) or 'of unequal length'}); "
                            "delete it and build it again")
        if source is None:
            source = source_for(meta["env_id"], meta.get("split", "train"), meta.get("factors_override"))
        source.check(meta, path)
        return cls(rows, meta, source)


def empty_bank(source: Any) -> Bank:
    """A bank of ``source`` with no levels yet (:meth:`Bank.grow` fills it)."""
    meta = {**source.meta(), "count": 0, "next_seed": 0}
    return Bank(empty(Layout(*source.canvas), 0), meta, source)


def build_bank(env_id: str, split: str = "train", count: int = 10_000, *, out: str | Path | None = None,
               workers: int | None = None, progress: bool = True, save: bool = True, cache: bool = True,
               factors: Mapping[str, Any] | None = None) -> Bank:
    """The bank of the first ``count`` levels of ``split``: loaded from ``out`` (or the cache) when it is there, else generated and saved.

    Raises :class:`BankError` for a bank file of another version or a corrupt one, and
    ``SplitError`` / ``UnknownEnvError`` for a split or id that does not exist.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise BankError(f"count={count!r} is not valid; valid: an integer >= 1")
    source = source_for(env_id, split, factors)
    path = Path(out) if out is not None else cache_dir() / bank_name(source, count)
    if cache and path.exists():
        bank = Bank.load(path, source)
        if len(bank) != count:
            raise BankError(f"bank {path} holds {len(bank)} levels; asked for {count}: choose another path")
        bank.meta.update(path=str(path), loaded=True)
        return bank
    bank = empty_bank(source)
    started = time.perf_counter()
    bank.grow(count, workers, progress)
    bank.meta.update(seconds=round(time.perf_counter() - started, 2), workers=_workers(workers),
                     acceptance=round(count / bank.meta["next_seed"], 4))
    if save:
        bank.save(path)
    bank.meta["path"] = str(path) if save else None
    return bank

"""The engine behind gymnasium's ``VectorEnv``: thousands of a split's levels stepped as torch tensors on a device.

``gym.make_vec("shiftgrid/GoTo-v1", num_envs=4096, vectorization_mode="vector_entry_point",
split="size/far", device="cpu")`` (or :func:`make_tensor_vec`) returns a :class:`TensorVectorEnv`.
Observations are tensors on the device: ``image`` uint8 ``(N, 7, 7, 3)``, ``direction``
``(N,)``, ``mission`` token ids ``(N, L)`` (:mod:`shiftgrid.envs.wrappers`' vocabulary);
``info`` holds ``success``, ``level_hash`` (int64; :func:`~shiftgrid.envs.engine.levels.int_to_hash`
gives the text), ``level_seed``, ``level_index``, ``optimal_steps``, ``optimal_return`` and
``optimal_exact`` as ``(N,)`` tensors. Auto-reset follows gymnasium's next-step convention
(``metadata["autoreset_mode"]``).

Levels come from a bank of the split (:mod:`~shiftgrid.envs.engine.bank`, built and cached on
first use): resets draw uniformly from it, or the level a teacher names (:meth:`set_next_levels`);
:meth:`distinct_levels` counts the levels drawn; :meth:`grow_bank` adds levels while it runs.
``reset(seed=s)`` starts env ``i`` on the level ``gym.make(id, split=...).reset(seed=s + i)``
starts (made on demand when the bank does not hold it). :meth:`to_minigrid` gives any env's
current state as a minigrid env (rendering, the oracle's plan from there, debugging);
:meth:`frame` its picture.

Example:
    >>> import gymnasium as gym, torch, shiftgrid.envs
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 50, workers=1, progress=False, save=False)  # or cached by default
    >>> envs = gym.make_vec("shiftgrid/GoTo-v1", num_envs=8, vectorization_mode="vector_entry_point", bank=bank)
    >>> obs, info = envs.reset(seed=0)
    >>> obs["image"].shape, obs["image"].dtype, info["success"].shape
    (torch.Size([8, 7, 7, 3]), torch.uint8, torch.Size([8]))
    >>> single = gym.make("shiftgrid/GoTo-v1"); o, i = single.reset(seed=3)
    >>> bool((obs["image"][3].numpy() == o["image"]).all())
    True
    >>> obs, reward, terminated, truncated, info = envs.step(torch.zeros(8, dtype=torch.int64))
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils.seeding import np_random
from gymnasium.vector import AutoresetMode

from shiftgrid.envs.engine.bank import Bank, BankError, build_bank, seed_rows, source_for
from shiftgrid.envs.engine.batch import EngineError, LevelStore, TensorEngine, check_device, info_of
from shiftgrid.envs.engine.convert import to_env
from shiftgrid.envs.engine.levels import Layout, stack
from shiftgrid.envs.keywords import check_max_steps
from shiftgrid.envs.language import MISSION_VOCAB_SIZE
from shiftgrid.envs.registration import RegistrationError, registered_id, resolve_splits
from shiftgrid.envs.shift.split import SplitError

#: Levels in the bank a vector env builds when it is given none.
DEFAULT_BANK_SIZE = 10_000
#: The vector env's own keywords (any other keyword of a shiftgrid id is a factor value).
OPTIONS = ("device", "bank", "bank_size", "workers", "seed", "compile", "max_steps", "render_mode")


def _check_num_envs(num_envs: Any) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise EngineError(f"num_envs={num_envs!r} is not valid; valid: an integer >= 1")
    return int(num_envs)


def fit_tokens(mission: np.ndarray, tokens: int, env_id: str) -> np.ndarray:
    """Mission token rows ``(N, L)`` padded with 0 or cut to ``tokens`` columns, the length a learner's view has
    (``make_env``'s ``max_len``); cutting a non-padding token raises :class:`EngineError`.

    Example:
        >>> fit_tokens(np.array([[3, 4, 0, 0]]), 3, "shiftgrid/GoTo-v1").tolist(), fit_tokens(np.array([[3]]), 2, "x").tolist()
        ([[3, 4, 0]], [[3, 0]])
    """
    if mission.shape[1] > tokens:
        if mission[:, tokens:].any():
            raise EngineError(f"a mission of {env_id} is longer than the {tokens} tokens the policy observes")
        return mission[:, :tokens]
    if mission.shape[1] < tokens:
        return np.pad(mission, ((0, 0), (0, tokens - mission.shape[1])))
    return mission


class TensorVectorEnv(gym.vector.VectorEnv):
    """A source of levels (a shiftgrid split, or a minigrid id) as a batch of torch envs (see the module docstring).

    Args:
        num_envs: how many envs.
        source: where levels come from (:func:`~shiftgrid.envs.engine.bank.source_for`).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        bank: a :class:`~shiftgrid.envs.engine.bank.Bank` or the path of one; default: the cached
            bank of ``bank_size`` levels (built on first use).
        bank_size: levels in the default bank.
        workers: processes building a bank (default: every core).
        seed: the draws' seed until ``reset(seed=...)`` sets one (default: from the OS).
        compile: ``torch.compile`` the step.
        max_steps: episode limit replacing the levels' (levels whose optimum is longer are not drawn).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, num_envs: int, source: Any, device: Any = "cpu", bank: Bank | str | None = None,
                 bank_size: int = DEFAULT_BANK_SIZE, workers: int | None = None, seed: int | None = None,
                 compile: bool = False, max_steps: int | None = None, render_mode: str | None = None):
        self.num_envs = _check_num_envs(num_envs)
        self.source, self.env_id = source, source.env_id
        self.max_steps = check_max_steps(max_steps)
        self.device = check_device(device)
        if bank is None:
            bank = build_bank(self.env_id, source.meta()["split"], bank_size, workers=workers,
                              factors=source.meta().get("factors_override"))
        elif not isinstance(bank, Bank):
            bank = Bank.load(bank, source)
        else:
            source.check(bank.meta, "given")
        self.bank, self.workers, self.render_mode = bank, workers, render_mode
        self.layout = bank.layout
        self.store = LevelStore(self._limited(bank.rows), self.layout, self.device, pool=False)
        self.store.pool = self._pool(bank.rows, 0)
        if len(self.store.pool) == 0:
            raise EngineError(f"no level of the bank ({len(bank)} levels of {self.env_id}) can be solved within "
                              f"max_steps={self.max_steps}; valid: max_steps >= {int(np.nanmin(bank.rows['optimal_steps']))}")
        self.engine = TensorEngine(self.store, self.num_envs, seed=0 if seed is None else seed, compile=compile)
        self._seeded = seed is not None
        self._for_seed: dict[int, int] = {}  # reset seed -> store row
        self._for_level_seed: dict[int, int] | None = None  # level seed -> store row (rows_for_level_seeds)
        tokens = self.layout.tokens
        self.single_observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (7, 7, 3), np.uint8),
            "direction": spaces.Discrete(4),
            "mission": spaces.Box(0, MISSION_VOCAB_SIZE - 1, (tokens,), np.int64),
        })
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.num_envs, 7, 7, 3), np.uint8),
            "direction": spaces.MultiDiscrete([4] * self.num_envs),
            "mission": spaces.Box(0, MISSION_VOCAB_SIZE - 1, (self.num_envs, tokens), np.int64),
        })
        self.single_action_space = spaces.Discrete(7)
        self.action_space = spaces.MultiDiscrete([7] * self.num_envs)

    # -- levels ---------------------------------------------------------------------------------------
    def _limited(self, rows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = dict(rows)
        if self.max_steps is not None:
            rows["max_steps"] = np.full_like(rows["max_steps"], self.max_steps)
        return rows

    def _pool(self, rows: Mapping[str, np.ndarray], start: int) -> torch.Tensor:
        """Indices (from ``start``) of the rows uniform resets may draw: all, or those not known to need more than
        ``max_steps`` (a level whose optimum the oracle could not find is kept)."""
        keep = np.ones(len(rows["codes"]), dtype=bool)
        if self.max_steps is not None:
            keep = ~(rows["optimal_steps"] > self.max_steps)
        return torch.as_tensor(np.nonzero(keep)[0] + start, dtype=torch.int64, device=self.device)

    def grow_bank(self, count: int) -> None:
        """Generate ``count`` more levels and let resets draw them from now on (the bank file is not rewritten)."""
        new = self.bank.grow(count, workers=self.workers)
        index = self.store.append(self._limited(new), pool=False)
        self.store.pool = torch.cat([self.store.pool, self._pool(new, int(index[0]))])

    def distinct_levels(self) -> int:
        """How many distinct bank levels resets have drawn so far (a host sync)."""
        return self.engine.distinct_levels()

    def set_next_levels(self, levels: Any) -> None:
        """Bank rows each env's next reset starts on (-1: drawn uniformly), e.g. a curriculum's choice."""
        self.engine.set_next_levels(levels)

    def _in_bank(self, seed: int) -> int | None:
        """The bank row of the level ``reset(seed=seed)`` starts, where the bank holds it."""
        if self.max_steps is not None:
            return None
        if self.source.kind == "minigrid":
            return seed if 0 <= seed < len(self.bank) else None
        first = self.source.first_seed_of_reset(seed)
        if first < self.bank.meta["next_seed"]:  # inside the seeds the bank has walked: the next bank level is it
            pos = int(np.searchsorted(self.bank.rows["seed"], self.source.seed_of(first)))
            return pos if pos < len(self.bank) else None
        return None

    def rows_for_seeds(self, seeds: list[int]) -> list[int]:
        """The store rows of the levels ``gym.make(id).reset(seed=s)`` starts, for each ``s`` in ``seeds``; the levels
        the bank lacks are made on demand (in parallel when there are many) and kept for the next seeded reset."""
        for s in seeds:
            if s not in self._for_seed and (at := self._in_bank(s)) is not None:
                self._for_seed[s] = at
        missing = sorted({s for s in seeds if s not in self._for_seed})
        if missing:
            rows = [self._limited({k: v[None] for k, v in r.items()})
                    for r in seed_rows(self.source, self.max_steps, missing, self.workers)]
            h, w = self.source.canvas
            layout = Layout(h, w, max(r["obj_cell"].shape[1] for r in rows), max(r["verb"].shape[1] for r in rows),
                            max(r["tokens"].shape[1] for r in rows))
            index = self.store.append(stack(rows, layout), pool=False).tolist()
            self._for_seed.update(zip(missing, index))
        return [self._for_seed[s] for s in seeds]

    def rows_for_level_seeds(self, level_seeds: list[int]) -> list[int]:
        """The store rows of the levels ``gym.make(id).reset(options={"level_seed": s})`` plays (a curriculum's choices):
        the bank's row where a level resets may draw has that seed, else the level from the generator, added to the
        store (not to the uniform draws) and kept for the next time.

        Example:
            >>> from shiftgrid.envs.engine.bank import build_bank
            >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
            >>> envs = make_tensor_vec("shiftgrid/GoTo-v1", 2, bank=bank)
            >>> seed = int(bank.rows["seed"][3])
            >>> envs.rows_for_level_seeds([seed]), envs.rows_for_level_seeds([seed + 10**6])[0] >= 20
            ([3], True)
        """
        if self.source.kind != "split":
            raise EngineError(f"{self.env_id} is one of minigrid's own ids: its levels have no level seeds; valid: a shiftgrid id")
        if self._for_level_seed is None:  # the levels uniform resets may draw, by level seed
            pool = self.store.pool.cpu().numpy()
            seeds = self.store.arrays["seed"].cpu().numpy()
            self._for_level_seed = {int(seeds[r]): int(r) for r in pool}
        known = self._for_level_seed
        for s in dict.fromkeys(int(s) for s in level_seeds):
            if s in known:
                continue
            row = self._limited({k: v[None] for k, v in self.source.row_for_level_seed(s, self.max_steps).items()})
            played = int(row["seed"][0])
            if played not in known:  # an inadmissible seed plays a later one, which may be known
                h, w = self.source.canvas
                layout = Layout(h, w, row["obj_cell"].shape[1], row["verb"].shape[1], row["tokens"].shape[1])
                known[played] = int(self.store.append(stack([row], layout), pool=False)[0])
            known[s] = known[played]
        return [known[int(s)] for s in level_seeds]

    def row_for_seed(self, seed: int) -> int:
        """The store row of the level ``gym.make(id).reset(seed=seed)`` starts (made on demand where the bank lacks it)."""
        return self.rows_for_seeds([seed])[0]

    # -- gymnasium API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Start every env: on ``gym.make(id).reset(seed=seed + i)``'s level when ``seed`` is given, on the
        bank rows ``options["levels"]`` names, else on levels drawn from the bank."""
        options = dict(options or {})
        unknown = set(options) - {"levels"}
        if unknown:
            raise EngineError(f"unknown reset options {sorted(unknown)}; valid: levels")
        levels = options.get("levels")
        if levels is None and seed is not None:
            levels = torch.tensor(self.rows_for_seeds([int(seed) + i for i in range(self.num_envs)]), device=self.device)
        if seed is None and not self._seeded:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] % (1 << 62))
        self._seeded |= seed is not None
        obs = self.engine.reset(levels=levels, seed=seed)
        return obs, self._info(torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def step(self, actions: Any, check: bool = True
             ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step every env (next-step auto-reset); ``check=False`` skips the actions' range check (a host sync)."""
        obs, reward, terminated, truncated, info = self.engine.step(actions, autoreset=True, check=check)
        return obs, reward, terminated, truncated, info

    def _info(self, success: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"success": success, **info_of(self.store, self.engine.state["level"])}

    # -- minigrid views ---------------------------------------------------------------------------------
    def to_minigrid(self, i: int, into: gym.Env | None = None) -> gym.Env:
        """Env ``i``'s current state as a minigrid env (``gym.make`` of this id; for rendering, planning, debugging).

        ``into``: an env this method returned earlier for env ``i`` *while it played the same level*
        (see :meth:`level_of`): its state is overwritten instead of making and resetting a new env
        (the make and reset are most of the cost).
        """
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < self.num_envs:
            raise EngineError(f"env index {i!r} is not valid; valid: 0..{self.num_envs - 1}")
        level = self.level_of(int(i))
        seed = int(self.store.arrays["seed"][level])
        kwargs = {} if self.max_steps is None or self.source.kind != "split" else {"max_steps": self.max_steps}
        if into is not None and self.source.kind != "split":
            raise EngineError(f"to_minigrid(into=...) reuses envs of shiftgrid ids only (objects are matched by the level's list); "
                              f"this env runs {self.source.kind} levels: call it without into")
        env: Any = self.source.make_env(seed, **kwargs) if into is None else into
        objects = None
        if self.source.kind == "minigrid":
            from shiftgrid.envs.engine.minigrid_levels import objects_of

            objects = objects_of(env)
            env.unwrapped.max_steps = int(self.store.arrays["misc"][level] & 0xFFFFFFFF)
        to_env(env.unwrapped, self.engine, int(i), objects)
        return env

    def level_of(self, i: int) -> int:
        """The store row of the level env ``i`` plays now."""
        return int(self.engine.state["level"][i])

    def frame(self, i: int = 0, tile_size: int = 8) -> np.ndarray:
        """An RGB picture of env ``i`` as it stands (the view highlighted), for episode images and videos."""
        u: Any = self.to_minigrid(i).unwrapped
        return u.get_frame(highlight=True, tile_size=tile_size)

    def render(self) -> np.ndarray:  # type: ignore[override]
        """The picture of env 0 (``render_mode="rgb_array"``)."""
        return self.frame(0)


def shiftgrid_vector_env(num_envs: int = 1, family: Any = None, splits: Any = None, split: str = "train",
                         exposure: float = 0.0, oracle: bool = True, **kwargs: Any) -> TensorVectorEnv:
    """``gym.make_vec``'s entry point for shiftgrid ids: the registered spec's family and splits, the split, and
    the engine's options (:data:`OPTIONS`); every other keyword is a factor value, as ``gym.make`` takes them."""
    if family is None:
        raise RegistrationError("the tensor engine needs a registered shiftgrid id: use gym.make_vec(id, ...) or make_tensor_vec(id, ...)")
    if exposure:
        raise SplitError(f"exposure={exposure!r}: the tensor engine draws no exposed training levels; valid: 0 "
                         "(gym.make or vectorization_mode='sync' draw them)")
    fam, split_set = resolve_splits(family, splits)
    env_id = registered_id(family, splits)
    if env_id is None:
        raise RegistrationError(f"{fam.name} with these splits is not registered; register it (register_family) first")
    split_set[split]  # SplitError naming the valid splits
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTIONS}
    options.pop("max_episode_steps", None)
    kwargs.pop("max_episode_steps", None)
    unknown = [k for k in kwargs if k not in fam.factors.names()]
    if unknown:
        raise SplitError(f"unknown keyword {unknown[0]!r} for the tensor engine of {env_id}; valid: factors "
                         f"{', '.join(fam.factors.names())}; options {', '.join(('split',) + OPTIONS)}")
    return TensorVectorEnv(_check_num_envs(num_envs), source_for(env_id, split, kwargs or None), **options)


def make_tensor_vec(env_id: str, num_envs: int, split: str = "train", device: Any = "cpu", **kwargs: Any) -> TensorVectorEnv:
    """The tensor engine for ``env_id``: a shiftgrid id (``shiftgrid/GoTo-v1``, any registered namespace) or a
    minigrid id it can express (``MiniGrid-DoorKey-8x8-v0``, ``BabyAI-GoToLocal-v0``, ...). Keywords: the engine's
    options (:data:`OPTIONS`) and, for shiftgrid ids, factor values.

    Raises ``UnknownEnvError`` in one line naming what it can run.

    Example:
        >>> from shiftgrid.envs.engine.bank import build_bank
        >>> bank = build_bank("shiftgrid/DoorKey-v1", "train", 20, workers=1, progress=False, save=False)
        >>> envs = make_tensor_vec("shiftgrid/DoorKey-v1", 4, bank=bank)
        >>> obs, info = envs.reset(seed=1)
        >>> tuple(obs["mission"].shape)
        (4, 40)
    """
    num_envs = _check_num_envs(num_envs)
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTIONS}
    return TensorVectorEnv(num_envs, source_for(env_id, split, kwargs or None), device=device, **options)

"""minigrid's own ids on the engine: levels imported through minigrid's own ``reset`` as level rows.

A level of ``MiniGrid-DoorKey-8x8-v0`` (say) is what ``gym.make(id).reset(seed=k)`` builds: its
cells, its keys, balls, boxes (with what they hold) and doors, the agent's pose, and its
mission as the engine's clauses. The success rule is read from the env's class:

- reaching the goal (minigrid's own step; lava ends the episode): Empty, DoorKey, FourRooms,
  MultiRoom, Lava/SimpleCrossing, LavaGap, LockedRoom, DistShift;
- opening the door (``toggle`` with it open): Unlock;
- picking up the object (``pickup`` with it carried): UnlockPickup, BlockedUnlockPickup,
  KeyCorridor, ObstructedMaze;
- BabyAI levels whose instruction is one clause (go to, pick up, open, put next to), checked as
  BabyAI's verifier checks it: an object description's matching objects (as the verifier found
  them at reset), and positions recorded at reset and at each drop.

Episodes end as minigrid's do (truncation whenever the step limit is reached); an env that
sees through walls (Empty, DistShift) is observed so. :func:`supported` says whether an id
is covered; :func:`import_row` reads a reset env.

Example:
    >>> import gymnasium as gym
    >>> env = gym.make("MiniGrid-DoorKey-5x5-v0"); _ = env.reset(seed=0)
    >>> row = import_row(env, seed=0)
    >>> int(row["num_steps"]), bool(row["minigrid_style"]), bool(row["optimal_steps"] > 0)
    (1, True, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from importlib.metadata import version
from typing import Any

import gymnasium as gym
import numpy as np

from shiftgrid.envs.engine.errors import BankError
from shiftgrid.envs.engine.levels import Layout, LevelArrayError, hash_to_int, mission_tokens, row_from_level
from shiftgrid.envs.rules import GOTO_RECORDED, OPEN_V, PICKUP_V, PUTNEXT_RECORDED, REACH
from shiftgrid.envs.level import Level
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN

#: minigrid env classes by success rule.
REACH_CLASSES = ("EmptyEnv", "DoorKeyEnv", "FourRoomsEnv", "MultiRoomEnv", "CrossingEnv", "LavaGapEnv",
                 "LockedRoomEnv", "DistShiftEnv")
OPEN_CLASSES = ("UnlockEnv",)
PICKUP_CLASSES = ("UnlockPickupEnv", "BlockedUnlockPickupEnv", "KeyCorridorEnv", "ObstructedMaze_1Dlhb",
                  "ObstructedMaze_Full", "ObstructedMaze_Full_V1")
#: BabyAI level classes whose instruction is always one clause.
BABYAI_CLASSES = ("GoToRedBallGrey", "GoToRedBall", "GoToRedBallNoDists", "GoToObj", "GoToLocal", "GoTo",
                  "GoToImpUnlock", "GoToRedBlueBall", "GoToDoor", "GoToObjDoor", "Open", "OpenRedDoor", "OpenDoor",
                  "Pickup", "UnblockPickup", "PickupLoc", "PickupDist", "PickupAbove", "PutNextLocal", "PutNext",
                  "Unlock", "UnlockLocal", "KeyInBox", "UnlockPickup", "BlockedUnlockPickup", "UnlockToUnlock",
                  "ActionObjDoor", "FindObjS5", "KeyCorridor", "OneRoomS8")
#: Level format of imported rows (bumped when the import changes what a row holds).
IMPORT_VERSION = 1
_TYPES = ("door", "key", "ball", "box")


def _entry(env_id: str) -> tuple[str, str, dict] | None:
    spec = gym.registry.get(env_id)
    if spec is None or not isinstance(spec.entry_point, str):
        return None
    module, _, name = spec.entry_point.partition(":")
    return module, name, dict(spec.kwargs or {})


def supported(env_id: str) -> bool:
    """Whether the engine runs minigrid id ``env_id``.

    Example:
        >>> supported("MiniGrid-FourRooms-v0"), supported("BabyAI-GoToLocal-v0"), supported("MiniGrid-Fetch-5x5-N2-v0")
        (True, True, False)
    """
    entry = _entry(env_id)
    if entry is None or not entry[0].startswith("minigrid."):
        return False
    module, name, kwargs = entry
    if kwargs.get("start_carrying") or kwargs.get("debug"):  # a carried start; BabyAI's strict (failing) verifier
        return False
    if module.startswith("minigrid.envs.babyai"):
        return name in BABYAI_CLASSES
    return name in REACH_CLASSES + OPEN_CLASSES + PICKUP_CLASSES


def supported_ids() -> list[str]:
    """Every registered minigrid id the engine runs."""
    return [i for i in gym.registry if supported(i)]


def describe_supported() -> str:
    """The supported minigrid ids in one short line: kinds of ids, each with its sizes and variants.

    Example:
        >>> text = describe_supported()
        >>> "MiniGrid-{" in text and "DoorKey" in text and "BabyAI-{" in text
        True
    """
    kinds: dict[str, set[str]] = {}
    for i in supported_ids():
        prefix, name = i.split("-")[:2]
        kinds.setdefault(prefix, set()).add(re.sub(r"(S\d+)?([RN]\d+)?\d*$", "", name) or name)
    return ", ".join(f"{p}-{{{','.join(sorted(kinds[p]))}}}-*" for p in sorted(kinds, reverse=True)) + " (with their sizes)"


def quiet_reset(env: gym.Env, seed: int) -> Any:
    """``env.reset(seed=seed)`` with BabyAI's rejected-sample messages silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        return env.reset(seed=seed)


def objects_of(env: Any) -> list:
    """The objects the engine tracks: every door, key, ball and box on the grid, row by row.

    Objects a level put on the grid without a position (``grid.set``) are given the cell they are on.
    """
    u: Any = env.unwrapped
    out = []
    for k, c in enumerate(u.grid.grid):
        if c is not None and c.type in _TYPES:
            if c.cur_pos is None:
                c.cur_pos = (k % u.grid.width, k // u.grid.width)
            out.append(c)
    return out


def _bits(objects: list, chosen: Any) -> int:
    ids = {id(o) for o in chosen}
    return sum(1 << k for k, o in enumerate(objects) if id(o) in ids)


def _program(u: Any, objects: list) -> tuple[dict[str, np.ndarray], Mission | None]:
    """The mission as clause arrays, and as a shiftgrid :class:`Mission` where the oracle can plan it."""
    name = type(u).__name__

    def one(verb: int, target: int = 0, other: int = 0) -> dict[str, np.ndarray]:
        return {"verb": np.array([verb], np.uint8), "target": np.array([target], np.int64),
                "other": np.array([other], np.int64), "step_clauses": np.array([1], np.int64)}

    index = {id(o): k for k, o in enumerate(objects)}
    if name in REACH_CLASSES:
        return one(REACH), Mission(((Clause("reach"),),))
    if name in OPEN_CLASSES:
        return one(OPEN_V, _bits(objects, [u.door])), Mission(((Clause("open", index[id(u.door)]),),))
    if name in PICKUP_CLASSES:
        if id(u.obj) not in index:
            raise LevelArrayError(f"{name}'s object to pick up is not on the grid")
        return one(PICKUP_V, _bits(objects, [u.obj])), Mission(((Clause("pickup", index[id(u.obj)]),),))
    instr: Any = getattr(u, "instrs", None)
    kind = type(instr).__name__
    if kind == "GoToInstr":
        return one(GOTO_RECORDED, _bits(objects, instr.desc.obj_set)), None
    if kind == "PickupInstr":
        return one(PICKUP_V, _bits(objects, instr.desc.obj_set)), None
    if kind == "OpenInstr":
        return one(OPEN_V, _bits(objects, instr.desc.obj_set)), None
    if kind == "PutNextInstr":
        return one(PUTNEXT_RECORDED, _bits(objects, instr.desc_move.obj_set), _bits(objects, instr.desc_fixed.obj_set)), None
    raise LevelArrayError(f"{name}'s mission {getattr(u, 'mission', '')!r} ({kind}) is not one clause the engine can check")


def _level_hash(codes: np.ndarray, u: Any) -> int:
    h = hashlib.sha1(codes.tobytes())
    h.update(repr((tuple(int(v) for v in u.agent_pos), int(u.agent_dir), u.mission)).encode())
    return hash_to_int(h.hexdigest()[:16])


def import_row(env: gym.Env, seed: int, tokens: int = DEFAULT_MAX_LEN, oracle: bool = True) -> dict[str, np.ndarray]:
    """The level row of a minigrid env just reset with ``seed``; the oracle's figures where it can plan the mission."""
    u: Any = env.unwrapped
    if u.agent_view_size != 7:
        raise LevelArrayError(f"{type(u).__name__} has a {u.agent_view_size}x{u.agent_view_size} view; the engine's is 7x7")
    if u.carrying is not None:
        raise LevelArrayError(f"{type(u).__name__} starts with the agent carrying a {u.carrying.type}; the engine starts empty-handed")
    objects = objects_of(env)
    program, mission = _program(u, objects)
    layout = Layout(u.height, u.width, max(1, len(objects)), 1, tokens)
    plan = _solve(u, objects, mission) if oracle else None
    steps, exact = (float(plan.steps), plan.exact) if plan is not None else (float("nan"), False)
    row = row_from_level(u.grid, objects, u.agent_pos, int(u.agent_dir), Mission(((Clause("reach"),),)), layout,
                         tokens=mission_tokens(u.mission, tokens), max_steps=int(u.max_steps), minigrid_style=True,
                         see_through=bool(u.see_through_walls), seed=seed, optimal_steps=steps, optimal_exact=exact,
                         program=program)
    row["hash"][...] = _level_hash(row["codes"], u)
    return row


def _solve(u: Any, objects: list, mission: Mission | None) -> Any:
    """The oracle's plan where it can plan the mission (goal, door, object to pick up; empty boxes), else None."""
    from shiftgrid.envs.oracle import InvalidLevel, UnsolvableLevel, solve

    if mission is None:
        return None
    try:
        return solve(Level(u.grid, tuple(u.agent_pos), int(u.agent_dir), u.mission, mission, objects))
    except (InvalidLevel, UnsolvableLevel):
        return None


def optimal_plan(env: gym.Env) -> tuple[int, ...]:
    """The oracle's plan for a reset minigrid env of a supported id (empty where the oracle cannot plan its mission)."""
    u: Any = env.unwrapped
    objects = objects_of(env)
    plan = _solve(u, objects, _program(u, objects)[1])
    return () if plan is None else plan.actions


class MinigridSource:
    """A minigrid id as a source of level rows for a bank: level ``k`` is ``reset(seed=k)``'s."""

    kind = "minigrid"

    def __init__(self, env_id: str):
        if not supported(env_id):
            raise LevelArrayError(f"the engine cannot run {env_id!r}; it runs minigrid's {describe_supported()}")
        self.env_id = env_id
        self.seed_count = 2**31
        self._env: gym.Env | None = None
        env = self.env()
        quiet_reset(env, 0)
        u: Any = env.unwrapped
        self.canvas = (int(u.height), int(u.width))
        self.label = env_id

    def env(self) -> gym.Env:
        if self._env is None:
            self._env = gym.make(self.env_id)
        return self._env

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_env": None}

    def seed_of(self, offset: int) -> int:
        return offset

    def generate(self, start: int, n: int) -> dict[str, np.ndarray]:
        """The rows of levels ``start .. start + n - 1`` (every seed is a level)."""
        from shiftgrid.envs.engine.levels import stack

        env, rows = self.env(), []
        for seed in range(start, start + n):
            quiet_reset(env, seed)
            rows.append(import_row(env, seed))
        h, w = self.canvas
        return stack(rows, Layout(h, w, max(r["obj_cell"].shape[0] for r in rows), 1))

    def row_for_seed(self, seed: int) -> dict[str, np.ndarray]:
        env = self.env()
        quiet_reset(env, seed)
        return import_row(env, seed)

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "env_id": self.env_id, "minigrid_version": version("minigrid"),
                "import_version": IMPORT_VERSION, "canvas": list(self.canvas), "split": "train"}

    def check(self, meta: dict, path: Any) -> None:
        if meta.get("env_id") != self.env_id:
            raise BankError(f"bank {path} holds {meta.get('env_id')} levels, not {self.env_id}")
        if meta.get("minigrid_version") != version("minigrid") or meta.get("import_version") != IMPORT_VERSION:
            raise BankError(f"bank {path} was imported from minigrid {meta.get('minigrid_version')} (import "
                            f"v{meta.get('import_version')}); this is minigrid {version('minigrid')} (import v{IMPORT_VERSION}): "
                            "build it again")

    def make_env(self, seed: int) -> gym.Env:
        env = gym.make(self.env_id)
        quiet_reset(env, seed)
        return env

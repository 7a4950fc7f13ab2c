"""Levels as arrays: the fixed-shape rows a level bank stores and the engine resets from.

A row holds a level's cells (one code each, :mod:`~shiftgrid.envs.cell_codes`) on its split's
canvas (the largest grid the split produces, smaller levels at the top left with walls around
them, as the minigrid env lays them out), its objects (the cell of each, in the order mission
clauses index them, and what a box holds), the agent's pose, the mission as a program (clauses
with a verb and object bit masks, grouped into steps), the mission's tokens, the rules and
observation factors (episode limit, slip, view, palette, key map), and the level's seed, hash
and oracle figures. Rows are numpy arrays (no torch), so generation runs in worker processes.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/DoorKey-v1"); _ = env.reset(seed=0)
    >>> u = env.unwrapped
    >>> row = row_from_sample(u.sample, u.max_steps, Layout(u.height, u.width))
    >>> int(row["num_steps"]), VERBS[int(row["verb"][0]) - 1], VERBS[int(row["verb"][1]) - 1]
    (2, 'open', 'reach')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX

from shiftgrid.envs.cell_codes import EMPTY, WALL, code_of, palette_index
from shiftgrid.envs.engine.errors import EngineError
from shiftgrid.envs.rules import NUM_COLORS, VERB_CODES, VERBS  # noqa: F401  (VERBS: doctest)
from shiftgrid.envs.mission import Mission
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, encode

#: Sentinel of "no cell" in object-cell arrays.
NO_CELL = -1
#: The most objects a level may hold (object sets are bit masks in an int64).
MAX_OBJECTS = 63


class LevelArrayError(EngineError):
    """A level the engine cannot express (too many objects, a key map with two keys for one colour, ...)."""


@dataclass(frozen=True)
class Layout:
    """The fixed shapes of a set of rows: canvas ``height`` x ``width``, ``objects`` per level,
    mission ``clauses`` and ``tokens``."""

    height: int
    width: int
    objects: int = 1
    clauses: int = 1
    tokens: int = DEFAULT_MAX_LEN

    def union(self, other: "Layout") -> "Layout":
        """The smallest layout holding rows of both (the canvas must agree)."""
        if (self.height, self.width) != (other.height, other.width):
            raise LevelArrayError(f"canvas {other.height}x{other.width} differs from {self.height}x{self.width}")
        return Layout(self.height, self.width, max(self.objects, other.objects), max(self.clauses, other.clauses),
                      max(self.tokens, other.tokens))


def fields(layout: Layout) -> dict[str, tuple[type, tuple[int, ...]]]:
    """Every field of a row: name -> (dtype, shape of one row)."""
    cells, k, c = layout.height * layout.width, layout.objects, layout.clauses
    return {
        "codes": (np.uint8, (cells,)),
        "obj_cell": (np.int16, (k,)),
        "obj_contents": (np.uint8, (k,)),
        "agent_cell": (np.int16, ()),
        "agent_dir": (np.uint8, ()),
        "verb": (np.uint8, (c,)),
        "target": (np.int64, (c,)),
        "other": (np.int64, (c,)),
        "step_clauses": (np.int64, (c,)),
        "num_steps": (np.uint8, ()),
        "tokens": (np.uint8, (layout.tokens,)),
        "max_steps": (np.int32, ()),
        "slip": (np.float64, ()),
        "view": (np.uint8, ()),
        "palette": (np.uint8, ()),
        "key_map": (np.uint8, (NUM_COLORS,)),
        "minigrid_style": (np.bool_, ()),
        "see_through": (np.bool_, ()),
        "seed": (np.int64, ()),
        "hash": (np.int64, ()),
        "optimal_steps": (np.float64, ()),
        "optimal_exact": (np.bool_, ()),
    }


#: Fill value of padding (objects, clauses, tokens past a level's own).
_PAD = {"obj_cell": NO_CELL, "obj_contents": EMPTY, "codes": WALL, "optimal_steps": np.nan}


def empty(layout: Layout, n: int) -> dict[str, np.ndarray]:
    """``n`` blank rows of ``layout``."""
    return {name: np.full((n,) + shape, _PAD.get(name, 0), dtype=dtype) for name, (dtype, shape) in fields(layout).items()}


def layout_of(row: Mapping[str, np.ndarray], height: int, width: int) -> Layout:
    """The layout a row (or a stack of rows) was made with."""
    lead = 1 if row["codes"].ndim == 2 else 0
    return Layout(height, width, row["obj_cell"].shape[lead], row["verb"].shape[lead], row["tokens"].shape[lead])


def stack(rows: Sequence[Mapping[str, np.ndarray]], layout: Layout) -> dict[str, np.ndarray]:
    """Rows (single levels, or stacks of them) padded to ``layout`` and stacked along a first axis."""
    sizes = [1 if r["codes"].ndim == 1 else len(r["codes"]) for r in rows]
    out = empty(layout, sum(sizes))
    at = 0
    for r, n in zip(rows, sizes):
        for name, array in out.items():
            v = np.asarray(r[name])
            v = v[None] if n == 1 and v.ndim == array.ndim - 1 else v
            index = (slice(at, at + n),) + tuple(slice(0, s) for s in v.shape[1:])
            array[index] = v
        at += n
    return out


def hash_to_int(h: str) -> int:
    """A 16-hex-digit level hash as a signed 64-bit integer (what tensors hold).

    Example:
        >>> hash_to_int("ffffffffffffffff"), int_to_hash(-1)
        (-1, 'ffffffffffffffff')
    """
    v = int(h, 16)
    return v - (1 << 64) if v >= 1 << 63 else v


def int_to_hash(v: int) -> str:
    """The inverse of :func:`hash_to_int`."""
    return f"{int(v) & ((1 << 64) - 1):016x}"


def key_map_of(objects: Sequence[Any]) -> np.ndarray:
    """Door colour -> the colour of the key that opens it, read from the level's doors (own colour otherwise)."""
    key_map = np.arange(NUM_COLORS, dtype=np.uint8)
    seen: dict[int, int] = {}
    for o in objects:
        if o.type != "door":
            continue
        door, key = COLOR_TO_IDX[o.color], COLOR_TO_IDX[getattr(o, "key_color", o.color)]
        if seen.setdefault(door, key) != key:
            raise LevelArrayError(f"two {o.color} doors open with different keys; the engine keeps one key per door colour")
        key_map[door] = key
    return key_map


def mission_program(mission: Mission, clauses: int) -> dict[str, np.ndarray]:
    """A mission as arrays: per clause its verb code, target and other object masks, and per step its clause mask."""
    flat = [(k, c) for k, step in enumerate(mission.steps) for c in step]
    if len(flat) > clauses:
        raise LevelArrayError(f"the mission has {len(flat)} clauses; the layout keeps {clauses}")
    out: dict[str, np.ndarray] = {"verb": np.zeros(clauses, np.uint8), "target": np.zeros(clauses, np.int64), "other": np.zeros(clauses, np.int64),
           "step_clauses": np.zeros(clauses, np.int64)}
    for i, (k, c) in enumerate(flat):
        out["verb"][i] = VERB_CODES[c.verb]
        out["target"][i] = 1 << c.target if c.target >= 0 else 0
        out["other"][i] = 1 << c.other if c.other >= 0 else 0
        out["step_clauses"][k] |= 1 << i
    return out


def row_from_level(
    grid: Any,
    objects: Sequence[Any],
    agent_pos: Sequence[int],
    agent_dir: int,
    mission: Mission,
    layout: Layout,
    *,
    tokens: np.ndarray,
    max_steps: int,
    slip: float = 0.0,
    view: int = 7,
    palette: str = "identity",
    minigrid_style: bool = False,
    see_through: bool = False,
    seed: int = 0,
    level_hash: int = 0,
    optimal_steps: float = float("nan"),
    optimal_exact: bool = False,
    program: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """One row from a minigrid ``grid`` (on the layout's canvas, walls beyond it) and its objects.

    ``objects`` are the objects clauses index (every key, ball, box and door of the level, in
    order); every one must be on the grid at its ``cur_pos``. ``program`` replaces the mission's
    (for BabyAI's clauses, which name sets of objects).
    """
    h, w = layout.height, layout.width
    if grid.width > w or grid.height > h:
        raise LevelArrayError(f"a {grid.width}x{grid.height} grid does not fit the {w}x{h} canvas")
    if len(objects) > min(layout.objects, MAX_OBJECTS):
        raise LevelArrayError(f"the level has {len(objects)} objects; the layout keeps {min(layout.objects, MAX_OBJECTS)}")
    row: dict[str, np.ndarray] = {name: np.full(shape, _PAD.get(name, 0), dtype=dtype) for name, (dtype, shape) in fields(layout).items()}
    codes = row["codes"].reshape(h, w)
    for y in range(grid.height):
        for x in range(grid.width):
            codes[y, x] = code_of(grid.grid[y * grid.width + x])
    for k, o in enumerate(objects):
        x, y = (int(v) for v in o.cur_pos)
        if grid.get(x, y) is not o:
            raise LevelArrayError(f"object {k} ({o.color} {o.type}) is not on the grid at its position {(x, y)}")
        row["obj_cell"][k] = y * w + x
        row["obj_contents"][k] = code_of(getattr(o, "contains", None))
    row["agent_cell"][...] = int(agent_pos[1]) * w + int(agent_pos[0])
    row["agent_dir"][...] = agent_dir
    for name, value in (program or mission_program(mission, layout.clauses)).items():
        row[name][: len(value)] = value
    row["num_steps"][...] = len(mission.steps) if program is None else int(np.count_nonzero(program["step_clauses"]))
    if len(tokens) > layout.tokens:
        raise LevelArrayError(f"the mission has {len(tokens)} tokens; the layout keeps {layout.tokens}")
    row["tokens"][: len(tokens)] = tokens
    row["max_steps"][...] = max_steps
    row["slip"][...] = slip
    row["view"][...] = view
    row["palette"][...] = palette_index(palette)
    row["key_map"][:] = key_map_of(objects)
    row["minigrid_style"][...] = minigrid_style
    row["see_through"][...] = see_through
    row["seed"][...] = seed
    row["hash"][...] = level_hash
    row["optimal_steps"][...] = optimal_steps
    row["optimal_exact"][...] = optimal_exact
    return row


def mission_tokens(text: str, length: int = DEFAULT_MAX_LEN) -> np.ndarray:
    """The mission's token ids (:func:`shiftgrid.envs.wrappers.encode`), as uint8."""
    return encode(text, length).astype(np.uint8)


def row_from_sample(sample: Any, max_steps: int, layout: Layout) -> dict[str, np.ndarray]:
    """The row of a sampled shiftgrid level (:class:`~shiftgrid.envs.shift.split.Sample`), episode limit ``max_steps``."""
    from shiftgrid.envs.level import playable_copy

    level, f = sample.level, sample.factors
    grid, objects = playable_copy(level)  # fresh copies at their start positions
    plan = sample.plan
    return row_from_level(
        grid, objects, level.agent_pos, level.agent_dir, level.mission,
        Layout(layout.height, layout.width, max(layout.objects, len(objects)),
               max(layout.clauses, level.mission.num_clauses), layout.tokens),
        tokens=mission_tokens(level.mission_text, layout.tokens), max_steps=max_steps, slip=f.slip, view=f.view,
        palette=f.palette, seed=sample.level_seed, level_hash=hash_to_int(sample.level_hash),
        optimal_steps=float("nan") if plan is None else float(plan.steps), optimal_exact=bool(plan is not None and plan.exact),
    )

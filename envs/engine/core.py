"""The batched step: a level's state as fixed-shape tensors, one pure function per step and per observation.

A level store's rows (:func:`store_arrays`) hold each level's start (cell codes and an
object-index layer on a canvas padded by the view's reach, so the 7x7 view is one gather;
object cells; the agent's pose) and its fixed parts packed into one int64 row (mission program,
episode limit, view, palette, key map, what boxes hold). An env's state (a dict of tensors,
leading dimension the batch) holds what play changes: cells, object layer, each object's last
floor cell (and, for BabyAI's clauses, its recorded cell), the pose, what is carried, the
mission's progress, the step count and the level's index.

:func:`step` applies the rules of :mod:`~shiftgrid.envs.rules` through their compiled
tables; :func:`observe` is minigrid's ``gen_obs()["image"]``; :func:`start` builds start states.
None of them syncs with the host (no ``.item()``, no ``nonzero``, no data-dependent shapes), so
they run on CUDA unchanged and compile with ``torch.compile``. Byte layers are handled as int64
words and bit sets are packed with multiplications: on a CPU, eager torch's byte kernels are slow.

Example:
    >>> import gymnasium as gym, torch, shiftgrid.envs
    >>> from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack
    >>> env = gym.make("shiftgrid/GoTo-v1"); obs, _ = env.reset(seed=0); u = env.unwrapped
    >>> layout = Layout(u.height, u.width, 8, 1)
    >>> t = Tables(layout, "cpu")
    >>> store = store_arrays(stack([row_from_sample(u.sample, u.max_steps, layout)], layout), t)
    >>> s = start(store, torch.zeros(1, dtype=torch.int64), t)
    >>> bool((image(observe(s, store, t))[0].numpy() == obs["image"]).all())
    True
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from minigrid.core.constants import DIR_TO_VEC

from shiftgrid.envs import rules
from shiftgrid.envs.cell_codes import DOOR_T, EMPTY, GOAL_T, OPEN, WALL, decode, observed_tables
from shiftgrid.envs.engine.levels import NO_CELL, Layout
from shiftgrid.envs.observation import VIEW, VIEWS, view_mask

State = dict[str, torch.Tensor]
#: Padding around the canvas: the farthest a view reaches from an agent inside the outer wall.
PAD = VIEW - 2
#: A cell index no cell has (objects carried, or not recorded).
NOWHERE = -(1 << 30)
_ROW = 8  # view cells per row in the gather (7 and one spare: the agent's own cell), so a row is an int64 word
_PACK = 0x0102040810204080  # bytes 0/1 of a word -> 8 bits (>> 56)
_SPREAD = sum(1 << (7 * k) for k in range(8))  # 7 bits -> bytes 0/1 (& _LOW_BITS)
_LOW_BITS = 0x0101010101010101
_SEEN_ROW = 0x0001010101010101  # the 7 cells of a view row, all seen


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _lsr(x: torch.Tensor, k: int) -> torch.Tensor:
    return (x >> k) & ((1 << (64 - k)) - 1)


def _round8(n: int) -> int:
    return -(-n // 8) * 8


class Tables:
    """The rules' compiled tables and the canvas geometry of a layout, on ``device``."""

    def __init__(self, layout: Layout, device: Any):
        self.layout, self.device = layout, torch.device(device)
        h, w = layout.height, layout.width
        self.hp, self.wp = h + 2 * PAD, w + 2 * PAD
        self.cells = _round8(self.hp * self.wp)
        self.objects, self.clauses = _round8(layout.objects), _round8(layout.clauses)
        t = lambda a, dtype=None: torch.tensor(np.asarray(a), dtype=dtype, device=self.device)
        ys, xs = np.divmod(np.arange(h * w), w)
        self.interior_np = (ys + PAD) * self.wp + xs + PAD
        self.delta = t([dx + dy * self.wp for dx, dy in DIR_TO_VEC], torch.int64)
        offsets = np.zeros((4, VIEW * _ROW), dtype=np.int64)  # [dir, j * 8 + i]; i = 7 is the agent's cell
        for d in range(4):
            (fx, fy), (rx, ry) = DIR_TO_VEC[d], DIR_TO_VEC[(d + 1) % 4]
            for j in range(VIEW):
                for i in range(VIEW):
                    dx, dy = (i - VIEW // 2) * rx + (VIEW - 1 - j) * fx, (i - VIEW // 2) * ry + (VIEW - 1 - j) * fy
                    offsets[d, j * _ROW + i] = dx + dy * self.wp
        self.view_offsets = t(offsets)
        words = np.zeros((max(VIEWS) + 1, VIEW * _ROW), dtype=np.uint8)
        for v in VIEWS:
            words[v].reshape(VIEW, _ROW)[:, :VIEW] = view_mask(v).T
        self.view_words = t(words.view(np.int64))  # [view, 7 rows] as words of 0/1 bytes
        self.trans = t(rules.transition_table(), torch.int32)
        self.carry_class = t(rules.carry_class_table())
        self.opaque = t(rules.opaque_table().astype(np.uint8))
        self.visibility = t(rules.visibility_table(VIEW))
        observed = observed_tables().astype(np.uint32)
        packed = (observed[..., 0] | observed[..., 1] << 8 | observed[..., 2] << 16).reshape(-1)
        self.observed = t(packed.astype(np.int32))  # code 0 (unseen) observes as (0, 0, 0) in every palette
        decoded = np.array([decode(k) for k in range(256)], dtype=np.int64)
        self.colour = t(decoded[:, 1])
        self.open_door = t((decoded[:, 0] == DOOR_T) & (decoded[:, 2] == OPEN))
        self.goal = t(decoded[:, 0] == GOAL_T)
        self.adjacent = (1, self.wp * self.wp)  # squared cell distances of 4-neighbours
        c = layout.clauses
        #: column slices of a level's fixed part: its mission program, its key map (3 bits a colour) and
        #: ``misc`` (episode limit | steps << 32 | minigrid_style << 40 | see_through << 41 | view << 48 | palette << 56)
        names = [("verb", c), ("target", c), ("other", c), ("step_clauses", c), ("key_map", 1), ("misc", 1)]
        self.columns: dict[str, slice] = {}
        at = 0
        for name, n in names:
            self.columns[name] = slice(at, at + n)
            at += n
        self.width = at
        self.view_offsets32 = self.view_offsets.to(torch.int32)
        self.object_index = torch.arange(self.objects, device=self.device)


def _pad_columns(a: np.ndarray, n: int, fill: int) -> np.ndarray:
    out = np.full((len(a), n), fill, dtype=np.int64)
    out[:, : a.shape[1]] = a
    return out


def store_arrays(rows: Mapping[str, np.ndarray], t: Tables) -> dict[str, torch.Tensor]:
    """Level rows (stacked numpy, :mod:`~shiftgrid.envs.engine.levels`) as the device arrays :func:`start` and :func:`step` read."""
    n = len(rows["codes"])
    codes = np.full((n, t.cells), WALL, dtype=np.uint8)
    codes[:, t.interior_np] = rows["codes"]
    cell = rows["obj_cell"].astype(np.int64)
    valid = cell != NO_CELL
    ghost = _pad_columns(np.where(valid, t.interior_np[np.maximum(cell, 0)], NOWHERE), t.objects, NOWHERE)
    fixed = np.zeros((n, t.width), dtype=np.int64)
    col = t.columns
    for name in ("verb", "target", "other", "step_clauses"):
        fixed[:, col[name]] = _pad_columns(rows[name].astype(np.int64), t.layout.clauses, 0)
    fixed[:, col["key_map"]] = (rows["key_map"].astype(np.int64) << (3 * np.arange(6))).sum(1)[:, None]
    misc = (rows["max_steps"].astype(np.int64) | rows["num_steps"].astype(np.int64) << 32
            | rows["minigrid_style"].astype(np.int64) << 40 | rows["see_through"].astype(np.int64) << 41
            | rows["view"].astype(np.int64) << 48
            | rows["palette"].astype(np.int64) << 56)
    fixed[:, col["misc"]] = misc[:, None]
    contents = np.full((n, t.objects), EMPTY, dtype=np.int64)
    contents[:, : rows["obj_contents"].shape[1]] = rows["obj_contents"]
    weights = (1 << np.arange(valid.shape[1], dtype=np.int64))
    dev = lambda a: torch.tensor(a, device=t.device)
    return {
        "codes": dev(codes.view(np.int64)), "ghost": dev(ghost), "on_floor": dev((valid * weights).sum(1)),
        "pos": dev(t.interior_np[rows["agent_cell"].astype(np.int64)]), "dir": dev(rows["agent_dir"].astype(np.int64)),
        "fixed": dev(fixed), "misc": dev(misc), "contents": dev(contents.reshape(-1)), "slip": dev(rows["slip"].astype(np.float64)), "tokens": dev(rows["tokens"].astype(np.int64)),
        "hash": dev(rows["hash"]), "seed": dev(rows["seed"]), "optimal_steps": dev(rows["optimal_steps"]),
        "optimal_exact": dev(rows["optimal_exact"]),
    }


def start(store: Mapping[str, torch.Tensor], level: torch.Tensor, t: Tables) -> State:
    """Start states of the levels ``level`` (indices into ``store``)."""
    zeros = torch.zeros_like(level)
    ghost = store["ghost"].index_select(0, level)
    return {
        "codes": store["codes"].index_select(0, level), "ghost": ghost, "recorded": ghost,
        "on_floor": store["on_floor"].index_select(0, level), "pos": store["pos"].index_select(0, level),
        "dir": store["dir"].index_select(0, level), "carry": zeros + EMPTY, "carry_bit": zeros, "mstep": zeros,
        "mdone": zeros, "t": zeros, "level": level,
    }


def merge(mask: torch.Tensor, new: State, old: State) -> State:
    """``new`` where ``mask``, else ``old``, field by field."""
    return {k: torch.where(mask.view((-1,) + (1,) * (v.dim() - 1)), new[k], v) for k, v in old.items()}


def _bit(index: torch.Tensor) -> torch.Tensor:
    """Bit mask of object ``index`` (0 where the index is -1)."""
    return torch.where(index >= 0, 1 << index.clamp(min=0), 0)


def _pack(flags: torch.Tensor) -> torch.Tensor:
    """Bit masks of ``[B, 8 * w]`` booleans (bit i: column i), as int64 ``[B]``."""
    n, m = flags.shape
    words = _lsr(flags.to(torch.uint8).contiguous().view(torch.int64) * _signed(_PACK), 56)  # [B, m / 8]
    if m == 8:
        return words.squeeze(1)
    return (words << torch.arange(0, m, 8, device=flags.device)).sum(1)


def _column(fixed: torch.Tensor, t: Tables, name: str) -> torch.Tensor:
    """Column ``name`` of gathered fixed parts: ``[B, C]`` for the clause arrays, ``[B]`` for the packed words."""
    c = fixed[:, t.columns[name]]
    return c.squeeze(1) if name in ("key_map", "misc") else c


def _flags(bits: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, k]`` booleans of the low ``k`` bits of ``bits``."""
    return ((bits[:, None] >> torch.arange(k, device=bits.device)) & 1).bool()


def step(s: State, store: Mapping[str, torch.Tensor], action: torch.Tensor, draws: torch.Tensor | None, t: Tables,
         recorded: bool = True, inplace: bool = False) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One action in every env: ``(next state, reward, terminated, truncated, success)``.

    ``action``: int64 ``[B]`` in 0..6; ``draws``: float64 ``[B, 2]`` uniform draws (the slip's
    coin and its direction), None where no level slips. ``recorded=False`` skips BabyAI's
    recorded cells (no level of the store has BabyAI clauses). ``inplace`` updates the cell
    layer of ``s`` in place. Stepping an env whose episode ended is allowed and meaningless.

    Objects are known by bit masks: the object on a cell is the one on the floor whose last
    floor cell it is (one object per cell), what is carried is ``carry_bit``.
    """
    k = t.objects
    level = s["level"]
    fixed = store["fixed"].index_select(0, level)
    a = action
    if draws is not None:
        slip = store["slip"].index_select(0, level)
        slipped = (a == rules.FORWARD) & (draws[:, 0] < slip)
        a = torch.where(slipped, torch.where(draws[:, 1] < 0.5, rules.LEFT, rules.RIGHT), a)
    codes8 = s["codes"].view(torch.uint8)
    if not inplace:
        codes8 = codes8.clone()
    pos, d, ghost, on_floor = s["pos"], s["dir"], s["ghost"], s["on_floor"]
    floor = _flags(on_floor, k)
    front = pos + t.delta.index_select(0, d)
    f = codes8.gather(1, front[:, None]).squeeze(1).to(torch.int64)
    at_front = (ghost == front[:, None]) & floor  # [B, k]: the object in front
    fo = _pack(at_front)
    carry, co = s["carry"], s["carry_bit"]
    opens = (_column(fixed, t, "key_map") >> (3 * t.colour.index_select(0, f))) & 7
    index = ((a * 256 + f) * len(rules.CARRY_CODES) + t.carry_class.index_select(0, carry)) * rules.NUM_COLORS + opens
    e = t.trans.index_select(0, index).to(torch.int64)
    nf = e & 255
    which = (at_front * t.object_index).sum(1)
    contents = store["contents"].index_select(0, level * k + which)
    nf = torch.where(nf == rules.CONTENTS, contents, nf)
    turn, move, dies, moved = ((e >> 16) & 3) - 1, ((e >> 18) & 1).bool(), ((e >> 19) & 1).bool(), (e >> 20) & 3
    picked, dropped, consumed = moved == rules.PICKED, moved == rules.DROPPED, moved == rules.CONSUMED
    new_co = torch.where(picked, fo, torch.where(dropped, 0, co))
    codes8.scatter_(1, front[:, None], nf.to(torch.uint8)[:, None])
    carried = _flags(co, k)
    ghost = torch.where(picked[:, None] & at_front, NOWHERE, torch.where(dropped[:, None] & carried, front[:, None], ghost))
    on_floor = torch.where(picked | consumed, on_floor & ~fo, torch.where(dropped, on_floor | co, on_floor))
    floor = _flags(on_floor, k)
    d2 = (d + turn) & 3
    pos2 = torch.where(move, front, pos)
    front2 = pos2 + t.delta.index_select(0, d2)
    f2 = codes8.gather(1, front2[:, None]).squeeze(1).to(torch.int64)
    here = codes8.gather(1, pos2[:, None]).squeeze(1).to(torch.int64)
    gap = ghost - front2[:, None]
    gap = gap * gap
    facts = dict(
        action=a[:, None], front=_pack((gap == 0) & floor)[:, None], carry=new_co[:, None], pre_carry=co[:, None],
        dropped=dropped[:, None], front_open=t.open_door.index_select(0, f2)[:, None],
        on_goal=t.goal.index_select(0, here)[:, None],
        ghost_adjacent=_pack((gap == t.adjacent[0]) | (gap == t.adjacent[1]))[:, None])
    rec = s["recorded"]
    if recorded:
        rec = torch.where((a == rules.DROP)[:, None], torch.where(floor, ghost, NOWHERE), rec)
        rgap = rec - front2[:, None]
        rgap = rgap * rgap
        facts["recorded_front"] = _pack(rgap == 0)[:, None]
        facts["recorded_adjacent"] = _pack((rgap == t.adjacent[0]) | (rgap == t.adjacent[1]))[:, None]
    holds = rules.clause_holds(_column(fixed, t, "verb"), _column(fixed, t, "target"), _column(fixed, t, "other"),
                               rules.Facts(**facts))
    hbits = _pack(torch.nn.functional.pad(holds, (0, t.clauses - holds.shape[1])))
    step_clauses = _column(fixed, t, "step_clauses")

    def clauses_of(m: torch.Tensor) -> torch.Tensor:
        c = t.layout.clauses
        return torch.where(m < c, step_clauses.gather(1, m.clamp(max=c - 1)[:, None]).squeeze(1), 0)

    misc = _column(fixed, t, "misc")
    num_steps = (misc >> 32) & 255
    mstep, mdone = rules.advance(s["mstep"], s["mdone"], hbits, clauses_of, t.layout.clauses, torch.where)
    mstep, mdone = torch.where(dies, s["mstep"], mstep), torch.where(dies, s["mdone"], mdone)
    success = (mstep >= num_steps) & ~dies
    steps = s["t"] + 1
    max_steps = misc & 0xFFFFFFFF
    terminated = success | dies
    truncated = rules.truncated(terminated, steps, max_steps, ((misc >> 40) & 1).bool())
    reward = torch.where(success, rules.reward(steps.to(torch.float64), max_steps.to(torch.float64)), 0.0)
    out = {"codes": codes8.view(torch.int64), "ghost": ghost, "recorded": rec, "on_floor": on_floor, "pos": pos2,
           "dir": d2, "carry": torch.where(picked | dropped, (e >> 8) & 255, carry), "carry_bit": new_co,
           "mstep": mstep, "mdone": mdone, "t": steps, "level": level}
    return out, reward.to(torch.float32), terminated, truncated, success


def observe(s: State, store: Mapping[str, torch.Tensor], t: Tables) -> torch.Tensor:
    """The agent's view as packed triples, int32 ``[B, 7 * 8]`` (see :func:`image`): minigrid's
    ``gen_obs()["image"]`` with occlusion, the level's view size and palette, and the carried object."""
    n = s["pos"].shape[0]
    misc = store["misc"].index_select(0, s["level"])
    base = (torch.arange(n, device=s["pos"].device) * t.cells + s["pos"]).to(torch.int32)
    index = base[:, None] + t.view_offsets32.index_select(0, s["dir"])  # [B, j * 8 + i]
    cells = s["codes"].view(torch.uint8).view(-1).index_select(0, index.view(-1)).view(n, VIEW * _ROW)
    opaque = t.opaque.index_select(0, cells.view(-1).to(torch.int32)).view(n, VIEW * _ROW)
    rows = _lsr(opaque.view(torch.int64) * _signed(_PACK), 56) & ((1 << VIEW) - 1)  # [B, j]: opaque columns i
    mask = torch.full((n,), 1 << (VIEW // 2), dtype=torch.int64, device=cells.device)
    seen = []
    for j in range(VIEW - 1, -1, -1):
        out = t.visibility.index_select(0, mask | rows[:, j] << VIEW)
        seen.append(out & ((1 << VIEW) - 1))
        mask = out >> VIEW
    swept = (torch.stack(seen[::-1], 1) * _SPREAD) & _LOW_BITS
    swept = torch.where(((misc >> 41) & 1).bool()[:, None], _SEEN_ROW, swept)  # minigrid's see_through_walls
    visible = swept & t.view_words.index_select(0, (misc >> 48) & 255)
    words = cells.view(torch.int64) & (visible * 255)  # unseen cells read code 0, observed as (0, 0, 0)
    words[:, VIEW - 1] = (words[:, VIEW - 1] & ~(255 << (8 * (VIEW // 2)))) | (s["carry"] << (8 * (VIEW // 2)))
    palette = (((misc >> 56) & 255) * 256).to(torch.int32)
    index = words.view(torch.uint8).view(n, VIEW * _ROW).to(torch.int32) + palette[:, None]
    return t.observed.index_select(0, index.view(-1)).view(n, VIEW * _ROW)


def image(packed: torch.Tensor) -> torch.Tensor:
    """``[B, 7, 7, 3]`` uint8 (indexed ``[i, j]`` as minigrid's image) viewing :func:`observe`'s packed triples (no copy)."""
    n = packed.shape[0]
    return packed.view(torch.uint8).view(n, VIEW, _ROW, 4).permute(0, 2, 1, 3)[:, :VIEW, :, :3]

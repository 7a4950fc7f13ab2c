"""The rule set's definitions against minigrid's objects and sweeps, and its compiled tables against the definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from minigrid.core.world_object import WorldObj

from shiftgrid.envs import rules
from shiftgrid.envs.cell_codes import EMPTY, VALID_CODES, decode, observed_table
from shiftgrid.envs.engine.core import _PACK, _SPREAD, _LOW_BITS, _lsr, _pack, _signed
from shiftgrid.envs.engine.draws import reference_uniform, uniform
from shiftgrid.envs.observation import PALETTES, _visible, observed_code


def _obj(k: int):
    t, c, s = decode(k)
    return None if k == EMPTY else WorldObj.decode(t, c, s)


@pytest.mark.parametrize("k", VALID_CODES)
def test_cell_semantics_are_minigrids(k):
    o = _obj(k)
    assert rules.passable(k) == (o is None or o.can_overlap())
    assert rules.opaque(k) == (o is not None and not o.see_behind())
    assert (rules.transition(rules.PICKUP, k, EMPTY, 0).moved == rules.PICKED) == (o is not None and o.can_pickup())


def test_observed_codes_are_the_envs():
    for palette in PALETTES:
        table = observed_table(palette)
        perm = None if palette == "identity" else PALETTES[palette]
        for k in VALID_CODES:
            assert tuple(table[k]) == observed_code(_obj(k), perm), (palette, k)


def test_compiled_transitions_are_the_definition():
    table = rules.transition_table()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        a, f = int(rng.integers(7)), int(rng.choice(VALID_CODES))
        ci, opens = int(rng.integers(len(rules.CARRY_CODES))), int(rng.integers(6))
        e = rules.transition(a, f, rules.CARRY_CODES[ci], opens, rules.CONTENTS)
        assert table[((a * 256 + f) * len(rules.CARRY_CODES) + ci) * 6 + opens] == rules.pack(e)


def test_visibility_sweep_is_the_envs():
    vis = rules.visibility_table()
    rng = np.random.default_rng(0)
    for _ in range(2000):
        opaque = rng.random((7, 7)) < rng.random()
        mask, seen = 1 << 3, {}
        for j in range(6, -1, -1):
            bits = sum(int(opaque[i, j]) << i for i in range(7))
            out = int(vis[mask | bits << 7])
            seen[j], mask = out & 127, out >> 7
        mine = np.array([[bool(seen[j] >> i & 1) for j in range(7)] for i in range(7)])
        assert np.array_equal(mine, _visible(opaque))


def test_clause_rules_agree_on_every_backend():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        values = {n: int(rng.integers(4)) for n in rules.Facts._fields}
        values["action"] = int(rng.integers(7))
        for n in ("dropped", "front_open", "on_goal"):
            values[n] = bool(values[n] & 1)
        verb, target, other = int(rng.integers(1, len(rules.VERBS) + 1)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        scalar = rules.clause_holds(verb, target, other, rules.Facts(**values))
        lazy = rules.clause_holds_lazily(verb, target, other, values["action"], values.get)
        tensor = rules.clause_holds(torch.tensor([verb]), torch.tensor([target]), torch.tensor([other]),
                                    rules.Facts(**{n: torch.tensor([v]) for n, v in values.items()}))
        assert bool(scalar) == lazy == bool(tensor[0]), (verb, target, other, values)


def test_draws_are_the_reference_arithmetic():
    rng = np.random.default_rng(0)
    seeds = rng.integers(-2**62, 2**62, size=50)
    streams, counters = rng.integers(0, 2**20, size=50), rng.integers(0, 2**40, size=50)
    for k in range(3):
        got = uniform(torch.tensor(seeds), torch.tensor(streams), torch.tensor(counters), k)
        want = [reference_uniform(int(a), int(b), int(c), k) for a, b, c in zip(seeds, streams, counters)]
        assert got.tolist() == want


def test_bit_packing():
    rng = np.random.default_rng(0)
    flags = torch.tensor(rng.random((100, 16)) < 0.5)
    want = (flags.to(torch.int64) << torch.arange(16)).sum(1)
    assert torch.equal(_pack(flags), want)
    bits = torch.arange(128)
    spread = ((bits * _SPREAD) & _LOW_BITS).view(torch.uint8).view(128, 8)
    assert torch.equal(spread[:, :7].bool(), ((bits[:, None] >> torch.arange(7)) & 1).bool())
    assert torch.equal(_lsr(spread.view(torch.int64).squeeze(1) * _signed(_PACK), 56), bits)

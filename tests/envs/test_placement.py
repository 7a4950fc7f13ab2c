"""Object placement keeps levels passable; the local shortcut never accepts a disconnecting cell."""

import numpy as np

from shiftgrid.envs.families.common import _connected, _locally_simple, make_object, place_passable
from shiftgrid.envs.level import LevelBuilder


def test_local_test_is_sound_on_random_regions():
    rng = np.random.default_rng(0)
    decided = 0
    for _ in range(5000):
        cells = {(x, y) for x in range(7) for y in range(7) if rng.random() < 0.75}
        if not cells or not _connected(cells):
            continue
        cell = sorted(cells)[int(rng.integers(len(cells)))]
        rest = cells - {cell}
        if _locally_simple(cell, rest):
            decided += 1
            assert _connected(rest), (cell, sorted(rest))
    assert decided > 1000  # the shortcut decides most cases, so it is worth having


def test_local_test_refuses_a_corridor_cell():
    corridor = {(0, 1), (1, 1), (2, 1)}
    assert not _locally_simple((1, 1), corridor - {(1, 1)})
    assert _locally_simple((2, 1), corridor - {(2, 1)})  # an end of the corridor


def test_crowded_room_stays_connected_and_every_object_reachable():
    b = LevelBuilder(7, 7, np.random.default_rng(3))
    first = place_passable(b, make_object("red", "ball"), reachable=True)
    for _ in range(12):
        place_passable(b, make_object("blue", "box"), keep=[first])
    free = set(b.free_cells())
    assert _connected(free)
    x, y = b.objects[first].cur_pos
    assert {(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)} & free


def test_free_cells_keep_the_order_given_and_skip_objects_and_the_agent():
    b = LevelBuilder(6, 5, np.random.default_rng(0))
    assert b.free_cells() == [(x, y) for y in range(1, 4) for x in range(1, 5)]  # row by row
    b.put(make_object("red", "ball"), 2, 1)
    b.agent_pos = (3, 2)
    assert b.free_cells([(4, 3), (2, 1), (3, 2), (1, 1)]) == [(4, 3), (1, 1)]
    assert (2, 1) not in b.free_cells() and (3, 2) not in b.free_cells()
    assert [b.grid.get(x, y).type for x, y in ((0, 0), (5, 4), (3, 0), (0, 2))] == ["wall"] * 4

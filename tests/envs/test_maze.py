"""Maze family: layouts are what they claim, every level is solvable and replays, lava ends episodes."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from minigrid.core.actions import Actions
from minigrid.envs.wfc.wfclogic import solver as wfc_solver

from shiftgrid.envs.env import ShiftGridEnv
from shiftgrid.envs.factors import FactorError
from shiftgrid.envs.families import layouts
from shiftgrid.envs.families.layouts import CAVES, MAZE_LAYOUTS, RUINS, WFC_SAMPLES, carve, components, distances
from shiftgrid.envs.families.maze import FAMILY, MISSION, MazeFactors, max_steps
from shiftgrid.envs.language import VOCAB, tokenize
from shiftgrid.envs.level import LevelError, level_hash
from shiftgrid.envs.oracle import solve
from shiftgrid.envs.shift.split import hash_extra, load_splits

SPLITS = load_splits(FAMILY)
# Distinct level distributions: `<axis>/id` draws exactly the levels of `id`.
SPLIT_NAMES = [n for n in SPLITS if not n.endswith("/id")]
N_LEVELS = 200
TRAIN_LAYOUTS = ("rooms", "maze")
MAX_REJECTED = N_LEVELS // 20  # LevelError: lava that fits nowhere off a small maze's one path


def _draw(split_name: str, i: int):
    split = SPLITS[split_name]
    rng = np.random.default_rng(split.seed_start + i)
    f = split.draw_factors(FAMILY.factors, rng)
    return f, FAMILY.generate(f, rng)


def _cells(level, kind: str) -> set[tuple[int, int]]:
    g = level.grid
    cells = ((x, y, g.get(x, y)) for y in range(g.height) for x in range(g.width))
    return {(x, y) for x, y, obj in cells if obj is not None and obj.type == kind}


# -- every level is solvable, and its plan replays ---------------------------------------------


@pytest.mark.parametrize("split_name", SPLIT_NAMES)
def test_generated_levels_are_solvable_within_max_steps(split_name):
    failures, rejected = [], 0
    for i in range(N_LEVELS):
        try:
            f, level = _draw(split_name, i)
        except LevelError:
            rejected += 1
            continue
        plan = solve(level, slip=f.slip)
        lava = _cells(level, "lava")
        assert len(lava) == f.lava and len(_cells(level, "goal")) == 1
        assert level.mission_text == MISSION
        if plan.steps > max_steps(f):
            failures.append(f"level {i}: {plan.steps} steps > max_steps {max_steps(f)} ({f})")
    assert not failures, "\n".join(failures[:10])
    assert rejected <= MAX_REJECTED


@pytest.mark.parametrize("split_name", SPLIT_NAMES)
def test_oracle_plan_replays_in_env(split_name):
    """Levels of the split's distribution (slip off) served by a ShiftGridEnv: the plan succeeds at its last action."""
    factors = {**SPLITS[split_name].factors, "slip": 0.0}
    # Served as a `train` split so that 2 levels in 3 are admissible (a held-out split takes 1 in 3).
    splits = load_splits(FAMILY, {"version": 0, "train": factors})
    env = ShiftGridEnv(FAMILY, split="train", splits=splits)
    for i in range(N_LEVELS):
        _, info0 = env.reset(seed=i)
        lava = _cells(env.level, "lava")
        actions = env.optimal_actions
        assert len(actions) == info0["optimal_steps"]
        for j, a in enumerate(actions):
            _, reward, terminated, truncated, info = env.step(a)
            assert tuple(env.agent_pos) not in lava, f"seed {i}: the plan walks into lava"
            if j < len(actions) - 1:
                assert not (terminated or truncated) and reward == 0, f"seed {i}: ended at action {j + 1}"
        assert terminated and info["success"], f"seed {i}: no success after {len(actions)} actions"
        assert reward == info0["optimal_return"] > 0
    env.close()


def test_slip_raises_the_expected_optimal_cost():
    f, level = _draw("rules/far", 0)
    assert f.slip == 0.2
    assert solve(level, slip=f.slip).steps > solve(level).steps


# -- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(MAZE_LAYOUTS))
def test_generation_is_deterministic_per_seed(layout):
    f = MazeFactors(size=11, layout=layout, lava=3)
    hashes = [level_hash(FAMILY.generate(f, np.random.default_rng(s)), hash_extra(f)) for s in range(20)]
    again = [level_hash(FAMILY.generate(f, np.random.default_rng(s)), hash_extra(f)) for s in range(20)]
    assert hashes == again
    assert len(set(hashes)) >= 18


def test_env_serves_the_same_level_for_the_same_seed():
    env = ShiftGridEnv(FAMILY, split="layout/far")
    first = [env.reset(seed=s)[1]["level_hash"] for s in range(3)]
    assert first == [env.reset(seed=s)[1]["level_hash"] for s in range(3)]
    env.close()


# -- lava -------------------------------------------------------------------------------------


def test_stepping_on_lava_ends_the_episode_with_reward_zero(fixed_level_env):
    f = MazeFactors(size=9, layout="rooms", lava=5)
    level = FAMILY.generate(f, np.random.default_rng(3))
    lava = _cells(level, "lava")
    # Stand on an empty cell next to a lava cell, facing it.
    vectors = enumerate(((1, 0), (0, 1), (-1, 0), (0, -1)))  # minigrid's directions
    poses = (((x - dx, y - dy), d) for d, (dx, dy) in vectors for x, y in sorted(lava))
    pose = next((cell, d) for cell, d in poses if level.grid.get(*cell) is None)
    level.agent_pos, level.agent_dir = pose

    env = fixed_level_env(lambda: copy.deepcopy(level))
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(Actions.forward)
    assert tuple(env.agent_pos) in lava
    assert terminated and not truncated and reward == 0 and info["success"] is False


def test_lava_never_cuts_the_agent_off_the_goal():
    f = MazeFactors(size=13, layout="maze", lava=4)  # a perfect maze: lava fits only off the one path
    for s in range(30):
        level = FAMILY.generate(f, np.random.default_rng(s))
        assert len(_cells(level, "lava")) == 4
        solve(level)


# -- layouts are what they claim --------------------------------------------------------------


def _walls(level) -> np.ndarray:
    g = level.grid
    walls = np.zeros((g.height, g.width), dtype=bool)
    for x, y in _cells(level, "wall"):
        walls[y, x] = True
    return walls


def _edges(walls: np.ndarray) -> int:
    floor = ~walls
    return int((floor[:, 1:] & floor[:, :-1]).sum() + (floor[1:, :] & floor[:-1, :]).sum())


@pytest.mark.parametrize("size", [7, 8, 9, 10, 11, 14, 21])
def test_maze_layout_is_a_perfect_maze(size):
    for s in range(10):
        walls = carve("maze", size, np.random.default_rng(s))
        cells = int((~walls).sum())
        assert len(components(walls)) == 1
        assert _edges(walls) == cells - 1  # connected with V - 1 edges: a tree
        m = (size - 1) // 2  # lattice cells a side; every one is carved
        assert cells == m * m + (m * m - 1)
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()


@pytest.mark.parametrize("size", [7, 9, 10, 11, 15, 21])
def test_rooms_layout_is_rooms_joined_by_one_cell_gaps(size):
    for s in range(10):
        walls = carve("rooms", size, np.random.default_rng(s))
        assert len(components(walls)) == 1
        inner = walls[1:-1, 1:-1]
        count = max(2, (size - 1) // 4)  # rooms a side
        for lines in (inner, inner.T):  # dividing wall columns, then rows
            dividers = [k for k in range(lines.shape[1]) if lines[:, k].sum() >= lines.shape[0] - count]
            assert len(dividers) == count - 1
            for k in dividers:
                gaps = np.nonzero(~lines[:, k])[0]
                assert 1 <= len(gaps) <= count
        assert _edges(walls) >= int((~walls).sum()) - 1


@pytest.mark.parametrize("layout", ["ruins", "caves"])
@pytest.mark.parametrize("size", [9, 10, 11, 16])
def test_wfc_layouts_are_one_large_region(layout, size):
    for s in range(10):
        walls = carve(layout, size, np.random.default_rng(s))
        assert len(components(walls)) == 1
        assert 3 * int((~walls).sum()) >= (size - 2) ** 2
        assert walls[0].all() and walls[:, -1].all()


@pytest.mark.parametrize("sample", [RUINS, CAVES], ids=lambda s: s.name)
def test_wfc_patch_is_made_of_sample_patterns(sample):
    """Every window of a (periodic) WFC patch is a window of the sample in some rotation or reflection."""
    k = sample.pattern
    image = np.array([[c == "#" for c in r] for r in sample.rows])
    allowed = set()
    for t in range(8):
        img = np.rot90(image, t // 2)
        img = img[:, ::-1] if t % 2 else img
        padded = np.pad(img, ((0, k - 1), (0, k - 1)), mode="wrap")
        allowed |= {padded[y : y + k, x : x + k].tobytes() for y in range(img.shape[0]) for x in range(img.shape[1])}
    for s in range(5):
        patch = layouts.wfc_patch(sample, sample.patch, np.random.default_rng(s))
        padded = np.pad(patch, ((0, k - 1), (0, k - 1)), mode="wrap")
        windows = {padded[y : y + k, x : x + k].tobytes() for y in range(patch.shape[0]) for x in range(patch.shape[1])}
        assert windows <= allowed


def _minigrid_patch(sample, rng: np.random.Generator) -> np.ndarray:
    """The patch minigrid's own WFC solver makes (what ``wfc_patch`` did before it had its own propagation)."""
    patterns, weights, adjacency = layouts.wfc_patterns(sample)
    side = sample.patch
    for _ in range(10):
        wave = wfc_solver.makeWave(len(weights), side, side)
        where = wfc_solver.makeEntropyLocationHeuristic(rng.random((side, side)) * 0.1)
        which = wfc_solver.makeWeightedPatternHeuristic(weights, rng)
        try:
            return patterns[wfc_solver.run(wave, adjacency, where, which, periodic=True), 0, 0]
        except wfc_solver.Contradiction:
            continue
    raise AssertionError("minigrid's solver met a contradiction in every attempt")


@pytest.mark.parametrize("sample", [RUINS, CAVES], ids=lambda s: s.name)
def test_wfc_patch_is_minigrids_patch_from_the_same_seed(sample):
    """Our propagation keeps every level: the same patch, and the same numbers drawn, as minigrid's solver."""
    for s in range(8):
        ours_rng, theirs_rng = np.random.default_rng(s), np.random.default_rng(s)
        ours = layouts.wfc_patch(sample, sample.patch, ours_rng)
        np.testing.assert_array_equal(ours, _minigrid_patch(sample, theirs_rng), err_msg=f"seed {s}")
        assert ours_rng.random() == theirs_rng.random(), f"seed {s}: a different count of numbers drawn"


@pytest.mark.parametrize("sample", [RUINS, CAVES], ids=lambda s: s.name)
def test_wfc_propagation_reaches_minigrids_fixpoint(sample):
    """From waves with a few cells collapsed at random, both propagations agree, contradictions included."""
    patterns, weights, adjacency = layouts.wfc_patterns(sample)
    side, count = sample.patch, len(weights)
    neighbours = layouts._periodic_neighbours(side)
    rng = np.random.default_rng(0)
    contradictions = 0
    for _ in range(60):
        wave = np.ones((count, side, side), dtype=bool)
        for c in rng.choice(side * side, size=int(rng.integers(1, 5)), replace=False):
            wave[:, c // side, c % side] = False
            wave[int(rng.integers(count)), c // side, c % side] = True
        bits = [sum(1 << int(p) for p in np.nonzero(wave[:, c // side, c % side])[0]) for c in range(side * side)]
        try:
            wfc_solver.propagate(wave, adjacency, periodic=True)
        except wfc_solver.Contradiction:
            contradictions += 1
            with pytest.raises(wfc_solver.Contradiction):
                layouts._Propagator(adjacency).run(bits, neighbours, list(range(side * side)))
            continue
        layouts._Propagator(adjacency).run(bits, neighbours, list(range(side * side)))
        expected = [sum(1 << int(p) for p in np.nonzero(wave[:, c // side, c % side])[0]) for c in range(side * side)]
        assert bits == expected
    assert 0 < contradictions < 60  # both outcomes were exercised


def test_caves_are_drawn_in_two_by_two_blocks():
    """Caves scale each WFC cell to 2x2: away from the border no floor run is one cell wide."""
    for s in range(10):
        walls = carve("caves", 11, np.random.default_rng(s))
        for x, y in layouts.floor_cells(walls):
            assert not (2 <= x <= 8 and walls[y, x - 1] and walls[y, x + 1])
            assert not (2 <= y <= 8 and walls[y - 1, x] and walls[y + 1, x])


@pytest.mark.parametrize("layout", list(MAZE_LAYOUTS))
def test_goal_is_far_from_the_agent(layout):
    f = MazeFactors(size=11, layout=layout)
    for s in range(20):
        level = FAMILY.generate(f, np.random.default_rng(s))
        (goal,) = _cells(level, "goal")
        d = distances(_walls(level), level.agent_pos)
        assert d[goal[1], goal[0]] >= max(-(-d.max() // 2), min(9, d.max())) >= 4


def test_layout_errors_name_the_valid_values():
    with pytest.raises(ValueError, match="valid: rooms, maze, ruins, caves"):
        carve("spiral", 9, np.random.default_rng(0))
    with pytest.raises(FactorError, match="valid: 7..32"):
        MazeFactors(size=6)
    with pytest.raises(FactorError, match="valid: one of: rooms, maze, ruins, caves"):
        MazeFactors(layout="spiral")
    with pytest.raises(ValueError, match="WFC sample 'bad'"):
        layouts.WFCSample("bad", ("#.", "x.")).image()


# -- family and splits ------------------------------------------------------------------------


def test_mission_words_are_in_the_vocabulary():
    assert all(w in VOCAB for w in tokenize(MISSION))


def test_family_pickles_and_names_its_env():
    again = pickle.loads(pickle.dumps(FAMILY))
    assert again == FAMILY and again.max_steps(MazeFactors(size=10)) == 400
    assert FAMILY.env_id() == "shiftgrid/Maze-v1"


def test_splits_hold_out_layouts_lava_and_slip():
    train = SPLITS["train"].factors
    assert set(train["layout"]) == set(TRAIN_LAYOUTS) and train["lava"] == 0 and train.get("slip", 0.0) == 0.0
    for name in ("layout/near", "layout/far"):
        assert SPLITS[name].factors["layout"] in WFC_SAMPLES
    assert min(SPLITS["size/near"].factors["size"]) > max(train["size"])
    assert min(SPLITS["rules/near"].factors["lava"]) > 0 and SPLITS["rules/far"].factors["slip"] > 0
    assert all(SPLITS[n].description for n in SPLITS)

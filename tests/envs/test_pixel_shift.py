"""The observation axis reaches every view of a level, and wrappers' spaces hold what they return.

For every family and observation split, each view (minigrid's ``FullyObsWrapper``,
``RGBImgObsWrapper``, ``RGBImgPartialObsWrapper``, ``render()``) of a shifted level is compared
with the same level observed unshifted (``set_observation("identity", 7)``): it must differ
exactly where the symbolic views do, cell by cell and tile by tile.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.wrappers import FullyObsWrapper, RGBImgObsWrapper, RGBImgPartialObsWrapper

import shiftgrid.envs as sg
from shiftgrid.envs.families.common import make_object
from shiftgrid.envs.observation import view_mask

TILE = 8  # minigrid wrappers' default; at 4 pixels an open door's colour strip is lost in downsampling
RECOLOURED = [OBJECT_TO_IDX[t] for t in ("door", "key", "ball", "box")]
#: The documented palettes (``Factors.palette``) as colour-code maps: swap red (0) and green (1); rotate adds one.
DOCUMENTED = {"identity": lambda c: c, "swap": lambda c: {0: 1, 1: 0}.get(c, c), "rotate": lambda c: (c + 1) % 6}
WRAPPERS = (FullyObsWrapper, RGBImgObsWrapper, RGBImgPartialObsWrapper)


def observation_splits() -> list[tuple[str, str]]:
    out = []
    for env_id in sg.registered_ids("shiftgrid"):
        splits = sg.splits_for(env_id)
        out += [(env_id, n) for n in splits if splits[n].axis == "observation" and splits[n].level in ("near", "far")]
    return out


OBSERVATION_SPLITS = observation_splits()


def tiles_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[i, j]`` (column, row of tiles): whether tile (i, j) of two frames differs."""
    h, w = a.shape[0] // TILE, a.shape[1] // TILE
    d = (a != b).any(axis=2).reshape(h, TILE, w, TILE).any(axis=(1, 3))
    return d.T


def tile_image(obj) -> np.ndarray:
    """One tile as minigrid's ``Grid.render`` writes it into a frame (uint8)."""
    return Grid.render_tile(obj, tile_size=TILE).astype(np.uint8)


def views(env, wrapped) -> dict[str, np.ndarray]:
    u = env.unwrapped
    obs = u.gen_obs()
    out = {name: w.observation(obs)["image"] for name, w in wrapped.items()}
    out["ego"], out["render"] = obs["image"], env.render()
    return out


def documented_full(u) -> np.ndarray:
    """The level's cells as the documented palette shows them (true codes from minigrid's ``Grid.encode``)."""
    full = Grid.encode(u.grid)
    for x, y in np.argwhere(np.isin(full[:, :, 0], RECOLOURED)):
        full[x, y, 1] = DOCUMENTED[u.palette](int(full[x, y, 1]))
    return full


def seen_cells(u, ego: np.ndarray) -> np.ndarray:
    """World cells ``[x, y]`` the egocentric image shows (not unseen)."""
    seen = np.zeros((u.width, u.height), dtype=bool)
    for x in range(u.width):
        for y in range(u.height):
            vc = u.relative_coords(x, y)
            seen[x, y] = vc is not None and ego[vc].any()
    return seen


def compare_with_unshifted(env, wrapped) -> int:
    """Assert every view differs from the unshifted level's exactly where the symbolic ones do; count differences."""
    u = env.unwrapped
    palette, view = u.palette, u.view
    shifted = views(env, wrapped)
    grid, vis = u.gen_obs_grid()
    assert np.array_equal(grid.encode(vis), shifted["ego"]), "minigrid's gen_obs_grid path differs from the image"
    full = documented_full(u)
    ax, ay = u.agent_pos
    expected_full = full.copy()
    expected_full[ax, ay] = shifted["FullyObsWrapper"][ax, ay]  # the agent's own marker
    assert np.array_equal(shifted["FullyObsWrapper"], expected_full), "FullyObsWrapper shows the wrong colours"
    u.set_observation("identity", 7)
    try:
        plain = views(env, wrapped)
    finally:
        u.set_observation(palette, view)
    ego = (shifted["ego"] != plain["ego"]).any(axis=2)
    cells = (full != Grid.encode(u.grid)).any(axis=2)  # where the palette changes a cell's code
    marked = cells.copy()
    marked[ax, ay] = False  # FullyObsWrapper shows the agent there, shifted or not
    assert np.array_equal((shifted["FullyObsWrapper"] != plain["FullyObsWrapper"]).any(axis=2), marked)
    seen = seen_cells(u, shifted["ego"]) != seen_cells(u, plain["ego"])
    pov = tiles_differ(shifted["RGBImgPartialObsWrapper"], plain["RGBImgPartialObsWrapper"])
    assert np.array_equal(pov, ego), f"point-of-view tiles differ at {np.argwhere(pov != ego).tolist()} unlike the image"
    for name in ("RGBImgObsWrapper", "render"):
        tiles = tiles_differ(shifted[name], plain[name])
        assert np.array_equal(tiles, cells | seen), f"{name} tiles differ at {np.argwhere(tiles != (cells | seen)).tolist()}"
    return int(ego.sum() + cells.sum())


@pytest.mark.parametrize("env_id,split", OBSERVATION_SPLITS, ids=[f"{i.split('/')[1]}/{s}" for i, s in OBSERVATION_SPLITS])
def test_pixel_and_full_views_shift_where_symbolic_views_do(env_id, split):
    env = gym.make(env_id, split=split, oracle=False, render_mode="rgb_array", tile_size=TILE)
    wrapped = {W.__name__: W(env, tile_size=TILE) if W is not FullyObsWrapper else W(env) for W in WRAPPERS}
    rng = np.random.default_rng(0)
    differences = 0
    for seed in range(4):
        env.reset(seed=seed)
        for _ in range(20):
            differences += compare_with_unshifted(env, wrapped)
            _, _, terminated, truncated, _ = env.step(int(rng.choice([0, 1, 2, 2, 3, 5])))
            if terminated or truncated:
                break
    assert differences > 0, f"{env_id} {split}: the shift never changed a view, so nothing was tested"


def test_target_green_under_swap_is_drawn_green():
    env = gym.make("shiftgrid/GoTo-v1", split="observation/near", oracle=False)
    u = env.unwrapped
    for seed in range(50):
        env.reset(seed=seed)
        target = u.level.objects[u.level.mission.steps[0][0].target]
        if target.color == "red":
            break
    assert target.color == "red", "no red target in 50 seeds"
    x, y = target.cur_pos
    frame = u.get_frame(highlight=False, tile_size=TILE)
    tile = frame[y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE]
    green, red = (tile_image(make_object(c, target.type)) for c in ("green", "red"))
    assert np.array_equal(tile, green) and not np.array_equal(tile, red)
    assert tuple(FullyObsWrapper(env).observation(u.gen_obs())["image"][x, y][:2]) == (target.encode()[0], COLOR_TO_IDX["green"])
    assert u.grid.get(x, y).color == "red", "the objects play uses keep their true colours"


def test_maze_far_point_of_view_shows_nothing_beyond_three_cells():
    env = RGBImgPartialObsWrapper(gym.make("shiftgrid/Maze-v1", split="observation/far", oracle=False), tile_size=TILE)
    u = env.unwrapped
    unseen = tile_image(None)
    outside = ~view_mask(3)
    beyond = 0
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        image = obs["image"]
        for i, j in zip(*np.nonzero(outside)):
            assert np.array_equal(image[j * TILE : (j + 1) * TILE, i * TILE : (i + 1) * TILE], unseen), (i, j)
        highlighted = u.gen_obs_grid()[1]
        assert not highlighted[outside].any(), "render() would highlight cells beyond the 3x3 view"
        u.set_observation(view=7)
        wide = env.observation(u.gen_obs())["image"]
        u.set_observation(view=3)
        beyond += any(not np.array_equal(wide[j * TILE : (j + 1) * TILE, i * TILE : (i + 1) * TILE], unseen)
                      for i, j in zip(*np.nonzero(outside)))
        obs, _, terminated, truncated, _ = env.step(int(rng.choice([0, 1, 2, 2])))
        if terminated or truncated:
            obs, _ = env.reset()
    assert beyond > 0, "a 7x7 view never showed anything beyond 3x3, so nothing was tested"


CHECKED = [(i, "train") for i in sg.registered_ids("shiftgrid")] + [("shiftgrid/GoTo-v1", "size/far")] + OBSERVATION_SPLITS


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=[w.__name__ for w in WRAPPERS])
@pytest.mark.parametrize("env_id,split", CHECKED, ids=[f"{i.split('/')[1]}/{s}" for i, s in CHECKED])
def test_check_env_passes_with_pixel_and_full_wrappers(env_id, split, wrapper):
    splits = sg.splits_for(env_id)  # made directly: gym.make's spec would ask to recreate minigrid's wrappers
    env = wrapper(sg.ShiftGridEnv(splits.family, split=split, splits=splits, oracle=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    messages = [str(w.message) for w in caught if "unwrapped version" not in str(w.message)]
    assert not messages, f"check_env warned: {messages}"
    for seed in range(4):  # levels of every size the split draws fit the space
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs), (seed, obs["image"].shape, env.observation_space["image"])


def test_grid_is_sized_for_the_largest_level_of_the_split():
    env = FullyObsWrapper(gym.make("shiftgrid/GoTo-v1", split="size/far", oracle=False))
    sizes = set()
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        level = env.unwrapped.level.grid
        sizes.add(level.width)
        assert obs["image"].shape == (16, 16, 3)
        assert np.array_equal(obs["image"][: level.width, : level.height, 0] != 0, np.ones((level.width, level.height), bool))
        # cells beyond the level are walls
        walls = obs["image"][level.width :, :, 0], obs["image"][:, level.height :, 0]
        assert all((w == Grid.encode(env.unwrapped.grid)[0, 0, 0]).all() for w in walls)
    assert sizes == {14, 16}, sizes


@pytest.mark.parametrize("kwargs,message", [({"palette": "sepia"}, r"'sepia'.*identity, swap, rotate"),
                                            ({"view": 4}, r"view=4.*3, 5, 7")])
def test_set_observation_rejects_unknown_values(kwargs, message):
    env = gym.make("shiftgrid/GoTo-v1", oracle=False).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.set_observation(**kwargs)

"""The mechanism world model: its geometry is minigrid's view, and its rules are learned, not assumed.

``ToyRoom`` is a small minigrid room whose rules can differ from minigrid's: ``jump=2`` makes
``forward`` move two cells (when both are free; otherwise the agent stays), ``swap_turns=True``
makes ``left`` turn right and ``right`` turn left. Its observations are minigrid's, so a world
model reads them as it reads shiftgrid's. Registered here as ``shiftgrid-test/ToyRoom-v0``
(minigrid's rules) and ``shiftgrid-test/ToyJump-v0`` (two-cell steps, swapped turns).

The generic interface tests (shapes, episode starts, seeding, save/reload, NaN stop, bf16 and
compile flags, step-by-step filtering) run for it in test_models.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from minigrid.core.actions import Actions
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball
from minigrid.minigrid_env import MiniGridEnv

from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.ego_geometry import EgoGeometry, gather
from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.mechanism_parts import SightScan
from shiftgrid.world_models.metrics import one_step_accuracy
from shiftgrid.world_models.models import build_model
from shiftgrid.world_models.replay import SequenceReplay
from shiftgrid.world_models.train_step import make_optimizer, train_step

TURNS_AND_FORWARD = (Actions.left, Actions.right, Actions.forward)
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")


class ToyRoom(MiniGridEnv):
    """A ``size`` x ``size`` walled room with ``balls`` balls; ``jump`` cells per ``forward``; optionally swapped turns."""

    def __init__(self, size: int = 7, balls: int = 2, jump: int = 1, swap_turns: bool = False, max_steps: int = 40,
                 **kwargs):
        self.balls, self.jump, self.swap_turns = balls, jump, swap_turns
        super().__init__(mission_space=MissionSpace(mission_func=lambda: "explore the room"), grid_size=size,
                         max_steps=max_steps, see_through_walls=False, **kwargs)

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        for _ in range(self.balls):
            self.place_obj(Ball(COLOURS[self._rand_int(0, len(COLOURS))]))
        self.place_agent()
        self.mission = "explore the room"

    def _free(self, pos: np.ndarray) -> bool:
        cell = self.grid.get(*pos)
        return cell is None or cell.can_overlap()

    def step(self, action: int):
        if self.swap_turns and action in (Actions.left, Actions.right):
            action = Actions.right if action == Actions.left else Actions.left
        if self.jump == 1 or action != Actions.forward:
            return super().step(action)
        self.step_count += 1
        one = np.asarray(self.agent_pos) + self.dir_vec
        if all(self._free(one + k * self.dir_vec) for k in range(self.jump)):
            self.agent_pos = tuple(int(v) for v in one + (self.jump - 1) * self.dir_vec)
        return self.gen_obs(), 0.0, False, self.step_count >= self.max_steps, {}


if "shiftgrid-test/ToyRoom-v0" not in gym.registry:
    gym.register("shiftgrid-test/ToyRoom-v0", entry_point=ToyRoom)
    gym.register("shiftgrid-test/ToyJump-v0", entry_point=ToyRoom, kwargs={"jump": 2, "swap_turns": True})


@pytest.mark.parametrize("env_id", ["MiniGrid-FourRooms-v0", "shiftgrid-test/ToyRoom-v0"])
def test_view_index_reads_minigrids_view(env_id):
    """The fixed geometry: the cells of a memory holding the level around the agent, read by ``view_index``, are the
    agent's observed view (where minigrid shows a cell: its occlusion is what the model learns)."""
    env = gym.make(env_id).unwrapped
    geometry = EgoGeometry(map_size=41, view=7, window=2, reach=2, crop=2)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(30):
        env.step(int(rng.choice(TURNS_AND_FORWARD)))
        full = env.grid.encode()  # (W, H, 3), x major
        memory = torch.full((1, 3, 41, 41), -1.0)
        x0, y0 = 20 - env.agent_pos[0], 20 - env.agent_pos[1]
        memory[0, :, x0:x0 + env.width, y0:y0 + env.height] = torch.as_tensor(full).permute(2, 0, 1).float()
        read = gather(memory, geometry.view_index[torch.tensor([env.agent_dir])])[0].T.reshape(7, 7, 3)
        image = torch.as_tensor(env.gen_obs()["image"]).float()
        shown = image[..., 0] != 0
        shown[3, 6] = False  # the agent's own cell shows what it carries
        assert torch.equal(read[shown], image[shown])


def test_view_context_index_is_each_view_cells_egocentric_neighbourhood():
    """``view_context_index`` lists, per view cell, the memory cells of the egocentric square around it, the cell itself
    in the middle: the neighbour ``(df, dl)`` of image cell ``[i, j]`` is image cell ``[i + dl, j - df]`` where that exists."""
    geometry = EgoGeometry(map_size=17, view=7, window=2, reach=2, crop=2, context=1)
    around = geometry.view_context_index.view(4, 7, 7, 3, 3)  # (direction, i, j, df + 1, dl + 1)
    view = geometry.view_index.view(4, 7, 7)
    for i in range(7):
        for j in range(7):
            for df in (-1, 0, 1):
                for dl in (-1, 0, 1):
                    if 0 <= i + dl < 7 and 0 <= j - df < 7:
                        assert torch.equal(around[:, i, j, df + 1, dl + 1], view[:, i + dl, j - df])
    assert len(set(around[0, 0, 0].flatten().tolist())) == 9
    with pytest.raises(ValueError, match="context 2"):
        EgoGeometry(map_size=15, view=7, window=2, reach=2, crop=2, context=2)


def test_sight_scan_decides_a_cells_sight_only_from_cells_nearer_the_viewer():
    """``sight=scan``: the seen logit of a view cell depends on no cell's content in its own row's column (itself) nor in
    any row farther from the viewer, and on the cells before it; the model built with it trains and decodes."""
    scan = SightScan(features=4, view=7)
    features = torch.randn(1, 7, 7, 4, requires_grad=True)
    logits = scan(features).view(7, 7)
    for i, j in [(3, 2), (0, 0), (6, 5), (3, 6), (1, 4)]:
        grad = torch.autograd.grad(logits[i, j], features, retain_graph=True)[0][0].abs().sum(-1)  # (i, j)
        assert grad[i, j] == 0 and grad[:, :j].sum() == 0
        if j < 6:
            assert grad[:, j + 1:].sum() > 0
    model = build_model("mechanism", "tiny", ObsSpec(), sight="scan", decoder_context=1)
    batch = {"image": torch.randint(0, 3, (2, 4, 7, 7, 3), dtype=torch.uint8), "direction": torch.randint(0, 4, (2, 4)),
             "mission": torch.zeros(2, 4, 40, dtype=torch.long), "action": torch.zeros(2, 4, dtype=torch.long),
             "reward": torch.zeros(2, 4), "terminated": torch.zeros(2, 4, dtype=torch.bool),
             "is_first": torch.zeros(2, 4, dtype=torch.bool)}
    loss, _ = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.decoder.seen.viewer.grad is not None
    with pytest.raises(ValueError, match="sight must be 'view' or 'scan'"):
        build_model("mechanism", "tiny", ObsSpec(), sight="rays")


def collect(env_id: str, seed: int, steps: int, n: int = 4) -> tuple[SequenceReplay, ObsSpec]:
    envs = gym.vector.SyncVectorEnv([lambda: make_env(env_id)] * n)
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=n, capacity=n * steps)
    replay.reset(envs.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.choice(TURNS_AND_FORWARD, size=n)
        replay.add(actions, *envs.step(actions))
    return replay, ObsSpec.from_spaces(envs.single_observation_space, envs.single_action_space)


def train(env_id: str, updates: int) -> tuple[torch.nn.Module, dict]:
    """A tiny mechanism model trained on random turns and steps in ``env_id``; held-out batches of it and of the other room."""
    replay, spec = collect(env_id, seed=0, steps=500)
    torch.manual_seed(0)
    model = build_model("mechanism", "tiny", spec)
    opt, g = make_optimizer(model), torch.Generator().manual_seed(0)
    for _ in range(updates):
        train_step(model, opt, replay.sample(16, 16, generator=g))
    held_out = {name: collect(name, seed=1000, steps=100)[0].sample(64, 16, generator=torch.Generator().manual_seed(0))
                for name in ("shiftgrid-test/ToyRoom-v0", "shiftgrid-test/ToyJump-v0")}
    return model, held_out


@pytest.mark.slow
def test_learns_rules_that_differ_from_minigrids():
    """Trained alike, it learns two-cell steps and swapped turns as well as minigrid's rules, and each model
    mispredicts the other world: which action moves or turns, and how far, is learned from the data."""
    minigrid_rules, held_out = train("shiftgrid-test/ToyRoom-v0", updates=600)
    toy_rules, _ = train("shiftgrid-test/ToyJump-v0", updates=600)
    own = {"minigrid": one_step_accuracy(minigrid_rules, held_out["shiftgrid-test/ToyRoom-v0"]),
           "toy": one_step_accuracy(toy_rules, held_out["shiftgrid-test/ToyJump-v0"])}
    crossed = {"minigrid": one_step_accuracy(minigrid_rules, held_out["shiftgrid-test/ToyJump-v0"]),
               "toy": one_step_accuracy(toy_rules, held_out["shiftgrid-test/ToyRoom-v0"])}
    for name in own:
        assert own[name]["direction_accuracy"] >= 0.99, own
        assert own[name]["changed_cell_accuracy"] >= 0.9, own
        assert crossed[name]["direction_accuracy"] < 0.8, crossed
        assert crossed[name]["changed_cell_accuracy"] < own[name]["changed_cell_accuracy"] - 0.2, (own, crossed)
    assert abs(own["toy"]["changed_cell_accuracy"] - own["minigrid"]["changed_cell_accuracy"]) <= 0.05, own


def test_drives_dreamer_and_a_dream_env_like_the_other_families(tmp_path):
    """Dreamer trains on it, saves and reloads it, and a dream env steps in it: nothing there names a family."""
    from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    from shiftgrid.agents.run.train import train as train_run
    from shiftgrid.agents.run.world_model import load_world_model
    from shiftgrid.world_models.dream_env import DreamVecEnv, RealStarts

    empty = "MiniGrid-Empty-5x5-v0"
    hp = {"model": "mechanism", "preset": "tiny", "batch_size": 4, "seq_len": 8, "replay_capacity": 10_000,
          "actor_critic": {"hidden": 32, "layers": 1}, "prefill": 64, "train_ratio": 4.0, "log_every": 100,
          "openloop_every": 0}
    config = TrainConfig(algo="dreamer", env=empty, env_kwargs={"max_steps": 20}, steps=128, n_envs=2, device="cpu",
                         progress=False, run_dir=str(tmp_path / "run"), eval=EvalConfig(freq=0), checkpoint_freq=0,
                         hyperparams=hp)
    result = train_run(config)
    assert result.num_timesteps == 128 and result.stop_reason is None
    model, _ = load_world_model(result.run_dir, "cpu")
    assert model.family == "mechanism"
    env = DreamVecEnv(model, RealStarts(empty, seed=0), 2, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(25):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and reward.shape == (2,)

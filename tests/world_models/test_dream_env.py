"""DreamVecEnv: a world model as a gymnasium vector env (and an SB3 VecEnv); PPO trains inside it via --dream."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.envs.learner_env import make_env
from shiftgrid.scripts.cli import main
from shiftgrid.world_models.dream_env import DreamSB3VecEnv, DreamVecEnv, RealStarts, ReplayStarts
from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.models import build_model
from shiftgrid.world_models.replay import SequenceReplay

EMPTY = "MiniGrid-Empty-5x5-v0"


def dream(num_envs: int = 3, sample: bool = True, seed: int = 0, never_ends: bool = False) -> DreamVecEnv:
    starts = RealStarts(EMPTY, seed=0)
    torch.manual_seed(0)
    model = build_model("rssm", "tiny", ObsSpec.from_spaces(starts.observation_space, starts.action_space))
    if never_ends:  # the continuation head says "goes on" everywhere: episodes end only by truncation
        torch.nn.init.constant_(model.cont_head.net[-1].bias, 20.0)
    return DreamVecEnv(model, starts, num_envs, sample=sample, seed=seed)


def test_reset_returns_real_first_observations_and_steps_stay_in_the_spaces():
    env = dream()
    real = gym.make(EMPTY)
    obs, info = env.reset(seed=0)
    first = RealStarts(EMPTY, seed=0).draw()[0]
    assert np.array_equal(obs["image"][0], first["image"]) and np.array_equal(obs["mission"][0], first["mission"])
    assert env.observation_space.contains(obs) and env.single_action_space == real.action_space
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert reward.shape == (3,) and reward.dtype == np.float64 and terminated.dtype == bool == truncated.dtype
        assert np.array_equal(obs["mission"][:, :3], np.repeat(first["mission"][None, :3], 3, 0))  # carried from the reset
    with pytest.raises(ValueError, match="not all in Discrete"):
        env.step(np.array([0, 9, 0]))


def test_seeded_reset_repeats_exactly():
    def rollout(env: DreamVecEnv, seed: int) -> list[np.ndarray]:
        obs, _ = env.reset(seed=seed)
        frames = [obs["image"]]
        for t in range(6):
            frames.append(env.step(np.array([t % 3] * env.num_envs))[0]["image"])
        return frames

    def same(a: list, b: list) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(a, b))

    assert same(rollout(dream(), 5), rollout(dream(), 5))
    assert not same(rollout(dream(), 1), rollout(dream(), 2))  # sampled frames follow the seed
    assert same(rollout(dream(sample=False), 3), rollout(dream(sample=False), 3))  # latents are still drawn, seeded


def test_next_step_autoreset_and_the_sb3_adapter():
    env = dream(num_envs=2, never_ends=True)
    env.reset(seed=0)
    env.limit[:] = 2  # truncate after two steps
    env.step(np.array([0, 0]))
    _, _, term, trunc, _ = env.step(np.array([0, 0]))
    assert trunc.all() and not term.any()
    obs, reward, term, trunc, _ = env.step(np.array([2, 2]))  # next-step mode: a fresh real start, action ignored
    assert not (term | trunc).any() and (reward == 0).all() and (env.t == 0).all()
    first = RealStarts(EMPTY, seed=0)
    assert obs["image"].shape == (2, 7, 7, 3) and first.observation_space["image"].contains(obs["image"][0])

    venv = DreamSB3VecEnv(dream(num_envs=2, never_ends=True))
    venv.seed(0)
    obs = venv.reset()
    venv.dream.limit[:] = 1
    obs, reward, done, infos = venv.step(np.array([1, 1]))
    assert done.all() and all(i["TimeLimit.truncated"] and "terminal_observation" in i for i in infos)
    assert (venv.dream.t == 0).all()  # SB3 convention: the returned observation is already a fresh start
    assert reward.dtype == np.float32 and venv.observation_space.contains({k: v[0] for k, v in obs.items()})


def test_replay_starts_draw_kept_episode_starts():
    envs = gym.vector.SyncVectorEnv([lambda: make_env(EMPTY)] * 2)
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=2, capacity=200)
    obs, _ = envs.reset(seed=0)
    replay.reset(obs)
    for _ in range(20):
        a = envs.action_space.sample()
        replay.add(a, *envs.step(a))
    starts = ReplayStarts(replay, envs.single_observation_space, envs.single_action_space, max_steps=10)
    o, limit = starts.draw()
    assert limit == 10 and envs.single_observation_space.contains(o)
    assert any(np.array_equal(o["image"], s) for s in obs["image"])  # one of the real first frames


@pytest.mark.training
def test_ppo_trains_in_the_dream_and_is_evaluated_in_the_real_env(tmp_path, capsys):
    wm = tmp_path / "wm"
    assert main(["wm", "train", "--env", EMPTY, "--preset", "tiny", "--steps", "200", "--n-envs", "2", "--device", "cpu",
                 "--run-dir", str(wm), "--no-progress", "--set", "hyperparams.batch_size=4",
                 "--set", "hyperparams.seq_len=8", "--set", "eval.freq=0"]) == 0
    run = RunDir(tmp_path / "ppo")
    ppo = ["train", "--algo", "ppo", "--env", EMPTY, "--dream", str(wm), "--steps", "256", "--n-envs", "2",
           "--device", "cpu", "--run-dir", str(run.root), "--no-progress", "--set", "hyperparams.n_steps=64",
           "--set", "hyperparams.batch_size=64", "--set", "hyperparams.n_epochs=1", "--set", "eval.freq=0"]
    capsys.readouterr()
    # a model of 200 steps cannot teach: the dream says so with its figures, and trains nobody
    assert main(ppo) == 2 and not run.root.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not good enough to train in" in err[0] and "reward F1" in err[0] and "termination F1" in err[0]
    assert "held-out real episodes" in err[0] and "--dream-anyway" in err[0]
    assert main([*ppo, "--dream-anyway"]) == 0
    assert "warning: --dream" in capsys.readouterr().err
    assert main(["evaluate", str(run.root), "--episodes", "2", "--n-envs", "2", "--device", "cpu"]) == 0
    doc = json.loads((run.eval / "results.json").read_text())
    assert doc["runs"][0]["training"]["steps"] >= 256
    assert main(["train", "--algo", "ppo", "--env", "shiftgrid/GoTo-v1", "--dream", str(wm), "--steps", "64",
                 "--run-dir", str(tmp_path / "bad"), "--no-progress", "--device", "cpu"]) == 2  # another env's model

"""The tensor engine as an SB3 VecEnv: make_env's observations and spaces, same-step auto-reset, a short PPO run."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.errors import ConfigError
from shiftgrid.agents.training.envs import make_vec
from shiftgrid.agents.training.tensor_vec import TensorVecEnv
from shiftgrid.envs import make_tensor_vec
from shiftgrid.envs.engine.bank import build_bank
from shiftgrid.envs.learner_env import make_env
from shiftgrid.scripts.cli import main

N = 6


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTGRID_CACHE", str(tmp_path / "cache"))


def _pair(env_id: str, split: str, seed: int, **kwargs):
    bank = build_bank(env_id, split, 10, workers=1, progress=False, save=False)
    tensor = TensorVecEnv(make_tensor_vec(env_id, N, split=split, bank=bank, **kwargs))
    tensor.seed(seed)
    dummy = make_vec_env(lambda: make_env(env_id, split, **kwargs), n_envs=N, seed=seed, vec_env_cls=DummyVecEnv)
    return tensor, dummy


def _assert_obs_equal(a, b, where):
    assert set(a) == set(b), where
    for k in a:
        assert np.array_equal(a[k], b[k]), (where, k)


@pytest.mark.parametrize("env_id, split", [("shiftgrid/GoTo-v1", "size/far"), ("shiftgrid/DoorKey-v1", "train"),
                                           ("shiftgrid/PutNext-v1", "observation/far"), ("MiniGrid-DoorKey-5x5-v0", "train"),
                                           ("BabyAI-GoToLocal-v0", "train")])
def test_same_observations_rewards_and_ends_as_make_env_until_each_first_reset(env_id, split):
    tensor, dummy = _pair(env_id, split, seed=11, max_steps=20)
    _assert_obs_equal(tensor.reset(), dummy.reset(), "reset")
    assert tensor.observation_space == dummy.observation_space and tensor.action_space == dummy.action_space
    live = np.ones(N, dtype=bool)
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(25):
        actions = rng.integers(7, size=N)
        o1, r1, d1, i1 = tensor.step(actions)
        o2, r2, d2, i2 = dummy.step(actions)
        for i in np.flatnonzero(live):
            assert r1[i] == pytest.approx(r2[i]) and d1[i] == d2[i], (t, i)
            if d1[i]:
                _assert_obs_equal(i1[i]["terminal_observation"], i2[i]["terminal_observation"], (t, i))
                assert i1[i]["TimeLimit.truncated"] == i2[i].get("TimeLimit.truncated", False)
                assert i1[i]["is_success"] == i2[i]["is_success"]
                assert i1[i]["level_hash"] == i2[i].get("level_hash", i1[i]["level_hash"])  # minigrid's ids have none
                live[i] = False
                ended += 1
            else:
                _assert_obs_equal({k: v[i] for k, v in o1.items()}, {k: v[i] for k, v in o2.items()}, (t, i))
    assert ended == N  # every env ran into its 20-step limit or finished: the terminal path was compared
    assert o1["image"].shape == (N, 7, 7, 3)  # after the resets, fresh observations keep coming


def test_an_ended_episode_restarts_in_the_same_step():
    tensor, _ = _pair("shiftgrid/GoTo-v1", "train", seed=0, max_steps=3)
    tensor.reset()
    for _ in range(3):
        obs, rewards, dones, infos = tensor.step(np.full(N, 6))  # 'done' does not end GoTo: the limit does
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    obs, rewards, dones, infos = tensor.step(np.full(N, 6))
    assert not dones.any() and rewards.sum() == 0  # a new episode's first step, not a no-op reset step


def test_bad_actions_are_refused_in_one_line():
    tensor, _ = _pair("shiftgrid/GoTo-v1", "train", seed=0)
    tensor.reset()
    with pytest.raises(ValueError, match=r"actions must be in 0..6"):
        tensor.step(np.full(N, 7))
    with pytest.raises(ValueError, match=r"actions must have shape \(6,\)|cannot reshape"):
        tensor.step(np.zeros(N + 1, dtype=np.int64))


@pytest.mark.parametrize("extra, message", [({"advice": {"granularity": "subgoal"}}, "no advice"),
                                            ({"teacher": {"name": "uniform"}}, "no a curriculum teacher")])
def test_what_the_engine_cannot_train_with_is_refused(extra, message):
    config = TrainConfig.from_dict({"algo": "ppo", "n_envs": 2, "device": "cpu", "vec_env": "tensor", **extra})
    with pytest.raises(ConfigError, match=message):
        make_vec(config)


def test_short_ppo_run_on_the_engine(tmp_path, capsys):
    run = tmp_path / "ppo-tensor"
    argv = ["train", "--algo", "ppo", "--env", "shiftgrid/GoTo-v1", "--vec-env", "tensor", "--steps", "1024", "--seed", "2",
            "--run-dir", str(run), "--no-progress", "--n-envs", "8", "--device", "cpu",
            "--set", "engine={bank_size: 64, workers: 1}",
            "--set", "extractor={cell_dim: 8, channels: 16, text_dim: 16, word_dim: 16, features_dim: 32}",
            "--set", "eval={freq: 1024, episodes: 2, splits: [id], n_envs: 2}", "--set", "checkpoint_freq=512",
            "--set", "hyperparams={n_steps: 64, batch_size: 128, n_epochs: 1}"]
    assert main(argv) == 0
    assert f"{run}: 1024 steps" in capsys.readouterr().out
    assert yaml.safe_load((run / "config.yaml").read_text())["vec_env"] == "tensor"
    assert (run / "checkpoints" / "latest.pt").is_file()
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    drawn = [e.value for e in acc.Scalars("rollout/distinct_levels")]
    assert drawn and 1 <= drawn[-1] <= 64 and drawn == sorted(drawn)  # levels drawn from the 64-level bank, counted as they grow

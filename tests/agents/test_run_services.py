"""Run services on their own: target, checkpoints, NaN stop, validation evaluations, signals, TensorBoard."""

import json
import signal

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import shiftgrid.agents.run.services as services_module
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import VALIDATION_SEED, EvalConfig, TargetConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.run_state import Episode, RunState, stop_on_signals
from shiftgrid.agents.run.services import RunServices

EMPTY = "MiniGrid-Empty-5x5-v0"


class Forward:
    """A learner stand-in: one weight tensor, always steps forward."""

    def __init__(self):
        self.num_timesteps, self.w = 0, torch.ones(3)

    def state_dict(self):
        return {"w": self.w.clone(), "num_timesteps": self.num_timesteps}

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.full(len(observation["image"]), 2), None


@pytest.fixture
def make(tmp_path):
    opened = []

    def make(**fields):
        fields = {"eval": EvalConfig(freq=0, episodes=2, n_envs=1, render=False), "checkpoint_freq": 0, **fields}
        config = TrainConfig(algo="ppo", env=EMPTY, progress=False, run_dir=str(tmp_path / "run"), **fields)
        run = RunServices(config, RunDir(tmp_path / "run"), Forward(), RunState())
        run.run_dir.root.mkdir(parents=True, exist_ok=True)
        run.open()
        opened.append(run)
        return run

    yield make
    for run in opened:
        run.close()


def test_target_is_met_on_a_full_window_recorded_and_stops_when_asked(make):
    run = make(target=TargetConfig(success=0.5, episodes=4, stop=True))
    assert run.on_step(10, [Episode(True)] * 3)  # window not full yet
    assert run.state.target is None
    assert not run.on_step(20, [Episode(False)])  # 3 of 4: met, and the run stops
    met = json.loads(run.run_dir.target.read_text())
    assert met == run.state.target and (met["steps"], met["rate"], met["episodes"]) == (20, 0.75, 4)
    assert run.state.stop_reason == "target"


def test_checkpoints_every_freq_steps_and_a_nan_keeps_the_last_good_one(make):
    run = make(checkpoint_freq=100)
    run.learner.num_timesteps = 60
    assert run.on_update(60) and not run.run_dir.latest.exists()
    run.learner.num_timesteps = 120
    assert run.on_update(120, {"train/loss": 0.5})
    assert read_checkpoint(run.run_dir.latest).num_timesteps == 120
    run.learner.num_timesteps = 300
    assert not run.on_update(300, {"train/loss": float("nan")})
    assert run.state.stop_reason == "nan"
    run.finish()
    assert read_checkpoint(run.run_dir.latest).num_timesteps == 120


def test_a_non_finite_state_is_never_written(make):
    run = make()
    assert run.save(run.run_dir.latest)
    run.learner.w[1], run.learner.num_timesteps = float("inf"), 50
    assert not run.save(run.run_dir.latest) and run.stopping
    ckpt = read_checkpoint(run.run_dir.latest)
    assert ckpt.num_timesteps == 0 and torch.isfinite(ckpt.state["w"]).all()


def test_evaluations_use_the_validation_seeds_and_record_how_best_was_chosen(make, monkeypatch):
    seeds = []
    real = services_module.split_episodes

    def spy(agent, env_id, split, episodes, *, seed, **kw):
        seeds.append(seed)
        return real(agent, env_id, split, episodes, seed=seed, **kw)

    monkeypatch.setattr(services_module, "split_episodes", spy)
    run = make(eval=EvalConfig(freq=100, episodes=2, n_envs=1, render=False))
    run.learner.num_timesteps = 100
    assert run.on_update(100)
    first = VALIDATION_SEED + 10**9  # an id without splits: held-out reset seeds
    assert seeds == [VALIDATION_SEED] and run.validation_seeds() == (first, first + 1)
    ckpt = read_checkpoint(run.run_dir.best)
    assert ckpt.best == {"split": "id", "success": 0.0, "step": 100, "seeds": [first, first + 1]}
    assert ckpt.history == [{"step": 100, "success": {"id": 0.0}}] and ckpt.eval == {"id": 0.0}
    run.learner.num_timesteps = 150
    assert run.on_update(150) and len(run.state.history) == 1  # not yet eval.freq steps since the last one
    run.learner.num_timesteps = 200
    run.on_update(200)
    assert [h["step"] for h in run.state.history] == [100, 200]
    assert read_checkpoint(run.run_dir.best).num_timesteps == 100  # no improvement: best.pt stays


def test_a_signal_becomes_a_stop_request(make):
    run = make()
    with stop_on_signals(run.state):
        signal.raise_signal(signal.SIGTERM)
        assert not run.on_step(5)
    assert run.state.signum == signal.SIGTERM and run.state.stop_reason == "signal"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_log_writes_sb3_tags(make):
    run = make()
    run.on_step(32, [Episode(True, 0.9, 4), Episode(False, 0.0, 10)])
    run.log({"train/td_error": 0.25})
    run.close()
    acc = EventAccumulator(str(run.run_dir.tb))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"rollout/success_rate", "rollout/ep_rew_mean", "rollout/ep_len_mean", "time/sps", "train/td_error"} <= tags
    assert acc.Scalars("rollout/success_rate")[0].value == 0.5 and acc.Scalars("rollout/ep_len_mean")[0].step == 32
    assert acc.Scalars("rollout/episodes")[0].value == 2  # how full the 100-episode window is

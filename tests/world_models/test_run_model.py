"""A Dreamer run's world model: loaded like a wm train run's, played by the Dreamer's own agent, dreamt in by PPO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shiftgrid.agents.evaluation.world_model import record_splits
from shiftgrid.agents.model_based.run_model import load_scored_run
from shiftgrid.agents.run.checkpoint import Checkpoint, CheckpointError, load_agent, save_checkpoint
from shiftgrid.agents.run.config import EvalConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import train
from shiftgrid.agents.run.world_model import load_world_model
from shiftgrid.agents.training.dream import dream_vec_env
from shiftgrid.scripts.cli import main
from shiftgrid.world_models.interface import ObsSpec

EMPTY = "MiniGrid-Empty-5x5-v0"
SHORT = {"max_steps": 20}


@pytest.fixture(scope="module")
def dreamer_run(tmp_path_factory) -> Path:
    """A tiny Dreamer run (64 steps; a few updates, so its model and actor are no longer the initial ones)."""
    hp = {"preset": "tiny", "batch_size": 4, "seq_len": 8, "prefill": 32, "train_ratio": 4.0, "replay_capacity": 1000,
          "actor_critic": {"hidden": 32, "layers": 1}}
    config = TrainConfig(algo="dreamer", env=EMPTY, env_kwargs=SHORT, steps=64, n_envs=2, device="cpu", progress=False,
                         run_dir=str(tmp_path_factory.mktemp("dreamer") / "run"), eval=EvalConfig(freq=0), hyperparams=hp)
    return Path(train(config).run_dir)


def test_the_world_model_of_a_dreamer_run_is_the_dreamers(dreamer_run):
    run = load_scored_run(dreamer_run, device="cpu")
    assert (run.learner, run.family, run.steps, run.file) == ("dreamer", "rssm (tiny)", 64, RunDir(dreamer_run).latest)
    model, config = load_world_model(str(dreamer_run), "cpu")
    theirs, mine = model.state_dict(), run.model.state_dict()
    assert not run.model.training and mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert run.config.to_dict() == config.to_dict() and run.config.env_kwargs == SHORT
    assert run.model.spec == ObsSpec.from_spaces(*_spaces())
    with pytest.raises(CheckpointError, match="no checkpoints/best.pt in"):  # trained with eval.freq=0: no best
        load_scored_run(dreamer_run, device="cpu", checkpoint="best")


def _spaces():
    from shiftgrid.envs.learner_env import make_env

    env = make_env(EMPTY)
    return env.observation_space, env.action_space


def test_its_episodes_are_played_by_the_dreamer_agent_as_shiftgrid_evaluate_plays_it(dreamer_run):
    run = load_scored_run(dreamer_run, device="cpu")
    behaviour = run.behaviour(seed=0)
    torch.manual_seed(0)  # the agent filters its observations with sampled latents: one seeded stream
    played = record_splits(behaviour, EMPTY, "all", episodes=2, env_kwargs=SHORT, n_envs=1, progress=False)["id"]
    agent, _ = load_agent(dreamer_run, device="cpu")  # as shiftgrid evaluate loads it
    torch.manual_seed(0)
    keys = ["image", "direction", "mission"]
    for episode in played:
        state = None
        for t in range(len(episode["action"]) - 1):  # the last step is the end: no action taken from it
            obs = {k: episode[k][t:t + 1] for k in keys}
            action, state = agent.predict(obs, state=state, episode_start=np.array([t == 0]), deterministic=True)
            assert int(action[0]) == int(episode["action"][t]), (t, action, episode["action"][:t + 1])
    assert "most likely actions" in run.describe_behaviour() and "sampled" in run.describe_behaviour(deterministic=False)
    assert not behaviour.noise and behaviour.deterministic and not run.behaviour(0, deterministic=False).deterministic


def test_ppo_trains_in_a_dreamers_dream_and_another_env_or_spec_is_refused(dreamer_run, tmp_path, capsys):
    env = dream_vec_env(str(dreamer_run), EMPTY, None, 2, seed=0, device="cpu", env_kwargs=SHORT)
    obs = env.reset()
    obs, reward, done, infos = env.step(np.array([2, 2]))
    assert env.observation_space["image"].shape == (7, 7, 3) and obs["image"].shape == (2, 7, 7, 3)
    assert reward.shape == (2,) and len(infos) == 2
    ppo = tmp_path / "ppo"
    assert main(["train", "--algo", "ppo", "--env", EMPTY, "--dream", str(dreamer_run), "--dream-anyway", "--steps", "64", "--n-envs", "2",
                 "--device", "cpu", "--run-dir", str(ppo), "--no-progress", "--set", "env_kwargs.max_steps=20",
                 "--set", "hyperparams.n_steps=32", "--set", "hyperparams.batch_size=32", "--set", "hyperparams.n_epochs=1",
                 "--set", "eval.freq=0"]) == 0
    assert RunDir(ppo).latest.is_file()
    capsys.readouterr()
    assert main(["train", "--algo", "ppo", "--env", "shiftgrid/GoTo-v1", "--dream", str(dreamer_run), "--steps", "64",
                 "--run-dir", str(tmp_path / "bad"), "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a dreamer run's rssm/tiny world model of MiniGrid-Empty-5x5-v0, but one of shiftgrid/GoTo-v1 was asked for: " \
           "another environment" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(CheckpointError, match="holds a dreamer run's rssm/tiny world model, which observes .* another observation spec"):
        load_scored_run(dreamer_run, device="cpu", spec=ObsSpec(num_actions=3))


def test_a_checkpoint_without_a_world_model_is_refused_in_one_line(tmp_path):
    file = save_checkpoint(Checkpoint("ppo", TrainConfig(run_dir=str(tmp_path)).to_dict(), {}), tmp_path / "latest.pt")
    with pytest.raises(CheckpointError, match=r"learner 'ppo', not a world model \(train one with shiftgrid wm train, "
                                              r"or a Dreamer with shiftgrid train --algo dreamer\)"):
        load_scored_run(file)

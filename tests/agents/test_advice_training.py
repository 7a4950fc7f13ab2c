"""Training with advice: a tiny advised PPO run trains, its cost is logged, and it is evaluated without advice."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import shiftgrid.scripts.train_cmd as train_cmd
from shiftgrid.agents.evaluation.episodes import run_episodes
from shiftgrid.agents.reports.runs import evaluate_runs
from shiftgrid.agents.run.checkpoint import load_agent
from shiftgrid.agents.run.config import ConfigError, EvalConfig, TargetConfig, TrainConfig
from shiftgrid.agents.run.train import resume_config, train
from shiftgrid.agents.sb3.build import build_model
from shiftgrid.envs.teacher.advice import AdviceConfig
from shiftgrid.envs.errors import UserInputError
from shiftgrid.scripts.cli import UserError, build_parser

STEPS, FADE = 768, 300  # three rollouts of 256 steps; the third is past the fade


@pytest.fixture(scope="module")
def advised_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("advice") / "run"
    # small rooms (3x3 floor, one distractor): the unadvised third rollout wins episodes of its own
    config = TrainConfig(algo="ppo", env="shiftgrid/GoTo-v1", env_kwargs={"size": 5, "num_distractors": 1}, steps=STEPS,
                         n_envs=2, device="cpu", progress=False, run_dir=str(run_dir), hyperparams={"n_steps": 128, "batch_size": 64, "n_epochs": 1},
                         extractor={"channels": 16, "text_dim": 16, "word_dim": 16, "features_dim": 32},
                         eval=EvalConfig(freq=STEPS, episodes=2, splits=["id"], n_envs=1, render=False), log_interval=1,
                         target=TargetConfig(success=0.01, episodes=1),
                         advice=AdviceConfig("action", fade_steps=FADE))
    return train(config), config


class Spy:
    """An agent that records what it is shown and acts like ``agent``."""

    def __init__(self, agent):
        self.agent, self.seen = agent, []
        self.observation_space = agent.model.observation_space

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self.seen.append({k: np.array(v) for k, v in obs.items()})
        return self.agent.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


def scalars(run_dir) -> dict[str, list]:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


@pytest.mark.training
def test_an_advised_run_trains_its_advice_encoder(advised_run):
    result, config = advised_run
    assert result.num_timesteps == STEPS and result.stop_reason is None
    agent, saved = load_agent(result.run_dir / "checkpoints" / "latest.pt", device="cpu")
    assert saved["advice"]["granularity"] == "action"
    assert "advice" in agent.model.observation_space.spaces
    trained = agent.model.policy.features_extractor.advice.gru.weight_ih_l0
    fresh = TrainConfig.from_dict({**config.to_dict(), "run_dir": None})
    init = build_model(fresh, None).policy.features_extractor.advice.gru.weight_ih_l0
    assert not torch.equal(trained, init)  # advice reached the loss: its encoder learned


@pytest.mark.training
def test_the_teachers_cost_is_logged_beside_the_steps(advised_run):
    result, _ = advised_run
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    # the first rollout (256 steps) is advised at every step, the second with probability 1 - 256/300, the third not at all
    assert 200 < cost["utterances"] < 400
    assert cost["utterances"] < cost["advice_tokens"] <= 2 * cost["utterances"]  # action advice: one or two words
    tags = scalars(result.run_dir)
    assert tags["teacher/utterances"][-1].value == cost["utterances"]
    assert tags["teacher/advice_tokens"][-1].value == cost["advice_tokens"]
    assert [e.step for e in tags["teacher/utterances"]] == sorted(e.step for e in tags["teacher/utterances"])
    target = json.loads((result.run_dir / "target.json").read_text())
    assert set(target["teacher"]) == {"utterances", "advice_tokens"} and target["teacher"]["utterances"] <= cost["utterances"]
    # episodes won while the teacher spoke do not meet the target: the first (fully advised) rollout had a success
    assert tags["rollout/success_rate"][0].step == 256 and tags["rollout/success_rate"][0].value > 0
    episodes = [e.value for e in tags["rollout/episodes"]]  # SB3 learners log the count of ended episodes too
    assert episodes == sorted(episodes) and episodes[-1] > episodes[0] > 0
    assert target["steps"] > 256


@pytest.mark.training
def test_evaluation_is_without_advice_and_the_report_says_so(advised_run, tmp_path):
    result, _ = advised_run
    agent, _ = load_agent(result.run_dir, device="cpu")
    spy = Spy(agent)
    run_episodes(spy, "shiftgrid/GoTo-v1", "id", 2, n_envs=1)
    assert spy.seen and all(obs["advice"].shape[-1] > 0 and not obs["advice"].any() for obs in spy.seen)
    assert any(obs["mission"].any() for obs in spy.seen)
    paths = evaluate_runs([result.run_dir], splits=["id"], episodes=2, out=tmp_path / "eval", n_envs=1, device="cpu")
    assert "- advice: evaluated without advice (trained with the oracle teacher's action advice; " \
           "the policy's advice input is all padding)" in paths["md"].read_text()


def test_train_cli_takes_advice_and_its_settings(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["train", "--advice", "direction", "--set", "advice.when=every", "--set", "advice.every=3",
                              "--set", "advice.fade_steps=100000", "--run-dir", str(tmp_path / "r")])
    [(config, resume)] = train_cmd.configs(args)
    assert not resume and config.advice == AdviceConfig("direction", when="every", every=3, fade_steps=100_000)
    bad = parser.parse_args(["train", "--advice", "action", "--set", "advice.when=loudly", "--run-dir", str(tmp_path / "b")])
    with pytest.raises(UserInputError, match="advice.when='loudly' is not valid; valid: always, every, deviation"):
        train_cmd.run(bad)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--advice", "shouting"])
    resume = parser.parse_args(["train", "--resume", str(tmp_path / "r"), "--advice", "action"])
    with pytest.raises(UserError, match="only --steps and --device may be given .*--advice"):
        train_cmd.configs(resume)


def test_no_advice_by_default():
    config = TrainConfig()
    assert not config.advice.enabled and config.to_dict()["advice"]["granularity"] is None
    with pytest.raises(ConfigError, match="unknown config key advice.loud"):
        TrainConfig.from_dict({"advice": {"loud": True}})


@pytest.mark.training
def test_a_resumed_run_continues_the_teachers_totals_and_its_fading(advised_run, tmp_path):
    result, _ = advised_run
    copy = tmp_path / "run"
    shutil.copytree(result.run_dir, copy)
    before = json.loads((copy / "teacher" / "cost.json").read_text())
    config = resume_config(copy, steps=STEPS + 256)
    config.eval.freq = 0
    resumed = train(config, resume=True)
    assert resumed.num_timesteps == STEPS + 256
    # past fade_steps the teacher is silent: the totals carry over unchanged (not restarted from zero)
    assert json.loads((copy / "teacher" / "cost.json").read_text()) == before
    assert scalars(copy)["teacher/utterances"][-1].value == before["utterances"]

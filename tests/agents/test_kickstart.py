"""Kickstarting tensor-ppo from the oracle: the teacher's labels, the loss toward them, its fading, cost and errors."""

import json

import pytest
import torch

import shiftgrid.envs  # noqa: F401
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.train import train
from shiftgrid.agents.training.kickstart import NO_LABEL, OracleLabels, advice_weight
from shiftgrid.envs.teacher.advice import AdviceConfig
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher
from shiftgrid.scripts.cli import main

ENV = "shiftgrid/GoTo-v1"
BANK = 64  # conftest.py's SMALL_BANK


pytestmark = pytest.mark.usefixtures("small_banks")  # GoTo's and DoorKey's banks of BANK levels (conftest.py)


def test_following_the_teachers_labels_completes_every_level_in_its_optimal_steps(small_venv):
    venv = small_venv(ENV, 8)
    labels = OracleLabels(venv, watched=8)
    optimal = venv._info(torch.zeros(8, dtype=torch.bool))["optimal_steps"].clone()
    lengths, success = torch.zeros(8, dtype=torch.int64), torch.zeros(8, dtype=torch.bool)
    ended = torch.zeros(8, dtype=torch.bool)
    while not bool(ended.all()):
        action = labels.label(~ended)
        assert bool((action[~ended] != NO_LABEL).all())
        _, _, terminated, truncated, info = venv.step(torch.where(ended, torch.zeros_like(action), action))
        lengths += (~ended).long()
        success |= info["success"] & ~ended
        ended |= terminated | truncated
    assert bool(success.all()) and lengths.tolist() == optimal.tolist()
    assert labels.labelled == int(lengths.sum())


@pytest.mark.parametrize("env_id", [ENV, "shiftgrid/DoorKey-v1"])
def test_a_reused_minigrid_env_gives_the_label_a_fresh_one_gives(env_id, small_venv):
    venv = small_venv(env_id, 4)
    labels, oracle = OracleLabels(venv, watched=4), OracleTeacher()
    g = torch.Generator().manual_seed(1)
    compared = 0
    for _ in range(40):
        got = labels.label(torch.ones(4, dtype=torch.bool))
        for i in range(4):
            try:
                want = oracle.act(venv.to_minigrid(i))
            except Exception:
                want = NO_LABEL
            assert int(got[i]) == want, (i, int(got[i]), want)
            compared += want != NO_LABEL
        venv.step(torch.randint(0, 7, (4,), generator=g))
    assert compared > 100


def test_the_advice_weight_falls_to_zero_over_fade_steps():
    advice = AdviceConfig("action", protocol="kickstart", weight=2.0, fade_steps=100)
    assert [advice_weight(advice, s) for s in (0, 50, 100, 200)] == [2.0, 1.0, 0.0, 0.0]
    assert advice_weight(AdviceConfig("action"), 0) == 0.0  # advice as observation is no loss


def tiny(tmp_path, steps: int = 4096, **advice) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "tensor-ppo", "env": ENV, "steps": steps, "n_envs": 16, "device": "cpu", "progress": False, "seed": 0,
        "run_dir": str(tmp_path / "run"), "eval": {"freq": 0}, "checkpoint_freq": 2048,
        "advice": {"granularity": "action", "protocol": "kickstart", "watched_envs": 16, **advice},
        "hyperparams": {"n_steps": 16, "batch_size": 64, "n_epochs": 4, "learning_rate": 2e-3}, "engine": {"bank_size": BANK}})


def agreement(learner, venv, steps: int = 30) -> float:
    """How often the learner's greedy action is the oracle's, over the states a random walk visits."""
    labels, g = OracleLabels(venv, watched=venv.num_envs), torch.Generator().manual_seed(5)
    same = total = 0
    obs, _ = venv.reset(seed=100)
    for _ in range(steps):
        want = labels.label(torch.ones(venv.num_envs, dtype=torch.bool))
        got = torch.as_tensor(learner.predict(obs, deterministic=True)[0])
        same += int(((got == want) & (want != NO_LABEL)).sum())
        total += int((want != NO_LABEL).sum())
        obs = venv.step(torch.randint(0, 7, (venv.num_envs,), generator=g))[0]
    return same / total


def test_the_kickstart_loss_pulls_the_policy_toward_the_teachers_actions_and_its_cost_is_kept_on_resume(tmp_path, small_venv):
    seen = []
    config = tiny(tmp_path, weight=5.0)
    result = train(config, hooks=[lambda run: seen.append(run.learner)])
    kicked = agreement(seen[-1], small_venv(ENV, 16))
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert cost["actions_labelled"] >= 0.9 * result.num_timesteps  # every env watched: (almost) every step labelled
    plain = []
    other = TrainConfig.from_dict({**config.to_dict(), "advice": {}, "run_dir": str(tmp_path / "plain")})
    train(other, hooks=[lambda run: plain.append(run.learner)])
    alone = agreement(plain[-1], small_venv(ENV, 16))
    assert kicked > alone + 0.15 and kicked > 0.55, (kicked, alone)  # measured: 0.66 against 0.44
    config.steps = 6144
    train(config, resume=True)
    resumed = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert resumed["actions_labelled"] > cost["actions_labelled"] + 1500  # counted on from the saved total


def test_once_faded_the_teacher_labels_nothing_more(tmp_path):
    seen = []
    result = train(tiny(tmp_path, steps=4096, fade_steps=1024), hooks=[lambda run: seen.append(run.learner)])
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert 0 < cost["actions_labelled"] <= 1024 + 16 * 16  # the rollouts that started before step 1,024 only


FAST = ["--no-progress", "--device", "cpu", "--n-envs", "16", "--set", "hyperparams={n_steps: 16, batch_size: 128, n_epochs: 1}",
        "--set", f"engine.bank_size={BANK}", "--set", "eval={freq: 0, episodes: 2}"]


@pytest.mark.parametrize("args, message", [
    (["--algo", "tensor-ppo", "--env", ENV, "--advice", "subgoal", "--set", "advice.protocol=kickstart"],
     "advice.protocol=kickstart learns toward the teacher's next action: it needs --advice action"),
    (["--algo", "tensor-ppo", "--env", ENV, "--advice", "action", "--set", "advice.protocol=kick"],
     "advice.protocol='kick' is not valid; valid: observation, kickstart, distill"),
    (["--algo", "tensor-ppo", "--env", ENV, "--advice", "action", "--set", "advice.protocol=kickstart", "--set", "advice.weight=0"],
     "advice.weight must be > 0"),
    (["--algo", "tensor-ppo", "--env", ENV, "--advice", "action", "--set", "advice.when=every"],
     "tensor-ppo's teacher speaks at every step of the watched envs (advice.watched_envs); got advice.when='every'"),
    (["--algo", "tensor-ppo", "--env", "MiniGrid-Empty-5x5-v0", "--advice", "action", "--set", "advice.protocol=kickstart"],
     "kickstarting and advice distillation ask the exact oracle, which plans shiftgrid ids' levels"),
    (["--algo", "ppo", "--env", ENV, "--advice", "action", "--set", "advice.protocol=kickstart"],
     "advice.protocol=kickstart is a training signal, not words in the observation: --algo tensor-ppo takes it"),
])
def test_bad_kickstart_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["train", "--steps", "64", "--run-dir", str(tmp_path / "r")] + FAST + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_config_with_kickstart_is_checked_before_any_run():
    with pytest.raises(ConfigError, match="watched_envs"):
        TrainConfig.from_dict({"algo": "tensor-ppo", "env": ENV, "advice": {"granularity": "action", "protocol": "kickstart",
                                                                             "watched_envs": 0}})

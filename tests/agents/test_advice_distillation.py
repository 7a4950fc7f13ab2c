"""Advice as words on tensor-ppo: the teacher's words; distillation (the advised policy that reads them, the
advice-free learner that learns its behaviour, the teacher's cost, fading, resume, errors); and the baseline, a
learner that reads the words itself and is evaluated in silence."""

import json

import pytest
import torch

import shiftgrid.envs  # noqa: F401
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.train import train
from shiftgrid.agents.tensor_ppo.ppo import TensorPPO
from shiftgrid.agents.tensor_ppo.advice_distillation import advised_network, distillation_loss
from shiftgrid.agents.training.kickstart import NO_LABEL, OracleLabels
from shiftgrid.envs.language import tokenize
from shiftgrid.envs.teacher.advice import GRANULARITIES, advice_text
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher
from shiftgrid.envs.wrappers import decode
from shiftgrid.scripts.cli import main

ENV = "shiftgrid/GoTo-v1"
BANK = 64  # conftest.py's SMALL_BANK


pytestmark = pytest.mark.usefixtures("small_banks")  # GoTo's and DoorKey's banks of BANK levels (conftest.py)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_the_words_are_what_the_teacher_says_in_the_minigrid_env_at_the_same_state(granularity, small_venv):
    venv = small_venv("shiftgrid/DoorKey-v1", 4)
    labels, oracle = OracleLabels(venv, watched=3, words=granularity), OracleTeacher()
    g = torch.Generator().manual_seed(2)
    said = 0
    for _ in range(25):
        actions = labels.label(torch.ones(4, dtype=torch.bool))
        assert labels.advice.shape[0] == 3 and int(actions[3]) == NO_LABEL  # the fourth env is not watched
        for i in range(3):
            words = decode(labels.advice[i].tolist())
            if int(actions[i]) == NO_LABEL:
                assert words == []  # no plan: silence
                continue
            assert words == tokenize(advice_text(granularity, venv.to_minigrid(i), oracle))
            said += 1
        venv.step(torch.randint(0, 7, (4,), generator=g))
    assert said > 40 and labels.tokens > said  # every utterance has a word or more


def test_the_advised_network_reads_the_advice_and_the_learners_does_not():
    advised = advised_network({}, hidden=16)
    obs = {"image": torch.zeros(2, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, dtype=torch.int64),
           "mission": torch.ones(2, 5, dtype=torch.int64), "advice": torch.zeros(2, 6, dtype=torch.int64)}
    obs["advice"][1, :2] = torch.tensor([5, 9])
    features = advised.encoder(obs)
    assert not torch.allclose(features[0], features[1])  # the same observation, other words: other features
    with pytest.raises(KeyError):
        advised.encoder({k: v for k, v in obs.items() if k != "advice"})


def test_the_distillation_loss_is_the_cross_entropy_toward_the_advised_policy_and_trains_only_the_learner():
    student = torch.zeros(3, 7, requires_grad=True)
    advised = torch.randn(3, 7, requires_grad=True)
    loss = distillation_loss(student, advised)
    want = -(torch.softmax(advised, 1) * torch.log_softmax(student, 1)).sum(1).mean()
    assert torch.isclose(loss, want)
    loss.backward()
    assert advised.grad is None and student.grad is not None and float(student.grad.abs().sum()) > 0


def tiny(tmp_path, steps: int = 4096, name: str = "run", **advice) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "tensor-ppo", "env": ENV, "steps": steps, "n_envs": 16, "device": "cpu", "progress": False, "seed": 0,
        "run_dir": str(tmp_path / name), "eval": {"freq": 0}, "checkpoint_freq": 2048,
        "advice": {"granularity": "action", "protocol": "distill", "watched_envs": 8, **advice},
        "hyperparams": {"n_steps": 16, "batch_size": 64, "n_epochs": 4, "learning_rate": 2e-3}, "engine": {"bank_size": BANK}})


def agreement(student, advised, venv, steps: int = 30) -> float:
    """How often ``student(obs)``'s greedy action is ``advised(obs with the teacher's words)``'s, over the states a
    random walk visits."""
    labels, g = OracleLabels(venv, watched=venv.num_envs, words="action"), torch.Generator().manual_seed(5)
    same = total = 0
    obs, _ = venv.reset(seed=100)
    with torch.no_grad():
        for _ in range(steps):
            labels.label(torch.ones(venv.num_envs, dtype=torch.bool))
            want = advised({**obs, "advice": labels.advice})[0].argmax(1)
            same += int((student(obs)[0].argmax(1) == want).sum())
            total += venv.num_envs
            obs = venv.step(torch.randint(0, 7, (venv.num_envs,), generator=g))[0]
    return same / total


def test_the_learner_learns_the_advised_policys_behaviour_without_its_words(tmp_path, small_venv):
    seen = []
    config = tiny(tmp_path, weight=5.0)
    result = train(config, hooks=[lambda run: seen.append(run.learner)])
    learner = seen[-1]
    taught = agreement(learner.policy, learner.advised, small_venv(ENV, 16))
    plain = []
    other = TrainConfig.from_dict({**config.to_dict(), "advice": {}, "run_dir": str(tmp_path / "plain")})
    train(other, hooks=[lambda run: plain.append(run.learner)])
    alone = agreement(plain[-1].policy, learner.advised, small_venv(ENV, 16))
    assert taught > alone + 0.15, (taught, alone)  # measured: 0.38 against 0.12
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert 0.4 * result.num_timesteps <= cost["utterances"] <= 0.5 * result.num_timesteps + 64  # 8 envs of 16 advised
    assert cost["advice_tokens"] >= cost["utterances"]


def test_the_advised_policys_episodes_are_not_the_learners(tmp_path):
    counted = []
    half = train(tiny(tmp_path, steps=2048, name="half"), hooks=[lambda run: counted.append(run.state.episodes)])
    train(tiny(tmp_path, steps=2048, name="all", watched_envs=16), hooks=[lambda run: counted.append(-run.state.episodes)])
    assert half.num_timesteps >= 2048 and max(counted) > 0  # the learner's own episodes (its 8 envs) are counted
    assert min(counted) == 0  # every env advised: the learner played no episode


def test_resume_keeps_the_advised_policy_and_the_teachers_cost(tmp_path):
    config = tiny(tmp_path, steps=2048, granularity="subgoal")
    result = train(config)
    before = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    saved = torch.load(result.run_dir / "checkpoints" / "latest.pt", weights_only=False)
    assert set(saved["state"]) >= {"policy", "advised", "optimizer"}
    config.steps = 4096
    train(config, resume=True)
    after = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert after["utterances"] > before["utterances"] + 500 and after["advice_tokens"] > before["advice_tokens"]
    loaded = TensorPPO(config, training=False)
    loaded.load_state_dict(saved["state"])
    assert all(torch.equal(loaded.advised.state_dict()[name], value) for name, value in saved["state"]["advised"].items())


def test_minibatches_without_an_advised_step_learn_by_ppo_alone(tmp_path):
    config = tiny(tmp_path, steps=1024, watched_envs=1)
    config.hyperparams["batch_size"] = 8  # most minibatches hold no step of the one advised env
    result = train(config)
    assert result.num_timesteps >= 1024


def test_once_faded_the_advised_policy_stops_and_the_teacher_says_nothing_more(tmp_path):
    result = train(tiny(tmp_path, steps=4096, fade_steps=1024))
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert 0 < cost["utterances"] <= (1024 + 16 * 16) // 2  # half the envs, in the rollouts begun before step 1,024


def test_a_distilled_run_is_evaluated_without_its_teacher(tmp_path):
    result = train(tiny(tmp_path, steps=1024, granularity="direction"))
    out = tmp_path / "report"
    assert main(["evaluate", str(result.run_dir), "--episodes", "4", "--splits", "id", "--out", str(out),
                 "--reference-episodes", "2", "--device", "cpu"]) == 0
    assert (out / "results.md").exists()


FAST = ["--no-progress", "--device", "cpu", "--n-envs", "16", "--set", "hyperparams={n_steps: 16, batch_size: 128, n_epochs: 1}",
        "--set", f"engine.bank_size={BANK}", "--set", "eval={freq: 0, episodes: 2}"]


@pytest.mark.parametrize("args, message", [
    (["--set", "hyperparams.network=babyai"], "advice.protocol=distill reads the words with a feedforward cheap network"),
    (["--set", "hyperparams.memory=16"], "advice.protocol=distill reads the words with a feedforward cheap network"),
    (["--set", "advice.protocol=observation", "--set", "hyperparams.memory=16"],
     "advice.protocol=observation reads the words with a feedforward cheap network"),
    (["--set", "advice.budget=3"], "tensor-ppo's teacher speaks at every step of the watched envs"),
    (["--env", "MiniGrid-Empty-5x5-v0"], "kickstarting and advice distillation ask the exact oracle"),
])
def test_bad_distillation_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    base = ["train", "--steps", "64", "--run-dir", str(tmp_path / "r"), "--algo", "tensor-ppo", "--env", ENV,
            "--advice", "subgoal", "--set", "advice.protocol=distill"]
    assert main(base + FAST + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_learner_reading_the_words_is_advised_in_the_watched_envs_and_acts_in_silence_without_its_teacher(
        tmp_path, small_venv):
    seen = []
    config = tiny(tmp_path, steps=2048, protocol="observation", watched_envs=8)
    result = train(config, hooks=[lambda run: seen.append((run.learner, [e.advised for e in run.recent]))])
    learner = seen[-1][0]
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert 0.4 * result.num_timesteps <= cost["utterances"] <= 0.5 * result.num_timesteps + 64  # 8 envs of 16 advised
    advised = [flag for _, flags in seen for flag in flags]
    assert any(advised) and not all(advised)  # episodes the teacher spoke in are marked (they do not count toward the target)
    obs = {k: v for k, v in small_venv(ENV, 6).reset(seed=1)[0].items()}
    silent = {**obs, "advice": torch.zeros(6, 40, dtype=torch.int64)}
    with torch.no_grad():
        want = learner.policy(silent)[0].argmax(1)
        spoken = learner.policy({**silent, "advice": torch.full((6, 3), 5)})[0]
    assert torch.equal(torch.as_tensor(learner.predict({k: v.numpy() for k, v in obs.items()}, deterministic=True)[0]), want)
    assert not torch.allclose(spoken, learner.policy(silent)[0].detach())  # the words do reach the policy


def test_advice_read_by_the_learner_fades_out(tmp_path):
    result = train(tiny(tmp_path, steps=4096, protocol="observation", watched_envs=16, fade_steps=1024))
    cost = json.loads((result.run_dir / "teacher" / "cost.json").read_text())
    assert 0 < cost["utterances"] < 0.75 * (1024 + 16 * 16)  # spoken with a probability falling to 0 by step 1,024

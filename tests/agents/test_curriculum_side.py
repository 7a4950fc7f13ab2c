"""A curriculum run's side estimates (counted, kept apart from training) and its resume (the restored teacher chooses first)."""

import json
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import shiftgrid.envs  # noqa: F401
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import resume_config, train
from shiftgrid.agents.training.curriculum import CurriculumExtension, curriculum_vec
from shiftgrid.envs.teacher.curriculum import CurriculumError, LevelSpace, make_curriculum
from shiftgrid.envs.teacher.curriculum.log import read_levels
from shiftgrid.scripts.cli import main

ENV, SHORT = "shiftgrid/DoorKey-v1", {"max_steps": 40}


def tiny(run_dir, steps, options=None, **extra) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "ppo", "env": ENV, "steps": steps, "n_envs": 2, "device": "cpu", "progress": False, "run_dir": str(run_dir),
        "eval": {"freq": 0, "n_envs": 2}, "teacher": {"name": "uniform", "options": options or {}}, "env_kwargs": SHORT,
        "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "extractor": {"cell_dim": 8, "channels": 16, "text_dim": 16, "word_dim": 16, "features_dim": 32}, **extra})


def watch(seen):
    """A hook keeping, per number of PPO updates, the policy's first parameter and the training env's steps then."""
    def hook(run):
        model = run.learner.model
        seen.setdefault(model._n_updates, (next(model.policy.parameters()).detach().clone(), run.learner.env.driver.steps))
        seen["driver"] = run.learner.env.driver
    return hook


@pytest.mark.training
def test_side_estimates_are_counted_and_never_touch_training(tmp_path):
    plain, side = {}, {}
    train(tiny(tmp_path / "plain", 768, {"side_every": 0}), hooks=[watch(plain)])
    options = {"side_every": 128, "side_levels": 3, "side_episodes": 2}
    result = train(tiny(tmp_path / "side", 768, options), hooks=[watch(side)])
    run = RunDir(result.run_dir)
    records = [json.loads(line) for line in (run.teacher / "side.jsonl").read_text().splitlines()]
    assert len(records) >= 2 and all(0.0 <= r["share"] <= 1.0 and r["steps"] > 0 for r in records)
    assert all(len(r["sampled"]) == 3 and all(lv["episodes"] == 2 for lv in r["levels"]) for r in records)
    played = {(r["level_seed"], r["level_hash"]) for r in read_levels(run.teacher / "levels.jsonl")}
    assert all((lv["level_seed"], lv["level_hash"]) in played for r in records for lv in r["levels"])  # chosen levels only
    side_steps = sum(r["steps"] for r in records)
    driver = side["driver"]
    # every step is counted: the learner's clock is the training envs' steps plus the side estimates'
    assert result.num_timesteps == driver.steps + side_steps and driver.steps < plain["driver"].steps
    cost = json.loads((run.teacher / "cost.json").read_text())
    assert cost["side_steps"] == side_steps and cost["levels_chosen"] == driver.teacher.chosen
    # the side episodes are not the training envs' (every training reset is a choice the driver handed out) ...
    assert sum(driver.played) + 2 == driver.teacher.chosen
    # ... nor the learner's data: the same updates from the same levels as without side estimates
    common = [k for k in side if k in plain and k != "driver"]
    assert len(common) >= 3  # updates 0, 1, 2 (the side run spends part of its budget on the side)
    for k in common:
        assert torch.equal(side[k][0], plain[k][0]) and side[k][1] == plain[k][1]
    side_levels = read_levels(run.teacher / "levels.jsonl")
    assert side_levels == read_levels(tmp_path / "plain" / "teacher" / "levels.jsonl")[:len(side_levels)]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run.tb))
    acc.Reload()
    assert {"teacher/learnable_share_side", "teacher/side_steps"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("teacher/side_steps")[-1].value == side_steps
    resumed = {}  # a resumed run continues the count
    result = train(resume_config(run.root, steps=1152), resume=True, hooks=[watch(resumed)])
    cost = json.loads((run.teacher / "cost.json").read_text())
    assert cost["side_steps"] > side_steps and result.num_timesteps == resumed["driver"].steps + cost["side_steps"]


@pytest.mark.parametrize("steps", [400, 640])  # reached by a rollout, by an estimate
def test_side_steps_count_in_the_run_s_steps_and_it_stops_at_them(tmp_path, steps):
    options = {"side_every": 128, "side_levels": 3, "side_episodes": 2}
    result = train(tiny(tmp_path / "run", steps, options))
    records = [json.loads(line) for line in (RunDir(result.run_dir).teacher / "side.jsonl").read_text().splitlines()]
    last = records[-1]
    if last["step"] == result.num_timesteps:  # an estimate reached the steps: the run stopped right after it
        assert last["step"] - last["steps"] < steps <= result.num_timesteps and result.stop_reason == "steps"
    else:  # a rollout (128 steps) reached them: it started short of them
        assert result.num_timesteps - 128 < steps <= result.num_timesteps and result.stop_reason is None
    assert (RunDir(result.run_dir).latest).is_file()


class TorchRandom:
    """Uniform random actions drawn from torch's generator (as a learner's sampled actions are)."""

    num_timesteps = 0

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return torch.randint(7, (len(obs["image"]),)).numpy(), state


def side_setup(tmp_path):
    config = tiny(tmp_path / "run", 1000, {"side_every": 1, "side_levels": 2, "side_episodes": 3})
    env = curriculum_vec(config, log=None)
    env.reset()
    for _ in range(30):
        env.step(np.full(2, 2))
    run = SimpleNamespace(learner=TorchRandom(), run_dir=RunDir(tmp_path / "run"), num_timesteps=0)
    run.take_steps = lambda n: setattr(run, "num_timesteps", run.num_timesteps + n)
    return CurriculumExtension(env, config), env, run


def test_a_side_estimate_plays_the_chosen_levels_themselves(tmp_path):
    ext, env, run = side_setup(tmp_path)
    ext.estimate(run)
    record = json.loads((tmp_path / "run" / "teacher" / "side.jsonl").read_text())
    assert record["steps"] == run.num_timesteps == ext.side_steps > 0
    assert record["share"] == ext.side_share and 1 <= len(record["levels"]) <= 2
    env.driver.recent_levels.append((env.driver.recent_levels[-1][0], "not-its-hash"))
    env.driver.recent_levels.extend([env.driver.recent_levels[-1]] * 200)  # every sample is the wrong level
    with pytest.raises(CurriculumError, match="not the training level not-its-hash"):
        ext.estimate(run)
    env.close()


def test_a_side_estimate_does_not_move_the_learners_generator(tmp_path):
    ext, env, run = side_setup(tmp_path)
    torch.manual_seed(3)
    ext.estimate(run)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(1))
    env.close()


@pytest.mark.parametrize("args, message", [
    (["--teacher-set", "side_every=-5"], "teacher option side_every must be an integer >= 0, got -5"),
    (["--teacher-set", "side_levels=two"], "teacher option side_levels must be an integer >= 1, got 'two'"),
    (["--teacher-set", "side_episode=2"], "unknown option 'side_episode' of teacher 'uniform'; valid: side_every, side_levels, side_episodes, tier"),
])
def test_bad_side_settings_are_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["train", "--steps", "64", "--run-dir", str(tmp_path / "r"), "--no-progress", "--teacher", "uniform"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def dreamer(run_dir, steps) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "dreamer", "env": ENV, "steps": steps, "n_envs": 2, "device": "cpu", "progress": False, "run_dir": str(run_dir),
        "eval": {"freq": 0}, "teacher": {"name": "uniform"}, "env_kwargs": SHORT,
        "hyperparams": {"preset": "tiny", "batch_size": 4, "seq_len": 4, "prefill": 10_000, "replay_capacity": 1000,
                        "actor_critic": {"hidden": 16, "layers": 1}}})


@pytest.mark.parametrize("make, first, total", [(tiny, 512, 768), (dreamer, 64, 192)], ids=["ppo", "dreamer"])
def test_a_resumed_run_plays_the_restored_teachers_levels_first(tmp_path, make, first, total):
    train(make(tmp_path / "whole", total))
    whole = read_levels(tmp_path / "whole" / "teacher" / "levels.jsonl")
    train(make(tmp_path / "split", first))
    before = read_levels(tmp_path / "split" / "teacher" / "levels.jsonl")
    chosen = json.loads((tmp_path / "split" / "teacher" / "curriculum.json").read_text())["chosen"]
    train(resume_config(tmp_path / "split", steps=total), resume=True)
    after = read_levels(tmp_path / "split" / "teacher" / "levels.jsonl")[len(before):]
    ended = json.loads((tmp_path / "split" / "teacher" / "curriculum.json").read_text())["chosen"]
    for i in range(2):  # each sub-env first plays the level the teacher had queued for it, as the whole run did
        k = sum(r["sub_env"] == i for r in before)
        queued = next(r for r in whole if r["sub_env"] == i and r["choice"] == k)
        resumed = next(r for r in after if r["sub_env"] == i)
        assert (resumed["requested_seed"], resumed["level_hash"]) == (queued["requested_seed"], queued["level_hash"])
        assert resumed["step"] == first and resumed["choice"] == 0  # the level log's clock continues
    space = LevelSpace.of_env(gym.make(ENV, **SHORT))
    teacher = make_curriculum("uniform", space, seed=0)
    draws = [teacher.choose(0).level_seed for _ in range(ended)]
    later = [r["requested_seed"] for r in after if r is not next(x for x in after if x["sub_env"] == r["sub_env"])]
    assert later and set(later) <= set(draws[chosen:])  # then the restored teacher's next choices, not a fresh one's


def test_a_dreamer_run_counts_its_side_estimates_too(tmp_path):
    config = dreamer(tmp_path / "run", 160)
    config.teacher.options = {"side_every": 32, "side_levels": 1, "side_episodes": 1}
    config.hyperparams.update({"prefill": 32, "train_ratio": 1.0})
    seen = []
    result = train(config, hooks=[lambda run: seen.append(run.learner.env.driver)])
    records = [json.loads(line) for line in (tmp_path / "run" / "teacher" / "side.jsonl").read_text().splitlines()]
    side_steps = sum(r["steps"] for r in records)
    assert records and result.num_timesteps == seen[-1].steps + side_steps
    assert json.loads((tmp_path / "run" / "teacher" / "cost.json").read_text())["side_steps"] == side_steps


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_restored_driver_hands_its_queued_levels_out_before_any_reset(kind):
    from shiftgrid.envs.teacher.curriculum.vector import curriculum_vector_env

    make, space = (lambda: gym.make(ENV, **SHORT)), LevelSpace.of_env(gym.make(ENV, **SHORT))
    first = curriculum_vector_env(make, 2, make_curriculum("learnability", space, {"min_levels": 1}, seed=0), kind)
    first.reset(seed=0)
    for _ in range(45):  # each sub-env ends an episode: the teacher scores its level
        first.step(np.full(2, 2))
    state, queued = json.loads(json.dumps(first.driver.state_dict())), [q[0].level_seed for q in first.driver.pending]
    first.close()
    again = curriculum_vector_env(make, 2, make_curriculum("learnability", space, {"min_levels": 1}, seed=0), kind)
    again.driver.load_state_dict(state)
    _, infos = again.reset(seed=1)
    assert list(infos["curriculum_requested"]) == queued and again.driver.teacher.chosen == state["chosen"] + 2
    assert again.driver.steps == 90 and again.driver.teacher.buffer == state["buffer"] and len(state["buffer"]) == 2
    with pytest.raises(CurriculumError, match="restored before its vector env's first reset"):
        again.driver.load_state_dict(state)
    again.close()


def test_a_resume_from_a_broken_teacher_state_is_a_checkpoint_error_naming_the_file(tmp_path):
    from shiftgrid.agents.run.checkpoint import CheckpointError

    train(tiny(tmp_path / "run", 128, {"side_every": 0}))
    state_file = tmp_path / "run" / "teacher" / "curriculum.json"
    state = json.loads(state_file.read_text())
    state["driver"]["pending"].append([])  # queues for 3 sub-envs; the run has 2
    state_file.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=r"curriculum\.json.*3 sub-envs; this vector env has 2"):
        train(resume_config(tmp_path / "run", steps=256), resume=True)
    state_file.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"curriculum\.json"):
        train(resume_config(tmp_path / "run", steps=256), resume=True)


def test_a_resumed_run_reports_the_restored_teachers_cost_before_its_first_update(tmp_path):
    train(dreamer(tmp_path / "run", 64))  # prefill: no update, so no on_update in either session
    saved = json.loads((tmp_path / "run" / "teacher" / "cost.json").read_text())
    seen = []
    train(resume_config(tmp_path / "run", steps=128), resume=True, hooks=[lambda run: seen.append(dict(run.state.teacher))])
    assert seen[0] == saved and saved["levels_chosen"] > 0 and saved["side_steps"] == 0

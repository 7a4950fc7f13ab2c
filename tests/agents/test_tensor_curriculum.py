"""Curricula on the tensor engine: every reset plays the teacher's level, scores reach PLR, resume, uniform = plain, CLI."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

import shiftgrid.envs  # noqa: F401
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.train import train
from shiftgrid.agents.training.tensor_curriculum import CurriculumTensorEnv, curriculum_tensor_env
from shiftgrid.envs.engine.vector import make_tensor_vec
from shiftgrid.envs.teacher.curriculum import Curriculum, CurriculumError, Learnability, LevelSpace, make_curriculum
from shiftgrid.envs.teacher.curriculum.log import LevelLog, read_levels
from shiftgrid.scripts.cli import main

ENV = "shiftgrid/GoTo-v1"
MAX_STEPS = 8  # random actions end an episode every few steps; levels that need more are not played
BANK = 64


@pytest.fixture(autouse=True, scope="module")
def bank_cache(tmp_path_factory):
    """The bank these tests use, built once in a folder of their own (not the user's cache)."""
    from shiftgrid.envs.engine.bank import build_bank

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIFTGRID_CACHE", str(tmp_path_factory.mktemp("cache")))
        build_bank(ENV, "train", BANK, workers=1, progress=False)
        yield


def replaying(space: LevelSpace) -> Curriculum:
    """A teacher that replays levels it has seen played (scored from outcomes: no learner needed) about half the time."""
    return make_curriculum("learnability", space, {"min_levels": 1, "replay_prob": 0.5}, seed=0)


class Listening(Learnability):
    """A replaying teacher that also keeps the scores the learner gives it."""

    needs = ("success", "advantages")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_levels=1, replay_prob=0.5, **kwargs)
        self.heard: list = []

    def observe_scores(self, scores):
        self.heard += list(scores)


def engine(n_envs: int, max_steps: int = MAX_STEPS):
    return make_tensor_vec(ENV, n_envs, bank_size=BANK, max_steps=max_steps, seed=0)


def split_space() -> LevelSpace:
    return LevelSpace.of_env(gym.make(ENV, max_steps=MAX_STEPS))


def bank_space(venv) -> LevelSpace:
    pool = venv.store.pool.numpy()
    return split_space().of_bank(venv.store.arrays["seed"].numpy()[pool])


def random_steps(env, steps: int, seed: int = 0):
    """Step ``env`` with random actions; yields, as they were before each step: each env's level (store row), whether
    it acts (False: the step resets it), whether its level is a replay."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        before = env.engine.state["level"].clone(), torch.as_tensor(~env.ending), torch.as_tensor(env.replayed.copy())
        env.step(torch.as_tensor(rng.integers(0, 7, env.num_envs)))
        yield before


@pytest.mark.parametrize("where", ["bank", "split"])
def test_every_reset_plays_the_teachers_level_as_the_minigrid_env_plays_it(where, tmp_path):
    """New levels from the bank, or from the whole split (then made by the generator and added to the store)."""
    venv = engine(8)
    space = bank_space(venv) if where == "bank" else split_space()
    env = CurriculumTensorEnv(venv, replaying(space), LevelLog(tmp_path / "levels.jsonl"))
    obs, infos = env.reset()
    single = gym.make(ENV, max_steps=MAX_STEPS)
    for i, info in enumerate(infos):  # the first observation is the minigrid env's on the chosen level
        o, i_info = single.reset(options={"level_seed": info["curriculum_requested"]})
        assert (obs["image"][i].numpy() == o["image"]).all() and i_info["level_hash"] == info["level_hash"]
    stored = len(venv.store)
    list(random_steps(env, 120))
    env.close()
    records = read_levels(tmp_path / "levels.jsonl")
    assert len(records) == sum(env.driver.played) == int(env.resets.sum()) > 8 * 5
    for i in range(8):
        assert [r["choice"] for r in records if r["sub_env"] == i] == list(range(int(env.resets[i])))
    first: dict[int, str] = {}
    for r in records:  # each level is the one reset(options={"level_seed": requested}) plays in the minigrid env
        _, info = single.reset(options={"level_seed": r["requested_seed"]})
        assert (info["level_seed"], info["level_hash"]) == (r["level_seed"], r["level_hash"])
        if r["replayed"]:
            assert r["level_hash"] == first[r["level_seed"]]
        first.setdefault(r["level_seed"], r["level_hash"])
    assert sum(r["replayed"] for r in records) >= 10
    if where == "bank":  # every new level was a bank level that uniform draws could have drawn
        assert {r["level_seed"] for r in records} <= set(space.bank_seeds.tolist()) and len(venv.store) == stored
    else:  # levels outside the bank came from the generator into the store
        assert len(venv.store) > stored


def test_a_reset_that_bypasses_the_teacher_fails_loudly():
    venv = engine(4)
    env = CurriculumTensorEnv(venv, replaying(bank_space(venv)))
    env.reset()
    queued = [q[0].row for q in env.queues]
    other = [next(r for r in venv.store.pool.tolist() if r != row) for row in queued]
    venv.set_next_levels(torch.tensor(other))  # someone else names the next levels
    with pytest.raises(CurriculumError, match="bypassed the teacher"):
        list(random_steps(env, 60))
    env = CurriculumTensorEnv(engine(4), replaying(bank_space(venv)))
    env.reset()
    for q in env.queues:
        q.clear()
    env.venv.set_next_levels(torch.full((4,), -1))  # nothing chosen: the engine would draw uniformly
    with pytest.raises(CurriculumError, match="no level assigned"):
        list(random_steps(env, 60))


def test_the_learner_gives_each_level_segment_its_advantages_and_plr_robust_learns_on_replays_only():
    venv = engine(6)
    teacher = Listening(bank_space(venv), seed=0)
    env = CurriculumTensorEnv(venv, teacher)
    env.scored = True
    env.reset()
    T, N = 40, 6
    before = list(random_steps(env, T))
    levels, valid, _ = (torch.stack(x) for x in zip(*before))
    code = torch.arange(T * N, dtype=torch.float32).reshape(T, N) + 1  # each step's advantage names its (t, env)
    assert torch.equal(env.after_rollout(code, valid), valid)
    seen = set()
    for seed, level_hash, knowledge in teacher.heard:
        where = [divmod(int(a) - 1, N) for a in knowledge["advantages"]]
        envs = {e for _, e in where}
        assert len(envs) == 1 and all(valid[t, e] for t, e in where)
        assert all(int(venv.store.arrays["seed"][levels[t, e]]) == seed for t, e in where)
        seen |= set(where)
    assert seen == {(t, e) for t in range(T) for e in range(N) if valid[t, e]}  # every acted step, once
    assert len(teacher.heard) > N  # episodes ended and others began within the rollout
    with pytest.raises(CurriculumError, match="recorded 0"):
        env.after_rollout(code, valid)  # the rollout was handed over already

    robust = make_curriculum("plr-robust", bank_space(venv), {"min_levels": 1, "replay_prob": 0.5}, seed=0)
    env = CurriculumTensorEnv(engine(6), robust)
    env.scored = True
    env.reset()
    for rollout in range(2):  # the first rollout's scores fill the buffer the second one replays from
        _, acting, replayed = (torch.stack(x) for x in zip(*random_steps(env, T, seed=rollout)))
        mask = env.after_rollout(torch.ones(T, N), acting)
    assert torch.equal(mask, acting & replayed) and 0 < int(mask.sum()) < int(acting.sum())
    assert robust.buffer and max(robust.stats[s].score for s in robust.buffer) > 0


def test_uniform_over_the_bank_plays_the_levels_plain_training_draws():
    """Plain engine resets draw uniformly from the bank's playable levels; so does the uniform teacher."""
    n, steps, short = 32, 300, 4
    plain = engine(n, short)
    plain.reset()
    rng = np.random.default_rng(1)
    drawn, ending = [], torch.zeros(n, dtype=torch.bool)
    for _ in range(steps):
        _, _, term, trunc, info = plain.step(torch.as_tensor(rng.integers(0, 7, n)))
        drawn += info["level_index"][ending].tolist()
        ending = term | trunc
    venv = engine(n, short)
    env = curriculum_tensor_env(TrainConfig.from_dict({"env": ENV, "env_kwargs": {"max_steps": short},
                                                       "teacher": {"name": "uniform"}}), venv, log=None)
    env.reset()
    chosen = []
    for _, acting, _ in random_steps(env, steps, seed=1):
        after = env.engine.state["level"]
        chosen += after[~acting].tolist()
    pool = sorted(plain.store.pool.tolist())
    assert len(pool) < BANK  # some bank levels need more than 4 steps: neither draws them
    for rows in (drawn, chosen):
        assert len(rows) > 20 * len(pool) and set(rows) == set(pool), (len(rows), len(pool))
        counts = np.bincount(np.searchsorted(pool, rows), minlength=len(pool))
        assert chisquare(counts).pvalue > 1e-4


def tiny(tmp_path, teacher, **extra) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "tensor-ppo", "env": ENV, "steps": 2048, "n_envs": 16, "device": "cpu", "progress": False,
        "run_dir": str(tmp_path / "run"), "eval": {"freq": 0}, "teacher": teacher, "env_kwargs": {"max_steps": 20},
        "hyperparams": {"n_steps": 16, "batch_size": 128, "n_epochs": 1}, "engine": {"bank_size": BANK},
        "checkpoint_freq": 1024, **extra})


def test_tensor_ppo_scores_levels_for_plr_and_resumes_with_the_teachers_queued_levels(tmp_path):
    seen = []
    config = tiny(tmp_path, {"name": "plr", "options": {"min_levels": 2, "side_every": 0}})
    result = train(config, hooks=[lambda run: seen.append(run.learner.env)])
    teacher = seen[-1].teacher
    assert teacher.buffer and max(teacher.stats[s].score for s in teacher.buffer) > 0  # scored from GAE advantages
    log = result.run_dir / "teacher" / "levels.jsonl"
    before = read_levels(log)
    assert any(r["replayed"] for r in before) and len(before) == sum(seen[-1].driver.played)
    saved = json.loads((result.run_dir / "teacher" / "curriculum.json").read_text())
    queued = [q[0][0] for q in saved["driver"]["pending"]]
    config.steps = 3072
    resumed = []
    result = train(config, resume=True, hooks=[lambda run: resumed.append(run.learner.env)])
    assert result.num_timesteps >= 3072 and set(saved["buffer"]) <= set(resumed[-1].teacher.stats)
    assert resumed[-1].teacher.chosen > saved["chosen"]
    after = read_levels(log)[len(before):]
    firsts = {r["sub_env"]: r["requested_seed"] for r in after if r["choice"] == 0}
    assert [firsts[i] for i in range(16)] == queued  # the first resets after resuming play the queued levels


def test_plr_robust_does_not_update_the_tensor_ppo_policy_on_new_levels(tmp_path):
    seen = []
    config = tiny(tmp_path, {"name": "plr-robust", "options": {"min_levels": 128, "side_every": 0}})  # never replays
    train(config, hooks=[lambda run: seen.append(run.learner)])
    assert seen[-1].n_updates == 0 and seen[-1].num_timesteps >= 2048


def test_a_scoring_teacher_stops_a_learner_that_gives_no_advantages():
    venv = engine(2)
    env = CurriculumTensorEnv(venv, make_curriculum("plr", bank_space(venv), seed=0))
    env.reset()
    with pytest.raises(ConfigError, match="advantages"):
        env.step(torch.zeros(2, dtype=torch.int64))


FAST = ["--no-progress", "--device", "cpu", "--n-envs", "16", "--set", "hyperparams={n_steps: 16, batch_size: 128, n_epochs: 1}",
        "--set", f"engine.bank_size={BANK}", "--set", "eval={freq: 0, episodes: 2}"]


def test_tensor_ppo_trains_with_a_teacher_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--algo", "tensor-ppo", "--env", ENV, "--teacher", "plr", "--teacher-set", "side_every=1500",
                 "--steps", "3000", "--run-dir", str(run)] + FAST) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run}: ") and " steps " in out and " SPS" in out  # the closing line of every learner
    assert read_levels(run / "teacher" / "levels.jsonl") and (run / "teacher" / "side.jsonl").is_file()
    assert json.loads((run / "teacher" / "curriculum.json").read_text())["teacher"] == "PLR"
    assert json.loads((run / "teacher" / "cost.json").read_text())["levels_chosen"] > 16
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"teacher/unique_levels", "teacher/replay_share", "teacher/learnable_share_side", "teacher/side_steps"} <= tags


@pytest.mark.parametrize("args, message", [
    (["--env", ENV, "--teacher", "plrr"], "unknown teacher 'plrr'; valid: uniform, tscl, plr"),
    (["--env", "MiniGrid-Empty-5x5-v0", "--teacher", "uniform"], "curricula need a shiftgrid environment"),
])
def test_bad_teacher_input_with_tensor_ppo_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["train", "--algo", "tensor-ppo", "--steps", "64", "--run-dir", str(tmp_path / "r")] + FAST + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_factor_group_the_bank_lacks_gets_levels_from_the_whole_split():
    """tscl asks for a level of a group: from the bank when it has one, else from the split (then the generator)."""
    space = LevelSpace.of_env(gym.make("shiftgrid/DoorKey-v1"))
    lo, _ = space.seed_range
    by = ("size",)
    small = [s for s in range(lo, lo + 400) if space.group_of(s, by) == (space.varied["size"][0],)]
    bank = space.of_bank(small)
    rng = np.random.default_rng(0)
    assert bank.seed_in_group((space.varied["size"][0],), by, rng) in small
    other = (space.varied["size"][-1],)
    seed = bank.seed_in_group(other, by, rng)
    assert seed not in small and space.group_of(seed, by) == other and space.contains(seed)
    with pytest.raises(CurriculumError, match="inside the training range"):
        space.of_bank([lo - 1])

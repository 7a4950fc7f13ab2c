"""Curricula in training: every reset of every sub-env asks the teacher, in SB3's and gymnasium's vector envs."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import shiftgrid.envs  # noqa: F401
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.train import train
from shiftgrid.agents.training.curriculum import curriculum_vec, keep_replayed, segments
from shiftgrid.envs.learner_env import make_env
from shiftgrid.envs.teacher.curriculum import Curriculum, CurriculumError, LevelChoice, LevelSpace
from shiftgrid.envs.teacher.curriculum.log import LevelLog, read_levels
from shiftgrid.envs.teacher.curriculum.vector import curriculum_vector_env
from shiftgrid.envs.teacher.curriculum.wrapper import CurriculumEnv
from shiftgrid.scripts.cli import main

ENV = "shiftgrid/GoTo-v1"
SHORT = {"max_steps": 6}  # random actions end an episode every few steps


class EveryOther(Curriculum):
    """A test teacher: every second choice replays a level already played, the others are new."""

    def next_level(self, sub_env: int) -> LevelChoice:
        if self.chosen % 2 and self.stats:
            seeds = sorted(self.stats)
            return LevelChoice(seeds[int(self.rng.integers(len(seeds)))], replayed=True)
        return self.new_level()


def space() -> LevelSpace:
    return LevelSpace.of_env(gym.make(ENV, **SHORT))


def check_log(records, resets_per_env, n_envs):
    """Every reset is in the log, in order per sub-env; a replayed level is the level first played at its seed."""
    assert [sum(r["sub_env"] == i for r in records) for i in range(n_envs)] == resets_per_env
    for i in range(n_envs):
        assert [r["choice"] for r in records if r["sub_env"] == i] == list(range(resets_per_env[i]))
    first: dict[int, str] = {}
    replays = 0
    for r in records:
        if r["replayed"]:
            replays += 1
            assert r["level_seed"] == r["requested_seed"] and r["level_hash"] == first[r["level_seed"]]
        first.setdefault(r["level_seed"], r["level_hash"])
    assert replays >= 5
    assert set(records[0]) == {"step", "sub_env", "choice", "level_seed", "requested_seed", "level_hash", "factors",
                               "replayed", "score"}


@pytest.mark.parametrize("kind", ["dummy", "subproc"])
def test_sb3_vector_envs_ask_the_teacher_at_every_reset(kind, tmp_path):
    config = TrainConfig.from_dict({"env": ENV, "env_kwargs": SHORT, "n_envs": 2, "vec_env": kind, "teacher": {"name": "uniform"}})
    teacher = EveryOther(space(), seed=0)
    env = curriculum_vec(config, log=LevelLog(tmp_path / "levels.jsonl"), teacher=teacher)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        env.step(rng.integers(7, size=2))
    resets = env.get_attr("resets")
    env.close()
    assert sum(resets) > 10 and sum(resets) == sum(env.driver.played)
    assert teacher.chosen == sum(resets) + 2  # every reset played a choice; one more per sub-env waits
    check_log(read_levels(tmp_path / "levels.jsonl"), resets, 2)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_gymnasium_vector_envs_ask_the_teacher_at_every_reset(kind, tmp_path):
    teacher = EveryOther(space(), seed=0)
    envs = curriculum_vector_env(lambda: gym.make(ENV, **SHORT), 2, teacher, kind, LevelLog(tmp_path / "levels.jsonl"))
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        envs.step(rng.integers(7, size=2))
    resets = list(envs.env.get_attr("resets"))
    envs.close()
    assert sum(resets) > 10 and teacher.chosen == sum(resets) + 2
    check_log(read_levels(tmp_path / "levels.jsonl"), resets, 2)


def test_a_reset_without_a_teachers_level_fails_instead_of_drawing_a_random_one():
    venv = DummyVecEnv([lambda: CurriculumEnv(make_env(ENV, **SHORT), 0)])
    with pytest.raises(CurriculumError, match="no level assigned by its teacher"):
        venv.reset()
    envs = curriculum_vector_env(lambda: gym.make(ENV, **SHORT), 1, EveryOther(space(), seed=0))
    envs.reset(seed=0)
    envs.env.call("assign_levels", {0: (1, False)})  # a level the driver did not choose: caught at its reset
    with pytest.raises(CurriculumError, match="bypassed the teacher"):
        for _ in range(40):
            envs.step(np.array([2]))


def test_segments_and_robust_buffer_keep_only_replayed_transitions():
    levels = [[(1, "a", 0), (2, "b", 0)], [(1, "a", 0), (3, "c", 1)]]
    assert segments(levels) == [(1, "a", [(0, 0), (1, 0)]), (2, "b", [(0, 1)]), (3, "c", [(1, 1)])]

    class Buffer:
        observations = {"image": np.arange(4.0).reshape(2, 2)}
        actions, rewards, returns, episode_starts, values, log_probs, advantages = (np.arange(4.0).reshape(2, 2) for _ in range(7))

    b = Buffer()
    replayed = np.array([[True, False], [False, False]])
    assert keep_replayed(b, replayed, np.random.default_rng(0))
    assert (b.advantages == 0).all() and (b.observations["image"] == 0).all()
    assert not keep_replayed(Buffer(), np.zeros((2, 2), bool), np.random.default_rng(0))


def tiny(tmp_path, teacher, **extra) -> TrainConfig:
    return TrainConfig.from_dict({
        "algo": "ppo", "env": "shiftgrid/DoorKey-v1", "steps": 512, "n_envs": 2, "device": "cpu", "progress": False,
        "run_dir": str(tmp_path / "run"), "eval": {"freq": 0}, "teacher": teacher, "env_kwargs": {"max_steps": 40},
        "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "extractor": {"cell_dim": 8, "channels": 16, "text_dim": 16, "word_dim": 16, "features_dim": 32}, **extra})


@pytest.mark.parametrize("name", ["plr", "plr-robust"])
def test_a_tiny_ppo_run_trains_with_plr(tmp_path, name):
    seen = []
    result = train(tiny(tmp_path, {"name": name, "options": {"min_levels": 2}}), hooks=[lambda run: seen.append(run.learner.env)])
    assert result.num_timesteps == 512
    teacher = seen[-1].teacher
    assert teacher.buffer and max(teacher.stats[s].score for s in teacher.buffer) > 0  # scored from the rollout buffer
    records = read_levels(result.run_dir / "teacher" / "levels.jsonl")
    assert any(r["replayed"] for r in records) and len(records) == sum(seen[-1].driver.played)
    assert (result.run_dir / "teacher" / "cost.json").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"teacher/unique_levels", "teacher/replay_share", "teacher/factor/size", "teacher/levels_chosen"} <= tags


def test_plr_robust_does_not_update_on_new_levels(tmp_path):
    seen = []
    config = tiny(tmp_path, {"name": "plr-robust", "options": {"min_levels": 128}})  # never replays in 512 steps
    train(config, hooks=[lambda run: seen.append(run.learner.model)])
    assert seen[-1]._n_updates == 0 and seen[-1].num_timesteps == 512


def test_plr_needs_an_on_policy_learner(tmp_path):
    config = tiny(tmp_path, {"name": "plr"}, algo="dqn", hyperparams={"learning_starts": 64, "buffer_size": 256})
    with pytest.raises(ConfigError, match="rollout buffer"):
        train(config)


@pytest.mark.parametrize("args, message", [
    (["--teacher", "plrr"], "unknown teacher 'plrr'; valid: uniform, tscl, plr"),
    (["--teacher", "plr", "--teacher-set", "temp=1"], "unknown option 'temp' of teacher 'plr'"),
    (["--teacher", "regret", "--teacher-set", "tier=learner"], "'optimal_return' needs tier 'oracle'"),
    (["--teacher-set", "temperature=1"], "given without teacher.name"),
])
def test_bad_teacher_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["train", "--steps", "64", "--run-dir", str(tmp_path / "r"), "--no-progress"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_reports_training_table_names_the_curriculum_and_its_cost():
    from shiftgrid.agents.evaluation.report import RunRecord, training_table

    run = RunRecord("r", 0, {}, config={"teacher": {"name": "plr", "options": {}}},
                    training={"steps": 512, "teacher": {"levels_chosen": 7.0, "side_steps": 0.0}})
    assert training_table([run])[-1].endswith("| curriculum `plr`: levels_chosen 7, side_steps 0 |")


def test_the_benchmark_table_counts_steps_to_the_goal_on_uniform_training_levels():
    from shiftgrid.agents.benchmarks.curriculum import table

    run = lambda teacher, seed, steps: {"env": "E", "teacher": teacher, "seed": seed, "steps": steps, "budget": 1000,
                                        "last": 0.95 if steps else 0.1, "cost": {"side_steps": 0}}
    lines = table([run("uniform", 0, None), run("uniform", 1, 900), run("plr", 0, 300), run("plr", 1, 300)]).splitlines()
    assert lines[2].startswith("| E | plr | 2/2 | 300 [300, 300] | >= 3.17 |")  # uniform: IQM of 900 and >= 1000
    assert lines[3].startswith("| E | uniform | 1/2 | >= 950 ")


def test_a_resumed_run_continues_its_teachers_state(tmp_path):
    import json

    config = tiny(tmp_path, {"name": "plr", "options": {"min_levels": 2}})
    train(config)
    saved = json.loads((tmp_path / "run" / "teacher" / "curriculum.json").read_text())
    assert saved["teacher"] == "PLR" and saved["buffer"]
    seen = []
    config.steps = 640
    result = train(config, resume=True, hooks=[lambda run: seen.append(run.learner.env.teacher)])
    assert result.num_timesteps >= 640 and set(saved["buffer"]) <= set(seen[-1].stats)
    assert seen[-1].chosen > saved["chosen"]


def _sweep_of_two_points(root, algo="ppo", evaluated=("train",)):
    """A sweep dir whose plr seed 0 is done at 1,000 steps and seed 1 was interrupted at 100."""
    import json

    import yaml

    from shiftgrid.agents.run.checkpoint import Checkpoint, save_checkpoint

    for point, state, steps in (("seed=0", "done", 1000), ("seed=1", "interrupted", 100)):
        run = root / "runs" / point
        (run / "checkpoints").mkdir(parents=True)
        config = {"algo": algo, "env": "E", "seed": int(point[-1]), "teacher": {"name": "plr"}, "eval": {"splits": list(evaluated)}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        history = [{"step": steps, "success": {split: 0.1 for split in evaluated}}]
        save_checkpoint(Checkpoint(algo, config, {}, steps, history=history), run / "checkpoints" / "latest.pt")
        (root / "status").mkdir(exist_ok=True)
        (root / "status" / f"{point}.json").write_text(json.dumps({"state": state}))


def test_the_benchmark_leaves_out_sweep_points_that_did_not_finish(tmp_path, capsys):
    from shiftgrid.scripts.cli import main

    _sweep_of_two_points(tmp_path)
    assert main(["benchmark", "curriculum", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| E | plr | 0/1 | >= 1,000 [1,000, 1,000] |" in out  # the stopped seed would pull the bound to 100
    assert "left out, not finished:" in out and "seed=1 (interrupted)" in out


def test_shiftgrid_benchmark_curriculum_prints_the_table_and_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from shiftgrid.scripts.cli import main

    _sweep_of_two_points(tmp_path / "sweep")
    assert main(["benchmark", "curriculum", str(tmp_path / "sweep")]) == 0
    assert "| E | plr | 0/1 | >= 1,000 [1,000, 1,000] |" in capsys.readouterr().out
    for argv, message in ((["benchmark", "curriculum"], "needs at least one DIR"),
                          (["benchmark", "curriculum", str(tmp_path / "nothing")], "no finished runs"),
                          (["benchmark", "curriculum", str(tmp_path / "sweep"), "--goal", "2"], "--goal must be"),
                          (["benchmark", "curriculum", str(tmp_path / "sweep"), "--json", "x.json"],
                           "unrecognized arguments: --json x.json (its options: shiftgrid benchmark curriculum --help)")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (argv, err)


@pytest.mark.parametrize("algo, evaluated, message", [
    ("world-model", ("train",), "is a world-model run (a world model, not an agent trained on the levels a teacher chose)"),
    ("ppo", ("id",), "was never evaluated on `train` during training (eval.splits ['id'], 1 evaluations)"),
])
def test_the_curriculum_benchmark_refuses_runs_that_are_not_curriculum_runs(tmp_path, capsys, algo, evaluated, message):
    from shiftgrid.scripts.cli import main

    _sweep_of_two_points(tmp_path / "sweep", algo=algo, evaluated=evaluated)
    assert main(["benchmark", "curriculum", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("shiftgrid benchmark curriculum: error:"), err


def test_the_benchmark_scores_final_policies_on_held_out_splits_with_the_worst_levels_return(tmp_path, capsys):
    import json

    from shiftgrid.agents.benchmarks.curriculum import learner_label
    from shiftgrid.scripts.cli import main

    _sweep_of_two_points(tmp_path)
    (tmp_path / "status" / "seed=1.json").write_text(json.dumps({"state": "done"}))
    episodes = lambda ok, n: [{"success": i < ok, "ret": 0.8 if i < ok else 0.0} for i in range(n)]  # noqa: E731
    runs = [{"name": "seed=0", "episodes": {"id": episodes(95, 100), "size/far": episodes(50, 100), "size/near": episodes(1, 100)}},
            {"name": "seed=1", "episodes": {"id": episodes(100, 100), "size/far": episodes(70, 100)}}]
    (tmp_path / "report" / "teacher.name=plr").mkdir(parents=True)
    (tmp_path / "report" / "teacher.name=plr" / "results.json").write_text(json.dumps({"runs": runs}))
    assert main(["benchmark", "curriculum", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "steps to 50% success" in out and "steps to 90% success" in out
    # id: success 0.95 and 1.00, the worst 10 levels' return 0.8 * 5/10 and 0.8; near splits are left out
    assert "| E | plr | 2 | 0.975 [0.950, 1.000]; 0.600 [0.400, 0.800] | 0.600 [0.500, 0.700]; 0.000 [0.000, 0.000] |" in out
    assert "size/near" not in out
    assert learner_label({"advice": {"granularity": "action", "protocol": "kickstart", "watched_envs": 8}}) == \
        "uniform + kickstart (8 envs watched)"

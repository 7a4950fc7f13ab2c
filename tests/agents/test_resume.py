"""A resumed run reports what an uninterrupted one does: curves, windows, target step, evaluations, totals.

What cannot match exactly, and is not compared: wall-clock (the resumed run's total is the sum of
its sessions' training time, so it is compared as a sum, not as a figure), ``time/sps``, and, for
learners whose environments restart on resume (SB3's, Dreamer, the imitation learners), the
episodes themselves: a resumed SB3 run plays fresh levels from ``seed + num_timesteps``.
"""

import json
import signal

from shiftgrid.agents.benchmarks.efficiency import run_figures
from shiftgrid.agents.evaluation.report import scalars
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import EvalConfig, TargetConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import resume_config, train

EMPTY = "MiniGrid-Empty-5x5-v0"
TAGS = ["rollout/success_rate", "rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/episodes", "train/step",
        "eval/id/success", "target/steps"]


def scripted_config(name: str, run_dir, steps: int = 1500) -> TrainConfig:
    return TrainConfig(algo=name, env=EMPTY, steps=steps, progress=False, run_dir=str(run_dir), checkpoint_freq=400,
                       eval=EvalConfig(freq=300, episodes=1, n_envs=1, render=False),
                       target=TargetConfig(success=0.5, episodes=40))


def at_step(step: int, action):
    def hook(run) -> None:
        if run.num_timesteps == step:
            action(run)

    return hook


def curves(run_dir) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(step, value) for step, value, _ in points] for tag, points in scalars(RunDir(run_dir).tb, TAGS).items()}


def test_an_interrupted_and_resumed_run_reports_what_an_uninterrupted_one_does(scripted, tmp_path):
    whole = train(scripted_config(scripted, tmp_path / "whole"))
    # stopped by SIGTERM mid-episode, between updates, before the target is met; then resumed to the same total
    first = train(scripted_config(scripted, tmp_path / "parts"), hooks=[at_step(603, lambda run: signal.raise_signal(signal.SIGTERM))])
    assert (first.interrupted, first.num_timesteps, first.target) == (signal.SIGTERM, 603, None)
    stopped = read_checkpoint(RunDir(first.run_dir).latest)
    assert stopped.episodes["count"] == 603 // 7 and len(stopped.episodes["window"]) == 40
    resumed = train(resume_config(first.run_dir), resume=True)

    assert resumed.num_timesteps == whole.num_timesteps == 1500
    assert whole.target is not None and whole.target["steps"] > 603  # met after the interruption: the window had to survive
    assert {k: v for k, v in resumed.target.items() if k != "wall_s"} == {k: v for k, v in whole.target.items() if k != "wall_s"}
    assert resumed.success == whole.success and resumed.best_success == whole.best_success

    a, b = curves(whole.run_dir), curves(resumed.run_dir)
    assert all(a[tag] for tag in TAGS) and a == b  # every logged point, before and after the interruption
    assert a["rollout/episodes"][-1] == (1500, 1500 // 7)  # counted over the run, not since the resume
    # so the efficiency benchmark finds the same step to its goal (a full 100-episode window at >= 30%)
    reached = [run_figures(r.run_dir, goal=0.3)["steps"] for r in (whole, resumed)]
    assert reached[0] is not None and reached[0] > 603 and reached[0] == reached[1]

    ends = read_checkpoint(RunDir(whole.run_dir).latest), read_checkpoint(RunDir(resumed.run_dir).latest)
    assert ends[0].episodes == ends[1].episodes and len(ends[0].episodes["recent"]["success"]) == 100
    assert [h["step"] for h in ends[0].history] == [h["step"] for h in ends[1].history] == [300, 600, 900, 1200, 1500]
    assert ends[0].best == ends[1].best
    assert json.loads((RunDir(resumed.run_dir).target).read_text())["steps"] == whole.target["steps"]
    # wall-clock: the resumed run's total adds its sessions' training time
    assert ends[1].elapsed_s > stopped.elapsed_s > 0 and resumed.target["wall_s"] >= stopped.elapsed_s - 0.1


def ppo_config(run_dir, steps: int) -> TrainConfig:
    return TrainConfig(algo="ppo", env=EMPTY, steps=steps, n_envs=2, device="cpu", progress=False, run_dir=str(run_dir),
                       eval=EvalConfig(freq=0), checkpoint_freq=0, extractor={"channels": 8},
                       env_kwargs={"max_steps": 12}, hyperparams={"n_steps": 32, "batch_size": 64, "n_epochs": 1})


def test_sb3_episode_buffers_and_counts_survive_a_resume(tmp_path):
    first = train(ppo_config(tmp_path / "ppo", 256))
    saved = read_checkpoint(RunDir(first.run_dir).latest)
    buffers = saved.state["episode_buffers"]
    assert 10 < len(buffers["r"]) == len(buffers["success"]) == saved.episodes["count"] < 100

    seen = {}

    def first_step(run) -> None:  # the restored buffers, before the resumed run's first episode ends
        if "r" not in seen:
            seen["r"] = [i["r"] for i in run.learner.model.ep_info_buffer]

    resumed = train(resume_config(first.run_dir, steps=512), resume=True, hooks=[first_step])
    assert seen["r"] == buffers["r"]
    end = read_checkpoint(RunDir(resumed.run_dir).latest)
    assert end.state["episode_buffers"]["r"][:len(buffers["r"])] == buffers["r"]
    assert end.episodes["count"] == len(end.state["episode_buffers"]["r"]) > saved.episodes["count"]
    steps = [s for s, _ in curves(resumed.run_dir)["rollout/episodes"]]
    assert steps == sorted(set(steps)) and steps[-1] == 512  # one point per step, continuing across the resume
    assert curves(resumed.run_dir)["rollout/episodes"][-1][1] == end.episodes["count"]


def test_a_rollout_cut_short_does_not_count_its_episodes_twice(tmp_path):
    counts = {}

    def count(run) -> None:
        counts[run.num_timesteps] = run.episodes
        if run.num_timesteps == 300:  # in the third rollout (64 steps each)
            signal.raise_signal(signal.SIGTERM)

    result = train(ppo_config(tmp_path / "ppo", 1024), hooks=[count])
    saved = read_checkpoint(RunDir(result.run_dir).latest)
    assert saved.num_timesteps == 256 and counts[300] > counts[256]  # episodes ended in the discarded steps...
    assert saved.episodes["count"] == counts[256] == len(saved.state["episode_buffers"]["r"])  # ...are not in the checkpoint

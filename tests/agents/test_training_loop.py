"""The shared training loop, proven on a non-SB3 learner (tests/agents/tabular_learner.py, one registry entry)."""

import json
import shutil
import signal

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shiftgrid.agents.run.checkpoint import load_agent, read_checkpoint
from shiftgrid.agents.run.config import EvalConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import resume_config, train
from shiftgrid.scripts.cli import main

EMPTY = "MiniGrid-Empty-5x5-v0"
FLAGS = ["--no-progress", "--set", "eval={freq: 1000, episodes: 3, n_envs: 1}", "--set", "checkpoint_freq=500"]


def scalars(run: RunDir) -> dict[str, list]:
    acc = EventAccumulator(str(run.tb), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


def config(tmp_path, steps: int, **fields) -> TrainConfig:
    fields = {"eval": EvalConfig(freq=0), "checkpoint_freq": 256, **fields}
    return TrainConfig(algo="tabular", env=EMPTY, steps=steps, progress=False, run_dir=str(tmp_path / "run"), **fields)


def at_step(step: int, action):
    def hook(run) -> None:
        if run.num_timesteps == step:
            action(run)

    return hook


def test_shiftgrid_train_and_evaluate_run_the_tabular_learner(tabular, tmp_path, capsys):
    run = RunDir(tmp_path / "tab")
    assert main(["train", "--algo", tabular, "--env", EMPTY, "--steps", "3000", "--run-dir", str(run.root), *FLAGS]) == 0
    assert f"{run.root}: 3000 steps" in capsys.readouterr().out
    assert yaml.safe_load(run.config.read_text())["algo"] == "tabular"
    assert read_checkpoint(run.latest).num_timesteps == 3000 and read_checkpoint(run.latest).learner == "tabular"
    best = read_checkpoint(run.best)
    tags = scalars(run)
    assert {"rollout/success_rate", "rollout/ep_rew_mean", "time/sps", "train/td_error", "eval/id/success"} <= set(tags)
    assert [e.step for e in tags["eval/id/success"]] == [1024, 2048, 3000]  # at the first update after every 1000 steps, and at the end

    agent, saved = load_agent(run.root, device="cpu")
    assert agent.env is None and saved["algo"] == "tabular" and agent.num_timesteps == best.num_timesteps

    assert main(["evaluate", str(run.root), "--episodes", "3"]) == 0
    doc = json.loads((run.eval / "results.json").read_text())
    assert doc["runs"][0]["metrics"]["id"]["success_rate"] == 1.0  # it learned Empty-5x5 (a forward-only policy scores 0)
    training = doc["runs"][0]["training"]
    assert training["steps"] == best.num_timesteps and training["checkpoint"]["file"] == "checkpoints/best.pt"
    md = (run.eval / "results.md").read_text()
    assert "`checkpoints/best.pt`: best `id` success" in md and f"validation seeds {best.best['seeds'][0]}" in md
    assert f"among 3 evaluations, at step {best.num_timesteps}" in md  # the run's 3, not those before best was saved
    assert "evaluation reset seeds: 1000000000..1000000002" in md  # not the validation seeds

    events = sorted(run.tb.iterdir())
    capsys.readouterr()
    assert main(["train", "--resume", str(run.root)]) == 0
    assert "already complete at 3000 steps" in capsys.readouterr().out
    assert sorted(run.tb.iterdir()) == events  # no empty event file


def test_sigterm_saves_where_it_stopped_and_resume_continues(tabular, tmp_path):
    first = train(config(tmp_path, 1500), hooks=[at_step(700, lambda run: signal.raise_signal(signal.SIGTERM))])
    run = RunDir(first.run_dir)
    assert (first.interrupted, first.num_timesteps) == (signal.SIGTERM, 700)
    stopped = read_checkpoint(run.latest)
    assert stopped.num_timesteps == 700 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    second = train(resume_config(run.root), resume=True)
    assert (second.interrupted, second.num_timesteps) == (None, 1500)
    final = read_checkpoint(run.latest)
    assert set(stopped.state["keys"]) <= set(final.state["keys"]) and final.elapsed_s > stopped.elapsed_s
    steps = [e.step for e in scalars(run)["rollout/success_rate"]]
    assert min(steps) < 700 < max(steps) == 1472  # logged every 64 steps, across both calls


def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tabular, tmp_path):
    def poison(run) -> None:
        for values in run.learner.q.values():
            values[:] = [float("nan")] * len(values)

    result = train(config(tmp_path, 2000), hooks=[at_step(600, poison)])
    assert result.stop_reason == "nan" and result.interrupted is None and result.num_timesteps < 2000
    kept = read_checkpoint(RunDir(result.run_dir).latest)
    assert kept.num_timesteps == 512 and torch.isfinite(kept.state["values"]).all()


def test_two_copies_of_one_run_are_not_independent_seeds(tabular, tmp_path, capsys):
    train(config(tmp_path, 300))
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    assert main(["evaluate", str(tmp_path / "run"), str(tmp_path / "copy"), "--episodes", "1", "--out", str(tmp_path / "r")]) == 0
    assert "have the same seed (0) and config: they are not independent seeds" in capsys.readouterr().err
    assert "not independent" in (tmp_path / "r" / "results.md").read_text()


def test_an_sb3_learner_whose_weights_go_nan_stops_with_its_last_good_checkpoint(tmp_path):
    def poison(run) -> None:
        with torch.no_grad():
            for p in run.learner.model.policy.parameters():
                p.fill_(float("nan"))

    ppo = TrainConfig(algo="ppo", steps=1024, n_envs=2, device="cpu", progress=False, run_dir=str(tmp_path / "ppo"),
                      eval=EvalConfig(freq=0), checkpoint_freq=128, extractor={"channels": 8},
                      hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    result = train(ppo, hooks=[at_step(300, poison)])
    assert result.stop_reason == "nan" and result.num_timesteps < 1024
    kept = read_checkpoint(RunDir(result.run_dir).latest)
    assert kept.num_timesteps == 256 and all(torch.isfinite(v).all() for v in kept.state["policy"].values())

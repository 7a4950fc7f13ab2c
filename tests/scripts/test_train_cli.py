"""``shiftgrid train``: short real runs of every algorithm, resume after interruption, one-line errors."""

import signal

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import shiftgrid.scripts.train_cmd as train_cmd
from shiftgrid.agents.run.train import train
from shiftgrid.scripts.cli import main

#: A tiny network and cheap evaluation, so each run takes seconds.
FAST = ["--no-progress", "--n-envs", "2", "--device", "cpu",
        "--set", "extractor={cell_dim: 8, channels: 16, text_dim: 16, word_dim: 16, features_dim: 32}",
        "--set", "eval={freq: 1024, episodes: 2, splits: [id], n_envs: 2}", "--set", "checkpoint_freq=512"]
SMALL = {
    "ppo": ["--set", "hyperparams={n_steps: 64, batch_size: 64, n_epochs: 2}"],
    "a2c": [],
    "dqn": ["--set", "hyperparams={learning_starts: 256, buffer_size: 4096}"],
    "recurrent-ppo": ["--set", "hyperparams={n_steps: 64, batch_size: 64, n_epochs: 1}", "--set", "policy.lstm_hidden_size=16"],
}


def scalars(run_dir) -> dict[str, list]:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    out = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    out.update({tag: acc.Images(tag) for tag in acc.Tags()["images"]})
    return out


def steps_in(path) -> int:
    return torch.load(path, weights_only=True)["counters"]["num_timesteps"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "recurrent-ppo"])
@pytest.mark.training
def test_short_run_writes_config_checkpoints_and_tensorboard(algo, tmp_path, capsys):
    run = tmp_path / algo
    assert main(["train", "--algo", algo, "--env", "shiftgrid/GoTo-v1", "--steps", "2048", "--seed", "3",
                 "--run-dir", str(run), *FAST, *SMALL[algo]]) == 0
    assert f"{run}: 2048 steps" in capsys.readouterr().out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["algo"], config["steps"], config["seed"], config["version"]) == (algo, 2048, 3, "0.1.0")
    assert config["hyperparams"]["gamma"] == 0.99  # from the algorithm's preset
    assert steps_in(run / "checkpoints" / "latest.pt") == 2048
    assert (run / "checkpoints" / "best.pt").is_file()
    tags = scalars(run)
    assert {"rollout/success_rate", "rollout/ep_rew_mean", "time/sps", "eval/id/success", "eval/id/return"} <= set(tags)
    assert any(t.startswith("train/") for t in tags)
    assert tags["eval/id/success"][-1].step == 2048  # the final evaluation
    assert tags["eval/id/episode"][0].width > 0  # a rendered episode


@pytest.mark.parametrize("env_id", ["MiniGrid-Empty-5x5-v0", "BabyAI-GoToLocal-v0"])
@pytest.mark.training
def test_minigrid_and_babyai_ids_train_and_evaluate_on_held_out_seeds(env_id, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--algo", "a2c", "--env", env_id, "--steps", "256", "--run-dir", str(run), *FAST,
                 "--set", "eval.freq=128"]) == 0
    tags = scalars(run)
    assert {"rollout/success_rate", "eval/id/success", "eval/id/episode"} <= set(tags)
    assert yaml.safe_load((run / "config.yaml").read_text())["env"] == env_id


def signal_at(step: int):
    """A run hook that sends this process SIGTERM once ``step`` steps are done, as a scheduler killing the job would."""

    def hook(run) -> None:
        if run.num_timesteps >= step:
            signal.raise_signal(signal.SIGTERM)

    return hook


@pytest.mark.training
def test_sigterm_saves_a_checkpoint_and_resume_continues_with_the_same_config(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    import shiftgrid.agents.run.train as run_train

    monkeypatch.setattr(run_train, "train", lambda config, resume: train(config, resume=resume, hooks=[signal_at(512)]))
    code = main(["train", "--algo", "ppo", "--steps", "1024", "--run-dir", str(run), *FAST, *SMALL["ppo"]])
    assert code == 128 + signal.SIGTERM
    assert f"--resume {run}" in one_error_line(capsys)
    interrupted_at = steps_in(run / "checkpoints" / "latest.pt")
    assert 256 <= interrupted_at < 1024 and interrupted_at % 128 == 0  # as of the last PPO update (2 envs x 64)
    before = yaml.safe_load((run / "config.yaml").read_text())
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--steps", "2048", "--no-progress"]) == 0
    assert steps_in(run / "checkpoints" / "latest.pt") == 2048
    after = yaml.safe_load((run / "config.yaml").read_text())
    assert after == {**before, "steps": 2048, "progress": False}
    success_steps = [e.step for e in scalars(run)["rollout/success_rate"]]
    assert min(success_steps) <= interrupted_at < max(success_steps) == 2048


def test_several_seeds_run_in_their_own_directories(tmp_path):
    base = tmp_path / "runs"
    assert main(["train", "--algo", "a2c", "--steps", "64", "--seed", "0,1", "--run-dir", str(base),
                 *FAST, "--set", "eval.freq=0"]) == 0
    for seed in (0, 1):  # named as a sweep names its points
        assert yaml.safe_load((base / f"seed={seed}" / "config.yaml").read_text())["seed"] == seed
        assert (base / f"seed={seed}" / "checkpoints" / "latest.pt").is_file()
    (base / "seed=0").rename(base / "seed0")  # as earlier releases named it: still read, and resumed
    assert main(["train", "--resume", str(base), "--steps", "96"]) == 0
    assert steps_in(base / "seed0" / "checkpoints" / "latest.pt") == steps_in(base / "seed=1" / "checkpoints" / "latest.pt") == 96


def test_config_layers_presets_file_flags_set(tmp_path):
    (tmp_path / "c.yaml").write_text("n_envs: 3\nhyperparams: {learning_rate: 1e-3, n_epochs: 7}\nsteps: 10\n")
    args = train_cmd_args(["--algo", "ppo", "--config", str(tmp_path / "c.yaml"), "--steps", "20",
                           "--set", "hyperparams.n_epochs=5", "--set", "eval.splits=[id, size/far]"])
    merged = train_cmd.resolve_config(args)
    assert merged["hyperparams"]["n_steps"] == 128  # ppo-GoTo.yaml / ppo.yaml
    assert merged["hyperparams"]["learning_rate"] == 1e-3  # --config, written 1e-3 (a float, not a string)
    assert merged["hyperparams"]["n_epochs"] == 5  # --set wins
    assert (merged["n_envs"], merged["steps"], merged["eval"]["splits"]) == (3, 20, ["id", "size/far"])


def train_cmd_args(argv):
    import argparse

    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--algo", "sac"], "unknown algo 'sac'; valid: ppo, a2c, dqn, recurrent-ppo"),
        (["--env", "Nope-v0"], "unknown environment id 'Nope-v0'"),
        (["--split", "size/huge"], "unknown split 'size/huge'"),
        (["--env", "MiniGrid-Empty-5x5-v0", "--split", "size/far"], "has no splits"),
        (["--set", "steps"], "--set expects key=value"),
        (["--set", "steps=[1,"], "malformed YAML in --set"),
        (["--set", "stpes=10"], "unknown config key stpes"),
        (["--set", "steps=ten"], "config key steps = 'ten' has the wrong type"),
        (["--set", "hyperparams.bogus=1"], "unknown ppo hyperparameter 'bogus'"),
        (["--set", "extractor.bogus=1"], "unknown extractor setting 'bogus'"),
        (["--seed", "a,b"], "--seed expects integers"),
        (["--steps", "ten"], "invalid int value"),
        (["--device", "tpu"], "unknown device"),
        (["--set", "eval.splits=[id, size/huge]"], "unknown split 'size/huge'"),
        (["--set", "eval.splits=3"], "config key eval.splits = 3 has the wrong type"),
        (["--set", "env_kwargs.size=999"], "size=999 is out of range; valid: 5..32"),
        (["--set", "env_kwargs.bogus=1"], "bogus"),
        (["--advice", "subgoal", "--env", "MiniGrid-Empty-5x5-v0"], "advice needs a teacher that can plan"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    try:
        code = main(["train", "--steps", "64", "--run-dir", str(tmp_path / "r"), "--no-progress", *argv])
    except SystemExit as e:  # argparse's own checks (a flag's type) exit from parse_args
        code = e.code
    assert code == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_bad_config_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text("hyperparams: {n_steps: 64\nsteps: 5\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    for name, message in [("broken.yaml", "malformed YAML in"), ("list.yaml", "must hold a mapping"), ("absent.yaml", "cannot read")]:
        assert main(["train", "--config", str(tmp_path / name)]) == 2
        assert message in one_error_line(capsys)


def test_resume_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "cannot resume" in one_error_line(capsys)
    run = tmp_path / "run"
    assert main(["train", "--algo", "a2c", "--steps", "32", "--run-dir", str(run), *FAST, "--set", "eval.freq=0"]) == 0
    assert main(["train", "--resume", str(run)]) == 0  # already finished: nothing to do
    assert steps_in(run / "checkpoints" / "latest.pt") == 32
    capsys.readouterr()
    assert main(["train", "--algo", "a2c", "--steps", "32", "--run-dir", str(run), *FAST]) == 2
    assert "already holds a run" in one_error_line(capsys)
    assert main(["train", "--resume", str(run), "--algo", "a2c"]) == 2
    assert "only --steps and --device" in one_error_line(capsys)
    assert main(["train", "--resume", str(run), "--algo", "ppo"]) == 2
    assert f"{run} is a run of a2c; --resume continues it with a2c, not --algo ppo" in one_error_line(capsys)
    (run / "checkpoints" / "latest.pt").write_bytes(b"\x00garbage")
    assert main(["train", "--resume", str(run), "--steps", "64"]) == 2
    assert "cannot read checkpoint" in one_error_line(capsys)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "version": "7.1.0"}))
    assert main(["train", "--resume", str(run), "--steps", "64"]) == 2
    assert "shiftgrid 7.1.0" in one_error_line(capsys)


def test_help_shows_the_defaults_and_where_steps_come_from(monkeypatch):
    import argparse

    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no hyphenated name split by the wrapping

    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["train"]
    text = " ".join(sub.format_help().split())
    assert "ppo-GoTo: 1000000" in text and "else 100000" in text  # --steps: the preset's 1M, said so
    assert "(default: shiftgrid/GoTo-v1)" in text and "recurrent-ppo" in text


def test_help_says_what_steps_count_for_every_learner():
    import argparse

    from shiftgrid.agents.run.registry import learner_names, steps_meaning

    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    text = " ".join(parser._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "what --steps counts, per learner:" in text
    for name in learner_names():
        assert " ".join(steps_meaning(name).split()) in text and f"{name}" in text.split("what --steps counts")[1]
    assert "side estimates count in the steps" in text


def test_a_run_that_ends_past_its_steps_says_so(tmp_path, capsys):
    run = tmp_path / "ppo"
    assert main(["train", "--algo", "ppo", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "100", "--run-dir", str(run),
                 *FAST, "--set", "hyperparams={n_steps: 32, batch_size: 64, n_epochs: 1}", "--set", "eval.freq=0"]) == 0
    out = capsys.readouterr().out
    assert f"{run}: 128 steps (28 past --steps 100; shiftgrid train --help says how ppo counts steps)" in out  # whole rollouts of 64

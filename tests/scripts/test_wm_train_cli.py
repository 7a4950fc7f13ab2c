"""``shiftgrid wm train``: short runs on shiftgrid, minigrid and BabyAI ids, resume, demos, one-line errors."""

from __future__ import annotations

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shiftgrid.scripts.cli import main

#: A tiny model, few small updates, an open-loop image every 4 updates.
TINY = ["--preset", "tiny", "--n-envs", "2", "--device", "cpu", "--no-progress", "--set",
        "hyperparams={batch_size: 2, seq_len: 8, learning_starts: 16, train_ratio: 4, log_every: 2, openloop_every: 4, "
        "openloop_context: 2, openloop_horizon: 4, openloop_sequences: 2}"]
LOSS_TAGS = {f"train/{k}" for k in ("obs", "reward", "cont", "dyn", "rep", "loss", "kl", "one_step/cell_accuracy")}


def tensorboard(run_dir) -> tuple[set[str], dict]:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return set(acc.Tags()["scalars"]), {tag: acc.Images(tag) for tag in acc.Tags()["images"]}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def steps_in(run_dir) -> int:
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["counters"]["num_timesteps"]


@pytest.mark.parametrize("env, policy", [("shiftgrid/GoTo-v1", "oracle"), ("MiniGrid-Empty-5x5-v0", "random"),
                                         ("BabyAI-GoToLocal-v0", "oracle")])
def test_a_short_run_writes_config_checkpoint_and_tensorboard_with_images(env, policy, tmp_path, capsys):
    run = tmp_path / "wm"
    assert main(["wm", "train", "--model", "rssm", "--env", env, "--policy", policy, "--noise", "0.1", "--steps", "64",
                 "--seed", "2", "--run-dir", str(run), *TINY]) == 0
    assert f"{run}: 64 steps" in capsys.readouterr().out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["algo"], config["env"], config["steps"], config["seed"]) == ("world-model", env, 64, 2)
    assert config["eval"]["freq"] == 0  # from presets/world-model.yaml
    hp = config["hyperparams"]
    assert (hp["model"], hp["preset"], hp["policy"], hp["noise"], hp["batch_size"]) == ("rssm", "tiny", policy, 0.1, 2)
    assert hp["replay_capacity"] == 100_000  # every setting resolved into config.yaml
    assert steps_in(run) == 64
    scalars, images = tensorboard(run)
    assert LOSS_TAGS | {"openloop/cell_accuracy", "time/sps"} <= scalars
    image = images["openloop/prediction"][-1]
    assert image.width > image.height > 6 * 7 * 8  # 2 x 3 labelled rows of 2 context and 4 predicted frames


def test_a_run_shorter_than_openloop_every_still_logs_its_open_loop_image(tmp_path):
    run = tmp_path / "wm"
    assert main(["wm", "train", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "48", "--run-dir", str(run), *TINY,
                 "--set", "hyperparams.openloop_every=100000"]) == 0
    scalars, images = tensorboard(run)
    assert "openloop/cell_accuracy" in scalars and len(images["openloop/prediction"]) == 1  # drawn once, at the end
    assert images["openloop/prediction"][0].step == 48


def test_resume_continues_to_the_new_total_and_refuses_another_model(tmp_path, capsys):
    run = tmp_path / "wm"
    assert main(["wm", "train", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "32", "--run-dir", str(run), *TINY]) == 0
    assert main(["wm", "train", "--resume", str(run), "--steps", "64", "--no-progress"]) == 0
    assert steps_in(run) == 64 and f"{run}: 64 steps" in capsys.readouterr().out
    assert main(["wm", "train", "--resume", str(run), "--model", "transformer"]) == 2
    line = one_error_line(capsys)
    assert "cannot resume" in line and "as a transformer world model: it holds a rssm one" in line
    assert main(["wm", "train", "--resume", str(run), "--preset", "small"]) == 2
    assert "only --steps and --device may be given (got --preset)" in one_error_line(capsys)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["hyperparams"]["model"] = "transformer"  # a config that no longer matches its checkpoint
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["wm", "train", "--resume", str(run), "--steps", "96"]) == 2
    line = one_error_line(capsys)
    assert "holds a rssm/tiny world model" in line and "another model family" in line
    assert steps_in(run) == 64  # nothing lost


def test_resume_of_an_agent_run_is_refused(tmp_path, capsys):
    run = tmp_path / "ppo"
    assert main(["train", "--algo", "a2c", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "16", "--n-envs", "2",
                 "--device", "cpu", "--no-progress", "--set", "eval.freq=0", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["wm", "train", "--resume", str(run), "--steps", "32"]) == 2
    assert "cannot resume" in (line := one_error_line(capsys)) and "it is a a2c run" in line


def test_demos_train_on_recorded_episodes_of_the_same_env_only(tmp_path, capsys):
    from shiftgrid.agents.imitation.datasets import write_demos

    demos = write_demos(tmp_path / "demos", "shiftgrid/GoTo-v1", episodes=3, seed=0)
    run = tmp_path / "wm"
    assert main(["wm", "train", "--env", "shiftgrid/GoTo-v1", "--demos", str(demos), "--steps", "32",
                 "--run-dir", str(run), *TINY]) == 0
    assert steps_in(run) == 32
    assert LOSS_TAGS <= tensorboard(run)[0]
    capsys.readouterr()
    assert main(["wm", "train", "--env", "shiftgrid/Pickup-v1", "--demos", str(demos), "--steps", "32",
                 "--run-dir", str(tmp_path / "other"), *TINY]) == 2
    assert "holds episodes of shiftgrid/GoTo-v1 (split train), not shiftgrid/Pickup-v1" in one_error_line(capsys)
    assert not (tmp_path / "other").exists()


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from shiftgrid.world_models.rssm import RSSM

    real = RSSM.loss_and_states  # what a training step calls

    def loss(self, batch):
        total, terms, states = real(self, batch)
        return total * float("inf"), terms, states

    monkeypatch.setattr(RSSM, "loss_and_states", loss)
    run = tmp_path / "wm"
    assert main(["wm", "train", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "64", "--run-dir", str(run), *TINY]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"shiftgrid wm train: {run}: stopped at step 18: world-model loss is inf")
    assert "is the last good checkpoint" in line
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["state"]
    assert state["counters"]["updates"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values()
                                                     if v.is_floating_point())


BAD = [
    (["--model", "lstm"], "unknown world model 'lstm'; valid: rssm, transformer, mechanism"),
    (["--preset", "huge"], "unknown world-model preset 'huge'; valid: tiny, small, medium, large"),
    (["--policy", "greedy"], "unknown policy 'greedy'; valid: random, oracle, or a trained agent"),
    (["--policy", "oracle"], "--policy oracle needs a shiftgrid id (exact oracle) or a BabyAI id"),
    (["--noise", "1.5"], "noise must be in [0, 1], got 1.5"),
    (["--set", "hyperparams.gamma=0.9"], "unknown config key hyperparams.gamma; valid: hyperparams.model"),
    (["--set", "algo=ppo"], "shiftgrid wm train trains the world-model learner, got algo='ppo'"),
    (["--demos", "nowhere"], "dataset nowhere does not exist"),
    (["--steps", "many"], "argument --steps: invalid int value: 'many'"),
]


@pytest.mark.parametrize("flags, message", BAD)
def test_bad_input_is_one_line_and_exit_2(flags, message, tmp_path, capsys):
    run = tmp_path / "wm"
    argv = ["wm", "train", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "16", "--run-dir", str(run), *TINY, *flags]
    if flags[0] == "--steps":  # a malformed flag: argparse's error, in one line
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    else:
        assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("shiftgrid wm train: error: ") and message in line, line
    assert not run.exists()  # nothing was left behind


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_asked_for_but_absent(tmp_path, capsys):
    assert main(["wm", "train", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "16", "--run-dir", str(tmp_path / "wm"),
                 *TINY, "--device", "cuda"]) == 2
    assert "device 'cuda' asked for, but this torch sees no CUDA device" in one_error_line(capsys)

"""Training-success targets: steps and wall-clock to a success rate, stopping there, resuming."""

import json

import pytest

from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import ConfigError, EvalConfig, TargetConfig, TrainConfig
from shiftgrid.agents.run.train import train

PPO_SMALL = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}


def config(tmp_path, target: TargetConfig, steps: int = 4096) -> TrainConfig:
    return TrainConfig(algo="ppo", steps=steps, n_envs=2, device="cpu", progress=False, run_dir=str(tmp_path / "run"),
                       eval=EvalConfig(freq=0), hyperparams=PPO_SMALL, extractor={"channels": 16}, target=target)


def test_reachable_target_is_recorded_and_stops_the_run(tmp_path):
    # an untrained policy succeeds on some GoTo levels by chance, so 10 episodes at >= 5% come early
    result = train(config(tmp_path, TargetConfig(success=0.05, episodes=10, stop=True)))
    met = json.loads((result.run_dir / "target.json").read_text())
    assert result.target == met and met["success"] == 0.05 and met["episodes"] == 10
    assert met["rate"] >= 0.05 and met["wall_s"] > 0
    assert met["steps"] == result.num_timesteps < 4096  # stopped where the target was met
    assert read_checkpoint(result.run_dir / "checkpoints" / "latest.pt").target == met


def test_unmet_target_leaves_no_record_and_the_run_goes_on(tmp_path):
    result = train(config(tmp_path, TargetConfig(success=1.0, episodes=1000, stop=True), steps=512))
    assert result.target is None and result.num_timesteps == 512
    assert not (result.run_dir / "target.json").exists()


def test_without_stop_the_run_takes_all_its_steps(tmp_path):
    result = train(config(tmp_path, TargetConfig(success=0.05, episodes=10), steps=1024))
    assert result.target is not None and result.target["steps"] < result.num_timesteps == 1024


def test_resume_keeps_the_met_target_and_counts_earlier_training_time(tmp_path):
    first = train(config(tmp_path, TargetConfig(success=0.05, episodes=10), steps=512))
    elapsed = read_checkpoint(first.run_dir / "checkpoints" / "latest.pt").elapsed_s
    resumed = config(tmp_path, TargetConfig(success=0.05, episodes=10), steps=1024)
    second = train(resumed, resume=True)
    assert second.target == first.target
    assert read_checkpoint(second.run_dir / "checkpoints" / "latest.pt").elapsed_s > elapsed > 0


@pytest.mark.parametrize("target, message", [
    ({"success": 1.5}, "target.success must be in (0, 1]"),
    ({"success": 0}, "target.success must be in (0, 1]"),
    ({"episodes": 0}, "target.episodes must be >= 1"),
    ({"success": "high"}, "config key target.success = 'high' has the wrong type"),
    ({"window": 5}, "unknown config key target.window"),
])
def test_bad_target_settings_are_rejected(target, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")):
        TrainConfig.from_dict({"target": target})

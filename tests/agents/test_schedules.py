"""Hyperparameter schedules: ``{linear: [start, end]}`` in a config becomes an SB3 schedule."""

import pytest

from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.sb3.build import build_model
from shiftgrid.agents.training.envs import make_vec


def test_linear_learning_rate_runs_from_start_to_end():
    config = TrainConfig(algo="ppo", n_envs=1, device="cpu", extractor={"channels": 16},
                         hyperparams={"n_steps": 16, "batch_size": 16, "learning_rate": {"linear": [1e-3, 1e-4]}})
    model = build_model(config, make_vec(config))
    assert [model.lr_schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 5.5e-4, 1e-4])
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("value", [{"linear": [1e-3]}, {"linear": "fast"}, {"cosine": [1e-3, 0]}, {"linear": [1, 0], "x": 1}])
def test_malformed_schedule_is_rejected(value):
    config = TrainConfig(algo="ppo", n_envs=1, device="cpu", hyperparams={"learning_rate": value})
    with pytest.raises(ConfigError, match="hyperparameter learning_rate: expected a number or {linear: \\[start, end\\]}"):
        build_model(config, make_vec(config))

"""The config base: generic nested sections, layered overrides, YAML round trips."""

from dataclasses import dataclass, field

import pytest

from shiftgrid.agents.run.config import (
    VALIDATION_SEED,
    ConfigError,
    RunConfig,
    TrainConfig,
    load_config,
    merge,
    parse_overrides,
    save_config,
)


@dataclass
class ModelSection:
    layers: int = 2
    width: int = 64


@dataclass
class WorldModelConfig(RunConfig):
    """A config another trainer might declare: the base plus its own nested section, no parsing code."""

    model: ModelSection = field(default_factory=ModelSection)
    batch: int = 16


def test_a_new_config_gets_nested_sections_parsed_from_its_dataclasses():
    config = WorldModelConfig.from_dict({"seed": 4, "model": {"width": 8}, "eval": {"episodes": 3}})
    assert (config.seed, config.model, config.eval.episodes, config.batch) == (4, ModelSection(2, 8), 3, 16)
    with pytest.raises(ConfigError, match="unknown config key model.depth; valid: model.layers, model.width"):
        WorldModelConfig.from_dict({"model": {"depth": 3}})
    with pytest.raises(ConfigError, match="config key model.width = 'wide' has the wrong type; expected int"):
        WorldModelConfig.from_dict({"model": {"width": "wide"}})
    with pytest.raises(ConfigError, match="config key model = 3 has the wrong type; expected a mapping"):
        WorldModelConfig.from_dict({"model": 3})


def test_base_checks_apply_to_every_config():
    with pytest.raises(ConfigError, match="eval.episodes"):
        WorldModelConfig.from_dict({"eval": {"episodes": 0}})
    with pytest.raises(ConfigError, match=r"target.success must be in \(0, 1\]"):
        RunConfig.from_dict({"target": {"success": 2.0}})


def test_train_config_is_a_run_config_with_the_learner_fields():
    config = TrainConfig.from_dict(merge({"algo": "a2c", "hyperparams": {"n_steps": 8}},
                                         parse_overrides(["hyperparams.gamma=0.9", "eval.splits=[id, size/far]"])))
    assert isinstance(config, RunConfig)
    assert config.hyperparams == {"n_steps": 8, "gamma": 0.9} and config.eval.splits == ["id", "size/far"]
    for name, value, message in [("steps", 0, "steps must be >= 1"), ("vec_env", "threads", "vec_env must be"),
                                 ("checkpoint_freq", -1, "checkpoint_freq must be >= 0")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict({name: value})


def test_selection_seeds_default_away_from_the_evaluation_seeds():
    assert RunConfig().eval.seed == VALIDATION_SEED >= 10_000  # shiftgrid evaluate starts at 0 with 1000 episodes


def test_yaml_round_trip(tmp_path):
    config = TrainConfig(algo="dqn", steps=77, hyperparams={"learning_rate": {"linear": [1e-3, 0.0]}})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config

"""Sweep files: grid expansion, point names, layering over the presets, validation before anything runs, status."""

import pytest

from shiftgrid.agents.run.config import ConfigError
from shiftgrid.agents.run.registry import learner_names
from shiftgrid.agents.run.rundir import SweepDir
from shiftgrid.agents.sweeps.sweep import Sweep, expand, load_sweep, merge_points, read_status, write_status

BASE = {"algo": "ppo", "env": "shiftgrid/GoTo-v1", "steps": 512}


def sweep(grid, base=None, **sections) -> Sweep:
    return Sweep.from_mapping({"base": BASE if base is None else base, "grid": grid, **sections}, "s.yaml")


def test_cartesian_product_in_grid_order_with_readable_names(tmp_path):
    points = expand(sweep({"algo": ["ppo", "a2c"], "seed": [0, 1]}), tmp_path)
    assert [p.name for p in points] == ["algo=ppo,seed=0", "algo=ppo,seed=1", "algo=a2c,seed=0", "algo=a2c,seed=1"]
    assert [(p.config["algo"], p.config["seed"]) for p in points] == [("ppo", 0), ("ppo", 1), ("a2c", 0), ("a2c", 1)]
    assert [p.configuration for p in points] == ["algo=ppo", "algo=ppo", "algo=a2c", "algo=a2c"]  # seeds of one configuration
    assert points[3].config["run_dir"] == str(tmp_path / "runs" / "algo=a2c,seed=1")
    assert all(p.config["progress"] is False for p in points)  # output goes to the point's log


def test_a_seed_only_grid_is_one_configuration_named_after_the_sweep(tmp_path):
    points = expand(sweep({"seed": [0, 1, 2]}, name="goto"), tmp_path)
    assert [p.name for p in points] == ["seed=0", "seed=1", "seed=2"] and {p.configuration for p in points} == {"goto"}


def test_points_layer_like_shiftgrid_train(tmp_path):
    """Presets of the point's algo < base < base.set < grid values; dotted grid keys reach nested keys."""
    (tmp_path / "extra.yaml").write_text("n_envs: 2\nhyperparams: {n_epochs: 1}\n")
    (tmp_path / "s.yaml").write_text(
        "base: {algo: ppo, env: shiftgrid/GoTo-v1, config: extra.yaml, n_envs: 4, set: ['hyperparams.n_steps=64']}\n"
        "grid: {hyperparams.learning_rate: [1.0e-3], env: [shiftgrid/GoTo-v1, MiniGrid-Empty-5x5-v0]}\n")
    first, second = expand(load_sweep(tmp_path / "s.yaml"), tmp_path / "out")
    assert first.name == "hyperparams.learning_rate=0.001,env=GoTo-v1" and second.name.endswith("env=MiniGrid-Empty-5x5-v0")
    hp = first.config["hyperparams"]
    assert (hp["learning_rate"], hp["n_steps"], hp["n_epochs"], hp["gamma"]) == (1e-3, 64, 1, 0.99)  # gamma: ppo preset
    assert first.config["n_envs"] == 4  # base keys over its config file
    assert first.config["steps"] == 1_000_000  # the ppo-GoTo preset's steps, as `shiftgrid train` would take them
    assert second.config["steps"] != 1_000_000  # no GoTo preset for the Empty env


@pytest.mark.parametrize("data, says", [
    ({"base": BASE}, "the grid is empty"),
    ({"base": BASE, "grid": {}}, "the grid is empty"),
    ({"base": BASE, "grid": {"seed": []}}, "grid key seed needs a non-empty list"),
    ({"base": BASE, "grid": {"seed": 3}}, "grid key seed needs a non-empty list"),
    ({"base": BASE, "grid": {"lr": [0.1]}}, "grid key 'lr' is not a config key; valid: env, split, seed"),
    ({"base": BASE, "grid": {"seed": [0]}, "gird": {}}, "unknown section 'gird'; valid: name, dir, base, grid"),
    ({"base": BASE, "grid": {"run_dir": ["a"]}}, "run_dir is set by the sweep"),
    ({"base": {**BASE, "set": "steps=3"}, "grid": {"seed": [0]}}, "base.set must be a list of key=value strings"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"episode": 3}}, "evaluate: unknown key 'episode'; valid: episodes"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"checkpoint": "last"}}, "evaluate.checkpoint must be one of best, latest"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"episodes": -4}}, "evaluate.episodes must be an integer >= 1, got -4"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"n_envs": "2"}}, "evaluate.n_envs must be an integer >= 1, got '2'"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"stochastic": "yes"}}, "evaluate.stochastic must be true or false"),
    ({"base": BASE, "grid": {"seed": [0]}, "evaluate": {"splits": "id"}}, "evaluate.splits must be 'all' or a list"),
    (["seed"], "a sweep file holds a mapping of sections"),
])
def test_bad_sweep_files_say_what_is_wrong(data, says):
    with pytest.raises(ConfigError, match=says.replace("[", r"\[")):
        Sweep.from_mapping(data, "s.yaml")


def test_clashing_point_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"two grid points are both named 'hyperparams.learning_rate=0.001'"):
        expand(sweep({"hyperparams.learning_rate": [0.001, 1.0e-3]}), tmp_path)
    with pytest.raises(ConfigError, match="both named 'seed=1'"):
        expand(sweep({"seed": [1, "1"]}), tmp_path)


def test_every_point_is_validated_before_any_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"s.yaml: point algo=ppo,n_envs=0: n_envs must be >= 1, got 0"):
        expand(sweep({"algo": ["ppo"], "n_envs": [2, 0]}), tmp_path)
    with pytest.raises(ConfigError, match="point algo=nope: unknown algo 'nope'; valid: ppo, a2c"):
        expand(sweep({"algo": ["nope"]}), tmp_path)
    with pytest.raises(ConfigError, match="point seed=0: unknown config key eval.episode"):
        expand(sweep({"seed": [0]}, base={**BASE, "set": ["eval.episode=3"]}), tmp_path)
    assert not (tmp_path / "runs").exists()


def test_evaluation_splits_are_checked_against_every_point_before_any_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"point seed=0: unknown split 'size/farr'"):
        expand(sweep({"seed": [0]}, evaluate={"splits": ["id", "size/farr"]}), tmp_path)
    assert not (tmp_path / "runs").exists()


def test_hyperparameters_are_checked_by_building_each_points_learner_before_any_runs(tmp_path):
    """batch_size is PPO's: the a2c point is refused at expansion, not after the ppo point has trained."""
    with pytest.raises(ConfigError, match=r"point algo=a2c: unknown a2c hyperparameter .batch_size."):
        expand(sweep({"algo": ["ppo", "a2c"]}, base={**BASE, "set": ["hyperparams.batch_size=64"]}), tmp_path)
    assert not (tmp_path / "runs").exists()


def test_a_plugin_learner_that_cannot_load_fails_before_anything_runs(tmp_path):
    bad = sweep({"seed": [0]}, base={**BASE, "algo": "mine"}, learners={"mine": "no_such_module:Learner"})
    with pytest.raises(ConfigError, match="s.yaml: learners: learner 'mine' is registered as 'no_such_module:Learner', "
                                          "which cannot be loaded: No module named 'no_such_module'"):
        expand(bad, tmp_path)
    assert "mine" not in learner_names()


def test_resume_keeps_the_stored_points_and_adds_new_ones(tmp_path):
    stored = expand(sweep({"seed": [0, 1]}), tmp_path)
    more = expand(sweep({"seed": [0, 1, 2]}), tmp_path)
    assert [p.name for p in merge_points(stored, more, "s.yaml")] == ["seed=0", "seed=1", "seed=2"]
    changed = expand(sweep({"seed": [0]}, base={**BASE, "steps": 1024}), tmp_path)
    with pytest.raises(ConfigError, match="point seed=0 differs from the one this sweep dir ran"):
        merge_points(stored, changed, "s.yaml")


def test_status_files(tmp_path):
    where = SweepDir(tmp_path)
    assert read_status(where, "seed=0") == {"state": "pending"}
    write_status(where, "seed=0", "running", pid=7)
    write_status(where, "seed=0", "failed", error="ValueError: x", wall_s=1.5)
    status = read_status(where, "seed=0")
    assert (status["state"], status["pid"], status["error"], status["wall_s"]) == ("failed", 7, "ValueError: x", 1.5)
    with pytest.raises(ValueError, match="unknown point state 'finished'; valid: pending, running, done"):
        write_status(where, "seed=0", "finished")

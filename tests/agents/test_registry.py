"""The learner registry: one list of names, lazy imports, entries registered from outside."""

import subprocess
import sys

import pytest

from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.registry import check_learner, get_learner, learner_names, register_learner, unregister_learner


def test_builtin_learners_are_the_sb3_algorithms():
    assert learner_names()[:4] == ["ppo", "a2c", "dqn", "recurrent-ppo"]
    assert [get_learner(n).algorithm.__name__ for n in learner_names()[:4]] == ["PPO", "A2C", "DQN", "RecurrentPPO"]


def test_importing_the_registry_imports_no_learner():
    code = "import sys, shiftgrid.agents.run.registry as r; r.learner_names(); print('stable_baselines3' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown algo 'sac'; valid: ppo, a2c, dqn, recurrent-ppo"):
        check_learner("sac")
    with pytest.raises(ConfigError, match="unknown algo 'sac'"):
        TrainConfig.from_dict({"algo": "sac"})


def test_an_entry_registered_from_outside_is_a_learner_like_the_builtins(tabular):
    assert tabular in learner_names()
    config = TrainConfig.from_dict({"algo": tabular, "env": "MiniGrid-Empty-5x5-v0"})  # the config accepts it
    learner = get_learner(tabular)(config, training=False)
    assert learner.env is None and learner.num_timesteps == 0
    with pytest.raises(ConfigError, match="already registered"):
        register_learner(tabular, "elsewhere:Other")


def test_bad_registrations_are_refused():
    with pytest.raises(ConfigError, match="'module:attribute'"):
        register_learner("mine", "no_colon_here")
    with pytest.raises(ConfigError, match="built in"):
        unregister_learner("ppo")
    assert "mine" not in learner_names()
    register_learner("mine", "no_such_module_here:Learner")
    try:
        with pytest.raises(ConfigError, match="registered as 'no_such_module_here:Learner', which cannot be loaded: No module"):
            get_learner("mine")
    finally:
        unregister_learner("mine")


def test_installed_packages_add_learners_through_entry_points(monkeypatch):
    import importlib.metadata

    import shiftgrid.agents.run.registry as registry

    found = [importlib.metadata.EntryPoint("tab", "tabular_learner:TabularLearner", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: found if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    assert learner_names()[-1] == "tab"
    check_learner("tab")

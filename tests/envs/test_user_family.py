"""A family registered by another project (the README's example, in its own module) works everywhere.

``gym.make("module:id")``, JSON specs, vector envs in spawned processes (which import only what
the spec names) and the CLI's ``train``/``evaluate`` with subprocess envs; a clash is an error.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec

from shiftgrid.envs import Family, RegistrationError, UnknownEnvError, register_family, splits_for
from shiftgrid.envs.registration import resolve_family

MODULE = "sg_user_redball"
ENV_ID = "mylab/RedBall-v0"
QUALIFIED = f"{MODULE}:{ENV_ID}"
SPLITS = {"version": 0, "train": {"size": [6, 7], "balls": [1, 2]}, "axes": {"size": {"near": {"size": 9}, "far": {"size": 12}}}}

# The README's example family, as a user would write it in their own module.
SOURCE = textwrap.dedent(
    f'''
    from dataclasses import dataclass
    from minigrid.core.world_object import Ball
    from shiftgrid.envs import Clause, Factors, Family, LevelBuilder, Mission, factor, register_family

    @dataclass(frozen=True)
    class BallFactors(Factors):
        balls: int = factor(1, low=1, high=5, doc="balls in the room")

    def generate(f: BallFactors, rng):
        b = LevelBuilder(f.size, f.size, rng)
        target = b.place(Ball("red"))
        for _ in range(f.balls - 1):
            b.place(Ball("blue"))
        b.place_agent()
        return b.build("go to the red ball", Mission(((Clause("goto", target),),)))

    FAMILY = Family("RedBall", BallFactors, generate)
    register_family(FAMILY, namespace="mylab", splits={SPLITS!r})
    '''
)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """A folder holding the user's module, on sys.path for this module's tests."""
    folder = tmp_path_factory.mktemp("userlib")
    (folder / f"{MODULE}.py").write_text(SOURCE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        yield folder


def _hashes(env, seeds) -> list[str]:
    return [env.reset(seed=s)[1]["level_hash"] for s in seeds]


def test_module_qualified_id_imports_the_module_and_the_spec_is_json(user_dir):
    env = gym.make(QUALIFIED, split="size/far")
    env.reset(seed=0)
    assert env.unwrapped.width == 12 and env.unwrapped.family.name == "RedBall"
    assert splits_for(QUALIFIED) is splits_for(ENV_ID)
    spec = gym.spec(ENV_ID)
    assert spec.kwargs == {"family": f"{MODULE}:FAMILY", "splits": SPLITS}
    again = EnvSpec.from_json(spec.to_json())
    assert again == spec
    assert _hashes(gym.make(again, split="size/far"), range(3)) == _hashes(env, range(3))
    # the spec of a made env (with its keywords) round-trips too
    made = gym.make(ENV_ID, split="size/near", balls=3)
    rebuilt = gym.make(EnvSpec.from_json(made.spec.to_json()))
    assert _hashes(rebuilt, range(3)) == _hashes(made, range(3))
    assert len(rebuilt.unwrapped.level.objects) == 3 and rebuilt.unwrapped.width == 9


def test_async_vector_env_in_spawned_processes(user_dir):
    """Spawned children import only what the spec names: the family's module, from its import path."""
    importlib.import_module(MODULE)
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", split="size/near")
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="async", split="size/near",
                        vector_kwargs={"context": "spawn"})
    try:
        obs, info = envs.reset(seed=5)
        want_obs, want_info = sync.reset(seed=5)
        assert list(info["level_hash"]) == list(want_info["level_hash"])
        assert np.array_equal(obs["image"], want_obs["image"]) and list(obs["mission"]) == ["go to the red ball"] * 2
        obs, *_ = envs.step(np.array([2, 1]))
        assert np.array_equal(obs["image"], sync.step(np.array([2, 1]))[0]["image"])
    finally:
        envs.close()
        sync.close()


def test_family_that_other_processes_cannot_import_gets_a_clear_error():
    with pytest.raises(UnknownEnvError) as e:
        resolve_family("__main__:RedBallFamily")
    msg = str(e.value)
    assert "'__main__:RedBallFamily'" in msg and "main script or an interactive session" in msg
    assert "importable module" in msg
    with pytest.raises(UnknownEnvError, match=r"cannot import the module of family 'no_such_mod:FAMILY'"):
        resolve_family("no_such_mod:FAMILY")
    with pytest.raises(UnknownEnvError, match=r"is not bound to a module-level name"):
        resolve_family("some_mod:<RedBall 7f00>")


def test_reregistering_the_same_is_a_no_op_and_a_clash_is_an_error(user_dir):
    module = importlib.import_module(MODULE)
    assert register_family(module.FAMILY, namespace="mylab", splits=SPLITS) == ENV_ID  # as importing twice does
    before = splits_for(ENV_ID)
    with pytest.raises(RegistrationError) as e:
        register_family(module.FAMILY, namespace="mylab", splits={**SPLITS, "train": {"size": 8}})
    assert f"{ENV_ID} is already registered" in str(e.value) and "another namespace" in str(e.value)
    other = Family("RedBall", module.BallFactors, lambda f, rng: module.generate(f, rng))
    with pytest.raises(RegistrationError, match="mylab/RedBall-v0 is already registered"):
        register_family(other, namespace="mylab", splits=SPLITS)
    gym.register("otherpkg/RedBall-v0", entry_point="minigrid.envs:EmptyEnv")
    with pytest.raises(RegistrationError, match=r"otherpkg/RedBall-v0 is already registered by another package"):
        register_family(module.FAMILY, namespace="otherpkg")
    assert splits_for(ENV_ID) is before and gym.spec(ENV_ID).kwargs["splits"] == SPLITS


@pytest.mark.training
def test_cli_trains_and_evaluates_a_user_family_with_subprocess_envs(user_dir, tmp_path):
    pytest.importorskip("stable_baselines3")
    run = tmp_path / "run"
    tiny = ["--set", "extractor={cell_dim: 4, channels: 8, text_dim: 8, word_dim: 8, features_dim: 16}",
            "--set", "hyperparams={n_steps: 32, batch_size: 32, n_epochs: 1}", "--set", "eval.freq=0"]
    code = textwrap.dedent(
        f"""
        import sys
        from shiftgrid.scripts.cli import main
        assert {MODULE!r} not in sys.modules
        train = main(["train", "--algo", "ppo", "--env", {QUALIFIED!r}, "--steps", "64", "--n-envs", "1",
                      "--set", "vec_env=subproc", "--device", "cpu", "--no-progress", "--run-dir", {str(run)!r}, *{tiny!r}])
        if train:
            sys.exit(10 + train)
        sys.exit(main(["evaluate", {str(run)!r}, "--episodes", "2", "--n-envs", "2", "--splits", "id,size/far",
                       "--device", "cpu", "--out", {str(tmp_path / "eval")!r}]))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_dir), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["env"] == QUALIFIED and results["runs"][0]["config"]["vec_env"] == "subproc"
    metrics = results["runs"][0]["metrics"]
    assert set(metrics) == {"id", "size/far"} and metrics["size/far"]["mean_length"] > 0


def test_json_spec_makes_the_env_in_a_fresh_interpreter(user_dir, tmp_path):
    importlib.import_module(MODULE)
    text = gym.spec(ENV_ID).to_json()
    code = textwrap.dedent(
        """
        import json, sys
        import gymnasium as gym
        from gymnasium.envs.registration import EnvSpec
        env = gym.make(EnvSpec.from_json(sys.argv[1]), split="size/far")
        print(json.dumps([env.reset(seed=s)[1]["level_hash"] for s in range(3)]))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(user_dir)}
    proc = subprocess.run([sys.executable, "-c", code, text], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == _hashes(gym.make(ENV_ID, split="size/far"), range(3))


@pytest.mark.slow
def test_family_of_a_script_in_spawned_processes(tmp_path):
    """A script's module-level family works in spawned children; one made under ``__main__`` gets a clear error."""
    script = tmp_path / "myscript.py"
    script.write_text(SOURCE.replace('register_family(FAMILY, namespace="mylab"', 'register_family(FAMILY, namespace="script"')
                      + textwrap.dedent(
        """
        import gymnasium as gym

        if __name__ == "__main__":
            envs = gym.make_vec("script/RedBall-v0", num_envs=1, vectorization_mode="async", vector_kwargs={"context": "spawn"})
            print("module-level:", envs.reset(seed=0)[0]["mission"][0])
            envs.close()
            LATE = Family("LateBall", BallFactors, generate)
            register_family(LATE, namespace="script", splits={"version": 0, "train": {"size": 6}})
            try:
                gym.make_vec("script/LateBall-v0", num_envs=1, vectorization_mode="async", vector_kwargs={"context": "spawn"})
            except Exception as e:
                print("main block:", e)
        """))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "module-level: go to the red ball" in proc.stdout
    assert "main block:" in proc.stdout  # the child failed, and (gymnasium's way) printed why on stderr:
    assert "family '__main__:LATE' is not defined in the main script or an interactive session" in proc.stderr, proc.stderr
    assert "importable module" in proc.stderr

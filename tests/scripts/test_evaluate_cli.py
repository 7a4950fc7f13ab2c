"""``shiftgrid evaluate`` through the CLI entry point: random agents stand in for checkpoints; SB3 .zip models; the API."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from gymnasium import spaces

import shiftgrid.agents.evaluation.episodes as evaluation
import shiftgrid.agents.reports.runs as evaluate_runs_module
import shiftgrid.scripts.cli as cli
from shiftgrid.agents.evaluation.baselines import RandomAgent
from shiftgrid.agents.run.rundir import RunDir

GOTO = "shiftgrid/GoTo-v1"
#: What loading a best.pt chosen during training says of it.
CHECKPOINT = {"file": "checkpoints/best.pt", "steps": 4096, "chosen": "best `id` success (0.500) on validation seeds "
              "1000000..1000019 of 2 evaluations", "validation_seeds": [1000000, 1000019]}


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Make run directories laid out as training writes them; loading one gives a random agent and its config."""
    monkeypatch.setattr(cli, "COMMANDS", ("evaluate",))  # only the command under test

    def load(path, device):
        run_dir = RunDir.of(path).root
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        return RandomAgent(spaces.Discrete(7), config["seed"]), config, CHECKPOINT

    monkeypatch.setattr(evaluate_runs_module, "load_run", load)

    def make(name, env=GOTO, seed=0, algo="ppo", split="train"):
        run_dir = tmp_path / name
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "best.pt").write_bytes(b"")
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": env, "split": split, "seed": seed, "algo": algo}))
        return run_dir

    return make


def evaluate(*argv):
    return cli.main(["evaluate", *map(str, argv)])


def test_single_run_report_goes_into_the_run_dir(runs, capsys):
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--splits", "id,size/near,size/far", "--episodes", "3") == 0
    md = (run_dir / "eval" / "results.md").read_text()
    assert "## size" in md and "`size/far`" in md and "## layout" not in md
    out = capsys.readouterr().out
    assert f"report written to {run_dir / 'eval'}" in out


def test_checkpoint_path_reports_into_its_run(runs):
    run_dir = runs("goto-s1", seed=1)
    assert evaluate(run_dir / "checkpoints" / "best.pt", "--splits", "id", "--episodes", "2") == 0
    doc = json.loads((run_dir / "eval" / "results.json").read_text())
    assert doc["runs"][0]["seed"] == 1 and list(doc["runs"][0]["metrics"]) == ["id"]


def test_checkpoint_latest_evaluates_each_run_directorys_final_checkpoint(runs, monkeypatch, tmp_path):
    loaded = []
    load = evaluate_runs_module.load_run
    monkeypatch.setattr(evaluate_runs_module, "load_run", lambda path, device: loaded.append(path) or load(path, device))
    dirs = [runs(f"goto-s{s}", seed=s) for s in range(2)]
    assert evaluate(*dirs, "--checkpoint", "latest", "--splits", "id", "--episodes", "2", "--out", tmp_path / "r") == 0
    assert loaded == [d / "checkpoints" / "latest.pt" for d in dirs]
    loaded.clear()
    assert evaluate(dirs[0], "--checkpoint", "best", "--splits", "id", "--episodes", "2", "--reference-episodes", "1") == 0
    assert loaded == [dirs[0]]  # best.pt where there is one: what the run directory alone gives
    assert "on the first 1 of the same levels" in (dirs[0] / "eval" / "results.md").read_text()


def test_several_seeds_make_one_report(runs, tmp_path):
    dirs = [runs(f"goto-s{s}", seed=s) for s in range(3)]
    out = tmp_path / "report"
    assert evaluate(*dirs, "--splits", "id,layout/far", "--episodes", "2", "--out", out) == 0
    doc = json.loads((out / "results.json").read_text())
    assert [r["seed"] for r in doc["runs"]] == [0, 1, 2] and doc["summary"]["n_runs"] == 3
    assert len(doc["summary"]["axes"]["layout"]["far"]["success_rate"]["per_run"]) == 3


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("shiftgrid evaluate: error:")
    return err


def test_mixing_environments_is_refused(runs, tmp_path, capsys):
    a, b = runs("goto", env=GOTO), runs("pickup", env="shiftgrid/Pickup-v1")
    assert evaluate(a, b, "--out", tmp_path / "r", "--episodes", "1") == 2
    err = one_line_error(capsys)
    assert "shiftgrid/GoTo-v1" in err and "shiftgrid/Pickup-v1" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing-run"], "no such run directory"),
        (["{run}", "--splits", "size/huge"], "unknown split 'size/huge'"),
        (["{run}", "--splits", ","], "names no split"),
        (["{run}", "--episodes", "0"], "--episodes must be >= 1"),
        (["{run}", "{run2}"], "--out"),
        (["{run}", "{run}/checkpoints/best.pt", "--out", "x"], "same run"),
        (["{run}/checkpoints/best.pt", "--checkpoint", "latest"], "is a checkpoint file already"),
        (["{run}", "--checkpoint", "last"], "invalid choice: 'last'"),
        (["{run}", "--episodes", "5", "--reference-episodes", "6"], "--reference-episodes must be in 0..5"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(runs, capsys, argv, message):
    run_dir, run2 = runs("goto-s0"), runs("goto-s9", seed=9)
    argv = [a.format(run=run_dir, run2=run2) for a in argv]
    try:
        code = evaluate(*argv)
    except SystemExit as e:  # argparse's own checks (a choice) exit from parse_args
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (run_dir / "eval").exists()


@pytest.mark.parametrize("flag, deterministic, actions", [((), True, "most likely"), (("--stochastic",), False, "sampled")])
def test_stochastic_flag_reaches_the_agent_and_the_report(runs, monkeypatch, flag, deterministic, actions):
    asked = set()

    class Spy(RandomAgent):
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            asked.add(deterministic)
            return super().predict(obs, state, episode_start, deterministic)

    monkeypatch.setattr(evaluate_runs_module, "load_run", lambda path, device: (Spy(spaces.Discrete(7), 0), {"env": GOTO, "seed": 0, "algo": "ppo"}, CHECKPOINT))
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--splits", "id", "--episodes", "2", *flag) == 0
    assert asked == {deterministic}
    meta = json.loads((run_dir / "eval" / "results.json").read_text())["meta"]
    assert meta["actions"].startswith(actions)


def test_report_names_the_evaluated_checkpoint_and_a_held_out_training_split(runs):
    run_dir = runs("far", split="size/far")
    assert evaluate(run_dir, "--splits", "id,size/far", "--episodes", "2") == 0
    md = (run_dir / "eval" / "results.md").read_text()
    assert "training split: size/far (a held-out split: for this run it is the training distribution, not a shift)" in md
    assert "| 4,096 | `checkpoints/best.pt`: best `id` success (0.500) on validation seeds 1000000..1000019" in md
    assert "evaluation reset seeds: 0..1" in md and "warning" not in md  # disjoint from the validation seeds


def test_evaluating_on_the_seeds_a_checkpoint_was_chosen_on_is_flagged(runs):
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--splits", "id", "--episodes", "2", "--seed", "1000010") == 0
    md = (run_dir / "eval" / "results.md").read_text()
    assert "overlap the seeds the checkpoint was chosen on: goto-s0 (seeds 1000000..1000019)" in md


# -- a policy trained elsewhere: the API and the CLI give one report ---------------------------

FORWARD, LEFT = 2, 0


def wall_follower(obs):
    """A policy in a few lines: forward, or turn left when the cell ahead is a wall."""
    return np.where(obs["image"][:, 3, 5, 0] == 2, LEFT, FORWARD)


def headings(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("#") and line != "## Training"]


def test_a_function_policy_through_the_api_gives_the_cli_report(runs, monkeypatch, tmp_path):
    from shiftgrid.agents import FunctionPolicy, evaluate_policy

    config = {"env": GOTO, "split": "train", "seed": 0, "algo": "ppo"}
    monkeypatch.setattr(evaluate_runs_module, "load_run", lambda path, device: (FunctionPolicy(wall_follower), config, CHECKPOINT))
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--splits", "id,size/near,size/far", "--episodes", "3") == 0
    ev = evaluate_policy(wall_follower, GOTO, ["id", "size/near", "size/far"], episodes=3, out=tmp_path / "api",
                         config={"algo": "ppo", "split": "train"})
    cli_dir, api_dir = run_dir / "eval", tmp_path / "api"
    assert sorted(p.name for p in cli_dir.iterdir()) == sorted(p.name for p in api_dir.iterdir())
    cli_doc, api_doc = (json.loads((d / "results.json").read_text()) for d in (cli_dir, api_dir))
    assert cli_doc.keys() == api_doc.keys() and cli_doc["runs"][0].keys() == api_doc["runs"][0].keys()
    assert cli_doc["meta"].keys() == api_doc["meta"].keys()
    assert cli_doc["runs"][0]["episodes"] == api_doc["runs"][0]["episodes"]  # same seeds, same levels, same actions
    assert cli_doc["summary"] == api_doc["summary"] == json.loads(json.dumps(ev.summary.to_dict()))
    cli_csv, api_csv = (pd.read_csv(d / "results.csv") for d in (cli_dir, api_dir))
    assert list(cli_csv.columns) == list(api_csv.columns)
    assert cli_csv.drop(columns=["run", "seed"]).equals(api_csv.drop(columns=["run", "seed"]))
    assert headings((cli_dir / "results.md").read_text()) == headings((api_dir / "results.md").read_text())


def test_a_run_trained_with_env_kwargs_is_evaluated_with_them(runs, monkeypatch):
    made = []
    real = evaluation.make_env
    monkeypatch.setattr(evaluation, "make_env", lambda env_id, split, **kw: made.append(kw) or real(env_id, split, **kw))
    config = {"env": GOTO, "split": "train", "seed": 0, "algo": "ppo", "env_kwargs": {"size": 9}}
    monkeypatch.setattr(evaluate_runs_module, "load_run", lambda path, device: (RandomAgent(spaces.Discrete(7), 0), config, CHECKPOINT))
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--splits", "id,size/far", "--episodes", "2", "--backend", "minigrid") == 0
    assert made and all(kw == {"size": 9} for kw in made)  # (on the engine: tests/agents/test_engine_evaluation.py)
    assert "- env kwargs: size=9 (on every split" in (run_dir / "eval" / "results.md").read_text()


def test_runs_with_different_env_kwargs_are_refused(runs, monkeypatch, tmp_path, capsys):
    def load(path, device):
        kw = {"size": 9} if "big" in str(path) else {}
        return RandomAgent(spaces.Discrete(7), 0), {"env": GOTO, "seed": 0, "algo": "ppo", "env_kwargs": kw}, CHECKPOINT

    monkeypatch.setattr(evaluate_runs_module, "load_run", load)
    assert evaluate(runs("small"), runs("big", seed=1), "--out", tmp_path / "r", "--episodes", "1") == 2
    err = one_line_error(capsys)
    assert "a different env_kwargs" in err and "small (env_kwargs={})" in err and "big (env_kwargs={'size': 9})" in err


# -- SB3 .zip models saved by model.save ---------------------------------------------------------

@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory):
    """An SB3 PPO trained for 256 steps on shiftgrid's default view, saved with model.save."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from shiftgrid.agents.sb3.extractor import BabyAIExtractor
    from shiftgrid.envs.learner_env import make_env

    model = PPO("MultiInputPolicy", DummyVecEnv([lambda: make_env(GOTO)]), n_steps=64, batch_size=64, n_epochs=1, seed=0,
                device="cpu", policy_kwargs={"features_extractor_class": BabyAIExtractor, "normalize_images": False})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small network on a shared machine (as training does)
    try:
        model.learn(256)
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("zip") / "model.zip"
    model.save(path)
    return path


@pytest.fixture
def cli_only_evaluate(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("evaluate",))


def test_an_sb3_zip_evaluates_like_the_same_model_through_the_api(ppo_zip, cli_only_evaluate, tmp_path):
    from stable_baselines3 import PPO

    from shiftgrid.agents import evaluate_policy

    assert evaluate(ppo_zip, "--env", GOTO, "--episodes", "3", "--splits", "id") == 0
    doc = json.loads((ppo_zip.parent / "model-eval" / "results.json").read_text())
    assert doc["meta"]["algorithm"] == "ppo" and doc["runs"][0]["training"]["checkpoint"]["steps"] == 256
    ev = evaluate_policy(PPO.load(ppo_zip, device="cpu"), GOTO, "id", episodes=3, out=tmp_path / "api")
    api = json.loads((tmp_path / "api" / "results.json").read_text())
    assert doc["runs"][0]["episodes"] == api["runs"][0]["episodes"] and len(ev.results["id"]) == 3
    assert doc["summary"] == api["summary"]


def test_an_sb3_zip_scores_the_same_on_the_engine_and_on_the_minigrid_env(ppo_zip, cli_only_evaluate, tmp_path):
    docs = {}
    for backend in ("engine", "minigrid"):
        assert evaluate(ppo_zip, "--env", GOTO, "--episodes", "12", "--splits", "id,size/far", "--reference-episodes", "0",
                        "--backend", backend, "--out", tmp_path / backend) == 0
        docs[backend] = json.loads((tmp_path / backend / "results.json").read_text())
    assert docs["engine"]["meta"].pop("episodes ran on") == "the tensor engine (every split)"
    assert docs["minigrid"]["meta"].pop("episodes ran on") == "the minigrid env (every split)"
    assert docs["engine"] == docs["minigrid"]


@pytest.mark.parametrize("argv, message", [
    (["{zip}"], "pass --env ID"),
    (["{zip}", "--env", GOTO, "--wrapper", "flat"], r"expects observations Dict\('direction'.* gives Box\(0, 255, \(2835,\)"),
    (["{zip}", "--env", GOTO, "--wrapper", "pixels"], "unknown observation wrapper 'pixels'; valid: tokens, image, flat"),
    (["{zip}", "--env", GOTO, "--algo", "dqn"], "cannot be loaded as dqn"),
    (["{zip}", "--env", GOTO, "--splits", "size/huge"], "unknown split 'size/huge'"),
    (["{zip}", "--env", "shiftgrid/Nope-v0"], "unknown environment id"),
    (["{bad}", "--env", GOTO], "not an SB3 model saved by model.save"),
    (["{zip}", "{zip2}", "--env", GOTO], "--out"),
])
def test_bad_zip_input_prints_one_line_and_exits_2(ppo_zip, cli_only_evaluate, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    zip2 = tmp_path / "other.zip"
    zip2.write_bytes(ppo_zip.read_bytes())
    argv = [a.format(zip=ppo_zip, bad=bad, zip2=zip2) for a in argv]
    assert evaluate(*argv) == 2
    assert re.search(message, one_line_error(capsys))


def test_zip_flags_with_a_run_and_mixing_zips_with_runs_are_refused(runs, ppo_zip, tmp_path, capsys):
    run_dir = runs("goto-s0")
    assert evaluate(run_dir, "--env", GOTO) == 2
    assert "is for SB3 .zip models" in one_line_error(capsys)
    assert evaluate(run_dir, ppo_zip, "--env", GOTO, "--out", tmp_path / "r") == 2
    assert "cannot mix SB3 .zip models" in one_line_error(capsys)


@pytest.mark.parametrize("algo", ["ppo", "dqn", "recurrent-ppo"])
def test_the_algorithm_is_told_from_the_zip(algo, tmp_path):
    from shiftgrid.agents.sb3.build import sb3_algorithm
    from shiftgrid.agents.sb3.zip_model import zip_algorithm

    cls, _ = sb3_algorithm(algo)
    extra = {"buffer_size": 10} if algo == "dqn" else {}
    cls("MlpLstmPolicy" if algo == "recurrent-ppo" else "MlpPolicy", "CartPole-v1", device="cpu", **extra).save(tmp_path / "m.zip")
    assert zip_algorithm(tmp_path / "m.zip") == algo

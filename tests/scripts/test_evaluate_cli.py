"""``shiftgrid evaluate`` through the CLI entry point, with random agents standing in for checkpoints."""

import json

import pytest
import yaml
from gymnasium import spaces

import shiftgrid.scripts.cli as cli
import shiftgrid.scripts.evaluate_cmd as evaluate_cmd
from shiftgrid.agents.baselines import RandomAgent
from shiftgrid.agents.rundir import RunDir

GOTO = "shiftgrid/GoTo-v0"
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

    monkeypatch.setattr(evaluate_cmd, "load", load)

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
    a, b = runs("goto", env=GOTO), runs("pickup", env="shiftgrid/Pickup-v0")
    assert evaluate(a, b, "--out", tmp_path / "r", "--episodes", "1") == 2
    err = one_line_error(capsys)
    assert "shiftgrid/GoTo-v0" in err and "shiftgrid/Pickup-v0" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing-run"], "no such run directory"),
        (["{run}", "--splits", "size/huge"], "unknown split 'size/huge'"),
        (["{run}", "--splits", ","], "names no split"),
        (["{run}", "--episodes", "0"], "--episodes must be >= 1"),
        (["{run}", "{run2}"], "--out"),
        (["{run}", "{run}/checkpoints/best.pt", "--out", "x"], "same run"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(runs, capsys, argv, message):
    run_dir, run2 = runs("goto-s0"), runs("goto-s9", seed=9)
    argv = [a.format(run=run_dir, run2=run2) for a in argv]
    assert evaluate(*argv) == 2
    assert message in one_line_error(capsys)
    assert not (run_dir / "eval").exists()


@pytest.mark.parametrize("flag, deterministic, actions", [((), True, "most likely"), (("--stochastic",), False, "sampled")])
def test_stochastic_flag_reaches_the_agent_and_the_report(runs, monkeypatch, flag, deterministic, actions):
    asked = set()

    class Spy(RandomAgent):
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            asked.add(deterministic)
            return super().predict(obs, state, episode_start, deterministic)

    monkeypatch.setattr(evaluate_cmd, "load", lambda path, device: (Spy(spaces.Discrete(7), 0), {"env": GOTO, "seed": 0, "algo": "ppo"}, CHECKPOINT))
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

"""``shiftgrid wm evaluate``: end to end on tiny trained runs (wm train and Dreamer), and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from shiftgrid.agents.run.checkpoint import Checkpoint, save_checkpoint
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.scripts.cli import main
from shiftgrid.world_models.scoring import metric_names

GOTO = "shiftgrid/GoTo-v1"
FAST = ["--episodes", "2", "--context", "2", "--horizons", "1,3", "--n-envs", "2", "--no-progress"]


def train_run(root: Path, name: str, env: str = GOTO, seeds: str = "0", split: str | None = None,
              demos: Path | None = None) -> Path:
    """Tiny world-model runs trained by ``shiftgrid wm train`` in seconds (several seeds: ``<dir>/seed=<k>``)."""
    argv = ["wm", "train", "--model", "rssm", "--env", env, *(["--demos", str(demos)] if demos else
                                                             ["--policy", "oracle" if env == GOTO else "random"]),
            "--steps", "96", "--preset", "tiny", "--seed", seeds, "--n-envs", "2", "--device", "cpu",
            "--run-dir", str(root / name), "--no-progress", *(["--split", split] if split else []),
            "--set", "hyperparams.batch_size=2", "--set", "hyperparams.seq_len=8", "--set", "hyperparams.learning_starts=32",
            "--set", "hyperparams.train_ratio=1", "--set", "hyperparams.openloop_every=0"]
    assert main(argv) == 0
    return root / name


def train_dreamer(root: Path, name: str, seeds: str = "0,1") -> Path:
    """Tiny Dreamer runs on GoTo (``shiftgrid train --algo dreamer``, seconds; several seeds: ``<dir>/seed=<k>``)."""
    hp = {"preset": "tiny", "batch_size": 4, "seq_len": 8, "prefill": 32, "train_ratio": 4, "replay_capacity": 1000,
          "actor_critic.hidden": 32, "actor_critic.layers": 1}
    argv = ["train", "--algo", "dreamer", "--env", GOTO, "--steps", "64", "--seed", seeds, "--n-envs", "2", "--device", "cpu",
            "--run-dir", str(root / name), "--no-progress", "--set", "eval.freq=0",
            *(a for k, v in hp.items() for a in ("--set", f"hyperparams.{k}={v}"))]
    assert main(argv) == 0
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wm-runs")
    goto, dreamer = train_run(root, "goto", seeds="0,1"), train_dreamer(root, "dreamer")
    from shiftgrid.agents.imitation.datasets import write_demos

    demos = write_demos(root / "demos", GOTO, episodes=3, seed=0)
    return {"demos": train_run(root, "from-demos", demos=demos), "s0": goto / "seed=0", "s1": goto / "seed=1",
            "empty": train_run(root, "empty", env="MiniGrid-Empty-5x5-v0"), "far": train_run(root, "far", split="size/far"),
            "d0": dreamer / "seed=0", "d1": dreamer / "seed=1"}


def wm_evaluate(*argv: str, capsys) -> tuple[int, str, str]:
    code = main(["wm", "evaluate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_two_seeds_on_an_axis_give_the_shift_report(runs, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = wm_evaluate(str(runs["s0"]), str(runs["s1"]), "--splits", "id,size/near,size/far", "--out", str(out),
                                  *FAST, capsys=capsys)
    assert code == 0 and "# World-model shift report: `shiftgrid/GoTo-v1`" in stdout
    doc = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in doc["runs"]] == ["seed=0", "seed=1"] and [r["seed"] for r in doc["runs"]] == [0, 1]
    names = metric_names((1, 3))
    for r in doc["runs"]:
        assert list(r["metrics"]) == ["id", "size/near", "size/far"] and list(r["metrics"]["id"]) == names
        assert r["training"]["steps"] == 96
    size = doc["summary"]["axes"]["size"]
    assert list(size) == ["id", "near", "far", "gap_near", "gap_far"]
    cell = size["far"]["cell_accuracy@1"]
    assert len(cell["per_run"]) == 2 and cell["low"] <= cell["iqm"] <= cell["high"]
    gap = size["gap_far"]["obs_nll@3"]  # per-seed gaps are id - far of each run's own numbers
    assert gap["per_run"][0] == pytest.approx(doc["runs"][0]["metrics"]["id"]["obs_nll@3"]
                                              - doc["runs"][0]["metrics"]["size/far"]["obs_nll@3"])
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 2 * 3 * len(names) and set(csv["metric"]) == set(names)
    assert set(csv[csv["split"] == "size/far"]["level"]) == {"far"}
    md = (out / "results.md").read_text()
    assert "## size" in md and "| gap id − far |" in md and "changed-cell accuracy @3" in md
    assert "evaluation reset seeds: 0..1 on every split" in md and "- windows scored (k = 1/3): id " in md
    assert (out / "shift_changed_cell_accuracy_k1.png").stat().st_size > 0 and (out / "shift_obs_nll_k3.png").is_file()
    again, _, _ = wm_evaluate(str(runs["s0"]), str(runs["s1"]), "--splits", "id,size/near,size/far", "--out", str(out),
                              *FAST, capsys=capsys)
    assert again == 0 and json.loads((out / "results.json").read_text())["runs"] == doc["runs"]  # same seeds, same numbers


def test_breakdown_splits_each_models_errors_and_leaves_the_scores_as_they_were(runs, tmp_path, capsys):
    """--breakdown plays the same episodes (the pose is only added for the analysis): results.json is unchanged, and the
    breakdown's counts add up (every changed cell is knowable or novel, of one true type, after one action)."""
    plain, broken = tmp_path / "plain", tmp_path / "broken"
    assert wm_evaluate(str(runs["s0"]), "--splits", "id,size/far", "--out", str(plain), *FAST, capsys=capsys)[0] == 0
    code, stdout, _ = wm_evaluate(str(runs["s0"]), "--splits", "id,size/far", "--out", str(broken), "--breakdown", *FAST,
                                  capsys=capsys)
    assert code == 0 and "breakdown.json, breakdown.md" in stdout
    assert json.loads((broken / "results.json").read_text())["runs"] == json.loads((plain / "results.json").read_text())["runs"]
    tables = json.loads((broken / "breakdown.json").read_text())["seed=0"]
    assert list(tables) == ["id", "size/far"]
    for table in tables.values():
        assert list(table) == ["1", "3"]
        one = table["1"]
        types = one["by_type"].values()
        knowable, novel = sum(t["knowable"] for t in types), sum(t["novel"] for t in types)
        assert knowable + novel > 0 and one["novel_share"] == pytest.approx(novel / (knowable + novel))
        assert sum(a["windows"] for a in one["by_action"].values()) == one["windows"]
        assert "unseen" not in {k for k, t in one["by_type"].items() if t["novel"]}  # an unseen cell is never novel
    md = (broken / "breakdown.md").read_text()
    assert "## By the action that led into the scored frame" in md and "| seed=0 | size/far | 1 |" in md


def test_one_run_of_an_id_without_splits_reports_into_its_run_dir(runs, capsys):
    code, stdout, _ = wm_evaluate(str(runs["empty"] / "checkpoints" / "latest.pt"), *FAST, capsys=capsys)
    assert code == 0
    doc = json.loads((runs["empty"] / "eval" / "results.json").read_text())
    assert list(doc["runs"][0]["metrics"]) == ["id"] and doc["summary"]["axes"] == {}
    assert "evaluation reset seeds: 1000000000..1000000001" in stdout


@pytest.mark.training
def test_dreamer_runs_are_scored_each_on_the_episodes_its_own_agent_plays(runs, tmp_path, capsys):
    both, alone = tmp_path / "both", tmp_path / "alone"
    argv = ["--splits", "id,layout/near", *FAST]  # 7x7 and 8x8 rooms: short episodes of an untrained agent
    code, stdout, _ = wm_evaluate(str(runs["d0"]), str(runs["d1"]), "--out", str(both), *argv, capsys=capsys)
    assert code == 0 and "# World-model shift report: `shiftgrid/GoTo-v1`" in stdout
    assert ("- behaviour: each run's own Dreamer agent (its actor through predict, most likely actions, "
            "as shiftgrid evaluate plays it)") in stdout
    assert "- episodes per split: 2 per run (each run's agent plays its own, on the same reset seeds)" in stdout
    assert "- windows scored (k = 1/3): seed=0: id " in stdout and "; seed=1: id " in stdout
    doc = json.loads((both / "results.json").read_text())
    assert [r["name"] for r in doc["runs"]] == ["seed=0", "seed=1"] and doc["runs"][0]["training"]["steps"] == 64
    assert list(doc["runs"][1]["metrics"]) == ["id", "layout/near"]
    assert list(doc["runs"][1]["metrics"]["id"]) == metric_names((1, 3)) and "layout" in doc["summary"]["axes"]
    # seed1 in the joint report is scored on its own agent's episodes: the same numbers as seed1 alone
    assert wm_evaluate(str(runs["d1"]), "--out", str(alone), *argv, capsys=capsys)[0] == 0
    assert json.loads((alone / "results.json").read_text())["runs"][0]["metrics"] == doc["runs"][1]["metrics"]
    code, stdout, _ = wm_evaluate(str(runs["d0"]), "--stochastic", *FAST, "--splits", "id", capsys=capsys)
    assert code == 0 and "- behaviour: the run's own Dreamer agent (its actor through predict, actions sampled" in stdout
    own = runs["d0"] / "eval"  # one Dreamer run: beside (not over) its agent's report from shiftgrid evaluate
    assert (own / "world_model" / "results.md").is_file() and not (own / "results.json").exists()


def test_a_model_trained_from_demonstrations_is_played_by_the_demonstrator_or_the_behaviour_chosen(runs, tmp_path, capsys):
    argv = [str(runs["demos"]), "--splits", "id", *FAST]
    code, stdout, _ = wm_evaluate(*argv, "--out", str(tmp_path / "own"), capsys=capsys)
    assert code == 0 and "- behaviour: oracle, no random actions: the demonstrator" in stdout
    assert "trained from the demonstrations in " in stdout and "choose another with --behaviour" in stdout
    code, stdout, _ = wm_evaluate(*argv, "--behaviour", "random", "--out", str(tmp_path / "random"), capsys=capsys)
    assert code == 0 and "- behaviour: random, chosen with --behaviour" in stdout
    own, random = (json.loads((tmp_path / d / "results.json").read_text())["runs"][0]["metrics"]["id"] for d in ("own", "random"))
    assert own != random  # other episodes were played
    code, stdout, _ = wm_evaluate(*argv, "--behaviour", str(runs["d0"]), "--stochastic", "--out", str(tmp_path / "agent"),
                                  capsys=capsys)
    assert code == 0 and f"- behaviour: the trained agent {runs['d0']} (actions sampled from its policy), chosen" in stdout


def test_shiftgrid_evaluate_of_a_world_model_run_points_to_wm_evaluate(runs, capsys):
    assert main(["evaluate", str(runs["s0"]), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"score it with: shiftgrid wm evaluate {runs['s0']}" in err, err


def _agent_run(root: Path) -> Path:
    run = root / "ppo-run"
    save_checkpoint(Checkpoint("ppo", TrainConfig(run_dir=str(run)).to_dict(), {}), run / "checkpoints" / "latest.pt")
    return run


@pytest.mark.parametrize("case, expected", [
    ("agent", "is a checkpoint of learner 'ppo', not a world model"),
    ("empty-dir", "no checkpoints/latest.pt in"),
    ("missing", "no such run directory or checkpoint"),
    ("envs", "runs with a different env cannot be summarised together"),
    ("same", "are the same run"),
    ("no-out", "2 runs given: pass --out DIR"),
    ("split", "unknown split"),
    ("horizon", "--horizons '0,5' must be comma-separated integers >= 1"),
    ("context", "--context must be >= 1, got 0"),
    ("trained-there", "was trained on size/far, so its levels there may be training levels"),
    ("cuda", "asked for, but this torch sees no CUDA device"),
    ("mixed", "runs with a different algo cannot be summarised together"),
    ("stochastic", "--stochastic samples a Dreamer agent's actions"),
    ("behaviour", "unknown policy 'greedy'; valid: random, oracle"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, case, expected):
    s0, out = str(runs["s0"]), ["--out", str(tmp_path / "out")]
    argv = {
        "agent": [str(_agent_run(tmp_path))],
        "empty-dir": [str(tmp_path)],
        "missing": [str(tmp_path / "nothing")],
        "envs": [s0, str(runs["empty"]), *out],
        "same": [s0, str(runs["s0"] / "checkpoints" / "latest.pt"), *out],
        "no-out": [s0, str(runs["s1"])],
        "split": [s0, "--splits", "id,size/huge"],
        "horizon": [s0, "--horizons", "0,5"],
        "context": [s0, "--context", "0"],
        "trained-there": [str(runs["far"]), "--splits", "id,size/far"],
        "cuda": [s0, "--device", "cuda"],
        "mixed": [s0, str(runs["d0"]), *out],
        "stochastic": [s0, "--stochastic"],
        "behaviour": [s0, "--behaviour", "greedy"],
    }[case]
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, stdout, err = wm_evaluate(*argv, "--episodes", "1", "--no-progress", capsys=capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("shiftgrid wm evaluate: error: ") and not stdout
    assert not (tmp_path / "out").exists()


def test_the_command_module_does_not_import_torch():
    code = "import sys, shiftgrid.scripts.wm_evaluate_cmd; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"

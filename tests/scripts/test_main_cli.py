"""``shiftgrid main`` end to end: a tiny real training run, loaded back and evaluated on every split."""

import json

import pytest

from shiftgrid.scripts.cli import main


@pytest.mark.training
def test_main_trains_evaluates_and_points_to_the_report(tmp_path, capsys):
    run_dir = tmp_path / "main"
    assert main(["main", "--steps", "512", "--episodes", "3", "--reference-episodes", "2", "--run-dir", str(run_dir),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "3 episodes each (references: 2 of the same levels)" in out
    assert f"shift report: {run_dir / 'eval' / 'results.md'}" in out
    assert f"tensorboard --logdir {run_dir}" in out
    doc = json.loads((run_dir / "eval" / "results.json").read_text())
    assert doc["references"]["episodes"] == 2
    evaluated = set(doc["runs"][0]["metrics"])
    assert {"id", "size/far", "composition/near", "observation/far"} <= evaluated
    assert (run_dir / "checkpoints" / "latest.pt").exists() and (run_dir / "config.yaml").exists()


def test_main_rejects_bad_numbers(capsys):
    assert main(["main", "--steps", "0"]) == 2
    assert "--steps and --episodes must be >= 1" in capsys.readouterr().err
    assert main(["main", "--reference-episodes", "-1"]) == 2
    assert "--reference-episodes must be >= 0 (0: no references), got -1" in capsys.readouterr().err


def test_main_forced_on_the_engine_where_it_cannot_evaluate_is_refused_before_training(tmp_path, capsys):
    code = main(["main", "--env", "shiftgrid/DoorKey-v1", "--backend", "engine", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "slips" in err[0] and not (tmp_path / "run").exists()

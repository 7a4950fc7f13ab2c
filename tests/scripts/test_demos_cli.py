"""``shiftgrid demos``: a Minari dataset from the command line; bad input is one line and exit 2."""

from __future__ import annotations

import pytest

from shiftgrid.agents.imitation.datasets import read_episodes
from shiftgrid.scripts.cli import main


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def status(argv: list[str]) -> int:
    """The exit status of ``shiftgrid ARGV`` (argparse exits; commands return)."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.training
def test_writes_a_dataset_bc_trains_from(tmp_path, capsys):
    out = tmp_path / "demos"
    assert main(["demos", "--env", "shiftgrid/GoTo-v1", "--episodes", "3", "--seed", "7", "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "recorded on the engine" in said  # auto's choice on a shiftgrid id whose levels do not slip
    assert "3 demonstrations" in said and "shiftgrid/GoTo/demos-train-v0" in said and f"MINARI_DATASETS_PATH={out}" in said
    episodes = list(read_episodes(out, env_id="shiftgrid/GoTo-v1", split="train"))
    assert [e.seed for e in episodes] == [7, 8, 9] and all(e.success for e in episodes)
    run = tmp_path / "bc"
    assert main(["train", "--algo", "bc", "--demos", str(out), "--steps", "32", "--run-dir", str(run), "--no-progress",
                 "--device", "cpu", "--set", "eval.freq=0"]) == 0
    assert (run / "teacher" / "cost.json").is_file()


def test_babyai_levels_use_the_bot(tmp_path, capsys):
    out = tmp_path / "babyai"
    assert main(["demos", "--env", "BabyAI-GoToRedBallNoDists-v0", "--episodes", "2", "--out", str(out), "--no-progress"]) == 0
    assert [e.success for e in read_episodes(out, env_id="BabyAI-GoToRedBallNoDists-v0")] == [True, True]


@pytest.mark.parametrize("args, says", [
    (["--env", "shiftgrid/Nope-v0", "--episodes", "2"], "unknown environment id 'shiftgrid/Nope-v0'"),
    (["--env", "shiftgrid/GoTo-v1", "--episodes", "0"], "--episodes must be >= 1, got 0"),
    (["--env", "shiftgrid/GoTo-v1", "--episodes", "two"], "argument --episodes: invalid int value: 'two'"),
    (["--env", "shiftgrid/GoTo-v1", "--episodes", "2", "--split", "nowhere"], "nowhere"),
    (["--env", "BabyAI-GoToLocal-v0", "--episodes", "2", "--split", "size/far"], "has no splits"),
    (["--episodes", "2"], "the following arguments are required: --env"),
    (["--env", "BabyAI-GoToLocal-v0", "--episodes", "2", "--backend", "engine"],
     "--backend engine replays the exact oracle's plans of shiftgrid ids; BabyAI-GoToLocal-v0 is not one"),
    (["--env", "shiftgrid/DoorKey-v1", "--split", "rules/far", "--episodes", "2", "--backend", "engine"],
     "split rules/far of shiftgrid/DoorKey-v1 has levels that slip"),
    (["--env", "shiftgrid/GoTo-v1", "--episodes", "2", "--workers", "0"], "--workers must be >= 1, got 0"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, says):
    assert status(["demos", *args, "--out", str(tmp_path / "d"), "--no-progress"]) == 2
    assert says in one_error_line(capsys)
    assert not (tmp_path / "d").exists()


def test_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    assert main(["demos", "--env", "shiftgrid/GoTo-v1", "--episodes", "1", "--out", str(out), "--no-progress"]) == 2
    assert "already exists; datasets are never overwritten" in one_error_line(capsys)
    assert not any(out.iterdir())


def test_auto_records_a_slipping_split_in_the_minigrid_env(tmp_path, capsys):
    out = tmp_path / "far"
    assert main(["demos", "--env", "shiftgrid/DoorKey-v1", "--split", "rules/far", "--episodes", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert "recorded on the minigrid env" in capsys.readouterr().out

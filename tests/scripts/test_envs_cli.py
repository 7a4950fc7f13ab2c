"""The environment-side commands: `shiftgrid envs`, `check` and `benchmark envs`."""

import subprocess
import sys

import pytest

import shiftgrid.envs
from shiftgrid.scripts.cli import main


def test_envs_lists_every_registered_id_and_split(capsys):
    assert main(["envs", "--splits"]) == 0
    out = capsys.readouterr().out
    for env_id in shiftgrid.envs.registered_ids("shiftgrid"):
        assert f"`{env_id}`" in out
        for name in shiftgrid.envs.splits_for(env_id):
            if name not in ("train",) and not name.endswith("/id"):
                assert f"`{name}`" in out


def test_envs_random_policy_measures_every_split_once(capsys):
    assert main(["envs", "--random-policy", "--env", "shiftgrid/Maze-v1", "--episodes", "5"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| `shiftgrid/Maze-v1`")]
    splits = shiftgrid.envs.splits_for("shiftgrid/Maze-v1")
    assert [r.split("|")[2].strip(" `") for r in rows] == ["train", *splits.test_splits()]
    assert "first 5 levels of every split" in out
    limits = {int(x) for x in rows[0].split("|")[3].split("-")}
    assert limits <= {4 * s * s for s in (9, 10, 11)}  # Maze-v1's training split: 4 * size**2, sizes 9-11


def test_check_replays_oracle_plans(capsys, monkeypatch):
    import shiftgrid.scripts.check_cmd as check_cmd

    bars = []

    class Recorded(check_cmd.tqdm):
        def close(self):
            bars.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(check_cmd, "tqdm", Recorded)
    assert main(["check", "shiftgrid/GoTo-v1", "--levels", "3"]) == 0
    out = capsys.readouterr().out
    assert "all oracle plans succeeded" in out
    assert "size/far" in out
    rows = [line for line in out.splitlines() if line.startswith("shiftgrid/GoTo-v1 ")]
    assert set(bars) == {(len(rows), len(rows))}  # one step per checked split: the bar ends at 100%


def test_benchmark_prints_ratio(capsys):
    assert main(["benchmark", "envs", "--families", "GoTo", "--steps", "300", "--repeats", "1", "--resets", "5"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("GoTo"))
    ratio = float(line.split()[4].rstrip("x"))
    assert ratio > 0


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["benchmark", "envs", "--families", "Nope"], "unknown families ['Nope']; valid:"),
        (["check", "shiftgrid/Nope-v0"], "unknown shiftgrid environment 'shiftgrid/Nope-v0'; valid:"),
        (["check", "--levels", "0"], "--levels must be >= 1, got 0"),
        (["envs", "--episodes", "5"], "--episodes go with --random-policy"),
        (["envs", "--random-policy", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["envs", "--random-policy", "--env", "shiftgrid/Nope-v1"], "unknown shiftgrid ids ['shiftgrid/Nope-v1']; valid:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, expected):
    proc = subprocess.run([sys.executable, "-m", "shiftgrid.scripts.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_help_lists_subcommands():
    proc = subprocess.run([sys.executable, "-m", "shiftgrid.scripts.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for cmd in ("envs", "check", "benchmark", "train", "evaluate"):
        assert cmd in proc.stdout

"""`shiftgrid bank build`, `bank info` and `benchmark engine`: banks built, cached, described; the benchmark's ratios and goals; bad input one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from shiftgrid.scripts.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTGRID_CACHE", str(tmp_path / "cache"))


def test_build_then_reuse_then_describe(capsys, tmp_path):
    argv = ["bank", "build", "--env", "shiftgrid/DoorKey-v1", "--split", "rules/far", "--count", "8", "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shiftgrid/DoorKey-v1 split rules/far (splits version" in out and ": 8 levels" in out
    assert "built in" in out and "exact on" in out
    files = list((tmp_path / "cache" / "banks").glob("*.npz"))
    assert len(files) == 1
    assert main(argv) == 0
    assert "already built: loaded" in capsys.readouterr().out
    assert main(["bank", "info", str(files[0])]) == 0
    assert ": 8 levels" in capsys.readouterr().out


def test_build_to_a_path_and_rebuild(capsys, tmp_path):
    out = tmp_path / "goto.npz"
    assert main(["bank", "build", "--env", "shiftgrid/GoTo-v1", "--count", "5", "--workers", "1", "--out", str(out)]) == 0
    assert out.exists() and not list(tmp_path.glob("*.tmp"))
    stamp = os.path.getmtime(out)
    assert main(["bank", "build", "--env", "shiftgrid/GoTo-v1", "--count", "5", "--workers", "1", "--out", str(out),
                 "--rebuild"]) == 0
    assert "built in" in capsys.readouterr().out and os.path.getmtime(out) >= stamp


def _shiftgrid(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "shiftgrid.scripts.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a bank")
    old = tmp_path / "old.npz"
    assert main(["bank", "build", "--env", "shiftgrid/GoTo-v1", "--count", "3", "--workers", "1", "--out", str(old)]) == 0
    with np.load(old) as data:
        rows = {k: data[k] for k in data.files}
    meta = {**json.loads(bytes(rows.pop("__meta__")).decode()), "splits_version": 0}
    with open(old, "wb") as f:
        np.savez_compressed(f, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **rows)
    cases = [
        (["bank", "build", "--env", "shiftgrid/Nope-v0"], "the tensor engine cannot run 'shiftgrid/Nope-v0'; it runs:"),
        (["bank", "build", "--env", "shiftgrid/GoTo-v1", "--split", "size/nope"], "unknown split 'size/nope' for GoTo; valid:"),
        (["bank", "build", "--env", "shiftgrid/GoTo-v1", "--count", "0"], "--count must be >= 1, got 0"),
        (["bank", "build"], "bank build needs --env ID"),
        (["bank", "info", str(corrupt)], f"bank {corrupt} is corrupt or not a bank"),
        (["bank", "info", str(old)], "splits version 0; the splits are now version"),
        (["bank", "build", "--env", "shiftgrid/GoTo-v1", "--count", "3", "--out", str(old)], "splits version 0"),
    ]
    for argv, expected in cases:
        done = _shiftgrid(*argv, env={"SHIFTGRID_CACHE": str(tmp_path / "cache")})
        assert done.returncode == 2, (argv, done.stderr)
        assert expected in done.stderr, (argv, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
    assert not list((tmp_path / "cache").glob("**/*.npz"))  # nothing half-written


def test_benchmark_engine_prints_ratios_and_goals(capsys):
    assert main(["benchmark", "engine", "--families", "GoTo", "--batches", "32,64", "--compile-batches", "none",
                 "--repeats", "1", "--steps", "200", "--bank-size", "20"]) == 0
    out = capsys.readouterr().out
    assert "1 torch thread(s)" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("GoTo ") and " eager " in line]
    assert [int(r[2]) for r in rows] == [32, 64]
    assert all(float(r[5].rstrip("x")) > 0 for r in rows)  # vs minigrid, measured in this run
    goals = [line for line in out.splitlines() if line.strip().startswith("GoTo") and ">=" in line or "reset <=" in line]
    assert len(goals) == 3
    assert any("compiled >= 300x" in g and "not measured" in g for g in goals)
    assert all(("REACHED" in g) or ("NOT reached" in g) or ("not measured" in g) for g in goals)


@pytest.mark.parametrize("argv, expected", [
    (["--batches", "0"], "--batches expects comma-separated integers >= 1"),
    (["--device", "tpu"], "device='tpu' is not"),
    (["--families", "Nope"], "unknown families ['Nope']"),
])
def test_benchmark_engine_bad_input(argv, expected):
    done = _shiftgrid("benchmark", "engine", *argv)
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr

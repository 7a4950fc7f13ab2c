"""`shiftgrid benchmark world-model`: one row per model and preset with the ratio to the env; bad input (no timing)."""

from __future__ import annotations

import pytest
import torch

from shiftgrid.scripts.cli import main

TINY = ["--presets", "tiny", "--batch", "8", "--horizon", "2", "--train-batch", "2x4", "--steps", "100",
        "--repeats", "1", "--device", "cpu", "--threads", "1", "--env", "MiniGrid-Empty-5x5-v0"]


def test_world_model_benchmark_prints_a_row_per_model(capsys):
    assert main(["benchmark", "world-model", "--models", "rssm,transformer", *TINY]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("rssm ", "transformer "))}
    assert set(rows) == {"rssm", "transformer"}
    for cells in rows.values():
        assert cells[1] == "tiny" and float(cells[-1].rstrip("x")) > 0
    assert "batch 8 x horizon 2" in out and "2 x 4" in out


@pytest.mark.parametrize("argv, expected", [
    (["--models", "lstm"], "unknown --models ['lstm']; valid: rssm, transformer, mechanism"),
    (["--presets", "huge"], "unknown world-model preset 'huge'; valid: tiny, small, medium, large"),
    (["--train-batch", "16by64"], "--train-batch must look like 16x64, got '16by64'"),
    (["--batch", "0"], "must be >= 1"),
    (["--threads", "0"], "must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, expected, capsys):
    assert main(["benchmark", "world-model", *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_asked_for_but_absent(capsys):
    assert main(["benchmark", "world-model", "--device", "cuda"]) == 2
    assert "device 'cuda' asked for, but this torch sees no CUDA device" in capsys.readouterr().err

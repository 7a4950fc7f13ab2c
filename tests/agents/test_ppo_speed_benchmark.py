"""``shiftgrid benchmark ppo``: the verdict on each goal, and its one-line refusals."""

import pytest

from shiftgrid.agents.benchmarks.ppo_speed import Row, table
from shiftgrid.scripts.cli import main


def test_each_goal_is_judged_on_both_clocks():
    rows = [Row("ppo", "babyai", 8192, 300.0, 1000.0),
            Row("tensor-ppo (cheap)", "cheap", 32768, 4800.0, 16000.0, 16.0, 16.0),
            Row("tensor-ppo (babyai)", "babyai", 32768, 330.0, 1500.0, 1.1, 1.5)]
    lines = table(rows).splitlines()
    assert lines[1].rstrip().endswith("1.0x")  # the reference has no goal
    assert lines[2].endswith(">= 15x: reached")
    assert lines[3].endswith(">= 1.3x: reached per CPU-s only")
    slow = Row("tensor-ppo (cheap)", "cheap", 32768, 3000.0, 9000.0, 10.0, 9.0)
    assert table([rows[0], slow]).splitlines()[2].endswith(">= 15x: not reached")


@pytest.mark.parametrize("argv,message", [
    (["--networks", "resnet"], "unknown --networks ['resnet']; valid: cheap, babyai"),
    (["--tensor-steps", "10"], "--reference-steps and --tensor-steps must be >= 1024"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["benchmark", "ppo", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]

"""Start-up: ``--help`` and bad input answer without importing torch, SB3, matplotlib or Ray.

Those imports cost seconds; the command line imports them only when a command runs. The check
is on what is imported (``sys.modules`` after the call), not on a timing; the time itself is
measured by farm-bench (docs/benchmarks.md).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "stable_baselines3", "matplotlib", "ray")

PROBE = """
import sys
from shiftgrid.scripts.cli import main
try:
    code = main({args!r})
except SystemExit as e:
    code = e.code
print("HEAVY", [m for m in {heavy!r} if m in sys.modules], "CODE", code)
"""


def _probe(args: list[str]) -> tuple[list[str], object]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True,
                         timeout=120).stdout
    line = next(x for x in out.splitlines() if x.startswith("HEAVY"))
    heavy, code = line[len("HEAVY "):].split(" CODE ")
    return eval(heavy), code.strip()


@pytest.mark.parametrize("command", [["train"], ["evaluate"], ["sweep"], ["main"], ["demos"], ["check"], ["envs"],
                                     ["benchmark"], ["wm", "train"], ["wm", "evaluate"]])
def test_help_imports_nothing_heavy(command):
    heavy, code = _probe([*command, "--help"])
    assert heavy == [] and code == "0", (command, heavy, code)


def test_bad_input_answers_before_anything_heavy():
    heavy, code = _probe(["train", "--algo", "nope"])
    assert code == "2" and heavy == [], heavy

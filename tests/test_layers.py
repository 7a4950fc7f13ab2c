"""Imports go one way, envs < world_models < agents < scripts, and no package's modules import each other in a loop.

The contracts are import-linter's, declared in pyproject.toml (``[tool.importlinter]``); this test
runs ``lint-imports`` on them, so ``make test`` fails on an import that breaks a layer or closes a
loop, and prints which import does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> str:
    here = Path(sys.executable).parent / "lint-imports"
    found = str(here) if here.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (it is in the [dev] extra)")
    return found


def test_the_import_contracts_hold():
    done = subprocess.run([lint_imports(), "--no-cache", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout

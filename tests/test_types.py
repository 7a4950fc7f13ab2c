"""mypy finds no type error in the package, checked under its installed names (``shiftgrid.*``).

The configuration is pyproject's ``[tool.mypy]``. pyproject maps folders to packages (``envs/`` is
``shiftgrid.envs``) and mypy cannot follow setuptools' editable-install hooks, so this test links
each mapped folder into ``.mypy_cache/tree/shiftgrid/`` and runs ``mypy -p shiftgrid`` with that
tree on its path; the failure message names the real files (``envs/env.py:12: error: ...``).
Run it alone with ``.venv/bin/python -m pytest -q tests/test_types.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".mypy_cache" / "tree"


def link_package_tree() -> dict[str, Path]:
    """Link every top-level subpackage's folder under ``TREE/shiftgrid``; return the links and their folders."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    links = {}
    for package, folder in mapping.items():
        parts = package.split(".")
        if len(parts) != 2:
            # nested packages must sit in their parent's folder, so the parent's link covers them
            assert Path(mapping[".".join(parts[:-1])], parts[-1]) == Path(folder), f"{package} -> {folder}"
            continue
        link = TREE / "shiftgrid" / parts[1]
        target = os.path.relpath(ROOT / folder, link.parent)
        if not (link.is_symlink() and os.readlink(link) == target):
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            link.symlink_to(target, target_is_directory=True)
        links[str(link.relative_to(ROOT)) + "/"] = Path(folder)
    return links


def test_mypy_finds_no_type_error() -> None:
    links = link_package_tree()
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    report = done.stdout + done.stderr
    for link, folder in links.items():
        report = report.replace(link, f"{folder}/")
    if done.returncode != 0 or not report.startswith("Success: no issues found"):
        pytest.fail(report, pytrace=False)

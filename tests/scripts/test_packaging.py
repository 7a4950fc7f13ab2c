"""Every subpackage folder is listed in pyproject.toml, so a non-editable ``pip install .`` ships it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {Path(d) for d in setup["package-dir"].values()}
    top = {d for d in folders if len(d.parts) == 1}
    found = {p.parent.relative_to(ROOT) for d in top for p in (ROOT / d).rglob("__init__.py")}
    assert found - folders == set(), "add these folders to package-dir and packages in pyproject.toml"
    assert set(setup["packages"]) == set(setup["package-dir"])

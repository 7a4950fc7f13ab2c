"""The base install (no ``[agents]`` extra): environment commands work, learner commands name the extra.

The CLI runs in a fresh interpreter where importing torch, stable_baselines3, sb3_contrib or minari
fails as it does when they are not installed.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "stable_baselines3", "sb3_contrib", "minari", "h5py")

RUNNER = textwrap.dedent(
    f"""
    import contextlib, io, json, sys
    import importlib.abc

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    from shiftgrid.scripts.cli import main

    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
        results.append({{"code": code, "out": out.getvalue(), "err": err.getvalue()}})
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({BLOCKED!r}))
    print(json.dumps({{"results": results, "loaded": loaded}}))
    """
)

ENV_COMMANDS = [
    ["envs"],
    ["check", "shiftgrid/GoTo-v1", "--levels", "1"],
    ["benchmark", "envs", "--families", "GoTo", "--steps", "100", "--resets", "2", "--repeats", "1"],
    ["--version"],
]
LEARNER_COMMANDS = [
    ["train", "--algo", "ppo", "--steps", "64"],
    ["evaluate", "runs/nothing", "--episodes", "2"],
    ["main", "--steps", "64"],
    ["sweep", str(ROOT / "scripts" / "sweeps" / "ppo-goto.yaml")],
    ["wm", "train", "--steps", "64"],
    ["wm", "evaluate", "runs/nothing"],
    ["demos", "--env", "shiftgrid/GoTo-v1", "--episodes", "1", "--out", "demos"],
    ["benchmark", "world-model", "--presets", "tiny"],
]


@pytest.fixture(scope="module")
def base_install(tmp_path_factory):
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(ENV_COMMANDS + LEARNER_COMMANDS)],
                          cwd=tmp_path_factory.mktemp("base"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_extras_are_really_blocked(base_install):
    assert base_install["loaded"] == []


def test_environment_commands_work(base_install):
    envs, check, bench, version = base_install["results"][: len(ENV_COMMANDS)]
    for r in (envs, check, bench, version):
        assert r["code"] == 0 and "Traceback" not in r["err"], r
    assert "`shiftgrid/GoTo-v1`" in envs["out"] and "`shiftgrid/Sequence-v1`" in envs["out"]
    assert "all oracle plans succeeded" in check["out"]
    assert "GoTo" in bench["out"] and "ratio" in bench["out"]
    assert version["out"].strip() == f"shiftgrid {importlib.metadata.version('shiftgrid')}"


@pytest.mark.parametrize("i", range(len(LEARNER_COMMANDS)), ids=["-".join(Path(a).name for a in c[:2]) for c in LEARNER_COMMANDS])
def test_learner_commands_name_the_extra_in_one_line(base_install, i):
    r = base_install["results"][len(ENV_COMMANDS) + i]
    lines = r["err"].strip().splitlines()
    assert r["code"] == 2 and len(lines) == 1 and "Traceback" not in r["err"], r
    assert lines[0].endswith("pip install 'shiftgrid[agents]'") and "needs the learner extra (no module " in lines[0]

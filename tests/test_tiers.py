"""The test tiers: markers are registered, the slow reasons imply ``slow``, ``make test-fast`` leaves
out the slow and gpu tests, and gpu tests are skipped with the reason where there is no CUDA."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_root_conftest():
    """The root conftest.py (the doctest rules and the gpu hook), loaded apart from pytest's copy."""
    spec = importlib.util.spec_from_file_location("shiftgrid_test_tiers", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiers = _load_root_conftest()

#: A module whose doctest calls train(...), and one whose doctests do not.
TRAINING_DOCTEST = "agents/run/train.py"
PLAIN_DOCTESTS = "envs/keywords.py"
#: Tests marked ``levels`` among others that are not.
LEVEL_SWEEPS = "tests/envs/test_solvability.py"
FAST = "not slow and not gpu"


def registered_markers() -> dict[str, str]:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return dict(m.split(":", 1) for m in ini["markers"])


#: Runs ``pytest --collect-only`` once per argument list (argv[1], JSON) in one interpreter, so torch and
#: the package are imported once; prints each selection's node ids under a line of its own.
COLLECT = """
import json, sys
import pytest
for args in json.loads(sys.argv[1]):
    print("=== selection", flush=True)
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *args])
    assert code in (0, 5), (args, code)  # 5: every test deselected
"""


def collect(*selections: list[str]) -> list[list[str]]:
    """The node ids pytest collects for each list of arguments (in a subprocess, from the repository root)."""
    done = subprocess.run([sys.executable, "-c", COLLECT, json.dumps(selections)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    parts = done.stdout.split("=== selection\n")[1:]
    assert len(parts) == len(selections), done.stdout
    return [[ln for ln in part.splitlines() if "::" in ln] for part in parts]


def test_every_tier_is_registered_with_why_and_strict_markers_are_on():
    markers = registered_markers()
    assert {"slow", "training", "levels", "gpu"} <= markers.keys()
    assert all(len(why.split()) >= 5 for why in markers.values())  # each says why
    assert set(tiers.REASONS) <= markers.keys() and all("implies slow" in markers[r] for r in tiers.REASONS)
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in ini["addopts"].split()  # a misspelt marker is an error, not a silent no-op


def test_makefile_targets_select_the_tiers():
    makefile = (ROOT / "Makefile").read_text()
    recipe = lambda target: re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)  # noqa: E731
    assert "-m" not in recipe("test").split("pytest", 1)[1].split()  # the complete suite
    assert f'-m "{FAST}"' in recipe("test-fast")
    assert "shiftgrid.scripts.gpu_check" in recipe("gpu-check")


def test_training_doctests_and_level_sweeps_are_slow_and_test_fast_leaves_them_and_gpu_tests_out():
    paths = [TRAINING_DOCTEST, PLAIN_DOCTESTS, "tests/world_models/test_cuda.py", LEVEL_SWEEPS]
    everything, training, levels, slow, gpu, fast = collect(
        paths, [*paths, "-m", "training"], [*paths, "-m", "levels"], [*paths, "-m", "slow"], [*paths, "-m", "gpu"],
        [*paths, "-m", FAST])
    assert training == [f"{TRAINING_DOCTEST}::agents.run.train"]  # marked by conftest.py: it calls train(...)
    assert levels and all(n.startswith(f"{LEVEL_SWEEPS}::test_generated_levels") for n in levels)
    assert slow == training + levels  # each reason implies slow
    assert len(gpu) >= 4 and all("test_cuda.py" in n for n in gpu)
    plain = [n for n in everything if n.startswith(PLAIN_DOCTESTS)]
    assert plain and all(n in fast for n in plain)  # the plain doctests stay in the inner loop
    assert fast == [n for n in everything if n not in slow + gpu] and len(fast) < len(everything)


@pytest.mark.skipif(tiers.gpu_skip_reason() is None, reason="CUDA is present here: the gpu tests run")
def test_gpu_tests_are_skipped_with_the_reason_without_cuda():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "gpu",
                           "tests/world_models/test_cuda.py"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    skips = [ln for ln in done.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert skips and all(tiers.gpu_skip_reason() in ln for ln in skips)
    assert re.search(r"\b\d+ skipped\b", done.stdout) and "passed" not in done.stdout

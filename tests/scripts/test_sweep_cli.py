"""``shiftgrid sweep``: tiny grids of the tabular test learner, locally and on a local Ray; failures, Ctrl-C, resume."""

import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from shiftgrid.agents.run.registry import learner_names, unregister_learner
from shiftgrid.agents.run.rundir import SweepDir
from shiftgrid.scripts.cli import main

LEARNER_DIR = Path(__file__).parents[1] / "agents"  # tabular_learner.py
BASE = {"algo": "tabular", "env": "MiniGrid-Empty-5x5-v0", "steps": 3000,
        "set": ["eval={freq: 1000, episodes: 3, n_envs: 1}", "checkpoint_freq=500"]}


@pytest.fixture
def tabular(monkeypatch):
    """The sweep registers ``tabular`` (its ``learners:``) here and in every point's process (through PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(LEARNER_DIR))
    monkeypatch.setenv("PYTHONPATH", str(LEARNER_DIR))
    yield
    if "tabular" in learner_names():
        unregister_learner("tabular")


def sweep_file(tmp_path, grid, base=BASE, **sections) -> Path:
    path = tmp_path / "grid.yaml"
    doc = {"base": base, "grid": grid, "learners": {"tabular": "tabular_learner:TabularLearner"},
           "evaluate": {"episodes": 3, "n_envs": 1}, "dir": str(tmp_path / "sweep"), **sections}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def states(where: SweepDir) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["state"] for p in sorted((where.root / "status").glob("*.json"))}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.training
def test_a_2x2_local_grid_trains_every_point_and_reports_configurations_side_by_side(tabular, tmp_path, capsys):
    file = sweep_file(tmp_path, {"seed": [0, 1], "hyperparams.gamma": [0.9, 0.8]})
    assert main(["sweep", str(file), "--max-parallel", "2"]) == 0
    where = SweepDir(tmp_path / "sweep")
    names = ["seed=0,hyperparams.gamma=0.9", "seed=0,hyperparams.gamma=0.8", "seed=1,hyperparams.gamma=0.9",
             "seed=1,hyperparams.gamma=0.8"]
    assert states(where) == {n: "done" for n in names}
    spec = yaml.safe_load(where.spec.read_text())
    assert list(spec["points"]) == names and spec["points"][names[1]]["config"]["hyperparams"]["gamma"] == 0.8
    for name in names:  # each point is a run dir as `shiftgrid train` writes it
        run = where.run(name)
        config = yaml.safe_load(run.config.read_text())
        assert (config["algo"], config["run_dir"]) == ("tabular", str(run.root))
        assert torch.load(run.latest, weights_only=True)["counters"]["num_timesteps"] == 3000 and run.best.is_file()
        assert json.loads(where.status(name).read_text())["steps"] == 3000
    for configuration in ("hyperparams.gamma=0.9", "hyperparams.gamma=0.8"):  # seeds of one configuration
        doc = json.loads((where.report / configuration / "results.json").read_text())
        assert [r["seed"] for r in doc["runs"]] == [0, 1] and doc["summary"]["n_runs"] == 2
    index = (where.report / "results.md").read_text()
    assert "| split | hyperparams.gamma=0.9: success rate | hyperparams.gamma=0.9: optimality ratio | hyperparams.gamma=0.8: success rate" in index
    assert "| `id` | 1.000 [1.000, 1.000] |" in index  # it learned Empty-5x5 (forward-only scores 0)
    assert "| uniform random: success rate | best constant action: success rate |" in index  # references, once
    assert re.search(r"\| `id` \| 1\.000 .* \| \d\.\d{3} \| 0\.000 \((left|right|forward|pickup|drop|toggle|done)\) \|", index)
    assert "| seed=1,hyperparams.gamma=0.8 | hyperparams.gamma=0.8 | 1 | done | 3,000 |" in index

    capsys.readouterr()
    assert main(["sweep", str(file)]) == 2  # the dir holds a sweep: never overwritten
    assert "already holds a sweep; continue it with --resume" in one_error_line(capsys)


@pytest.mark.training
def test_a_failed_point_is_recorded_and_the_others_finish(tabular, tmp_path, capsys):
    """update_every=0 builds (so it passes validation) and fails in training, at its first step."""
    file = sweep_file(tmp_path, {"hyperparams.update_every": [64, 0]})
    assert main(["sweep", str(file), "--max-parallel", "1"]) == 1
    where = SweepDir(tmp_path / "sweep")
    bad = "hyperparams.update_every=0"
    assert states(where) == {"hyperparams.update_every=64": "done", bad: "failed"}
    failed = json.loads(where.status(bad).read_text())
    assert failed["error"] == "ZeroDivisionError: integer modulo by zero" and failed["wall_s"] > 0
    assert "Traceback" in where.log(bad).read_text()
    out, err = capsys.readouterr()
    assert f"{bad}: failed" in out and f"1 of 2 points did not finish: {bad}" in err
    index = (where.report / "results.md").read_text()  # the finished one is still evaluated
    assert f"- not evaluated: {bad}" in index and "| failed |" in index
    assert not (where.report / bad).exists()


def test_a_learner_that_rejects_its_settings_stops_the_sweep_before_any_point_runs(tabular, tmp_path, capsys):
    file = sweep_file(tmp_path, {"hyperparams.lr": [0.5, "fast"]})
    assert main(["sweep", str(file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "point hyperparams.lr=fast: the tabular learner cannot be built: ValueError" in err[0]
    assert not (tmp_path / "sweep" / "runs").exists()


@pytest.mark.training
def test_sigterm_checkpoints_the_running_point_and_resume_skips_finished_ones(tabular, tmp_path):
    quick = {**BASE, "steps": 8000, "set": ["eval.freq=0", "checkpoint_freq=1000"]}
    file = sweep_file(tmp_path, {"seed": [0, 1]}, base=quick)
    where = SweepDir(tmp_path / "sweep")
    cmd = [sys.executable, "-m", "shiftgrid.scripts.cli", "sweep", str(file), "--max-parallel", "1", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not where.run("seed=1").latest.is_file() and time.time() < deadline:  # seed=0 has finished
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    assert states(where) == {"seed=0": "done", "seed=1": "interrupted"}
    stopped_at = torch.load(where.run("seed=1").latest, weights_only=True)["counters"]["num_timesteps"]
    assert 0 < stopped_at < 8000
    done_before = where.status("seed=0").read_text()

    assert main(["sweep", str(file), "--resume", "--no-report"]) == 0
    assert where.status("seed=0").read_text() == done_before  # skipped
    status = json.loads(where.status("seed=1").read_text())
    assert status["state"] == "done" and status["steps"] == 8000 and status["total_wall_s"] > status["wall_s"]
    assert len(list(where.run("seed=1").tb.rglob("events.out.tfevents.*"))) == 2  # continued (a second log), not restarted
    assert torch.load(where.run("seed=1").latest, weights_only=True)["counters"]["num_timesteps"] == 8000


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (the [sweep] extra: pip install 'shiftgrid[sweep]')")
@pytest.mark.training
def test_a_ray_grid_on_a_local_ray(tabular, tmp_path, capsys):
    file = sweep_file(tmp_path, {"seed": [0, 1]})
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert main(["sweep", str(file), "--backend", "ray"]) == 0
    assert {s: signal.getsignal(s) for s in before} == before  # Ray's own handlers do not outlive the sweep
    where = SweepDir(tmp_path / "sweep")
    assert states(where) == {"seed=0": "done", "seed=1": "done"}
    assert all(where.run(n).latest.is_file() for n in ("seed=0", "seed=1"))
    assert "| grid: success rate |" in (where.report / "results.md").read_text()


def test_without_ray_the_ray_backend_names_the_extra(tabular, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert main(["sweep", str(sweep_file(tmp_path, {"seed": [0]})), "--backend", "ray"]) == 2
    assert one_error_line(capsys).endswith("this needs the sweep extra (no module 'ray'): pip install 'shiftgrid[sweep]'")


@pytest.mark.parametrize("text, says", [
    ("grid: {}\n", "grid.yaml: the grid is empty"),
    ("base: {algo: ppo}\ngrid: {learning_rate: [0.1]}\n", "grid.yaml: grid key 'learning_rate' is not a config key"),
    ("base: {algo: ppo}\ngrid: {seed: [0, '0']}\n", "two grid points are both named 'seed=0'"),
    ("base: {algo: ppo}\ngrid: {algo: [ppo, nope]}\n", "point algo=nope: unknown algo 'nope'"),
    ("grid: [seed\n", "malformed YAML in"),
])
def test_bad_sweep_files_are_one_line_and_exit_2(text, says, tmp_path, capsys):
    (tmp_path / "grid.yaml").write_text(text)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dir", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert line.startswith("shiftgrid sweep: error: ") and says in line, line
    assert not (tmp_path / "out").exists()  # nothing was written, nothing ran


def test_resume_and_report_need_a_sweep_dir(tmp_path, capsys):
    (tmp_path / "grid.yaml").write_text("grid: {seed: [0]}\n")
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dir", str(tmp_path / "out"), "--report"]) == 2
    assert "holds no sweep to report on" in one_error_line(capsys)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dir", str(tmp_path / "out"), "--resume", "--no-report"]) == 2
    assert "nothing to resume" in one_error_line(capsys)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (the [sweep] extra: pip install 'shiftgrid[sweep]')")
@pytest.mark.training
def test_sigterm_stops_every_ray_point_with_a_checkpoint(tabular, tmp_path):
    long = {**BASE, "steps": 1_000_000, "set": ["eval.freq=0", "checkpoint_freq=1000"]}
    file = sweep_file(tmp_path, {"seed": [0, 1]}, base=long)
    where = SweepDir(tmp_path / "sweep")
    proc = subprocess.Popen([sys.executable, "-m", "shiftgrid.scripts.cli", "sweep", str(file), "--backend", "ray"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300  # Ray's start-up on a loaded 2-core machine can take minutes
    started = lambda: all(where.run(n).latest.is_file() for n in ("seed=0", "seed=1"))  # noqa: E731
    while not started() and time.time() < deadline:
        time.sleep(0.05)
    if not started():
        proc.kill()
        pytest.fail("the two ray points wrote no checkpoint within 300 s: the signal below would test nothing")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert states(where) == {"seed=0": "interrupted", "seed=1": "interrupted"}, out
    for name in ("seed=0", "seed=1"):
        assert 0 < torch.load(where.run(name).latest, weights_only=True)["counters"]["num_timesteps"] < 1_000_000
    assert not where.stop.exists()

"""`shiftgrid benchmark efficiency`: steps and wall-clock to the goal from real TensorBoard files, censoring, ratio."""

import json
import os
import time

import pytest
import yaml

from shiftgrid.agents.benchmarks.efficiency import groups, read_runs, runs_table
from shiftgrid.scripts.cli import main

GOTO = "shiftgrid/GoTo-v1"


def fake_run(root, algo, seed, points, *, episodes=True, target=None, spec=(0.95, 1000), env=GOTO, steps=None):
    """A run dir with a config, one TensorBoard file per session in ``points`` ([(step, success, episodes, s)], ...)."""
    from torch.utils.tensorboard import SummaryWriter

    run = root / "runs" / f"{algo}-seed={seed}"
    (run / "tb").mkdir(parents=True)
    config = {"algo": algo, "env": env, "seed": seed, "steps": steps or max([p[0] for s in points for p in s], default=0),
              "target": {"success": spec[0], "episodes": spec[1], "stop": False}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for i, session in enumerate(points):
        writer = SummaryWriter(str(run / "tb" / f"session_{i}"))
        opened = time.time()  # the file's first event (the writer's opening) is stamped now
        for step, success, ended, seconds in session:
            writer.add_scalar("rollout/success_rate", success, step, walltime=opened + seconds)
            if episodes:
                writer.add_scalar("rollout/episodes", ended, step, walltime=opened + seconds)
        writer.close()
        for f in (run / "tb" / f"session_{i}").iterdir():  # sessions in order of their files' times
            os.utime(f, (1_000_000 + i, 1_000_000 + i))
    if target is not None:
        (run / "target.json").write_text(json.dumps({"success": spec[0], "episodes": spec[1], **target}))
    return run


def test_the_goal_counts_only_once_100_episodes_have_ended_and_wall_clock_spans_sessions(tmp_path):
    # 0.95 over 40 episodes does not count; a dip; then a resumed session whose episode count restarts.
    run = fake_run(tmp_path, "dreamer", 0, [[(1000, 0.95, 40, 10.0), (2000, 0.8, 120, 20.0), (3000, 0.85, 200, 30.0)],
                                            [(3000, 0.97, 30, 5.0), (4000, 0.91, 110, 15.0)]],
                   target={"rate": 0.92, "steps": 3900, "wall_s": 44.0}, spec=(0.9, 100))
    (r,), skipped = read_runs([run])
    assert skipped == []
    assert (r["steps"], r["budget"], r["final"]) == (4000, 4000, pytest.approx(0.91))
    assert r["wall_s"] == pytest.approx(30.0 + 15.0, abs=1.0)  # the second session counts from its own opening
    assert (r["target"], r["target_steps"], r["target_wall_s"]) == ((0.9, 100), 3900, 44.0)
    assert "| 4,000 | 45 s | 90% / 100 | 3,900 steps, 44 s | 0.91 |" in runs_table([r])


def test_without_the_episode_tag_success_alone_decides_and_the_table_says_so(tmp_path):
    run = fake_run(tmp_path, "ppo", 0, [[(1000, 0.95, 40, 10.0), (2000, 0.96, 120, 20.0)]], episodes=False)
    (r,), _ = read_runs([run])
    assert (r["steps"], r["windowed"]) == (1000, False)
    table = runs_table([r])
    assert "| 1,000* |" in table and "no `rollout/episodes`" in table and "not met by 2,000" in table


def test_groups_censor_runs_short_of_the_goal_and_give_ppos_steps_over_each_algos(tmp_path):
    for seed, at in enumerate([9000, 10000, 11000]):
        fake_run(tmp_path, "ppo", seed, [[(at - 1000, 0.5, 500, 1.0), (at, 0.9, 600, 100.0 + seed), (20000, 0.96, 900, 300.0)]],
                 target={"rate": 0.95, "steps": 15000, "wall_s": 200.0})
    for seed, at in enumerate([1000, 2000, 3000]):
        fake_run(tmp_path, "dreamer", seed, [[(at, 0.93, 150, 50.0 * (seed + 1)), (4000, 0.95, 300, 400.0)]], spec=(0.9, 100))
    runs, _ = read_runs([tmp_path])
    by = {x["algo"]: x for x in groups(runs)}
    dreamer, ppo = by["dreamer"], by["ppo"]
    assert (dreamer["goal"].reached, dreamer["goal"].steps.iqm, dreamer["goal"].ratio_text()) == (3, 2000, "5.00")
    assert (ppo["goal"].steps.iqm, ppo["goal"].ratio_text()) == (10000, "1.00")
    assert dreamer["wall_s"] == pytest.approx(100.0, abs=1.0) and ppo["wall_s"] == pytest.approx(101.0, abs=1.0)
    # Dreamer's own target (90% / 100) is not PPO's (95% / 1,000): no ratio; it never wrote target.json: at its budget.
    assert (dreamer["target"].steps_text(), dreamer["target"].ratio) == (">= 4,000 [4,000, 4,000]", None)
    assert ppo["target"].steps_text() == "15,000 [15,000, 15,000]"
    # Wall-clock to the target: target.json's, or the last logged second of a run that never met it.
    assert ppo["target_wall_s"].iqm == 200.0 and dreamer["target_wall_s"].iqm == pytest.approx(400.0, abs=1.0)

    # One PPO seed short of the goal: PPO's IQM is a lower bound, and so is the ratio.
    fake_run(tmp_path / "more", "ppo", 3, [[(20000, 0.7, 900, 300.0)]])
    runs, _ = read_runs([tmp_path, tmp_path / "more"])
    by = {x["algo"]: x for x in groups(runs)}
    assert by["ppo"]["goal"].steps_text().startswith(">= ") and by["dreamer"]["goal"].ratio_text().startswith(">= ")


def test_the_cli_prints_both_tables_and_writes_json(tmp_path, capsys):
    fake_run(tmp_path, "ppo", 0, [[(1000, 0.95, 150, 10.0)]])
    fake_run(tmp_path, "dreamer", 0, [[(500, 0.2, 150, 10.0)]], spec=(0.9, 100))
    (tmp_path / "runs" / "pending").mkdir()  # a sweep point not started: no run
    starting = fake_run(tmp_path, "ppo", 1, [[]])  # a run that has logged nothing yet: left out, and said so
    assert main(["benchmark", "efficiency", str(tmp_path), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "| shiftgrid/GoTo-v1 | dreamer | 0/1 | >= 500 [500, 500] | <= 2.00 |" in out
    assert f"no training success logged yet (left out): {starting}" in out
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["goal"] == 0.9 and [g["goal"]["censored"] for g in data["groups"]] == [True, False]


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such directory"),
    (lambda p: p, "neither a run dir (config.yaml) nor a sweep dir"),
    (lambda p: fake_run(p, "ppo", 0, [[]]), "no rollout/success_rate in the TensorBoard files"),
])
def test_a_bad_dir_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    assert main(["benchmark", "efficiency", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("shiftgrid benchmark efficiency: error:")


@pytest.mark.parametrize("argv, refused", [
    (["envs", "runs/x"], "runs/x"),
    (["sweep", "--families", "GoTo"], "--families GoTo"),
    (["world-model", "--demos", "5"], "--demos 5"),
    (["imitation", "--models", "rssm"], "--models rssm"),
    (["efficiency", "runs/x", "--points", "2"], "--points 2"),
    (["curriculum", "runs/x", "--json", "x.json"], "--json x.json"),
])
def test_each_benchmark_refuses_options_that_are_not_its_own(capsys, argv, refused):
    assert main(["benchmark", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"shiftgrid benchmark {argv[0]}: error: unrecognized arguments: {refused} "
                   f"(its options: shiftgrid benchmark {argv[0]} --help)")


def test_each_benchmark_has_its_own_help(capsys):
    helps = {}
    for name in ("envs", "sweep", "world-model", "imitation", "efficiency", "curriculum"):
        with pytest.raises(SystemExit):
            main(["benchmark", name, "--help"])
        helps[name] = capsys.readouterr().out
    assert "--families" in helps["envs"] and "--families" not in helps["sweep"] and "--points" in helps["sweep"]
    assert "--json" in helps["efficiency"] and "--json" not in helps["curriculum"] and "DIR" in helps["curriculum"]
    assert "--train-batch" in helps["world-model"] and "--from FILE" in helps["imitation"]

"""`shiftgrid benchmark imitation`: rows carry the counts their runs recorded, saved rows summarise, bad input."""

import json

import pytest

from shiftgrid.agents.benchmarks.imitation import measure, read_rows, summary
from shiftgrid.agents.imitation.datasets import open_dataset
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.scripts.cli import main

GOTO = "shiftgrid/GoTo-v1"
TINY = dict(episodes=4, updates=4, n_envs=2)


def recorded(run_dir):
    run = RunDir(run_dir)
    return json.loads((run.teacher / "cost.json").read_text()), read_checkpoint(run.latest)


def test_dagger_and_expert_rows_report_what_their_runs_counted(tmp_path):
    dagger = measure(GOTO, "dagger", 4, 0, tmp_path, **TINY)
    cost, checkpoint = recorded(tmp_path / "dagger")
    assert dagger["labels"] == cost["labels"] > 0 and dagger["env_steps"] == checkpoint.num_timesteps
    bc_steps = open_dataset(tmp_path / "demos").total_steps  # the label budget: bc's 4 demonstrations' steps,
    # in 8 rollouts of 2 envs
    assert bc_steps - 2 * 8 < dagger["env_steps"] <= bc_steps and dagger["demo_equiv"] == round(dagger["labels"] / (bc_steps / 4), 1)
    assert dagger["demos"] is None and dagger["overlap"] is None

    expert = measure(GOTO, "expert", 4, 0, tmp_path, **TINY)
    cost, checkpoint = recorded(tmp_path / "expert")
    assert expert["demos"] == cost["demo_episodes"] == 4  # stopped once the demonstrations reached the budget
    assert expert["demo_steps"] == cost["demo_steps"] and expert["env_steps"] == checkpoint.num_timesteps
    assert expert["env_steps"] > expert["demo_steps"]  # the probes count too
    assert expert["rounds"] == checkpoint.state["counters"]["rounds"] >= 3  # one initial, at most one added a round
    assert expert["updates"] == checkpoint.state["counters"]["updates"] and expert["eval_episodes"] == 4


def test_every_budget_of_a_seed_clones_the_first_demonstrations_of_one_dataset(tmp_path):
    from shiftgrid.agents.benchmarks.imitation import benchmark
    from shiftgrid.agents.imitation.engine_demos import record_demos

    record_demos(tmp_path / "goto-1", GOTO, 6, seed=10**7, workers=1)  # seed 1's demonstrations
    lengths = [len(e.actions) for e in open_dataset(tmp_path / "goto-1").iterate_episodes()]
    rows = benchmark([GOTO], ["bc", "dagger"], [2, 5], [1], datasets=str(tmp_path / "goto-{seed}"), **TINY)
    bc = [r for r in rows if r["algo"] == "bc"]
    assert [(r["budget"], r["demos"], r["demo_steps"]) for r in bc] == [(2, 2, sum(lengths[:2])), (5, 5, sum(lengths[:5]))]
    dagger = [r for r in rows if r["algo"] == "dagger"]
    assert all(r["demo_equiv"] == round(r["labels"] / (sum(lengths[:r["budget"]]) / r["budget"]), 1) for r in dagger)


def test_rows_of_other_settings_are_their_own_learner_in_the_summary(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    args = ["benchmark", "imitation", "--demos", "2", "--seeds", "0", "--episodes", "2", "--device", "cpu", "--json", str(rows)]
    assert main(args + ["--updates", "2", "--set", "memory=true"]) == 0
    saved = read_rows(rows)
    assert saved[0]["setting"] == "memory=True, 2 updates" and saved[0]["updates"] >= 1
    assert f"| {GOTO} | bc (memory=True, 2 updates) | 2 | 1 |" in summary(saved)


def test_the_cli_prints_and_appends_rows_then_summarises_them_from_the_file(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"env": GOTO, "algo": "bc", "setting": "2 updates", "seed": 9, "budget": 2, "success": 1.0,
                                "demo_steps": 7, "labels": None}) + "\n")
    args = ["benchmark", "imitation", "--demos", "2", "--seeds", "0", "--episodes", "2", "--updates", "2", "--device", "cpu"]
    assert main(args + ["--json", str(rows)]) == 0
    out = capsys.readouterr().out
    saved = read_rows(rows)
    assert [(r["seed"], r["algo"]) for r in saved] == [(9, "bc"), (0, "bc")] and saved[1]["demos"] == 2
    assert f"| {GOTO} | bc (2 updates) | 0 | 2 | 2 |" in out and "smallest budget" in out
    assert main(["benchmark", "imitation", "--from", str(rows)]) == 0
    assert f"| {GOTO} | bc (2 updates) | 2 | 2 |" in capsys.readouterr().out  # both seeds' rows, one summary line


def test_the_summary_of_known_rows_gives_iqm_and_the_smallest_budget_every_seed_reaches(tmp_path, capsys):
    def row(algo, n, seed, success):
        return {"env": GOTO, "algo": algo, "seed": seed, "budget": n, "success": success,
                "demo_steps": None if algo == "dagger" else 10 * n, "labels": 12 * n if algo == "dagger" else None}

    saved = [row("bc", 10, s, x) for s, x in enumerate([0.99, 1.0, 0.98])]  # IQM 0.99 but one seed short
    saved += [row("bc", 20, s, x) for s, x in enumerate([0.99, 1.0, 0.995])]
    saved += [row("dagger", 10, s, x) for s, x in enumerate([0.5, 0.6, 0.7])]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in saved))
    assert main(["benchmark", "imitation", "--from", str(path), "--plot", str(tmp_path / "curves.png")]) == 0
    out = capsys.readouterr().out
    assert out == summary(saved) + f"\ncurves: {tmp_path / 'curves.png'}\n"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert f"| {GOTO} | dagger | 10 | 3 | 0.600 [0.500, 0.700] | 0.500, 0.600, 0.700 | 120 labels |" in out
    assert f"| {GOTO} | bc | 10 | 3 | 0.990 [" in out and "100 demo steps" in out
    assert summary(saved).endswith(f"| {GOTO} | bc | 20 |\n| {GOTO} | dagger | not reached |")


@pytest.mark.parametrize("args, words", [
    (["--algos", "bc,ppo"], ["'ppo'", "bc, dagger, expert"]),
    (["--seeds", "0,x"], ["--seeds", "'0,x'"]),
    (["--demos", "0,10"], ["--demos", "'0,10'", ">= 1"]),
    (["--from", "/nonexistent/rows.jsonl"], ["--from", "/nonexistent/rows.jsonl"]),
    (["--env", ","], ["--env", "','"]),
    (["--plot", "/nonexistent/curves.png"], ["--plot", "/nonexistent/curves.png", ".png"]),
    (["--set", "memory", "--demos", "2", "--episodes", "2", "--updates", "2"], ["--set", "key=value"]),
    (["--set", "memory=true", "--algos", "dagger", "--demos", "2", "--episodes", "2", "--updates", "2"],
     ["--set memory=true", "memory"]),
    (["--datasets", "/tmp/demos"], ["--datasets", "{seed}", "'/tmp/demos'"]),
    (["--datasets", "/nonexistent/goto-{seed}"], ["/nonexistent/goto-0", "shiftgrid demos --env shiftgrid/GoTo-v1 --seed 0"]),
])
def test_bad_input_is_one_line_and_exit_2(args, words, capsys):
    assert main(["benchmark", "imitation", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_a_file_of_something_else_is_named_with_its_line(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"env": GOTO}) + "\n")
    assert main(["benchmark", "imitation", "--from", str(path)]) == 2
    assert f"{path}:1 is not an imitation row" in capsys.readouterr().err


def test_the_help_names_the_imitation_options(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["benchmark", "imitation", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "--algos" in out and "--from FILE" in out and "reaching 99%" in out

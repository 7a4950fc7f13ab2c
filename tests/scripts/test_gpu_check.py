"""``make gpu-check`` on the CPU: the no-CUDA line, the check list, the runner, the figures and the table,
and every check run on the CPU at smoke sizes (so the script cannot rot between GPU runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from shiftgrid.scripts import gpu_check as gc


def python(code: str):
    return lambda ctx: [sys.executable, "-c", code]


def test_without_cuda_it_says_so_in_one_line_and_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("gpu-check: no CUDA here (") and "nothing checked" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_the_module_run_without_cuda_prints_one_line():
    done = subprocess.run([sys.executable, "-m", "shiftgrid.scripts.gpu_check"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [gc.no_cuda_line()]


def test_every_check_is_listed_once_with_what_it_proves(capsys):
    assert gc.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [c.name for c in gc.CHECKS]
    assert len(set(names)) == len(names) == len(lines)
    assert all(line.split()[0] == c.name and c.what in line for line, c in zip(lines, gc.CHECKS))
    assert all(c.after in names[:i] for i, c in enumerate(gc.CHECKS) if c.after)  # a prerequisite runs first


def test_only_selects_checks_with_their_prerequisites_and_refuses_unknown_names(capsys):
    assert [c.name for c in gc.select("dream-env")] == ["wm-train", "dream-env"]
    assert [c.name for c in gc.select("dreamer,replay")] == ["replay", "dreamer"]
    assert gc.main(["--only", "wm-train,warp-drive"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'warp-drive'" in err and "valid: gpu-tests" in err


@pytest.mark.parametrize("argv, says", [(["--device", "tpu"], "unknown --device 'tpu'"),
                                        (["--budget", "0"], "--budget must be > 0")])
def test_bad_flags_exit_2_in_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        gc.main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_a_failure_a_timeout_and_a_skip_do_not_stop_the_other_checks(tmp_path):
    checks = [
        gc.Check("prints", "its own figure", python(f"print('noise'); print('{gc.FIGURE_PREFIX}12 widgets/s')")),
        gc.Check("fails", "exits 3", python("import sys; print('the cause'); sys.exit(3)")),
        gc.Check("hangs", "sleeps", python("import time; time.sleep(60)"), timeout_s=1),
        gc.Check("after-fails", "needs fails", python("print(1)"), after="fails"),
        gc.Check("reads", "a figure read from the output", python("print('run: 2048 steps, 71 SPS')"), gc.sps_figure),
        gc.Check("unreadable", "a figure that cannot be read", python("print(1)"), gc.run_figure("nowhere")),
    ]
    seen = []
    results = gc.run_checks(checks, gc.Context("cpu", True, tmp_path), report=seen.append)
    assert [(r.name, r.status) for r in results] == [
        ("prints", "ok"), ("fails", "failed"), ("hangs", "timeout"), ("after-fails", "skipped"), ("reads", "ok"),
        ("unreadable", "failed")]
    assert seen == results
    assert results[0].figure == "12 widgets/s"
    assert results[1].figure == "exit 3: the cause" and "the cause" in results[1].log.read_text()
    assert results[2].figure == "killed after 1 s" and 1 <= results[2].seconds < 30
    assert results[3].figure == "needs fails, which did not pass"
    assert results[4].figure == "2,048 steps, 71 steps/s"
    assert results[5].figure.startswith("figure unreadable: FileNotFoundError")


def test_the_budget_bounds_all_checks_together(tmp_path):
    checks = [gc.Check("long", "", python("import time; time.sleep(60)"), timeout_s=90),
              gc.Check("next", "", python("print(1)"))]
    results = gc.run_checks(checks, gc.Context("cpu", True, tmp_path), budget_s=1.5)
    assert [r.status for r in results] == ["timeout", "skipped"]
    assert results[0].seconds < 30 and "out of time" in results[1].figure


def test_the_table_aligns_rows_and_continues_long_figures():
    table = gc.format_table([gc.Result("imagination", "ok", 12.34, "rssm/tiny: 1.2M\ntransformer/tiny: 0.9M"),
                             gc.Result("dream-env", "skipped", 0.0, "needs wm-train, which did not pass")])
    lines = table.splitlines()
    assert lines[0].split() == ["check", "result", "seconds", "figure"] and set(lines[1]) == {"-"}
    assert lines[2].split() == ["imagination", "ok", "12.3", "rssm/tiny:", "1.2M"]
    column = lines[0].index("figure")
    assert lines[3].index("transformer") == column == lines[2].index("rssm") == lines[4].index("needs")
    assert lines[4].startswith("dream-env") and lines[4].split()[1:3] == ["skipped", "0.0"]


def test_figures_are_read_from_what_the_commands_print_and_save(tmp_path):
    ctx = gc.Context("cpu", True, tmp_path)
    assert gc.pytest_figure(ctx, "....\n3 passed, 1 skipped, 590 deselected in 21.0s\n") == "3 passed, 1 skipped"
    bench = ("world-model throughput on cuda: ...\n"
             "model        preset       params  train steps/s  imagined steps/s  env steps/s  imagined / env\n"
             "rssm         tiny        123,456         45,678        12,345,678        2,000         6172.8x\n"
             "transformer  small     1,234,567          9,876           876,543        2,100          417.4x\n")
    assert gc.world_model_benchmark_figure(ctx, bench).splitlines() == [
        "rssm/tiny: 12.3M imagined steps/s, 45.7k replayed steps/s (training)",
        "transformer/small: 877k imagined steps/s, 9.88k replayed steps/s (training)"]
    (tmp_path / "wm" / "checkpoints").mkdir(parents=True)
    torch.save({"elapsed_s": 8.0, "state": {"counters": {"updates": 384}}}, tmp_path / "wm" / "checkpoints" / "latest.pt")
    assert gc.run_figure("wm")(ctx, "runs/wm: 2048 steps, 256 SPS") == "384 updates, 48.0 updates/s, 256 env steps/s"
    (tmp_path / "eval").mkdir()
    summary = {"splits": {"id": {"success_rate": {"iqm": 0.875}}, "size/far": {"success_rate": {"iqm": 0.5}}}}
    (tmp_path / "eval" / "results.json").write_text(json.dumps({"summary": summary}))
    assert gc.report_figure("eval", "success_rate", "success")(ctx, "") == "id: success 0.875; size/far: success 0.500"


def test_probe_replay_reports_add_and_sample_rates():
    figure = gc.probe_replay("cpu", smoke=True)
    assert "steps added/s" in figure and "steps sampled/s (B x T = 2 x 8)" in figure


@pytest.mark.training
def test_every_check_passes_on_the_cpu_at_smoke_sizes(tmp_path):
    """The same commands as on a GPU, at smoke sizes: a CPU run keeps the script from rotting."""
    done = subprocess.run([sys.executable, "-m", "shiftgrid.scripts.gpu_check", "--device", "cpu", "--keep",
                           str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gpu-check on CPU") and "smoke sizes" in lines[0]
    table = {ln.split()[0]: ln.split()[1:] for ln in lines if ln and ln.split()[0] in {c.name for c in gc.CHECKS}
             and not ln.startswith("  ")}
    assert set(table) == {c.name for c in gc.CHECKS}
    assert all(row[0] == "ok" and len(row) > 2 for row in table.values()), done.stdout  # each with its figure
    assert lines[-1].startswith(f"{len(gc.CHECKS)} of {len(gc.CHECKS)} checks passed")

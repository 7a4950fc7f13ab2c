"""``shiftgrid sweep``: run a grid of seeds and configurations, locally or on Ray, then evaluate it.

The sweep file names a base config and a grid (see :mod:`shiftgrid.agents.sweeps.sweep`); every point
is validated before any starts, then trained in its own run dir, <sweep dir>/runs/<point>, laid
out as ``shiftgrid train`` lays one out (so ``shiftgrid evaluate`` reads it). The sweep dir
(default runs/<name>) holds the expanded grid (sweep.yaml) and each point's status and log.
``--backend local`` runs N points at a time as subprocesses; ``--backend ray`` runs each as a Ray
task asking for its CPUs (and a GPU fraction when its device is CUDA), on a Ray started here or
the cluster at ``--address`` (whose nodes must see the sweep dir). A failed point is recorded
and the others go on; Ctrl-C stops every point with a checkpoint; ``--resume`` continues the
unfinished points and skips finished ones. At the end (or with ``--report`` alone) the finished
points are evaluated: one shift report per configuration (its seeds: IQM and 95% CIs) and
report/results.md with the configurations side by side and the training table.

Example:
    $ shiftgrid sweep scripts/sweeps/ppo-goto.yaml --max-parallel 3
    $ shiftgrid sweep scripts/sweeps/ppo-goto.yaml --resume
    $ shiftgrid sweep grid.yaml --backend ray --address ray://head:10001
    $ shiftgrid sweep scripts/sweeps/ppo-goto.yaml --report
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from shiftgrid.agents.run.config import ConfigError
from shiftgrid.agents.run.rundir import SweepDir
from shiftgrid.agents.sweeps.sweep import (
    Point,
    Sweep,
    expand,
    load_sweep,
    merge_points,
    read_spec,
    read_status,
    sweep_dir,
    write_spec,
)
from shiftgrid.scripts.cli import UserError


def default_parallel() -> int:
    """One point per two cores."""
    return max(1, (os.cpu_count() or 1) // 2)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of seeds and configurations (locally or on Ray) and evaluate it",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="SWEEP.yaml", help="the sweep file (base, grid, ...)")
    p.add_argument("--backend", choices=["local", "ray"], default="local", help="local subprocesses or Ray tasks (default: local)")
    p.add_argument("--address", help="with --backend ray: an existing cluster's address (default: start a local Ray)")
    p.add_argument("--max-parallel", type=int, help=f"points running at once (default: local {default_parallel()}, "
                   "one per two cores; ray: as many as the cluster's resources fit)")
    p.add_argument("--dir", type=Path, help="the sweep dir (default: the file's dir:, else runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue unfinished points from their checkpoints; skip finished ones")
    p.add_argument("--report", action="store_true", help="only evaluate the finished points and write the report")
    p.add_argument("--no-report", action="store_true", help="do not evaluate at the end")
    p.add_argument("--device", default="auto", help="torch device of the evaluation (default: auto)")
    p.set_defaults(func=run)


def prepare(sweep: Sweep, where: SweepDir, resume: bool) -> list[Point]:
    """Expand and validate every point, then write (or, resuming, extend) the sweep dir's ``sweep.yaml``."""
    fresh = expand(sweep, where.root)
    if where.holds_sweep():
        if not resume:
            raise UserError(f"{where.root} already holds a sweep; continue it with --resume, or give another --dir")
        points = merge_points(read_spec(where)[1], fresh, sweep.where)
    elif resume:
        raise UserError(f"nothing to resume: {where.root} holds no sweep ({where.spec.name})")
    else:
        points = fresh
    write_spec(where, sweep, points)
    return points


def run_points(where: SweepDir, names: list[str], backend: str, max_parallel: int | None, address: str | None) -> int | None:
    """Run the points on the backend, printing one line as each ends; the signal that stopped them, or None."""
    from shiftgrid.agents.sweeps.backends import run_local, run_ray

    def said(name: str, state: str) -> None:
        status = read_status(where, name)
        how = f" ({status['error']})" if status.get("error") else ""
        wall = f" after {status['wall_s']:.1f} s" if status.get("wall_s") is not None else ""
        print(f"{name}: {state}{wall}{how}", flush=True)

    if backend == "ray":
        return run_ray(where, names, max_parallel, address, on_end=said)
    return run_local(where, names, max_parallel or default_parallel(), on_end=said)


def report(sweep: Sweep, where: SweepDir, points: list[Point], device: str = "auto") -> Path:
    """Evaluate the finished points (one shift report per configuration) and write report/results.md; its path."""
    from shiftgrid.agents.evaluation.report import grid_index
    from shiftgrid.agents.reports.runs import evaluate_runs

    sweep.register_learners()
    status = {p.name: read_status(where, p.name) for p in points}
    groups: dict[str, list[Point]] = {}
    for p in points:
        if status[p.name]["state"] == "done":
            groups.setdefault(p.configuration, []).append(p)
    if not groups:
        raise UserError(f"{where.root}: no point has finished yet; nothing to evaluate")
    ev = sweep.evaluate
    splits = ev["splits"] if ev["splits"] == "all" else list(ev["splits"])
    summaries = {}
    references: list[Any] = []  # each configuration's; shown once in the index where they are the same
    constant: list[str] = []
    for configuration, members in groups.items():
        runs = [where.run(p.name) for p in members]
        paths = evaluate_runs([r.root for r in runs], splits=splits, episodes=ev["episodes"], seed=ev["seed"],
                              out=where.report / configuration, n_envs=ev["n_envs"], device=device, stochastic=ev["stochastic"],
                              checkpoint=ev["checkpoint"], reference_episodes=ev["reference_episodes"])
        document = json.loads(paths["json"].read_text())
        summaries[configuration] = document["summary"]
        references.append(document.get("references"))
        if document["meta"].get("warning: constant policy"):
            constant.append(f"{configuration}: {document['meta']['warning: constant policy']}")
    rows = [{"point": p.name, "configuration": p.configuration, "seed": p.config["seed"], **status[p.name]} for p in points]
    meta = {"episodes per split": ev["episodes"], "evaluation reset seeds": f"from {ev['seed']}",
            "checkpoint": "best.pt where there is one" if ev["checkpoint"] == "best" else "latest.pt (the final one)",
            "actions": "sampled from the policy" if ev["stochastic"] else "most likely (deterministic)",
            "not evaluated": ", ".join(p.name for p in points if status[p.name]["state"] != "done") or "none",
            **({"warning: constant policy": "; ".join(constant)} if constant else {})}
    index = where.report / "results.md"
    shared = references[0] if all(r == references[0] for r in references) else None
    if shared is None:
        meta["references"] = ("not measured (evaluate.reference_episodes: 0)" if not any(references)
                              else "in each configuration's report (their levels or env settings differ)")
    index.write_text(grid_index(sweep.name, summaries, rows, meta, references=shared))
    return index


def run(args: argparse.Namespace) -> int:
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UserError(f"--max-parallel must be >= 1, got {args.max_parallel}")
    if args.address and args.backend != "ray":
        raise UserError("--address is for --backend ray")
    try:
        sweep = load_sweep(args.file)
        where = sweep_dir(sweep, args.dir)
        if args.report:
            if not where.holds_sweep():
                raise UserError(f"{where.root} holds no sweep to report on (run `shiftgrid sweep {args.file}` first)")
            index = report(*_stored(where), device=args.device)
            print(index.read_text())
            return 0
        points = prepare(sweep, where, args.resume)
    except ConfigError as e:
        raise UserError(str(e)) from None
    todo = [p.name for p in points if read_status(where, p.name)["state"] != "done"]
    print(f"sweep {sweep.name}: {len(points)} points in {where.root} ({len(points) - len(todo)} already done), "
          f"backend {args.backend}", flush=True)
    stopped = run_points(where, todo, args.backend, args.max_parallel, args.address)
    if stopped is not None:
        print(f"shiftgrid sweep: stopped by {signal.Signals(stopped).name}; running points saved checkpoints; continue with: "
              f"shiftgrid sweep {args.file} --resume" + (f" --dir {args.dir}" if args.dir else ""), file=sys.stderr)
        return 128 + stopped
    states = {p.name: read_status(where, p.name)["state"] for p in points}
    failed = [n for n, s in states.items() if s != "done"]
    if failed:
        print(f"shiftgrid sweep: {len(failed)} of {len(points)} points did not finish: {', '.join(failed)} "
              f"(errors in {where.root / 'status'}, output in {where.root / 'logs'})", file=sys.stderr)
    if not args.no_report and len(failed) < len(points):
        print(f"report written to {report(sweep, where, points, args.device)}")
    return 1 if failed else 0


def _stored(where: SweepDir) -> tuple[Sweep, SweepDir, list[Point]]:
    sweep, points = read_spec(where)
    return sweep, where, points


#: The points of ``shiftgrid benchmark sweep``: tiny PPO runs, so that what is measured is the machinery around them.
BENCH_BASE: dict[str, Any] = {"algo": "ppo", "env": "MiniGrid-Empty-5x5-v0", "steps": 512, "n_envs": 2, "device": "cpu",
              "set": ["eval.freq=0", "hyperparams={n_steps: 128, batch_size: 128, n_epochs: 1}"]}


def benchmark(points: int, repeats: int, backends: list[str]) -> list[tuple[str, float]]:
    """Seconds per point of ``points`` tiny runs, by hand and through each backend.

    By hand is one ``shiftgrid train`` per point, or one ``shiftgrid train --seed 0,1,..`` for all
    (one process, one run after the other). Every way runs the points one at a time
    (``--max-parallel 1``, no report), interleaved over ``repeats``; the median is returned as
    ``(way, seconds per point)``, one ``shiftgrid train`` per point first.
    """
    import statistics
    import subprocess
    import tempfile
    import time

    import yaml

    cli = [sys.executable, "-m", "shiftgrid.scripts.cli"]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in BENCH_BASE.items() if k != "set"]
    flags += [f"--set={s}" for s in BENCH_BASE["set"]] + ["--no-progress"]
    times: dict[str, list[float]] = {"train, one per point": [], "train --seed 0,1,..": [],
                                     **{f"sweep --backend {b}": [] for b in backends}}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bench.yaml"
        file.write_text(yaml.safe_dump({"base": BENCH_BASE, "grid": {"seed": list(range(points))}}))
        for r in range(repeats):
            for way in times:
                out = Path(tmp) / f"{r}-{way.replace(' ', '_')}"
                if way == "train, one per point":
                    commands = [cli + ["train", *flags, f"--seed={s}", f"--run-dir={out / str(s)}"] for s in range(points)]
                elif way.startswith("train --seed"):
                    commands = [cli + ["train", *flags, f"--seed={','.join(map(str, range(points)))}", f"--run-dir={out}"]]
                else:
                    commands = [cli + ["sweep", str(file), f"--dir={out}", "--max-parallel=1", "--no-report",
                                       f"--backend={way.split()[-1]}"]]
                start = time.perf_counter()
                for command in commands:
                    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[way].append((time.perf_counter() - start) / points)
    return [(way, statistics.median(t)) for way, t in times.items()]

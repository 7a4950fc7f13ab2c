"""Running a sweep's points: one point in its own process, N at a time locally, or as Ray tasks.

Every point runs as ``python -m shiftgrid.agents.sweeps.backends SWEEP_DIR POINT`` (:func:`run_point`):
it reads the point's resolved config from ``sweep.yaml``, registers the sweep's ``learners``,
continues the run from ``checkpoints/latest.pt`` when there is one (``shiftgrid train --resume``'s
path), else starts it fresh, and records its status (``running``, then ``done``, ``failed`` with
the error, or ``interrupted``, with its wall-clock). Its output goes to ``logs/<point>.log``.

:func:`run_local` keeps up to N such processes going; :func:`run_ray` submits each as a Ray task
that asks for the point's resources (the sweep dir must be on a filesystem every node sees).
On Ctrl-C or SIGTERM both forward SIGTERM to every running point (Ray tasks through the sweep
dir's ``stop`` file), which saves a checkpoint and ends as ``interrupted``; points not started
stay ``pending``.

Example:
    $ python -m shiftgrid.agents.sweeps.backends runs/grid 'algo=ppo,seed=0'
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from shiftgrid.agents.run.rundir import SweepDir
from shiftgrid.agents.run.run_state import RunState, stop_on_signals
from shiftgrid.agents.sweeps.sweep import FINAL, point_resources, read_spec, read_status, write_status

#: Seconds between looks at the running points.
POLL_S = 0.05


def point_command(where: SweepDir, point: str) -> list[str]:
    """The command that runs one point (the same on every backend)."""
    return [sys.executable, "-m", "shiftgrid.agents.sweeps.backends", str(where.root), point]


def run_point(where: SweepDir, name: str) -> int:
    """Train one point (continuing its checkpoint if it has one) and record how it ended; the exit status."""
    from shiftgrid.agents.run.config import TrainConfig
    from shiftgrid.agents.run.train import resume_config, train

    start = time.time()
    before = read_status(where, name)
    write_status(where, name, "running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), error=None, pid=os.getpid())
    try:
        sweep, points = read_spec(where)
        sweep.register_learners()
        config = {p.name: p.config for p in points}[name]
        run = where.run(name)
        resume = run.latest.is_file()
        if run.holds_run() and not resume:  # it failed before its first checkpoint: nothing to continue
            shutil.rmtree(run.root)
        result = train(resume_config(run.root) if resume else TrainConfig.from_dict(config), resume=resume)
    except Exception as e:  # recorded, so that the other points go on
        traceback.print_exc()
        write_status(where, name, "failed", error=f"{type(e).__name__}: {e}".splitlines()[0], **_wall(before, start))
        return 1
    fields = {"steps": result.num_timesteps, "stop_reason": result.stop_reason, "target": result.target,
              "best_success": result.best_success, **_wall(before, start)}
    if result.interrupted is not None:
        write_status(where, name, "interrupted", error=f"stopped by {signal.Signals(result.interrupted).name}", **fields)
        return 128 + result.interrupted
    if result.stop_reason == "nan":
        write_status(where, name, "failed", error="a loss or weight became NaN or infinite", **fields)
        return 1
    write_status(where, name, "done", **fields)
    return 0


def _wall(before: dict[str, Any], start: float) -> dict[str, float]:
    wall = time.time() - start
    return {"wall_s": round(wall, 3), "total_wall_s": round(before.get("total_wall_s", 0.0) + wall, 3)}


def settle(where: SweepDir, name: str, returncode: int, interrupting: bool) -> str:
    """After a point's process ended: its final state (recorded here if the process could not record it)."""
    status = read_status(where, name)
    if status["state"] in FINAL:
        return status["state"]
    state = "interrupted" if interrupting else "failed"
    write_status(where, name, state, error=f"the point's process exited with status {returncode} before recording "
                 f"how it ended; see {where.log(name)}")
    return state


def _launch(where: SweepDir, name: str) -> str:
    """Mark a point as started (its process marks it again, with its pid) and make room for its log."""
    write_status(where, name, "running", error=None)
    where.log(name).parent.mkdir(parents=True, exist_ok=True)
    return name


def run_local(where: SweepDir, names: Sequence[str], max_parallel: int,
              on_end: Callable[[str, str], None] = lambda name, state: None) -> int | None:
    """Run the points ``names`` as subprocesses, ``max_parallel`` at a time; the signal that stopped them, or None."""
    pending, forwarded = list(names), False
    running: dict[str, subprocess.Popen] = {}
    with stop_on_signals(RunState()) as stop:  # the training loop's handling: a flag, a second Ctrl-C raises
        while pending or running:
            if stop.signum is not None and not forwarded:
                pending, forwarded = [], True
                for proc in running.values():
                    proc.send_signal(signal.SIGTERM)
            while pending and len(running) < max_parallel:
                name = _launch(where, pending.pop(0))
                with open(where.log(name), "ab") as log:
                    running[name] = subprocess.Popen(point_command(where, name), stdout=log, stderr=subprocess.STDOUT,
                                                     stdin=subprocess.DEVNULL, start_new_session=True)
            for name, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[name]
                    on_end(name, settle(where, name, proc.returncode, stop.signum is not None))
            time.sleep(POLL_S)
        return stop.signum


def _ray_point(root: str, name: str) -> int:
    """A Ray task: run the point's command (with this node's Python); once the sweep dir's ``stop`` file appears,
    SIGTERM the point and wait for its checkpoint (the sweep dir is on a filesystem every node sees)."""
    where = SweepDir(root)
    with open(where.log(name), "ab") as out:
        proc = subprocess.Popen(point_command(where, name), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        while proc.poll() is None:
            if where.stop.exists():  # the driver was stopped: so is the point, with a checkpoint
                proc.send_signal(signal.SIGTERM)
                return proc.wait()
            time.sleep(POLL_S)
        return proc.returncode


def run_ray(where: SweepDir, names: Sequence[str], max_parallel: int | None, address: str | None = None,
            on_end: Callable[[str, str], None] = lambda name, state: None) -> int | None:
    """Run the points as Ray tasks on a local Ray started here (or the cluster at ``address``); like :func:`run_local`."""
    import ray

    sweep, points = read_spec(where)
    asks = {p.name: point_resources(p.config, sweep.resources) for p in points if p.name in names}
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # ray.init installs its own
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        cpus = os.cpu_count() or 1
        too_big = [n for n, r in asks.items() if r["num_cpus"] > cpus]
        if too_big:
            raise ValueError(f"point {too_big[0]} asks for {asks[too_big[0]]['num_cpus']} CPUs; this machine has {cpus}")
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    where.stop.unlink(missing_ok=True)
    try:
        task = ray.remote(_ray_point)
        pending, forwarded = list(names), False
        running: dict[Any, str] = {}  # ray's task references -> point names
        with stop_on_signals(RunState()) as stop:  # the training loop's handling: a flag, a second Ctrl-C raises
            while pending or running:
                if stop.signum is not None and not forwarded:
                    pending, forwarded = [], True
                    where.stop.touch()
                while pending and len(running) < (max_parallel or len(names)):
                    name = _launch(where, pending.pop(0))
                    running[task.options(**asks[name]).remote(str(where.root.resolve()), name)] = name
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in done:
                    name = running.pop(ref)
                    try:
                        rc = ray.get(ref)
                    except ray.exceptions.RayError:  # the task itself failed (a lost node...)
                        rc = -1
                    on_end(name, settle(where, name, rc, stop.signum is not None))
            return stop.signum
    finally:
        where.stop.unlink(missing_ok=True)
        ray.shutdown()
        for s, handler in handlers.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shiftgrid.agents.sweeps.backends SWEEP_DIR POINT``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m shiftgrid.agents.sweeps.backends SWEEP_DIR POINT", file=sys.stderr)
        return 2
    return run_point(SweepDir(Path(args[0])), args[1])


if __name__ == "__main__":
    sys.exit(main())

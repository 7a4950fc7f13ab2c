"""The curriculum benchmark's figures: environment steps to 90% training-split success, per teacher against ``uniform``.

Reads the runs of curriculum sweeps (``scripts/sweeps/curriculum-*.yaml``): each run's
evaluations during training (``checkpoints/latest.pt`` history) on ``train``, i.e. on levels drawn
uniformly from the training split, never on the teacher's own choices. A run's figure is the
first evaluated step whose success is at least the goal; a run that never gets there counts at
its last step and is marked (the IQM is then a lower bound, written ``>=``); sweep points not
finished (interrupted, failed, running) are left out and named. Per environment and teacher: runs reaching the goal, the IQM of steps with its 95% bootstrap interval, and the ratio
of uniform's IQM to the teacher's (how many times fewer steps; a bound where either is censored,
as :func:`~shiftgrid.agents.benchmarks.efficiency.steps_groups` computes it). Every step is counted: the
teacher's side estimates (``teacher/learnable_share_side``, :mod:`shiftgrid.envs.teacher.curriculum.side`)
take their steps in the learner's ``num_timesteps``, the clock of every evaluation, and the teacher cost
column shows what ``teacher/cost.json`` recorded (``side_steps`` among them). Runs with the
oracle teacher's advice (``scripts/sweeps/advice-*.yaml``) are grouped by granularity (:func:`learner_label`) and
scored, like every evaluation, without advice.

Example:
    $ shiftgrid benchmark curriculum runs/curriculum-doorkey runs/curriculum-maze
    >>> steps_to([{"step": 100, "success": {"train": 0.5}}, {"step": 200, "success": {"train": 0.92}}])
    200
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from shiftgrid.agents.benchmarks.efficiency import steps_groups, sweep_runs, sweep_state
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import load_yaml_file
from shiftgrid.agents.run.rundir import CHECKPOINT_DIR, LATEST
from shiftgrid.agents.run.services import TEACHER_COST_FILE

GOAL, SPLIT = 0.9, "train"


def steps_to(history: Sequence[dict[str, Any]], goal: float = GOAL, split: str = SPLIT) -> int | None:
    """The first evaluated step whose ``split`` success is at least ``goal`` (None: never)."""
    for h in history:
        if h["success"].get(split, -1.0) >= goal:
            return int(h["step"])
    return None


def learner_label(config: dict[str, Any]) -> str:
    """The teacher of a run's config, with its advice: ``"plr"``, ``"uniform + subgoal advice"``.

    A run without a teacher draws its levels uniformly from the training split, so it is ``uniform``.

    Example:
        >>> learner_label({"teacher": {"name": "plr"}}), learner_label({"advice": {"granularity": "action"}})
        ('plr', 'uniform + action advice')
    """
    name = (config.get("teacher") or {}).get("name") or "uniform"
    advice = (config.get("advice") or {}).get("granularity")
    return f"{name} + {advice} advice" if advice else name


def check_curriculum_run(run_dir: Path, config: dict[str, Any], history: Sequence[dict[str, Any]]) -> None:
    """Raise ``ValueError`` (one line) unless ``run_dir`` is a run this benchmark scores: an agent's (not a world
    model's) whose evaluations during training include ``train`` (levels drawn uniformly from the training split)."""
    from shiftgrid.agents.run.registry import get_learner

    algo = config.get("algo")
    if not getattr(get_learner(str(algo)), "acts_itself", True):
        raise ValueError(f"{run_dir} is a {algo} run (a world model, not an agent trained on the levels a teacher "
                         "chose): benchmark curriculum scores curriculum runs and their uniform reference")
    if not any(SPLIT in h["success"] for h in history):
        splits = (config.get("eval") or {}).get("splits")
        raise ValueError(f"{run_dir} was never evaluated on `{SPLIT}` during training (eval.splits {splits}, "
                         f"{len(history)} evaluations): benchmark curriculum needs eval.splits with {SPLIT} and eval.freq > 0, "
                         "as scripts/sweeps/curriculum-*.yaml set")


def run_figures(run_dir: Path, goal: float = GOAL) -> dict[str, Any]:
    """One run's env, teacher, seed, steps to the goal (None: not reached), last step, last success and teacher cost.

    Raises ``ValueError`` for a run that is not a curriculum run (:func:`check_curriculum_run`).
    """
    config = load_yaml_file(run_dir / "config.yaml")
    ckpt = read_checkpoint(run_dir / "checkpoints" / "latest.pt")
    check_curriculum_run(run_dir, config, ckpt.history)
    cost_file = run_dir / "teacher" / TEACHER_COST_FILE
    last = ckpt.history[-1]["success"].get(SPLIT) if ckpt.history else None
    return {"env": config["env"], "teacher": learner_label(config), "seed": config["seed"],
            "steps": steps_to(ckpt.history, goal), "budget": ckpt.num_timesteps, "last": last,
            "cost": json.loads(cost_file.read_text()) if cost_file.is_file() else {}}


def table(runs: Sequence[dict[str, Any]], goal: float = GOAL) -> str:
    """The markdown table of steps to ``goal`` per environment and teacher (see the module docstring)."""
    lines = [f"| env | teacher | runs at {goal:.0%} | steps to {goal:.0%} (IQM [95% CI]) | uniform / teacher | "
             f"last train success | teacher cost |", "|---|---|---|---|---|---|---|"]
    for g in steps_groups(runs, "teacher", "uniform"):
        rs = [r for r in runs if (r["env"], r["teacher"]) == (g.env, g.name)]
        last = [r["last"] for r in rs if r["last"] is not None]
        cost = ", ".join(f"{k} {sum(r['cost'].get(k, 0) for r in rs) / len(rs):,.0f}" for k in sorted({k for r in rs for k in r["cost"]}))
        lines.append(f"| {g.env} | {g.name} | {g.reached}/{g.runs} | {g.steps_text()} | {g.ratio_text()} | "
                     f"{', '.join(f'{x:.2f}' for x in last) or '–'} | {cost or '–'} |")
    return "\n".join(lines)


def report(dirs: Sequence[Path], goal: float = GOAL) -> str:
    """The benchmark's text: :func:`table` of the finished runs under ``dirs``, then the points left out.

    Raises ``ValueError`` when no run under ``dirs`` has finished (nothing to score), or one is not a curriculum run.
    """
    found = [r for d in dirs for r in sweep_runs(d, f"{CHECKPOINT_DIR}/{LATEST}")]
    unfinished = [r for r in found if sweep_state(r) not in (None, "done")]  # a stopped point is not at its budget
    runs = [run_figures(r, goal) for r in found if r not in unfinished]
    if not runs:
        raise ValueError(f"no finished runs with checkpoints/latest.pt under {', '.join(map(str, dirs))}")
    text = table(runs, goal)
    if unfinished:
        text += f"\n\nleft out, not finished: {', '.join(f'{r} ({sweep_state(r)})' for r in unfinished)}"
    return text

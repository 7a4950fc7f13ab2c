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
scored, like every evaluation, without advice; kickstarted runs (``advice.protocol: kickstart``,
``scripts/sweeps/kickstart-*.yaml``) are named by the envs the teacher watched, with its labels as their cost.

The steps are given to 50% and to the goal (90% by default). Where the sweeps were evaluated at the
end (their ``report/``), a second table scores the final policies on held-out levels: per teacher and
on ``id`` and every ``far`` split, the success rate and the CVaR-10% of the episodes' return (the mean
return of the worst 10% of levels: 0 where more than 10% fail), each the IQM over seeds with its
95% bootstrap interval.

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
from shiftgrid.agents.evaluation.stats import iqm_interval
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import load_yaml_file
from shiftgrid.agents.run.rundir import CHECKPOINT_DIR, LATEST
from shiftgrid.agents.run.services import TEACHER_COST_FILE

GOAL, SPLIT, HALF = 0.9, "train", 0.5
#: The share of worst levels whose mean return is the CVaR column.
WORST = 0.1


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
    advice = config.get("advice") or {}
    if advice.get("granularity") and advice.get("protocol") == "kickstart":
        return f"{name} + kickstart ({advice.get('watched_envs', 16)} envs watched)"
    if advice.get("granularity") and advice.get("protocol") == "distill":
        return f"{name} + {advice['granularity']} advice distilled ({advice.get('watched_envs', 16)} envs advised)"
    return f"{name} + {advice['granularity']} advice" if advice.get("granularity") else name


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
    return {"env": config["env"], "teacher": learner_label(config), "seed": config["seed"], "run": run_dir.name,
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


def cvar(returns: Sequence[float], worst: float = WORST) -> float:
    """The mean of the lowest ``worst`` share of ``returns`` (at least one of them).

    Example:
        >>> cvar([0.0] + [0.9] * 19), cvar([0.5, 0.9, 0.9, 0.9])
        (0.45, 0.5)
    """
    ordered = sorted(returns)
    k = max(1, int(round(worst * len(ordered))))
    return float(sum(ordered[:k]) / k)


def final_scores(run_dir: Path) -> dict[str, tuple[float, float]] | None:
    """A sweep point's final evaluation (its sweep's ``report/``): split -> (success rate, CVaR-10% of return); None: none."""
    for results in sorted((run_dir.parent.parent / "report").glob("*/results.json")):
        for run in json.loads(results.read_text()).get("runs", []):
            if run.get("name") == run_dir.name:
                return {split: (sum(e["success"] for e in eps) / len(eps), cvar([e["ret"] for e in eps]))
                        for split, eps in run.get("episodes", {}).items() if eps}
    return None


def held_out_table(runs: Sequence[dict[str, Any]]) -> str:
    """Success and CVaR-10% on ``id`` and every far split, IQM over seeds [95% CI], per environment and teacher."""
    scored = [r for r in runs if r.get("final")]
    if not scored:
        return ""
    splits = sorted({s for r in scored for s in r["final"] if s == "id" or s.endswith("/far")}, key=lambda s: (s != "id", s))
    lines = ["| env | teacher | runs | " + " | ".join(f"`{s}` success; CVaR-10%" for s in splits) + " |",
             "|---|---|---|" + "---|" * len(splits)]
    for key in sorted({(r["env"], r["teacher"]) for r in scored}):
        rs = [r for r in scored if (r["env"], r["teacher"]) == key]
        cells = []
        for split in splits:
            have = [r["final"][split] for r in rs if split in r["final"]]
            if not have:
                cells.append("–")
                continue
            ok, worst = iqm_interval([h[0] for h in have]), iqm_interval([h[1] for h in have])
            cells.append(f"{ok.iqm:.3f} [{ok.low:.3f}, {ok.high:.3f}]; {worst.iqm:.3f} [{worst.low:.3f}, {worst.high:.3f}]")
        lines.append(f"| {key[0]} | {key[1]} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(dirs: Sequence[Path], goal: float = GOAL) -> str:
    """The benchmark's text: :func:`table` of the finished runs under ``dirs`` at 50% and at ``goal``, the held-out
    scores of their final policies (:func:`held_out_table`, where the sweeps were evaluated), then the points left out.

    Raises ``ValueError`` when no run under ``dirs`` has finished (nothing to score), or one is not a curriculum run.
    """
    found = [r for d in dirs for r in sweep_runs(d, f"{CHECKPOINT_DIR}/{LATEST}")]
    unfinished = [r for r in found if sweep_state(r) not in (None, "done")]  # a stopped point is not at its budget
    finished = [r for r in found if r not in unfinished]
    if not finished:
        raise ValueError(f"no finished runs with checkpoints/latest.pt under {', '.join(map(str, dirs))}")
    text = "\n\n".join(f"steps to {g:.0%} success on levels drawn uniformly from the training split:\n"
                        + table([run_figures(r, g) for r in finished], g) for g in sorted({HALF, goal}))
    runs = [{**run_figures(r, goal), "final": final_scores(r)} for r in finished]
    held = held_out_table(runs)
    if held:
        text += "\n\nfinal policies on held-out levels (success rate; CVaR-10% of return), IQM over seeds [95% CI]:\n" + held
    if unfinished:
        text += f"\n\nleft out, not finished: {', '.join(f'{r} ({sweep_state(r)})' for r in unfinished)}"
    return text

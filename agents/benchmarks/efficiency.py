"""The sample-efficiency benchmark's figures: environment steps and wall-clock to a training-success goal, per algorithm.

Reads finished or running runs (``shiftgrid sweep`` dirs, or single run dirs): each run's
``config.yaml`` (algo, env, seed, target), its TensorBoard scalars in ``tb/`` and its
``target.json``. A run reaches the goal at the first logged step where ``rollout/success_rate``
(the mean of the last 100 training episodes) is at least the goal while ``rollout/episodes`` (the
episodes ended so far in the run, resumes included) is at least 100, so the window is full; a run that does
not log ``rollout/episodes`` is marked and judged on the success rate alone. Its wall-clock is
the TensorBoard event's, from the run's first event file opening (sessions of a resumed run add
up, the time between them is left out). The run's target (e.g. 95% over the last 1,000
episodes) comes from ``target.json``, written once it is met.

Per environment and algorithm (:func:`steps_groups`, shared with the curriculum benchmark): runs
reaching the goal, the IQM of their steps with its 95% bootstrap interval, where a run that never
gets there counts at its last logged step (its budget) and the IQM is then a lower bound,
written ``>=``; and the ratio of the reference's (PPO's) IQM to the algorithm's: how many times
fewer steps it needs. The ratio is a lower bound (``>=``) when only PPO is censored, an upper
bound (``<=``) when only the algorithm is, and not given when both are.

Example:
    $ shiftgrid benchmark efficiency runs/dreamer-goto runs/efficiency-goto --json efficiency.json
    >>> first_crossing([(1000, 0.95, 9.0), (2000, 0.5, 20.0), (3000, 0.93, 31.0)], {1000: 40, 2000: 90, 3000: 130})
    (3000, 31.0)
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from shiftgrid.agents.evaluation.report import SUCCESS_TAG, scalars
from shiftgrid.agents.evaluation.stats import Interval, iqm_interval
from shiftgrid.agents.run.config import load_yaml_file
from shiftgrid.agents.run.rundir import CONFIG_FILE, RUNS_ROOT, RunDir, SweepDir

GOAL, WINDOW, REFERENCE = 0.9, 100, "ppo"
EPISODES_TAG = "rollout/episodes"
FLOAT32_SLACK = 1e-6


class RunDirError(ValueError):
    """A directory given to the benchmark is missing, holds no runs, or a run has no TensorBoard data."""


def sweep_runs(path: Path, marker: str = CONFIG_FILE) -> list[Path]:
    """The runs of a sweep dir (``runs/<point>/`` holding ``marker``), or the run dir itself when it holds ``marker``.

    Example:
        >>> sweep_runs(Path("/nonexistent"))
        []
    """
    if (path / marker).is_file():
        return [path]
    return sorted(p for p in (SweepDir(path).root / RUNS_ROOT).glob("*") if (p / marker).is_file())


def first_crossing(success: Sequence[tuple[int, float, float]], episodes: Mapping[int, float] | None,
                   goal: float = GOAL, window: int = WINDOW) -> tuple[int, float] | None:
    """``(step, seconds)`` of the first ``success`` point at least ``goal`` with ``episodes[step] >= window`` (None: never).

    ``episodes`` None: the episode count was not logged, and success alone decides. TensorBoard stores
    float32, so a logged 0.9 reads 0.89999998: values within :data:`FLOAT32_SLACK` below ``goal`` count.
    """
    for step, value, seconds in success:
        if value >= goal - FLOAT32_SLACK and (episodes is None or episodes.get(step, 0) >= window):
            return step, seconds
    return None


def sweep_state(run_dir: Path) -> str | None:
    """The point's state in its sweep's ``status/<point>.json`` (running, done, ...), if the run is a sweep's."""
    sweep = SweepDir(run_dir.parent.parent)
    status = sweep.status(run_dir.name)
    return json.loads(status.read_text()).get("state") if run_dir.parent.name == RUNS_ROOT and status.is_file() else None


def run_figures(run_dir: Path, goal: float = GOAL) -> dict[str, Any] | None:
    """One run's figures (see the module docstring); None when it has logged no training success yet."""
    run = RunDir(run_dir)
    config = load_yaml_file(run.config)
    if not {"algo", "env"} <= set(config):
        raise RunDirError(f"{run.config} names no algo and env; is {run_dir} a shiftgrid run dir?")
    tb = scalars(run.tb, [SUCCESS_TAG, EPISODES_TAG])
    if not tb[SUCCESS_TAG]:
        return None
    episodes = {step: value for step, value, _ in tb[EPISODES_TAG]} or None
    crossing = first_crossing(tb[SUCCESS_TAG], episodes, goal)
    budget, final, budget_s = tb[SUCCESS_TAG][-1]
    spec = config.get("target") or {}
    met = json.loads(run.target.read_text()) if run.target.is_file() else {}
    return {"run": str(run_dir), "algo": config["algo"], "env": config["env"], "seed": config.get("seed"),
            "state": sweep_state(run_dir), "planned": config.get("steps"), "budget": budget, "budget_s": budget_s,
            "windowed": episodes is not None, "steps": crossing[0] if crossing else None,
            "wall_s": crossing[1] if crossing else None, "final": final,
            "target": (spec["success"], spec.get("episodes")) if spec.get("success") is not None else None,
            "target_steps": met.get("steps"), "target_wall_s": met.get("wall_s"), "target_rate": met.get("rate")}


def read_runs(dirs: Sequence[Path], goal: float = GOAL) -> tuple[list[dict[str, Any]], list[Path]]:
    """The figures of every run under ``dirs``, and the runs skipped for having no training success logged yet.

    A directory that is missing, holds no run, or whose runs have all logged nothing raises :class:`RunDirError`.
    """
    runs, skipped = [], []
    for d in dirs:
        if not d.is_dir():
            raise RunDirError(f"no such directory: {d}")
        found = sweep_runs(d)
        if not found:
            raise RunDirError(f"{d} is neither a run dir ({CONFIG_FILE}) nor a sweep dir with {RUNS_ROOT}/<point>/{CONFIG_FILE}")
        figures = [(r, run_figures(r, goal)) for r in found]
        if all(f is None for _, f in figures):
            looked = ", ".join(str(RunDir(r).tb) for r in found)
            raise RunDirError(f"no {SUCCESS_TAG} in the TensorBoard files of {d} (looked in {looked})")
        runs += [f for _, f in figures if f is not None]
        skipped += [r for r, f in figures if f is None]
    return runs, skipped


@dataclass(frozen=True)
class Group:
    """Steps to a goal of one environment's runs of one algorithm (or teacher), against the reference's.

    Attributes:
        env, name: the environment and the algorithm (or teacher).
        reached, runs: how many runs reached the goal, of how many.
        steps: IQM [95% CI] of the steps, a run not reaching the goal counted at its budget.
        ratio: the reference's IQM over this IQM (None: no reference, or both censored).
        ratio_bound: ``""`` exact, ``">= "`` a lower bound, ``"<= "`` an upper bound.
    """

    env: str
    name: str
    reached: int
    runs: int
    steps: Interval
    ratio: float | None
    ratio_bound: str

    @property
    def censored(self) -> bool:
        return self.reached < self.runs

    def steps_text(self) -> str:
        return f"{'>= ' if self.censored else ''}{self.steps.iqm:,.0f} [{self.steps.low:,.0f}, {self.steps.high:,.0f}]"

    def ratio_text(self) -> str:
        return "–" if self.ratio is None else f"{self.ratio_bound}{self.ratio:.2f}"


def steps_groups(runs: Sequence[Mapping[str, Any]], by: str, reference: str, steps: str = "steps",
                 budget: str = "budget") -> list[Group]:
    """One :class:`Group` per (``env``, ``run[by]``), sorted, with the ratio to the ``reference`` group of its env.

    Example:
        >>> runs = [{"env": "E", "algo": a, "steps": s, "budget": 1000} for a, s in
        ...         [("ppo", 800), ("ppo", 900), ("dreamer", 200), ("dreamer", None)]]
        >>> [(g.name, g.steps_text(), g.ratio_text()) for g in steps_groups(runs, "algo", "ppo")]
        [('dreamer', '>= 600 [200, 1,000]', '<= 1.42'), ('ppo', '850 [800, 900]', '1.00')]
    """
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        grouped[(r["env"], r[by])].append(r)
    stats = {key: (iqm_interval([r[steps] if r[steps] is not None else r[budget] for r in rs]),
                   sum(r[steps] is not None for r in rs)) for key, rs in grouped.items()}
    out = []
    for (env, name), (ci, reached) in sorted(stats.items()):
        ratio, bound = None, ""
        if (env, reference) in stats:
            base, base_reached = stats[(env, reference)]
            base_censored, censored = base_reached < len(grouped[(env, reference)]), reached < len(grouped[(env, name)])
            if not (base_censored and censored):
                ratio, bound = base.iqm / ci.iqm, ">= " if base_censored else "<= " if censored else ""
        out.append(Group(env, name, reached, len(grouped[(env, name)]), ci, ratio, bound))
    return out


def _seconds(s: float | None) -> str:
    return "–" if s is None else f"{s:,.0f} s"


def _target(spec: tuple[float, int | None] | None) -> str:
    return "none" if spec is None else f"{spec[0]:.0%} / {spec[1]:,}" if spec[1] else f"{spec[0]:.0%}"


def runs_table(runs: Sequence[Mapping[str, Any]], goal: float = GOAL) -> str:
    """The per-run markdown table (a ``*`` marks a run judged without ``rollout/episodes``)."""
    lines = [f"| env | algo | seed | state | steps logged | steps to {goal:.0%} | wall-clock | target | target met at | "
             "final 100-episode success |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["env"], r["algo"], str(r["seed"]))):
        mark = "" if r["windowed"] else "*"
        to_goal = f"{r['steps']:,}{mark}" if r["steps"] is not None else f"not by {r['budget']:,}{mark}"
        met = (f"{r['target_steps']:,} steps, {_seconds(r['target_wall_s'])}" if r["target_steps"] is not None
               else "–" if r["target"] is None else f"not met by {r['budget']:,}")
        planned = f" of {r['planned']:,}" if r["planned"] else ""
        lines.append(f"| {r['env']} | {r['algo']} | {r['seed']} | {r['state'] or '–'} | {r['budget']:,}{planned} | {to_goal} | "
                     f"{_seconds(r['wall_s'])} | {_target(r['target'])} | {met} | {r['final']:.2f} |")
    if not all(r["windowed"] for r in runs):
        lines.append(f"\n\\* no `{EPISODES_TAG}` in this run's TensorBoard: the {WINDOW}-episode window is not checked.")
    return "\n".join(lines)


def groups(runs: Sequence[Mapping[str, Any]], reference: str = REFERENCE) -> list[dict[str, Any]]:
    """Per (env, algo): :class:`Group` of steps to the goal and to the target, median wall-clock, final successes.

    A target's ratio is given only against a reference run with the same target. ``target_wall_s`` is the IQM
    [95% CI] of the wall-clock to the target (``target.json``'s), a run that never met it counted at its last
    logged second (a lower bound, as its steps are); wall-clock gets no ratio (runs may share a machine unevenly).
    """
    goal = {(g.env, g.name): g for g in steps_groups(runs, "algo", reference)}
    target = {(g.env, g.name): g for g in steps_groups(runs, "algo", reference, steps="target_steps")}
    target_wall = {(g.env, g.name): g.steps for g in steps_groups(runs, "algo", reference, steps="target_wall_s",
                                                                  budget="budget_s")}
    out = []
    for (env, algo), g in goal.items():
        rs = [r for r in runs if (r["env"], r["algo"]) == (env, algo)]
        specs = {r["target"] for r in rs}
        same = specs == {r["target"] for r in runs if (r["env"], r["algo"]) == (env, reference)} and len(specs) == 1
        t = target[(env, algo)]
        wall = [r["wall_s"] if r["wall_s"] is not None else r["budget_s"] for r in rs]
        out.append({"env": env, "algo": algo, "goal": g, "wall_s": statistics.median(wall),
                    "target_spec": sorted(specs, key=str), "target": t if same else replace(t, ratio=None, ratio_bound=""),
                    "target_wall_s": target_wall[(env, algo)],
                    "final": [r["final"] for r in rs]})
    return out


def groups_table(grouped: Sequence[Mapping[str, Any]], goal: float = GOAL, reference: str = REFERENCE) -> str:
    """The grouped markdown table of :func:`groups`."""
    lines = [f"| env | algo | runs at {goal:.0%} | steps to {goal:.0%} (IQM [95% CI]) | {reference} / algo | "
             f"median wall-clock to {goal:.0%} | target | runs at target | steps to target (IQM [95% CI]) | "
             f"{reference} / algo (target) | wall-clock to target (IQM [95% CI]) | final 100-episode success |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in grouped:
        g, t, w = x["goal"], x["target"], x["target_wall_s"]
        met = "–" if x["target_spec"] == [None] else t.steps_text()
        wall = "–" if x["target_spec"] == [None] else f"{'>= ' if t.censored else ''}{w.iqm:,.0f} s [{w.low:,.0f}, {w.high:,.0f}]"
        lines.append(f"| {x['env']} | {x['algo']} | {g.reached}/{g.runs} | {g.steps_text()} | {g.ratio_text()} | "
                     f"{'>= ' if g.censored else ''}{_seconds(x['wall_s'])} | {', '.join(map(_target, x['target_spec']))} | "
                     f"{t.reached}/{t.runs} | {met} | {t.ratio_text()} | {wall} | {', '.join(f'{v:.2f}' for v in x['final'])} |")
    return "\n".join(lines)


def to_json(runs: Sequence[Mapping[str, Any]], grouped: Sequence[Mapping[str, Any]], goal: float) -> dict[str, Any]:
    """Everything the tables show, JSON-ready."""
    def group(g: Group) -> dict[str, Any]:
        return {**asdict(g), "steps": g.steps.to_dict(), "censored": g.censored}

    return {"goal": goal, "window": WINDOW, "runs": list(runs),
            "groups": [{**x, "goal": group(x["goal"]), "target": group(x["target"]),
                        "target_wall_s": x["target_wall_s"].to_dict()} for x in grouped]}

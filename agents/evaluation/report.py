"""The shift report of one configuration (one or more runs): JSON, CSV, Markdown and PNG plots.

Agents and world models share it: a :class:`RunRecord` carries either episodes (an agent's,
summarised by :func:`~shiftgrid.agents.evaluation.stats.run_metrics`) or its per-split metrics ready-made
(a world model's), and a :class:`ReportStyle` says which metrics there are, in what words,
which go in the Markdown tables and plots (the default is the agents' report).

Files written by :func:`write_report`:

- ``results.json`` — everything: every run's config, per-split metrics and episodes, and the
  summary across runs (per split and per axis, IQM with confidence interval and per-run values).
- ``results.csv`` — tidy per-run table: ``run, seed, split, axis, level, metric, value``.
- ``results.md`` — a table per axis (rows ``id``/``near``/``far`` and the two gaps; cells
  ``IQM [low, high]``), every split, the references on the same levels (uniform random and the
  best constant action, where measured), success per seed, and (when known) how each run trained:
  its steps and whether and when it met its training-success target.
- ``shift_<metric>.png`` — per axis, bars for id / near / far with CI error bars and run dots
  (an ``@`` in a metric's name is ``_k`` in the file's: ``shift_obs_nll_k5.png``).
- ``learning_curves.png`` — ``rollout/success_rate`` (the style's ``curve``) from each run's TensorBoard ``tb/`` (when present).

Plots use matplotlib's Agg canvas directly, so no display and no global backend change.

Example:
    >>> from shiftgrid.agents.evaluation.episodes import EpisodeResult
    >>> import tempfile
    >>> run = RunRecord("r0", 0, {"id": [EpisodeResult(True, 0.9, 3, 0.95, 2.0)]})
    >>> paths = write_report(tempfile.mkdtemp(), [run], {}, env_id="shiftgrid/GoTo-v1")
    >>> sorted(paths)[:3]
    ['csv', 'json', 'md']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from shiftgrid.agents.evaluation.baselines import CONSTANT, RANDOM, action_summary
from shiftgrid.agents.evaluation.episodes import EpisodeResult
from shiftgrid.agents.evaluation.stats import METRICS, Interval, ShiftSummary, run_metrics, summarize

SUCCESS_TAG = "rollout/success_rate"
PLOTTED = ("success_rate", "optimality_ratio")
COLORS = {"id": "#4c72b0", "near": "#dd8452", "far": "#c44e52"}
ROW_LABELS = {"id": "id", "near": "near", "far": "far", "gap_near": "gap id − near", "gap_far": "gap id − far"}


@dataclass(frozen=True)
class ReportStyle:
    """What a report says of its metrics (the defaults are the agents' report).

    Attributes:
        title: the Markdown heading, before the env id.
        labels: metric -> the words tables use; also the metrics summarised, in this order.
        table: the metrics in the Markdown tables (None: every labelled one the runs have).
        plotted: the metrics drawn as ``shift_<metric>.png`` (where every split has them).
        per_seed: the metric of the per-seed table.
        gap_note: the sentence on how to read a gap.
        curve: the TensorBoard tag of ``learning_curves.png`` and the words of its axis.

    Example:
        >>> ReportStyle().label("success_rate"), ReportStyle(labels={"x@5": "x @5"}).label("x@5")
        ('success rate', 'x @5')
    """

    title: str = "Shift report"
    labels: Mapping[str, str] = field(default_factory=lambda: dict(METRICS))
    table: Sequence[str] | None = None
    plotted: Sequence[str] = PLOTTED
    per_seed: str = "success_rate"
    gap_note: str = "Gaps are id − shifted: for success and optimality a positive gap is a loss under shift."
    curve: tuple[str, str] = (SUCCESS_TAG, "training success rate")

    def label(self, metric: str) -> str:
        return self.labels.get(metric, metric)

    def columns(self, summary: ShiftSummary) -> list[str]:
        """The Markdown tables' metrics that the summary holds."""
        wanted = self.labels if self.table is None else self.table
        return [m for m in wanted if any(m in ms for ms in summary.splits.values())]


AGENTS = ReportStyle()


@dataclass
class RunRecord:
    """One evaluated run: its name, training seed, per-split episodes, config and TensorBoard folder.

    ``training`` holds what is known of its training: ``steps`` (of the evaluated checkpoint),
    ``checkpoint`` (its ``file``, ``steps`` and how it was ``chosen``) and ``target`` (the met
    training-success target, as in ``target.json``, or None). ``metrics`` (split -> metric ->
    value), when given, is the run's per-split table as computed elsewhere (a world model's);
    None: computed from ``results`` by :func:`~shiftgrid.agents.evaluation.stats.run_metrics`.
    """

    name: str
    seed: int | None
    results: dict[str, list[EpisodeResult]]
    config: dict[str, Any] = field(default_factory=dict)
    tb_dir: Path | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] | None = None

    def split_metrics(self) -> dict[str, dict[str, float]]:
        """Split -> metric -> value of this run."""
        return self.metrics if self.metrics is not None else run_metrics(self.results)


def learning_curve(tb_dir: str | Path, tag: str = SUCCESS_TAG) -> list[tuple[int, float]]:
    """``(step, value)`` of ``tag`` from every TensorBoard event file under ``tb_dir``, by step.

    A step logged twice (a resumed run) keeps the value from the later file.

    Example:
        >>> learning_curve("/nonexistent")
        []
    """
    return [(step, value) for step, value, _ in scalars(tb_dir, [tag])[tag]]


def scalars(tb_dir: str | Path, tags: Sequence[str]) -> dict[str, list[tuple[int, float, float]]]:
    """``(step, value, seconds)`` of each of ``tags`` from every event file under ``tb_dir``, by step.

    ``seconds`` is the run's wall-clock at the event: since its first event file was opened,
    counting each later file (a resumed run) from its own opening, so the time between sessions
    is left out. A step logged twice keeps the later file's value. A tag never logged maps to ``[]``.

    Example:
        >>> scalars("/nonexistent", ["rollout/success_rate"])
        {'rollout/success_rate': []}
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    points: dict[str, dict[int, tuple[float, float]]] = {tag: {} for tag in tags}
    before = 0.0  # wall-clock of the sessions (event files) read so far
    for path in sorted(Path(tb_dir).rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(path), size_guidance={SCALARS: 0})
        acc.Reload()
        logged = acc.Tags().get("scalars", [])
        if not logged:
            continue
        opened = acc.FirstEventTimestamp()
        for tag in set(tags) & set(logged):
            points[tag].update({int(e.step): (float(e.value), before + e.wall_time - opened) for e in acc.Scalars(tag)})
        before += max(e.wall_time for tag in logged for e in acc.Scalars(tag)) - opened
    return {tag: [(step, value, seconds) for step, (value, seconds) in sorted(p.items())] for tag, p in points.items()}


def _cell(i: Interval | None, metric: str) -> str:
    if i is None or not math.isfinite(i.iqm):
        return "–"
    f = "{:.1f}" if metric == "mean_length" else "{:.3f}"
    return f"{f.format(i.iqm)} [{f.format(i.low)}, {f.format(i.high)}]"


def _table(first: str, rows: Sequence[tuple[str, Mapping[str, Interval]]], metrics: Sequence[str],
           style: ReportStyle = AGENTS) -> list[str]:
    lines = [f"| {first} | " + " | ".join(style.label(m) for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(_cell(ms.get(m), m) for m in metrics) + " |" for label, ms in rows]
    return lines


def inexact_oracle_lines(runs: Sequence[RunRecord]) -> list[str]:
    """Report lines naming the splits where the oracle's optimum was a bound, not proven (none if all were exact).

    Example:
        >>> from shiftgrid.agents.evaluation.episodes import EpisodeResult
        >>> eps = [EpisodeResult(True, 0.8, 5, 0.9, 4.0, "h", False), EpisodeResult(True, 0.8, 5, 0.9, 4.0, "g", True)]
        >>> inexact_oracle_lines([RunRecord("a", 0, {"rules/far": eps})])[1]
        '- Oracle inexact on `rules/far`: 1 of 2 episodes (optimality ratio and regret there are against a bound that may be beaten).'
    """
    counts: dict[str, list[int]] = {}
    for run in runs:
        for split, eps in run.results.items():
            c = counts.setdefault(split, [0, 0])
            c[0] += sum(e.optimal_exact is False for e in eps)
            c[1] += len(eps)
    lines = [f"- Oracle inexact on `{s}`: {bad} of {n} episodes (optimality ratio and regret there are against a bound "
             "that may be beaten)." for s, (bad, n) in counts.items() if bad]
    return [""] + lines if lines else []


def references_table(summary: ShiftSummary, references: Mapping[str, Any]) -> list[str]:
    """Per split: the evaluated policy's success (IQM) beside the uniform-random policy's and the best constant action's.

    Example:
        >>> from shiftgrid.agents.evaluation.stats import Interval
        >>> s = ShiftSummary({"id": {"success_rate": Interval(0.5, 0.5, 0.5, (0.5,))}}, {}, {}, 1)
        >>> ref = {"episodes": 10, "splits": {"id": {"uniform random": {"success_rate": 0.1, "mean_return": 0.05},
        ...        "best constant action": {"success_rate": 0.2, "mean_return": 0.1, "action": "left"}}}}
        >>> references_table(s, ref)[2]
        '| `id` | 0.500 | 0.100 | 0.200 (left) |'
    """
    lines = [f"| split | this policy: success rate (IQM) | {RANDOM} | {CONSTANT} |", "|---|---|---|---|"]
    for split, ref in references["splits"].items():
        own = summary.splits.get(split, {}).get("success_rate")
        best = ref[CONSTANT]
        lines.append(f"| `{split}` | {'–' if own is None else f'{own.iqm:.3f}'} | {ref[RANDOM]['success_rate']:.3f} | "
                     f"{best['success_rate']:.3f} ({best['action']}) |")
    return lines


def markdown(summary: ShiftSummary, runs: Sequence[RunRecord], env_id: str, meta: Mapping[str, Any] | None = None,
             style: ReportStyle = AGENTS, references: Mapping[str, Any] | None = None) -> str:
    """The readable report: a table per axis, every split, and ``style.per_seed`` (success rate) per seed."""
    metrics = style.columns(summary)
    names = ", ".join(f"{r.name} (seed {r.seed})" for r in runs)
    lines = [f"# {style.title}: `{env_id}`", "", f"- runs ({summary.n_runs}): {names}"]
    lines += [f"- {k}: {v}" for k, v in (meta or {}).items()]
    notes = ["Cells: interquartile mean across runs [95% stratified bootstrap CI]."]
    if summary.axes:
        notes.append(style.gap_note)
    if summary.n_runs == 1:
        notes.append("One run: intervals across runs collapse to the point; evaluate several seeds for real intervals.")
    lines += ["", " ".join(notes)]
    lines += inexact_oracle_lines(runs)
    for axis, rows in summary.axes.items():
        layout = summary.layout[axis]
        labelled = [(ROW_LABELS[r] + (f" (`{layout[r]}`)" if r in layout else ""), rows[r]) for r in ROW_LABELS if r in rows]
        lines += ["", f"## {axis}", ""] + _table("level", labelled, metrics, style)
    lines += ["", "## Every split", ""] + _table("split", [(f"`{s}`", ms) for s, ms in summary.splits.items()], metrics, style)
    if references:
        lines += ["", "## References on the same levels", "",
                  f"Success rate of policies that ignore what they see, on the first {references['episodes']} levels of "
                  f"each split: {RANDOM}, and the {CONSTANT} (every action repeated from the start, the best per split "
                  "shown: an upper bound of constant policies). A policy near these has learned little.", ""]
        lines += references_table(summary, references)
    seed_label = style.label(style.per_seed)
    lines += ["", f"## {seed_label[:1].upper() + seed_label[1:]} per seed", "",
              "| split | " + " | ".join(r.name for r in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for split, ms in summary.splits.items():
        if style.per_seed in ms:
            lines.append(f"| `{split}` | " + " | ".join(f"{v:.3f}" if math.isfinite(v) else "–"
                                                          for v in ms[style.per_seed].per_run) + " |")
    if any(r.training for r in runs):
        lines += ["", "## Training", ""] + training_table(runs)
    return "\n".join(lines) + "\n"


def training_table(runs: Sequence[RunRecord]) -> list[str]:
    """Per run: steps of the evaluated checkpoint, which checkpoint and how it was chosen, its target and when it was met,
    and (where a teacher helped) the teacher's cost."""
    teacher = any(r.training.get("teacher") or curriculum_name(r) for r in runs)  # a column only where a teacher helped
    lines = ["| run | seed | steps | checkpoint | training target | met at step | wall-clock to target |"
             + (" teacher cost |" if teacher else ""), "|---|---|---|---|---|---|---|" + ("---|" if teacher else "")]
    for r in runs:
        steps = r.training.get("steps")
        goal = (r.config.get("target") or {}).get("success")
        met = r.training.get("target")
        ckpt = r.training.get("checkpoint")
        which = f"`{ckpt['file']}`: {ckpt['chosen']}" if ckpt else "–"
        target = f"{goal:.2f} over {(r.config.get('target') or {}).get('episodes')} episodes" if goal is not None else "none"
        at, wall = (f"{met['steps']:,}", f"{met['wall_s'] / 60:.1f} min") if met else ("not met" if goal is not None else "–", "–")
        lines.append(f"| {r.name} | {r.seed} | {'–' if steps is None else f'{steps:,}'} | {which} | {target} | {at} | {wall} |"
                     + (f" {curriculum_cell(r)}{teacher_cost_text(r.training.get('teacher'))} |" if teacher else ""))
    return lines


def curriculum_name(run: RunRecord) -> str | None:
    """The curriculum teacher a run trained with (its config's ``teacher.name``), or None."""
    return ((run.config or {}).get("teacher") or {}).get("name")


def curriculum_cell(run: RunRecord) -> str:
    """``curriculum `plr`: `` where a curriculum chose the run's levels, else nothing (the teacher cell's prefix)."""
    name = curriculum_name(run)
    return f"curriculum `{name}`: " if name else ""


def teacher_cost_text(cost: Mapping[str, float] | None) -> str:
    """A teacher's cost (``teacher/cost.json``: name -> total) in a table cell.

    Example:
        >>> teacher_cost_text({"demo_steps": 12345.0, "labels": 0.0}), teacher_cost_text(None)
        ('demo_steps 12,345, labels 0', '–')
    """
    if not cost:
        return "–"
    return ", ".join(f"{name} {value:,.0f}" if float(value).is_integer() else f"{name} {value:,.3g}"
                     for name, value in cost.items())


def tidy(
    runs: Sequence[RunRecord], metrics: Sequence[Mapping[str, Mapping[str, float]]], layout: Mapping[str, Mapping[str, str]]
) -> pd.DataFrame:
    """Per-run values (``metrics[k]`` belongs to ``runs[k]``), one row per run x split x metric, with axis and level.

    The shared ``id`` split (and ``train``) belongs to no single axis: its axis is empty.
    """
    where = {name: (axis, level) for axis, levels in layout.items() for level, name in levels.items() if level != "id"}
    rows = []
    for run, per_split in zip(runs, metrics):
        for split, ms in per_split.items():
            axis, level = where.get(split, ("", split if split in ("id", "train") else ""))
            rows += [(run.name, run.seed, split, axis, level, m, v) for m, v in ms.items()]
    return pd.DataFrame(rows, columns=["run", "seed", "split", "axis", "level", "metric", "value"])


def plot_shift(summary: ShiftSummary, metric: str, path: Path, label: str | None = None) -> None:
    """Bars per axis (id / near / far, one group per axis on one set of axes) of ``metric`` with CI error bars and
    one dot per run."""
    panels: dict[str, list[tuple[str, Interval]]] = {
        a: [(lvl, rows[lvl][metric]) for lvl in ("id", "near", "far") if lvl in rows] for a, rows in summary.axes.items()}
    panels = panels or {"splits": [(s, ms[metric]) for s, ms in summary.splits.items()]}
    fig = Figure(figsize=(2.6 * len(panels) + 0.6, 3.2), layout="constrained")
    ax = fig.subplots()
    ticks: list[float] = []
    names: list[str] = []
    start = 0.0
    for title, bars in panels.items():
        x = start + np.arange(len(bars))
        point = np.array([i.iqm for _, i in bars])
        err = np.array([[max(0.0, i.iqm - i.low) for _, i in bars], [max(0.0, i.high - i.iqm) for _, i in bars]])
        ax.bar(x, point, yerr=err, capsize=4, color=[COLORS.get(label, "#8c8c8c") for label, _ in bars])
        for k, (_, i) in enumerate(bars):
            ax.plot(np.full(i.n_runs, x[k] + 0.25), i.per_run, "k.", alpha=0.6)  # beside the error bar
        ax.text(float(x.mean()), 1.01, title, transform=ax.get_xaxis_transform(), ha="center", va="bottom")
        if start:
            ax.axvline(start - 0.75, color="#bbbbbb", linewidth=0.8)
        ticks += list(x)
        names += [label for label, _ in bars]
        start += len(bars) + 0.5
    ax.set_xticks(ticks, names, rotation=0 if max(len(b) for b in panels.values()) <= 3 else 45)
    ax.set_xlim(-0.6, start - 0.9)
    ax.set_ylabel(f"{METRICS[metric] if label is None else label} (IQM, 95% CI)")
    fig.savefig(path, dpi=110)


def plot_learning_curves(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path,
                         label: str = "training success rate") -> None:
    """Training success rate (or what ``label`` says) against environment steps, one line per run."""
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.subplots()
    for name, points in curves.items():
        steps, values = zip(*points)
        ax.plot(steps, values, label=name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(label)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _json_safe(x: Any) -> Any:
    """NaN/inf become None, so results.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_report(
    out_dir: str | Path,
    runs: Sequence[RunRecord],
    layout: Mapping[str, Mapping[str, str]],
    *,
    env_id: str,
    meta: Mapping[str, Any] | None = None,
    seed: int = 0,
    style: ReportStyle = AGENTS,
    references: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Summarize ``runs`` (seeds of one configuration) and write every report file into ``out_dir``.

    Args:
        out_dir: created if missing.
        runs: the evaluated runs, all on the same splits.
        layout: axis -> level -> split (:func:`~shiftgrid.agents.evaluation.episodes.axis_layout`).
        env_id: the environment, for titles.
        meta: extra ``key: value`` lines for the header (episodes, evaluation seed, algorithm...).
        seed: seed of the bootstrap.
        style: the metrics, their words, tables and plots (default: the agents' report).
        references: the uniform-random policy's and the best constant action's figures on the same levels
            (:func:`~shiftgrid.agents.evaluation.baselines.measure_references`), shown beside the runs'.

    Returns:
        kind (``json``, ``csv``, ``md``, ``shift_<metric>``, ``learning_curves``) -> path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = [r.split_metrics() for r in runs]
    summary = summarize(metrics, layout, metrics=list(style.labels), seed=seed)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    document = {
        "env": env_id,
        "meta": dict(meta or {}),
        "runs": [
            {"name": r.name, "seed": r.seed, "config": r.config, "training": r.training, "metrics": m,
             "actions": action_summary(r.results),
             "episodes": {s: [e.as_dict() for e in eps] for s, eps in r.results.items()}}
            for r, m in zip(runs, metrics)
        ],
        "summary": summary.to_dict(),
        "references": None if references is None else dict(references),
    }
    try:  # the C encoder (no indent): a report holds every episode
        text = json.dumps(document, default=str, allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere
        text = json.dumps(_json_safe(document), default=str, allow_nan=False)
    paths["json"].write_text(text)
    tidy(runs, metrics, layout).to_csv(paths["csv"], index=False)
    paths["md"].write_text(markdown(summary, runs, env_id, meta, style, references))
    for metric in style.plotted:
        if all(metric in ms for ms in summary.splits.values()) and any(
                math.isfinite(ms[metric].iqm) for ms in summary.splits.values()):
            paths[f"shift_{metric}"] = out / f"shift_{metric.replace('@', '_k')}.png"
            plot_shift(summary, metric, paths[f"shift_{metric}"], style.label(metric))
    curves = {r.name: learning_curve(r.tb_dir, style.curve[0]) for r in runs if r.tb_dir is not None}
    curves = {name: c for name, c in curves.items() if c}
    if curves:
        paths["learning_curves"] = out / "learning_curves.png"
        plot_learning_curves(curves, paths["learning_curves"], style.curve[1])
    return paths


def grid_index(title: str, groups: Mapping[str, Mapping[str, Any]], points: Sequence[Mapping[str, Any]],
               meta: Mapping[str, Any] | None = None, metrics: Sequence[str] = PLOTTED,
               references: Mapping[str, Any] | None = None) -> str:
    """The index of a grid's evaluation: configurations side by side, then how every point trained.

    ``groups`` maps a configuration to its report's ``summary`` (``results.json``); each gets one
    column group (``metrics``, IQM [95% CI] across its seeds) on every split and axis gap. ``points``
    are per-point rows: ``point``, ``configuration``, ``seed``, ``state``, ``steps``, ``wall_s``,
    ``target`` (as in ``target.json``, or None) and ``error``. ``references`` (a report's ``references``)
    add the uniform-random policy's and the best constant action's success on every split.

    Example:
        >>> cell = {"iqm": 0.5, "low": 0.4, "high": 0.6, "per_run": [0.4, 0.6]}
        >>> summary = {"n_runs": 2, "splits": {"id": {"success_rate": cell}}, "axes": {}}
        >>> print(grid_index("grid", {"algo=ppo": summary}, [], metrics=["success_rate"]).splitlines()[6])
        | `id` | 0.500 [0.400, 0.600] |
    """
    names = list(groups)
    lines = [f"# Sweep: {title}", "", "- configurations: " + ", ".join(f"`{n}` ({groups[n]['n_runs']} seeds)" for n in names)]
    lines += [f"- {k}: {v}" for k, v in (meta or {}).items()]
    header = [f"{n}: {METRICS[m]}" for n in names for m in metrics]
    ref = dict((references or {}).get("splits") or {})
    header += [f"{RANDOM}: success rate", f"{CONSTANT}: success rate"] if ref else []
    lines += ["", "| split | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    rows = [(f"`{s}`", "splits", s) for s in next(iter(groups.values()))["splits"]] if groups else []
    for axis, levels in (next(iter(groups.values()))["axes"] if groups else {}).items():
        rows += [(f"{axis}: {ROW_LABELS[g]}", axis, g) for g in ("gap_near", "gap_far") if g in levels]
    for shown, section, key in rows:
        cells = []
        for n in names:
            where = groups[n]["splits"] if section == "splits" else groups[n]["axes"].get(section, {})
            cells += [_cell(_interval(where.get(key, {}).get(m)), m) for m in metrics]
        if ref:
            r = ref.get(key) if section == "splits" else None
            cells += ["–", "–"] if r is None else [f"{r[RANDOM]['success_rate']:.3f}",
                                                   f"{r[CONSTANT]['success_rate']:.3f} ({r[CONSTANT]['action']})"]
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: interquartile mean across a configuration's seeds [95% stratified bootstrap CI]; "
              "each configuration's own report is in its folder."]
    if ref and references is not None:
        lines += ["", f"References, on the first {references['episodes']} levels of each split (the same for every "
                  f"configuration): {RANDOM}, and the {CONSTANT} per split."]
    lines += ["", "## Training", "",
              "| point | configuration | seed | state | steps | wall-clock | met target at step | wall-clock to target | error |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        met, wall = p.get("target"), p.get("wall_s")
        at, to = (f"{met['steps']:,}", f"{met['wall_s'] / 60:.1f} min") if met else ("–", "–")
        steps = "–" if p.get("steps") is None else f"{p['steps']:,}"
        lines.append(f"| {p['point']} | {p['configuration']} | {p.get('seed')} | {p['state']} | {steps} | "
                     f"{'–' if wall is None else f'{wall:.1f} s'} | {at} | {to} | {p.get('error') or ''} |")
    return "\n".join(lines) + "\n"


def _interval(cell: Mapping[str, Any] | None) -> Interval | None:
    """An :class:`Interval` read back from ``results.json``."""
    return None if cell is None else Interval(cell["iqm"], cell["low"], cell["high"], tuple(cell["per_run"]))

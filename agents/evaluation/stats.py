"""Shift statistics: metrics per split, id / near / far per axis with generalization gaps, across runs.

Per run and split (:func:`episode_metrics`): success rate, mean return, optimality ratio
(return / optimal return per episode, failures count 0, averaged), exact regret (optimal return
- return, averaged) and mean episode length. The last three need the oracle's figures, so ids
without them (minigrid, BabyAI) report success, return and length only.

Across runs (seeds of one configuration), each number is the interquartile mean (IQM, the 25%
trimmed mean) with a 95% stratified bootstrap confidence interval, rliable's method: runs are
resampled with replacement within each split (the stratum), and splits are never pooled, so
there is never one number averaged across axes. Every run's own value is kept beside it.

Any table of per-run metrics (split -> metric -> value) can be summarised: the agents' come
from :func:`run_metrics`, a world model's from
:func:`shiftgrid.agents.evaluation.world_model.evaluate_world_model`; ``summarize(metrics=...)``
names which metrics to keep, in order. A metric a run could not compute (NaN, e.g. an F1 with
no positives) keeps NaN as its run's value and gives a NaN interval wherever it enters.

A generalization gap is ``id - shifted`` for every metric, computed per run and as the
difference of the IQMs; its interval comes from a paired bootstrap (the same resampled runs
on both splits, since each run was evaluated on both).

Example:
    >>> iqm_interval([0, 1, 2, 3, 4, 5, 6, 7]).iqm
    3.5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from shiftgrid.agents.evaluation.episodes import EpisodeResult

#: Metric keys, with the words tables use for them.
METRICS: dict[str, str] = {
    "success_rate": "success rate",
    "optimality_ratio": "optimality ratio",
    "regret": "regret",
    "mean_return": "return",
    "mean_length": "episode length",
}
#: Rows of an axis: the three levels, then the two gaps (``id - near``, ``id - far``).
GAPS = {"gap_near": "near", "gap_far": "far"}


def episode_metrics(results: Sequence[EpisodeResult]) -> dict[str, float]:
    """Metrics of one run on one split (optimality and regret only when every episode has an optimal return).

    Example:
        >>> ep = [EpisodeResult(True, 0.8, 5, 0.9, 4.0), EpisodeResult(False, 0.0, 9, 0.5, 2.0)]
        >>> {k: round(v, 3) for k, v in episode_metrics(ep).items()}
        {'success_rate': 0.5, 'mean_return': 0.4, 'mean_length': 7.0, 'optimality_ratio': 0.444, 'regret': 0.3}
    """
    if not results:
        raise ValueError("no episodes to compute metrics from")
    ret = np.array([r.ret for r in results], dtype=float)
    out = {
        "success_rate": float(np.mean([r.success for r in results])),
        "mean_return": float(ret.mean()),
        "mean_length": float(np.mean([r.length for r in results])),
    }
    if all(r.optimal_return is not None for r in results):
        opt = np.array([r.optimal_return for r in results], dtype=float)
        success = np.array([r.success for r in results], dtype=bool)
        out["optimality_ratio"] = float(np.mean(np.where(success, ret / opt, 0.0)))
        out["regret"] = float(np.mean(opt - ret))
    return out


def run_metrics(results: Mapping[str, Sequence[EpisodeResult]]) -> dict[str, dict[str, float]]:
    """:func:`episode_metrics` of every split of one run: split -> metric -> value."""
    return {split: episode_metrics(eps) for split, eps in results.items()}


def iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean`` cutting 25% each side)."""
    return stats.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=axis)


@dataclass(frozen=True)
class Interval:
    """A point estimate across runs with its confidence interval and each run's own value.

    Attributes:
        iqm: the interquartile mean across runs (for a gap: the difference of two IQMs).
        low, high: bounds of the 95% bootstrap confidence interval (equal to ``iqm`` for one run).
        per_run: each run's value, in run order.
    """

    iqm: float
    low: float
    high: float
    per_run: tuple[float, ...]

    @property
    def n_runs(self) -> int:
        return len(self.per_run)

    def to_dict(self) -> dict:
        return {**asdict(self), "per_run": list(self.per_run)}


def _bootstrap(
    data: tuple[np.ndarray, ...], statistic: Callable, point: float, paired: bool, confidence: float, n_resamples: int, seed: int
) -> Interval:
    """Percentile bootstrap over runs (jointly over ``data`` when ``paired``) around ``point``."""
    if not all(np.isfinite(d).all() for d in data):  # a run without a value: no interval to give
        low = high = float("nan")
    elif len(data[0]) < 2:  # scipy needs two runs; one run has no spread across runs to resample
        low = high = point
    else:
        ci = stats.bootstrap(
            data, statistic, paired=paired, vectorized=True, confidence_level=confidence,
            n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    per_run = data[0] - data[1] if paired else data[0]
    return Interval(point, low, high, tuple(float(v) for v in per_run))


def iqm_interval(scores: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """IQM of one split's per-run scores with a seeded stratified bootstrap interval (resampling runs).

    Example:
        >>> ci = iqm_interval([0.2, 0.4, 0.5, 0.7])
        >>> ci.low <= ci.iqm <= ci.high, ci.per_run
        (True, (0.2, 0.4, 0.5, 0.7))
    """
    x = np.asarray(scores, dtype=float)
    return _bootstrap((x,), iqm, float(iqm(x)), False, confidence, n_resamples, seed)


def gap_interval(
    in_dist: Sequence[float], shifted: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """``IQM(in_dist) - IQM(shifted)`` over paired runs, with a paired bootstrap interval.

    Example:
        >>> gap_interval([0.9, 0.8, 0.7], [0.5, 0.5, 0.4]).per_run
        (0.4, 0.30000000000000004, 0.29999999999999993)
    """
    a, b = np.asarray(in_dist, dtype=float), np.asarray(shifted, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a gap needs the same runs on both splits; got {len(a)} and {len(b)} runs")

    def difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
        return iqm(x, axis) - iqm(y, axis)

    return _bootstrap((a, b), difference, float(iqm(a) - iqm(b)), True, confidence, n_resamples, seed)


@dataclass
class ShiftSummary:
    """Everything aggregated across runs.

    Attributes:
        splits: split -> metric -> :class:`Interval`.
        axes: axis -> row (``id``, ``near``, ``far``, ``gap_near``, ``gap_far``) -> metric -> :class:`Interval`.
        layout: axis -> level -> split name (which split each axis row comes from).
        n_runs: how many runs were aggregated.
    """

    splits: dict[str, dict[str, Interval]]
    axes: dict[str, dict[str, dict[str, Interval]]]
    layout: dict[str, dict[str, str]]
    n_runs: int

    def to_dict(self) -> dict:
        return {
            "n_runs": self.n_runs,
            "layout": self.layout,
            "splits": {s: {m: i.to_dict() for m, i in ms.items()} for s, ms in self.splits.items()},
            "axes": {a: {r: {m: i.to_dict() for m, i in ms.items()} for r, ms in rows.items()} for a, rows in self.axes.items()},
        }


def summarize(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    layout: Mapping[str, Mapping[str, str]],
    *,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> ShiftSummary:
    """Aggregate per-run metrics (each from :func:`run_metrics`, or any such table) across runs, per split and per axis.

    Args:
        runs: one mapping split -> metric -> value per run; every run must cover the same splits.
        layout: axis -> {``id``/``near``/``far`` -> split name}
            (see :func:`~shiftgrid.agents.evaluation.episodes.axis_layout`).
        metrics: the metrics to summarise, in this order, where every run has them (None: :data:`METRICS`).
        confidence, n_resamples, seed: of the bootstrap (seeded, so reports are reproducible).

    Example:
        >>> runs = [{"id": {"success_rate": s}, "size/far": {"success_rate": s / 2}} for s in (0.6, 0.8, 1.0)]
        >>> summary = summarize(runs, {"size": {"id": "id", "far": "size/far"}})
        >>> round(summary.axes["size"]["gap_far"]["success_rate"].iqm, 3)
        0.4
    """
    if not runs:
        raise ValueError("no runs to summarize")
    splits = list(runs[0])
    if any(list(r) != splits for r in runs):
        raise ValueError(f"every run must cover the same splits; got {[list(r) for r in runs]}")
    kw: dict[str, Any] = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    keep = list(METRICS if metrics is None else metrics)
    values = {s: {m: [r[s][m] for r in runs] for m in keep if all(m in r[s] for r in runs)} for s in splits}
    per_split = {s: {m: iqm_interval(v, **kw) for m, v in ms.items()} for s, ms in values.items()}
    axes: dict[str, dict[str, dict[str, Interval]]] = {}
    for axis, levels in layout.items():
        rows = {level: per_split[name] for level, name in levels.items()}
        for gap, level in GAPS.items():
            if "id" in levels and level in levels:
                id_values, shifted = values[levels["id"]], values[levels[level]]
                rows[gap] = {m: gap_interval(id_values[m], shifted[m], **kw) for m in id_values if m in shifted}
        axes[axis] = rows
    return ShiftSummary(per_split, axes, {a: dict(l) for a, l in layout.items()}, len(runs))

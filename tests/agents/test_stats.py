"""Shift statistics on known inputs: metrics per split, IQM, bootstrap intervals, gaps, per-axis summary."""

import numpy as np
import pytest

from shiftgrid.agents.evaluation.episodes import EpisodeResult
from shiftgrid.agents.evaluation.stats import episode_metrics, gap_interval, iqm, iqm_interval, run_metrics, summarize


def test_iqm_is_the_25_percent_trimmed_mean():
    assert iqm([0, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx(3.5)
    assert iqm([1, 2, 3, 1000]) == pytest.approx(2.5)  # the outlier is trimmed away
    assert iqm([0.3]) == pytest.approx(0.3)


def test_episode_metrics_on_hand_made_episodes():
    episodes = [
        EpisodeResult(success=True, ret=0.8, length=5, optimal_return=0.9, optimal_steps=4.0, level_hash="a"),
        EpisodeResult(success=True, ret=0.5, length=3, optimal_return=0.5, optimal_steps=3.0, level_hash="b"),
        EpisodeResult(success=False, ret=0.0, length=20, optimal_return=0.7, optimal_steps=6.0, level_hash="c"),
    ]
    m = episode_metrics(episodes)
    assert m["success_rate"] == pytest.approx(2 / 3)
    assert m["mean_return"] == pytest.approx(1.3 / 3)
    assert m["mean_length"] == pytest.approx(28 / 3)
    assert m["optimality_ratio"] == pytest.approx((0.8 / 0.9 + 1.0 + 0.0) / 3)  # the failure counts 0
    assert m["regret"] == pytest.approx((0.1 + 0.0 + 0.7) / 3)


def test_metrics_without_an_oracle_leave_out_optimality_and_regret():
    m = episode_metrics([EpisodeResult(True, 0.9, 4), EpisodeResult(False, 0.0, 10)])
    assert set(m) == {"success_rate", "mean_return", "mean_length"}
    with pytest.raises(ValueError):
        episode_metrics([])


def test_interval_contains_the_point_and_keeps_every_run():
    scores = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    ci = iqm_interval(scores)
    assert ci.iqm == pytest.approx(3.5)
    assert ci.low < ci.iqm < ci.high
    assert ci.per_run == tuple(scores) and ci.n_runs == 8


def test_interval_is_reproducible_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    few, many = rng.normal(0.5, 0.1, size=5), rng.normal(0.5, 0.1, size=80)
    assert iqm_interval(few, seed=3) == iqm_interval(few, seed=3)
    widths = [iqm_interval(x).high - iqm_interval(x).low for x in (few, many)]
    assert widths[1] < 0.75 * widths[0]


def test_one_run_collapses_the_interval():
    ci = iqm_interval([0.42])
    assert (ci.iqm, ci.low, ci.high) == (0.42, 0.42, 0.42)


def test_gap_is_paired_per_run():
    in_dist = [0.9, 0.5, 0.7, 0.3, 0.8]
    shifted = [v - 0.2 for v in in_dist]  # every run loses exactly 0.2 under shift
    gap = gap_interval(in_dist, shifted)
    assert gap.iqm == pytest.approx(0.2)
    assert gap.per_run == pytest.approx((0.2,) * 5)
    # resampling the same runs on both splits leaves no spread, although each split varies a lot
    assert gap.low == pytest.approx(0.2) and gap.high == pytest.approx(0.2)
    assert iqm_interval(in_dist).high - iqm_interval(in_dist).low > 0.2
    with pytest.raises(ValueError):
        gap_interval([0.1, 0.2], [0.1])


def _run(success_id: float, success_near: float, success_far: float) -> dict:
    return {
        "id": {"success_rate": success_id},
        "size/near": {"success_rate": success_near},
        "size/far": {"success_rate": success_far},
        "layout/far": {"success_rate": success_far / 2},
    }


def test_summary_per_axis_has_levels_and_gaps_and_no_cross_axis_number():
    runs = [_run(0.8, 0.6, 0.2), _run(0.9, 0.5, 0.4), _run(1.0, 0.7, 0.3)]
    layout = {"size": {"id": "id", "near": "size/near", "far": "size/far"}, "layout": {"id": "id", "far": "layout/far"}}
    s = summarize(runs, layout)
    assert s.n_runs == 3 and set(s.axes) == {"size", "layout"}
    size = s.axes["size"]
    assert set(size) == {"id", "near", "far", "gap_near", "gap_far"}
    assert size["id"] is s.splits["id"] and s.axes["layout"]["id"] is s.splits["id"]  # one id pool, reused
    assert size["far"]["success_rate"].per_run == (0.2, 0.4, 0.3)
    assert size["gap_near"]["success_rate"].iqm == pytest.approx(0.9 - 0.6)
    assert size["gap_far"]["success_rate"].per_run == pytest.approx((0.6, 0.5, 0.7))
    assert set(s.axes["layout"]) == {"id", "far", "gap_far"}
    assert set(s.to_dict()) == {"n_runs", "layout", "splits", "axes"}


def test_summary_refuses_runs_on_different_splits():
    with pytest.raises(ValueError, match="same splits"):
        summarize([{"id": {"success_rate": 1.0}}, {"size/far": {"success_rate": 1.0}}], {})


def test_run_metrics_is_per_split():
    out = run_metrics({"id": [EpisodeResult(True, 1.0, 1, 1.0, 1.0)], "size/far": [EpisodeResult(False, 0.0, 9, 0.5, 5.0)]})
    assert out["id"]["optimality_ratio"] == 1.0 and out["size/far"]["regret"] == 0.5

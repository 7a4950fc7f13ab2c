"""The engine agrees with the minigrid env at every step, on every family and split.

Levels are started by ``reset(seed=...)`` in the minigrid env and loaded into the engine; both
are stepped with the same random, adversarial (pickup, drop and toggle everywhere, walking into
walls and lava, ``done`` mid-episode) and oracle actions, slippery levels fed the engine's own
draws, and compared at every step on image, direction, reward, terminated, truncated, success
and level hash. The oracle's plans, replayed in the engine, reach exactly ``optimal_return``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.envs.engine.parity import POLICIES, play

LEVELS = 3  # levels per case and policy (fast tier)
SLOW_LEVELS = 15


def _play(case, levels: int, steps: int = 300, **make):
    envs, seeds, policies = [], [], []
    for p in POLICIES:
        for s in range(levels):
            envs.append(gym.make(case.env_id, **case.make_kwargs(), **make))
            seeds.append(s)
            policies.append(p)
    report = play(envs, seeds, policies, max_steps=steps)
    for env in envs:
        env.close()
    return report


def _assert_agree(report, case):
    assert not report.mismatches, f"{case.label}: {report.mismatches[:3]}"
    assert report.steps > 0


def test_parity_every_split(case):
    report = _play(case, LEVELS)
    _assert_agree(report, case)
    slip = case.split.factors.get("slip", 0)
    if not slip:  # open-loop plans succeed only without slip
        assert report.oracle_returns, "no oracle episode ended"
        for engine_return, optimal in report.oracle_returns:
            assert engine_return == optimal, (case.label, report.oracle_returns)


def test_parity_to_truncation(case):
    """Short episode limits: every policy runs into truncation (or ends first) on every split."""
    report = _play(case, 2, steps=60, max_steps=25)
    _assert_agree(report, case)


@pytest.mark.slow
def test_parity_every_split_many_levels(case):
    report = _play(case, SLOW_LEVELS)
    _assert_agree(report, case)

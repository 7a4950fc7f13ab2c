"""minigrid's own ids on the engine: levels imported through minigrid's reset, stepped against minigrid's env.

Every supported id plays a short episode against minigrid; the ids the engine is asked to run
(Empty, DoorKey, FourRooms, MultiRoom, Lava/SimpleCrossing, Unlock, UnlockPickup, KeyCorridor
and the single-room BabyAI levels) play random, adversarial and oracle episodes, every step
compared, and 10^5 steps each in the slow tier. Oracle plans reach exactly the optimal return.
"""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym
import pytest

from shiftgrid.envs.engine.levels import Layout
from shiftgrid.envs.engine.minigrid_levels import import_row, optimal_plan, supported, supported_ids
from shiftgrid.envs.engine.parity import POLICIES, play

ASKED = ["MiniGrid-Empty-8x8-v0", "MiniGrid-Empty-Random-6x6-v0", "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0",
         "MiniGrid-MultiRoom-N4-S5-v0", "MiniGrid-LavaCrossingS9N2-v0", "MiniGrid-SimpleCrossingS9N2-v0",
         "MiniGrid-Unlock-v0", "MiniGrid-UnlockPickup-v0", "MiniGrid-KeyCorridorS3R2-v0", "BabyAI-GoToRedBall-v0",
         "BabyAI-GoToRedBallGrey-v0", "BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0", "BabyAI-PutNextLocal-v0",
         "BabyAI-GoToObj-v0", "BabyAI-PickupDist-v0"]
#: Ids that exercise what the others do not: boxes holding keys, BabyAI's open, locked rooms, see-through walls.
MORE = ["MiniGrid-ObstructedMaze-1Dlhb-v0", "BabyAI-KeyInBox-v0", "BabyAI-OpenDoor-v0", "MiniGrid-LockedRoom-v0",
        "MiniGrid-DistShift1-v0", "BabyAI-UnlockPickup-v0", "BabyAI-GoToDoor-v0"]
SLOW_STEPS = 100_000
#: One id of each kind the engine is asked to run, for the 10^5-step tier (minigrid's own step sets its pace).
SLOW = ["MiniGrid-Empty-8x8-v0", "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0", "MiniGrid-MultiRoom-N4-S5-v0",
        "MiniGrid-LavaCrossingS9N2-v0", "MiniGrid-SimpleCrossingS9N2-v0", "MiniGrid-Unlock-v0", "MiniGrid-UnlockPickup-v0",
        "MiniGrid-KeyCorridorS3R2-v0", "BabyAI-GoToRedBall-v0", "BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0",
        "BabyAI-PutNextLocal-v0"]
LAYOUT_OBJECTS = 40


def _row(env, layout):
    return import_row(env, 0)


def _play(env_id, seeds_per_env, max_steps, budget=None, envs_per_policy=2):
    envs, seeds, policies = [], [], []
    for p in POLICIES:
        for k in range(envs_per_policy):
            i = len(envs)
            envs.append(gym.make(env_id))
            seeds.append([i + len(POLICIES) * envs_per_policy * j for j in range(seeds_per_env)])
            policies.append(p)
    probe = gym.make(env_id).unwrapped
    with contextlib.redirect_stdout(io.StringIO()):  # BabyAI prints its rejected samples
        return play(envs, seeds, policies, max_steps=max_steps, row=_row, plan=optimal_plan, budget=budget,
                    layout=Layout(probe.height, probe.width, LAYOUT_OBJECTS, 1))


def test_the_asked_ids_are_supported():
    assert all(supported(i) for i in ASKED + MORE)
    assert not supported("MiniGrid-Fetch-5x5-N2-v0") and not supported("MiniGrid-Dynamic-Obstacles-8x8-v0")
    assert not supported("BabyAI-PutNextS5N2Carrying-v0") and not supported("BabyAI-GoToSeq-v0")


@pytest.mark.parametrize("env_id", ASKED + MORE)
def test_parity_on_minigrid_ids(env_id):
    report = _play(env_id, seeds_per_env=2, max_steps=150)
    assert not report.mismatches, report.mismatches[:3]
    for engine_return, optimal in report.oracle_returns:
        assert engine_return == optimal, (env_id, report.oracle_returns)


def test_every_supported_id_plays_against_minigrid():
    for env_id in supported_ids():
        with contextlib.redirect_stdout(io.StringIO()):
            report = play([gym.make(env_id)], [0], ["adversarial"], max_steps=25, row=_row, plan=optimal_plan)
        assert not report.mismatches, (env_id, report.mismatches[:1])


def test_oracle_plans_reach_the_optimal_return_on_goal_door_and_pickup_ids():
    reached = 0
    for env_id in ["MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0", "MiniGrid-Unlock-v0", "MiniGrid-UnlockPickup-v0",
                   "MiniGrid-KeyCorridorS3R2-v0", "MiniGrid-LavaCrossingS9N2-v0", "MiniGrid-MultiRoom-N4-S5-v0"]:
        report = _play(env_id, seeds_per_env=2, max_steps=700)
        assert not report.mismatches
        assert report.oracle_returns and all(a == b for a, b in report.oracle_returns), (env_id, report.oracle_returns)
        reached += len(report.oracle_returns)
    assert reached >= 7 * 4


@pytest.mark.slow
@pytest.mark.parametrize("env_id", SLOW)
def test_parity_on_minigrid_ids_1e5_steps(env_id):
    report = _play(env_id, seeds_per_env=2000, max_steps=1000, budget=SLOW_STEPS, envs_per_policy=16)
    assert not report.mismatches, report.mismatches[:3]
    assert report.steps >= SLOW_STEPS
    assert all(a == b for a, b in report.oracle_returns)

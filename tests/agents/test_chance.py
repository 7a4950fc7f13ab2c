"""Chance level on the engine: uniformly random actions, one episode per bank level, with a Wilson interval."""

from __future__ import annotations

import pytest

from shiftgrid.agents.evaluation.chance import Chance, chance_table, random_policy_success, wilson_interval
from shiftgrid.envs.engine.errors import EngineError

EPISODES = 100


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_a_longer_limit_keeps_every_success_of_the_shorter_one():
    """Same levels, same actions (same seed, no slip on DoorKey's training split): DoorKey-v1 only adds time, so
    every v0 success is a v1 success, and on these levels the extra time finds more."""
    short = random_policy_success("shiftgrid/DoorKey-v0", "train", EPISODES, seed=3, workers=1)
    long = random_policy_success("shiftgrid/DoorKey-v1", "train", EPISODES, seed=3, workers=1)
    assert short.limits == (3 * 36, 3 * 64) and long.limits == (10 * 36, 10 * 64)
    assert long.successes >= short.successes and long.successes > 0
    assert long.mean_length > short.mean_length
    assert long.median_optimal_steps == short.median_optimal_steps  # the same levels
    assert long.max_optimal_share == pytest.approx(short.max_optimal_share * 3 / 10)


def test_the_measurement_is_seeded_and_its_interval_holds_the_rate():
    a = random_policy_success("shiftgrid/GoTo-v1", "train", EPISODES, seed=1, workers=1)
    b = random_policy_success("shiftgrid/GoTo-v1", "train", EPISODES, seed=1, workers=1)
    assert a == b and a.episodes == EPISODES
    assert 0 < a.low <= a.success_rate <= a.high < 1
    assert 0 < a.mean_return < a.success_rate  # successes score below 1, failures 0
    assert 1 <= a.mean_length <= a.limits[1]


def test_table_has_one_row_per_split():
    rows = [Chance("shiftgrid/Maze-v1", s, 10, 1, 0.1, 0.02, 0.4, 0.05, 300.0, (324, 484), 16.0, 0.125) for s in ("train", "id")]
    table = chance_table(rows).splitlines()
    assert len(table) == 4 and table[3].startswith("| `shiftgrid/Maze-v1` | `id` | 324-484 | 16.0 (12%) | 0.100 [0.020, 0.400]")


@pytest.mark.parametrize("kwargs, match", [({"episodes": 0}, "episodes=0 is not valid; valid: an integer >= 1"),
                                           ({"device": "tpu"}, "device='tpu'")])
def test_bad_input_names_what_is_valid(kwargs, match):
    with pytest.raises(EngineError, match=match):
        random_policy_success("shiftgrid/GoTo-v1", "train", **{"episodes": 5, **kwargs})

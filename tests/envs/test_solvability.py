"""Every level a family's generator builds is solvable, and the oracle's plan replays in the env.

Levels are generated directly with the family generator (``split.draw_factors`` then
``family.generate``), not through ``sample_level``, which rejects unsolvable levels and would
hide generator bugs. A ``LevelError`` from the generator is an allowed rejection (counted);
any other exception fails the test.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from shiftgrid.envs.level import LevelError, level_hash
from shiftgrid.envs.oracle import UnsolvableLevel, solve
from shiftgrid.envs.shift.split import SplitSet, hash_extra

N_LEVELS = 1000  # generated levels (LevelError rejections not counted) per distinct split
MAX_ATTEMPTS = 10 * N_LEVELS  # a generator rejecting more than 90% of draws is itself a failure
N_REPLAY = 100  # levels replayed in the environment per split
REPLAY_STRIDE = 7919  # spreads replayed level seeds over the split's seed range


def _generate(case, seed: int):
    rng = np.random.default_rng(seed)
    factors = case.draw(rng)
    return factors, case.family.generate(factors, rng)


@pytest.mark.levels
def test_generated_levels_are_solvable_within_max_steps(case):
    family, split = case.family, case.split
    generated = rejected = 0
    failures = []
    for k in range(MAX_ATTEMPTS):
        if generated == N_LEVELS:
            break
        seed = split.seed_start + k
        try:
            factors, level = _generate(case, seed)
        except LevelError:
            rejected += 1
            continue
        generated += 1
        limit = family.max_steps(factors)
        try:
            plan = solve(level, slip=factors.slip)
        except UnsolvableLevel as e:
            failures.append(f"seed {seed}: unsolvable ({e}); mission {level.mission_text!r}, factors {factors}")
            continue
        if plan.steps > limit:
            failures.append(f"seed {seed}: optimal plan takes {plan.steps} steps > max_steps {limit}")
    assert generated == N_LEVELS, (
        f"{case.label}: the generator raised LevelError on {rejected} of {rejected + generated} draws"
    )
    assert not failures, (
        f"{case.label}: {len(failures)} of {N_LEVELS} generated levels ({rejected} LevelError rejections "
        f"besides) cannot be solved within max_steps:\n" + "\n".join(failures[:10])
    )


def _slips(split) -> bool:
    v = split.factors.get("slip", 0.0)
    return any(x > 0 for x in (v if isinstance(v, (list, tuple)) else [v]))


def _without_slip(splits: SplitSet) -> SplitSet:
    """The same splits on a floor that never slips (every other factor and every seed range kept)."""
    plain = {n: dataclasses.replace(splits[n], factors={**splits[n].factors, "slip": 0.0}) for n in splits}
    return SplitSet(splits.family, plain, splits.version)


def test_oracle_plan_replays_in_env(case):
    """Reset to a level by seed, replay ``optimal_actions``: success exactly at the last action.

    A deterministic plan need not succeed on a slippery floor, so splits with ``slip > 0`` are
    replayed with the slip turned off (the same grids, generator and seed range).
    """
    slips = _slips(case.split)
    kwargs = case.make_kwargs()
    if slips:
        kwargs["splits"] = _without_slip(case.splits)
    env = gym.make(case.env_id, **kwargs)
    u = env.unwrapped
    split = case.split
    failures = []
    for i in range(N_REPLAY):
        seed = split.seed_start + (i * REPLAY_STRIDE) % split.seed_count
        _, info0 = env.reset(seed=i, options={"level_seed": seed})
        if info0["level_seed"] == seed and not case.exposure and not slips:
            # the env serves exactly the level the generator builds from this seed
            factors, level = _generate(case, seed)
            assert info0["level_hash"] == level_hash(level, hash_extra(factors)), f"seed {seed}"
        assert u.slip == 0
        actions = u.optimal_actions
        where = f"level seed {info0['level_seed']} ({u.mission!r})"
        if len(actions) != info0["optimal_steps"]:
            failures.append(f"{where}: plan of {len(actions)} actions but optimal_steps={info0['optimal_steps']}")
        for j, a in enumerate(actions):
            _, reward, terminated, truncated, info = env.step(a)
            if j < len(actions) - 1:
                if terminated or truncated or reward != 0:
                    failures.append(f"{where}: episode ended (reward {reward}) at action {j + 1} of {len(actions)}")
                    break
            elif not (terminated and info["success"]):
                failures.append(f"{where}: no success after the last of {len(actions)} actions")
            elif reward != info0["optimal_return"]:
                failures.append(f"{where}: reward {reward!r} != optimal_return {info0['optimal_return']!r}")
    env.close()
    assert not failures, f"{case.label}: {len(failures)} of {N_REPLAY} replays failed:\n" + "\n".join(failures[:10])

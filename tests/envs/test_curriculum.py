"""Curriculum teachers on fake learners whose success (or return, or value error) per level is known."""

from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs  # noqa: F401  (registers the ids)
from shiftgrid.envs import family_splits
from shiftgrid.envs.shift.split import TRAIN_SEEDS, is_reserved
from shiftgrid.envs.teacher.curriculum import (TEACHERS, CurriculumError, LevelChoice, LevelSpace, Outcome, check_teacher,
                                               make_curriculum, teacher_options)
from shiftgrid.envs.teacher.curriculum.plr import level_score
from shiftgrid.envs.teacher.curriculum.replay import rank_weights, staleness_weights
from shiftgrid.envs.teacher.curriculum.tscl import slope
from shiftgrid.envs.teacher.knowledge import KnowledgeError


@pytest.fixture(scope="module")
def space() -> LevelSpace:
    return LevelSpace.of_env(gym.make("shiftgrid/DoorKey-v1"))


def play(teacher, episodes: int, success, ret=None, optimal=0.9, seed=0):
    """Run ``episodes`` fake episodes: level seed s succeeds with probability ``success(s, n)`` (n: its group's count)."""
    rng, chosen = np.random.default_rng(seed), []
    for _ in range(episodes):
        c = teacher.choose(0)
        chosen.append(c)
        won = rng.random() < success(c.level_seed)
        knowledge = {"success": won, "return": ret(c.level_seed) if ret else float(won), "length": 10, "optimal_return": optimal}
        teacher.observe(Outcome(0, c.level_seed, f"h{c.level_seed}", c.replayed, knowledge))
    return chosen


# -- the exact formulas ----------------------------------------------------------------------------
def test_rank_weights_use_the_temperature_as_an_exponent_of_one_over_rank():
    scores = [0.3, 0.9, 0.1]  # ranks 2, 1, 3
    for beta in (0.5, 1.0, 2.0):
        h = np.array([1 / 2, 1.0, 1 / 3]) ** (1 / beta)
        assert np.allclose(rank_weights(scores, beta), h / h.sum())
    # a temperature as a division of the scores would leave the ranks' weights unchanged by beta; here it sharpens them
    assert rank_weights(scores, 0.1)[1] > 0.999 > rank_weights(scores, 1.0)[1]
    with pytest.raises(CurriculumError, match="temperature"):
        rank_weights(scores, 0.0)


def test_staleness_is_choices_since_each_level_was_last_chosen():
    assert np.allclose(staleness_weights([0, 6, 8], now=10), np.array([10, 4, 2]) / 16)
    assert np.allclose(staleness_weights([10, 10], now=10), [0.5, 0.5])


def test_plr_samples_the_mixture_of_rank_and_staleness(space):
    plr = make_curriculum("plr", space, {"temperature": 0.5, "staleness": 0.25, "min_levels": 1}, seed=0)
    for seed, score in [(10, 0.2), (20, 0.8), (30, 0.5)]:
        plr.set_score(seed, f"h{seed}", score)
    plr.chosen = 9
    plr.stats[10].last_chosen, plr.stats[20].last_chosen, plr.stats[30].last_chosen = 1, 5, 9
    expected = 0.75 * rank_weights([0.2, 0.8, 0.5], 0.5) + 0.25 * np.array([8, 4, 0]) / 12
    assert plr.buffer == [10, 20, 30] and np.allclose(plr.probabilities(), expected)


def test_plr_scores_are_positive_value_loss_or_gae_magnitude(space):
    adv = [1.0, -3.0, 0.5, 0.0]
    assert level_score(adv, "positive_value_loss") == pytest.approx(1.5 / 4)
    assert level_score(adv, "gae") == pytest.approx(4.5 / 4)
    plr = make_curriculum("plr", space, {"score": "gae", "buffer_size": 2}, seed=0)
    plr.observe_scores([(1, "a", {"advantages": [0.1, -0.1]}), (2, "b", {"advantages": [2.0]})])
    assert plr.stats[1].score == pytest.approx(0.1) and plr.stats[2].score == 2.0
    plr.observe_scores([(3, "c", {"advantages": [0.05]})])  # lower than the lowest: stays out
    assert plr.buffer == [1, 2]
    plr.observe_scores([(4, "d", {"advantages": [1.0]})])  # higher than the lowest: replaces it
    assert plr.buffer == [4, 2]


def test_plr_replays_the_level_with_the_largest_value_error(space):
    plr = make_curriculum("plr", space, {"min_levels": 4, "buffer_size": 8, "replay_prob": 0.8}, seed=1)
    error = lambda s: 5.0 if s % 7 == 0 else 0.1  # a fake learner: levels with seed divisible by 7 are badly predicted
    replays = []
    for _ in range(600):
        c = plr.choose(0)
        replays += [c.level_seed] if c.replayed else []
        plr.observe_scores([(c.level_seed, "", {"advantages": [error(c.level_seed)]})])
    hard = np.mean([s % 7 == 0 for s in replays])
    assert len(replays) > 300 and hard > 0.6  # uniform draws would give 1/7


# -- teachers on fake learners ---------------------------------------------------------------------
def test_tscl_finds_the_group_that_makes_progress(space):
    tscl = make_curriculum("tscl", space, {"epsilon": 0.1}, seed=0)
    assert len(tscl.history) == 9  # size 6-8 x 0-2 distractors
    learning = (7, 1)
    count = Counter()

    def success(seed):
        group = space.group_of(seed, tscl.by)
        count[group] += 1
        if group == learning:
            return min(1.0, 0.2 + count[group] / 250)  # improves as it is practised
        return 1.0 if group[0] == 6 else 0.0  # mastered or hopeless: no progress

    chosen = play(tscl, 300, success)
    (first, n1), (_, n2) = Counter(space.group_of(c.level_seed, tscl.by) for c in chosen[50:]).most_common(2)
    assert first == learning and n1 > 0.4 * 250 and n1 > 4 * n2  # uniform draws: 1/9 each
    assert slope([0, 0, 1, 1]) > 0 == slope([1, 1, 1, 1])


def test_learnability_picks_levels_of_success_near_one_half(space):
    teacher = make_curriculum("learnability", space, {"buffer_size": 32, "min_levels": 8, "replay_prob": 0.8}, seed=0)
    p = lambda s: [0.0, 0.02, 0.5, 0.98, 1.0][s % 5]
    chosen = play(teacher, 1500, p)
    replayed = [c.level_seed for c in chosen[500:] if c.replayed]
    assert np.mean([p(s) == 0.5 for s in replayed]) > 0.6  # uniform draws: 0.2


def test_regret_picks_the_largest_gap_to_the_optimal_return(space):
    teacher = make_curriculum("regret", space, {"buffer_size": 32, "min_levels": 8, "staleness": 0.1}, seed=0)
    ret = lambda s: [0.9, 0.6, 0.1][s % 3]  # optimal return 0.9: gaps 0, 0.3, 0.8
    chosen = play(teacher, 800, lambda s: 1.0, ret=ret)
    assert teacher.stats[chosen[0].level_seed].score == pytest.approx(0.9 - ret(chosen[0].level_seed))
    replayed = [c.level_seed for c in chosen[200:] if c.replayed]
    assert np.mean([s % 3 == 2 for s in replayed]) > 0.8  # uniform draws: 1/3


def test_uniform_never_replays_and_covers_the_split(space):
    chosen = play(make_curriculum("uniform", space, seed=0), 300, lambda s: 0.5)
    assert not any(c.replayed for c in chosen) and len({c.level_seed for c in chosen}) == 300
    sizes = Counter(space.factors_of(c.level_seed)["size"] for c in chosen)
    assert set(sizes) == {6, 7, 8} and min(sizes.values()) > 60


# -- inside the training split only ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(TEACHERS))
def test_every_teacher_plays_training_levels_only(name):
    env = gym.make("shiftgrid/DoorKey-v1", max_steps=40)
    space = LevelSpace.of_env(env)
    teacher = make_curriculum(name, space, {"min_levels": 2} if "min_levels" in teacher_options(name) else {}, seed=0)
    held_out = [family_splits("DoorKey")[s] for s in family_splits("DoorKey").test_splits()]
    hashes = []
    for k in range(12):
        c = teacher.choose(0)
        _, info = env.reset(options={"level_seed": c.level_seed})
        assert TRAIN_SEEDS[0] <= info["level_seed"] < TRAIN_SEEDS[1] and not is_reserved(info["level_hash"])
        assert all(not s.seed_start <= info["level_seed"] < s.seed_start + s.seed_count for s in held_out)
        if c.replayed:
            assert info["level_seed"] == c.level_seed
        hashes.append(info["level_hash"])
        knowledge = {"success": k % 2 == 0, "return": 0.5 * (k % 2), "length": 5, "optimal_return": info["optimal_return"]}
        teacher.observe(Outcome(0, info["level_seed"], info["level_hash"], c.replayed, knowledge))
        teacher.observe_scores([(info["level_seed"], info["level_hash"], {"advantages": [0.1 * k]})])
    assert all(not is_reserved(h) for h in hashes)


def test_a_curriculum_refuses_a_held_out_split():
    with pytest.raises(CurriculumError, match="training split only"):
        LevelSpace.of_env(gym.make("shiftgrid/DoorKey-v1", split="size/far"))


# -- bad input --------------------------------------------------------------------------------------
def test_unknown_teacher_or_option_names_what_is_valid(space):
    with pytest.raises(CurriculumError, match="unknown teacher 'plrr'; valid: uniform, tscl, plr, plr-robust"):
        make_curriculum("plrr", space)
    with pytest.raises(CurriculumError, match="unknown option 'temp' of teacher 'plr'; valid: score, buffer_size"):
        make_curriculum("plr", space, {"temp": 1})
    with pytest.raises(CurriculumError, match="temperature > 0"):
        make_curriculum("plr", space, {"temperature": 0})
    with pytest.raises(CurriculumError, match="unknown PLR score 'td'"):
        make_curriculum("plr", space, {"score": "td"})
    with pytest.raises(CurriculumError, match="group_by"):
        make_curriculum("tscl", space, {"group_by": ["colour"]})
    assert teacher_options("uniform") == ["side_every", "side_levels", "side_episodes", "tier"]
    assert make_curriculum("plr", space, {"side_every": 0, "side_levels": 2, "temperature": 0.5}).temperature == 0.5
    with pytest.raises(CurriculumError, match="side_episodes must be an integer >= 1, got 0"):
        make_curriculum("plr", space, {"side_episodes": 0})


@pytest.mark.parametrize("name, tier, item", [("plr", "outcomes", "advantages"), ("regret", "learner", "optimal_return"),
                                              ("plr-robust", "outcomes", "advantages")])
def test_a_tier_below_the_teachers_needs_is_a_knowledge_error(space, name, tier, item):
    with pytest.raises(KnowledgeError, match=f"tier '{tier}' but '{item}' needs"):
        check_teacher(name, {"tier": tier})
    with pytest.raises(KnowledgeError):
        make_curriculum(name, space, {"tier": tier})


def test_a_teacher_reads_nothing_above_its_tier(space):
    tscl = make_curriculum("tscl", space, seed=0)  # outcomes tier
    with pytest.raises(KnowledgeError, match="'optimal_plan' needs tier 'oracle'"):
        tscl.read("optimal_plan", {"optimal_plan": []})
    assert make_curriculum("uniform", space, {"tier": "oracle"}).tier.label == "oracle"


def test_a_choice_outside_the_training_range_is_refused(space):
    class Rogue(make_curriculum("uniform", space).__class__):
        def next_level(self, sub_env):
            return LevelChoice(TRAIN_SEEDS[1] + 5)  # the first held-out seeds lie beyond the training range

    with pytest.raises(CurriculumError, match="outside the training range"):
        Rogue(space).choose(0)


@pytest.mark.parametrize("env_id, kwargs", [("shiftgrid/DoorKey-v1", {}), ("shiftgrid/GoTo-v1", {"exposure": 0.5})])
def test_the_factors_a_teacher_reads_from_a_seed_are_those_the_env_plays(env_id, kwargs):
    import dataclasses

    env = gym.make(env_id, **kwargs)
    space = LevelSpace.of_env(env)
    for seed in range(0, 4000, 200):
        _, info = env.reset(options={"level_seed": seed})
        assert space.factors_of(info["level_seed"]) == dataclasses.asdict(env.unwrapped.sample.factors)


def test_learnable_share_counts_chosen_levels_with_success_rates_in_the_band(space):
    teacher = make_curriculum("learnability", space, {"min_levels": 2, "replay_prob": 1.0, "buffer_size": 2}, seed=0)
    for seed, wins in [(10, [1, 0, 1, 0]), (20, [1, 1, 1, 1])]:  # rates 0.5 (learnable) and 1.0 (not)
        for w in wins:
            teacher.observe(Outcome(0, seed, "", False, {"success": bool(w), "return": float(w)}))
    chosen = [teacher.choose(0).level_seed for _ in range(100)]
    d = teacher.diagnostics()
    assert d["replay_share"] == 1.0 and d["learnable_share"] == pytest.approx(chosen.count(10) / 100)


@pytest.mark.parametrize("name", ["tscl", "plr", "regret"])
def test_a_teachers_state_round_trips_through_json(space, name):
    import json

    teacher = make_curriculum(name, space, {} if name == "tscl" else {"min_levels": 2}, seed=3)
    play(teacher, 60, lambda s: 0.5)
    teacher.observe_scores([(s, "", {"advantages": [0.1 * (s % 5)]}) for s in list(teacher.stats)[:10]])
    again = make_curriculum(name, space, {} if name == "tscl" else {"min_levels": 2}, seed=99)
    again.load_state_dict(json.loads(json.dumps(teacher.state_dict())))
    assert [teacher.choose(0) for _ in range(30)] == [again.choose(0) for _ in range(30)]
    with pytest.raises(CurriculumError, match="cannot restore"):
        make_curriculum("uniform", space).load_state_dict(teacher.state_dict())

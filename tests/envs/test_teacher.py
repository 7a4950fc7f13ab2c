"""Teachers: ordered knowledge tiers and their guard; the oracle teacher follows optimal plans everywhere."""

from __future__ import annotations

import gymnasium as gym
import pytest

import shiftgrid.envs
from shiftgrid.envs.teacher import KNOWLEDGE, KnowledgeError, OracleTeacher, Teacher, Tier, tier_of
from shiftgrid.envs.teacher.bot import BotTracker

#: The current id of each built-in family.
IDS = {f.name: f.env_id() for f in shiftgrid.envs.BUILTIN_FAMILIES}

FAMILIES = ("GoTo", "Pickup", "PutNext", "DoorKey", "Maze", "Sequence")


# -- tiers ------------------------------------------------------------------------------------

def test_tiers_are_ordered_and_parse_by_name():
    assert Tier.OUTCOMES < Tier.LEARNER < Tier.ORACLE
    assert [t.label for t in sorted(Tier)] == ["outcomes", "learner", "oracle"]
    assert Tier.parse("oracle") is Tier.ORACLE and Tier.parse(Tier.LEARNER) is Tier.LEARNER
    with pytest.raises(ValueError, match="unknown knowledge tier 'omniscient'; valid: outcomes < learner < oracle"):
        Tier.parse("omniscient")


def test_every_tier_gives_its_items_and_those_below():
    assert {tier_of(i) for i in ("success", "return")} == {Tier.OUTCOMES}
    assert {tier_of(i) for i in ("values", "advantages", "errors")} == {Tier.LEARNER}
    assert {tier_of(i) for i in ("level", "optimal_plan", "optimal_return")} == {Tier.ORACLE}

    class Critic(Teacher):
        tier = Tier.LEARNER

    critic = Critic()
    assert all(critic.knows(i) == (t <= Tier.LEARNER) for i, t in KNOWLEDGE.items())
    assert critic.read("advantages", {"advantages": [0.5]}) == [0.5]
    assert critic.read("success", {"success": 1.0}) == 1.0


@pytest.mark.parametrize("tier,item,needed", [(Tier.OUTCOMES, "values", "learner"), (Tier.OUTCOMES, "optimal_plan", "oracle"),
                                              (Tier.LEARNER, "level", "oracle")])
def test_reading_above_the_tier_is_a_knowledge_error_naming_both_tiers(tier, item, needed):
    class Low(Teacher):
        pass

    Low.tier = tier
    with pytest.raises(KnowledgeError, match=f"Low has knowledge tier '{tier.label}' but '{item}' needs tier '{needed}'"):
        Low().read(item, {item: 1})
    assert issubclass(KnowledgeError, ValueError)


def test_unknown_item_and_missing_item_are_clear():
    with pytest.raises(KnowledgeError, match="unknown knowledge item 'gossip'; valid: success"):
        Teacher().require("gossip")
    with pytest.raises(KeyError, match="'return' is not given here; given: success"):
        Teacher().read("return", {"success": 1})


def test_a_low_tier_oracle_subclass_cannot_plan():
    class Pretender(OracleTeacher):
        tier = Tier.OUTCOMES

    env = gym.make("shiftgrid/GoTo-v1")
    env.reset(seed=0)
    with pytest.raises(KnowledgeError, match="'optimal_action' needs tier 'oracle'"):
        Pretender().act(env)


# -- the oracle teacher -----------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_oracle_teacher_plays_optimal_episodes(family):
    env = gym.make(IDS[family])
    teacher = OracleTeacher()
    for seed in range(3):
        _, info = env.reset(seed=seed)
        optimal, steps, done = info["optimal_steps"], 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(teacher.act(env))
            steps, done = steps + 1, terminated or truncated
        assert info["success"] and steps == optimal, (family, seed, steps, optimal)


def test_oracle_teacher_replans_after_a_detour():
    env = gym.make("shiftgrid/DoorKey-v1")
    _, info = env.reset(seed=1)
    for a in (0, 0, 1):  # left, left, right: one wasted turn... net a left turn
        env.step(a)
    teacher, steps, done = OracleTeacher(), 3, False
    expected = 3 + len(env.unwrapped.optimal_plan_from_here().actions)
    while not done:
        _, _, terminated, truncated, info = env.step(teacher.act(env))
        steps, done = steps + 1, terminated or truncated
    assert info["success"] and steps == expected


def test_oracle_teacher_on_a_wrapped_env_and_babyai():
    from shiftgrid.envs.learner_env import make_env  # MissionTokens(SuccessInfo(...))

    env = make_env("shiftgrid/Pickup-v1")
    env.reset(seed=0)
    assert OracleTeacher().act(env) == env.unwrapped.optimal_actions[0]
    baby = gym.make("BabyAI-GoToLocal-v0")
    teacher, wins = OracleTeacher(), 0
    for seed in range(3):
        baby.reset(seed=seed)
        for _ in range(baby.unwrapped.max_steps):
            _, reward, terminated, truncated, _ = baby.step(teacher.act(baby))
            if terminated or truncated:
                break
        wins += reward > 0
    assert wins == 3


def test_babyai_bot_follows_a_learner_that_strays():
    env = gym.make("BabyAI-GoToLocal-v0")
    env.reset(seed=4)
    tracker = BotTracker()
    tracker.act(env)
    env.step(1)  # the learner turns right, whatever the bot said
    tracker.act(env)
    env.step(2)
    for _ in range(env.unwrapped.max_steps):
        _, reward, terminated, truncated, _ = env.step(tracker.act(env))
        if terminated or truncated:
            break
    assert reward > 0


def test_oracle_teacher_refuses_envs_it_cannot_plan():
    env = gym.make("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shiftgrid ids .* and BabyAI ids"):
        OracleTeacher().act(env)
    with pytest.raises(ValueError, match="not a shiftgrid env"):
        OracleTeacher().subgoal(env)


@pytest.mark.parametrize("family,first", [("DoorKey", "pick up the"), ("Maze", "go to the goal"), ("PutNext", "pick up the")])
def test_subgoal_says_what_the_mission_leaves_out(family, first):
    env = gym.make(IDS[family])
    env.reset(seed=0)
    assert OracleTeacher().subgoal(env).text.startswith(first)

"""Advice: text and tokens along optimal and deviating trajectories, when/every/budget/fading, counts, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs
from shiftgrid.envs.language import UNK, VOCAB, tokenize
from shiftgrid.envs.oracle import solve_from
from shiftgrid.envs.teacher import OracleTeacher
from shiftgrid.envs.teacher.advice import ACTION_WORDS, GRANULARITIES, AdviceConfig, AdviceError
from shiftgrid.envs.teacher.advice_wrapper import AdviceWrapper, NoAdvice
from shiftgrid.envs.teacher.cost import add_costs
from shiftgrid.envs.wrappers import MissionTokens, decode

#: The current id of each built-in family.
IDS = {f.name: f.env_id() for f in shiftgrid.envs.BUILTIN_FAMILIES}

LEFT, RIGHT, FORWARD, PICKUP = 0, 1, 2, 3


def advised(family: str, config: AdviceConfig, **kwargs) -> AdviceWrapper:
    """The family's current id (``family`` may also be a full id, e.g. a v0 one whose level a test was written on)."""
    return AdviceWrapper(gym.make(IDS.get(family, family), **kwargs), config)


def play(env, actions=None, teacher=None):
    """Step ``actions`` (None: the oracle's, to the end); the advice of every observation, the infos."""
    teacher = teacher or OracleTeacher()
    obs, info = env.reset(seed=0)
    said, infos, done, k = [obs["advice"]], [info], False, 0
    while not done and (actions is None or k < len(actions)):
        action = teacher.act(env) if actions is None else actions[k]
        obs, _, terminated, truncated, info = env.step(action)
        said.append(obs["advice"])
        infos.append(info)
        done, k = terminated or truncated, k + 1
    return said, infos


def distinct(texts):
    out = []
    for t in texts:
        if t and (not out or out[-1] != t):
            out.append(t)
    return out


# -- what is said along an optimal trajectory -------------------------------------------------

def test_subgoals_along_an_optimal_doorkey_episode_add_what_the_mission_leaves_out():
    env = advised("DoorKey", AdviceConfig("subgoal"))
    said, infos = play(env)
    assert env.unwrapped.mission == "open the blue door, then get to the goal"
    assert distinct(said) == ["pick up the blue key", "open the blue door", "go to the goal"]
    assert said[-1] == "" and infos[-1]["success"]  # nothing is said on the terminal observation


@pytest.mark.parametrize("family,expected", [
    ("Maze", ["go to the goal"]),
    ("PutNext", ["pick up the blue box", "put the blue box next to the purple box"]),
    # Sequence-v0's first level has a box in the way, which the mission does not mention
    ("shiftgrid/Sequence-v0", ["open the purple box", "open the grey door"]),
    ("GoTo", None),  # the subgoal is the mission itself
])
def test_subgoals_on_other_families(family, expected):
    env = advised(family, AdviceConfig("subgoal"))
    said, _ = play(env)
    assert distinct(said) == (expected or [env.unwrapped.mission])


def test_subgoals_follow_a_sequence_clause_by_clause():
    env = advised("shiftgrid/Sequence-v0", AdviceConfig("subgoal"), num_clauses=3)  # the level this was written on
    said, _ = play(env)
    assert env.unwrapped.mission == "go to the blue ball, then go to the blue box and go to the grey box"
    # a goto is done by facing its object on the way; a box in the way is opened (it vanishes)
    assert distinct(said) == ["go to the blue ball", "go to the blue box", "open the blue box", "go to the grey box"]


def test_action_advice_is_the_optimal_action_in_words_at_every_step():
    env = advised("DoorKey", AdviceConfig("action"))
    obs, info = env.reset(seed=0)
    plan, steps = env.unwrapped.optimal_actions, 0
    for action in plan:
        assert obs["advice"] == ACTION_WORDS[action]
        assert env._plan.steps == len(solve_from(env).actions)  # a plan carried over is as short as a fresh one
        obs, _, terminated, _, info = env.step(action)
        steps += 1
    assert terminated and info["success"] and steps == len(plan)


def test_direction_advice_turns_with_the_agent():
    env = advised("DoorKey", AdviceConfig("direction"))
    obs, _ = env.reset(seed=0)  # agent at (1, 1) facing up; the key at (1, 4)
    assert obs["advice"] == "the blue key is behind you"
    obs, *_ = env.step(RIGHT)
    assert obs["advice"] == "the blue key is on your right"
    obs, *_ = env.step(RIGHT)
    assert obs["advice"] == "the blue key is ahead"
    obs, *_ = env.step(LEFT)  # facing right again: wrong way, the advice stays true
    assert obs["advice"] == "the blue key is on your right"


# -- a learner that strays --------------------------------------------------------------------

@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_advice_after_deviations_is_the_plan_from_where_the_learner_is(granularity):
    env = advised("DoorKey", AdviceConfig(granularity), split="size/far")
    teacher = OracleTeacher()
    strays = [LEFT, FORWARD, FORWARD, RIGHT, PICKUP, FORWARD]  # ignores the teacher
    said, _ = play(env, strays)
    for k in range(len(strays) + 1):  # replay the same states and check each advice against a fresh plan
        probe = gym.make("shiftgrid/DoorKey-v1", split="size/far")
        probe.reset(seed=0)
        for a in strays[:k]:
            probe.step(a)
        plan = solve_from(probe)
        subgoal = teacher.subgoal(probe, plan)
        if granularity == "action":
            assert said[k] == ACTION_WORDS[plan.actions[0]]
        elif granularity == "subgoal":
            assert said[k] == subgoal.text
        else:
            assert said[k].startswith(subgoal.landmark + " is ")
    # following the advice from the strayed state is optimal from there
    steps_left = len(solve_from(env).actions)
    done, n = False, 0
    while not done:
        _, _, done, truncated, info = env.step(teacher.act(env))
        n += 1
        done = done or truncated
    assert info["success"] and n == steps_left


# -- tokens -----------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_advice_tokens_share_the_mission_vocabulary(granularity):
    env = MissionTokens(advised("PutNext", AdviceConfig(granularity, when="every", every=2)))
    obs, _ = env.reset(seed=0)
    inner = env.env
    assert env.observation_space["advice"] == env.observation_space["mission"]
    teacher, done, spoken = OracleTeacher(), False, 0
    while not done:
        words = decode(obs["advice"])
        assert UNK not in words and all(w in VOCAB for w in words)
        spoken += bool(words)
        obs, _, done, truncated, _ = env.step(teacher.act(inner))
        done = done or truncated
    assert spoken > 0
    assert not obs["advice"].any()  # silence is all padding


def test_the_advice_words_are_in_the_vocabulary_without_moving_the_grammars_ids():
    for text in list(ACTION_WORDS.values()) + ["the red box is behind you on your left", "the goal is here"]:
        assert all(w in VOCAB for w in tokenize(text)), text
    assert VOCAB.index("ball") < VOCAB.index("turn")  # advice words come after the grammar's


def test_no_advice_has_the_same_space_and_is_always_silent():
    base = gym.make("shiftgrid/GoTo-v1")
    silent = MissionTokens(NoAdvice(base))
    speaking = MissionTokens(AdviceWrapper(gym.make("shiftgrid/GoTo-v1"), AdviceConfig("subgoal")))
    assert silent.observation_space == speaking.observation_space
    obs, _ = silent.reset(seed=0)
    for _ in range(3):
        assert not obs["advice"].any()
        obs, *_ = silent.step(FORWARD)


# -- when, budget, fading ---------------------------------------------------------------------

def spoken_steps(said):
    return [k for k, t in enumerate(said) if t]


def test_every_k_steps():
    said, _ = play(advised("DoorKey", AdviceConfig("action", when="every", every=3)))
    assert spoken_steps(said[:-1]) == list(range(0, len(said) - 1, 3))


def test_deviation_speaks_only_after_the_learner_leaves_the_plan():
    env = advised("DoorKey", AdviceConfig("subgoal", when="deviation"))
    obs, _ = env.reset(seed=0)
    assert obs["advice"] == ""  # no last action yet
    plan = env.unwrapped.optimal_actions
    obs, *_ = env.step(plan[0])
    assert obs["advice"] == ""  # on the plan: silent
    obs, *_ = env.step(PICKUP)  # picks up nothing: a wasted step
    assert obs["advice"] == "pick up the blue key"
    obs, *_ = env.step(solve_from(env).actions[0])
    assert obs["advice"] == ""


def test_a_tie_between_optimal_actions_is_not_a_deviation():
    env = advised("Maze", AdviceConfig("action", when="deviation"))
    env.reset(seed=0)
    teacher, said, done = OracleTeacher(), [], False
    while not done:
        obs, _, done, truncated, _ = env.step(teacher.act(env))
        said.append(obs["advice"])
        done = done or truncated
    assert not any(said)


def test_budget_caps_utterances_per_episode():
    env = advised("DoorKey", AdviceConfig("action", budget=4))
    said, infos = play(env)
    assert spoken_steps(said) == [0, 1, 2, 3]
    assert infos[-1]["advice_utterances"] == 4
    _, info = env.reset(seed=1)  # a new episode, a new budget
    assert info["advice_utterances"] == 1


def test_fading_over_training_steps():
    env = advised("Maze", AdviceConfig("action", fade_steps=1000))

    def utterances(step: int, seed: int = 0) -> int:
        env.set_training_step(step)
        _, infos = play(env)
        return infos[-1]["advice_utterances"], len(infos) - 1

    spoken, steps = utterances(0)
    assert spoken == steps  # every non-terminal observation, from the reset on
    assert utterances(1000)[0] == 0 and utterances(5000)[0] == 0
    half, steps = utterances(500)
    assert 0 < half < steps and half == utterances(500)[0]  # seeded by the reset seed: reproducible


def test_training_step_reaches_every_sub_environment():
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda: MissionTokens(advised("GoTo", AdviceConfig("action", fade_steps=10)))] * 2)
    vec.env_method("set_training_step", 10)
    assert vec.get_attr("training_step") == [10, 10]
    vec.reset()
    assert not vec.buf_obs["advice"].any()  # faded out: silent everywhere
    gvec = gym.vector.SyncVectorEnv([lambda: advised("GoTo", AdviceConfig("action", fade_steps=10))] * 2)
    gvec.call("set_training_step", 7)
    assert gvec.get_attr("training_step") == (7, 7)


# -- counts -----------------------------------------------------------------------------------

def test_counts_in_info_and_per_step_costs_add_up_to_them():
    env = advised("DoorKey", AdviceConfig("direction", when="every", every=2))
    said, infos = play(env)
    texts = [t for t in said if t]
    assert infos[-1]["advice_utterances"] == len(texts)
    assert infos[-1]["advice_tokens"] == sum(len(tokenize(t)) for t in texts)
    total = add_costs({}, infos[1:])  # the reset's utterance is counted with the first step
    assert total == {"utterances": len(texts), "advice_tokens": infos[-1]["advice_tokens"]}


# -- BabyAI and bad input ---------------------------------------------------------------------

def test_action_advice_on_babyai_follows_the_bot():
    env = AdviceWrapper(gym.make("BabyAI-GoToLocal-v0"), AdviceConfig("action"))
    obs, _ = env.reset(seed=0)
    words = {v: k for k, v in ACTION_WORDS.items()}
    for _ in range(env.unwrapped.max_steps):
        obs, reward, terminated, truncated, _ = env.step(words[obs["advice"]])
        if terminated or truncated:
            break
    assert reward > 0


@pytest.mark.parametrize("config,message", [
    (AdviceConfig("loud"), "advice.granularity='loud' is not valid; valid: subgoal, direction, action"),
    (AdviceConfig("action", when="sometimes"), "advice.when='sometimes' is not valid; valid: always, every, deviation"),
    (AdviceConfig("action", every=0), "advice.every=0 is not valid"),
    (AdviceConfig("action", budget=-1), "advice.budget=-1 is not valid"),
    (AdviceConfig("action", fade_steps=0), "advice.fade_steps=0 is not valid"),
    (AdviceConfig(), "needs a granularity"),
])
def test_bad_settings(config, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AdviceWrapper(gym.make("shiftgrid/GoTo-v1"), config)


def test_subgoal_advice_on_babyai_reads_the_bots_plan():
    env = AdviceWrapper(gym.make("BabyAI-UnlockPickup-v0"), AdviceConfig("subgoal"))
    obs, _ = env.reset(seed=1)
    said = [obs["advice"]]
    for _ in range(env.unwrapped.max_steps):
        obs, reward, terminated, truncated, info = env.step(env.teacher.act(env))
        said.append(obs["advice"])
        if terminated or truncated:
            break
    assert reward > 0 and env.unwrapped.mission == "pick up the purple box"
    # silent while the bot explores; then what the mission leaves out: the key, the door, the key put down
    assert said[0] == "" and distinct(said) == ["pick up the yellow key", "open the yellow door", "drop the yellow key",
                                                "pick up the purple box"]
    assert info["advice_utterances"] == sum(bool(t) for t in said)  # silence is not counted


def test_advice_needs_an_oracle_or_a_bot():
    with pytest.raises(AdviceError, match=r"shiftgrid id .* or a BabyAI level .*; MiniGrid-Empty-5x5-v0 \(EmptyEnv\) is neither"):
        AdviceWrapper(gym.make("MiniGrid-Empty-5x5-v0"), AdviceConfig("action"))
    with pytest.raises(ValueError, match="already has an 'advice' key"):
        NoAdvice(NoAdvice(gym.make("shiftgrid/GoTo-v1")))

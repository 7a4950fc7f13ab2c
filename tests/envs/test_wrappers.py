"""MissionTokens: text missions as fixed-length token ids, on shiftgrid, minigrid and BabyAI envs."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers MiniGrid-* and BabyAI-* ids)
import numpy as np
import pytest
from minigrid.wrappers import ImgObsWrapper

from shiftgrid.envs.language import PAD, UNK, VOCAB, tokenize
from shiftgrid.envs.families.sequence import SequenceFactors, generate as generate_sequence
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, MissionTokens, MissionTooLong, decode, encode

UNK_ID = VOCAB.index(UNK)
MAX_LEN = DEFAULT_MAX_LEN


def test_vocabulary_reserves_padding_and_unknown():
    assert VOCAB[0] == PAD and VOCAB[1] == UNK and UNK_ID == 1
    assert len(set(VOCAB)) == len(VOCAB)


@pytest.mark.parametrize(
    "text",
    [
        "go to the red ball",
        "pick up the blue key",
        "put the grey box next to the yellow key",
        "open the purple door, then get to the goal",
        "go to the green ball and pick up the red box, then open the yellow door",
    ],
)
def test_round_trip(text):
    ids = encode(text, MAX_LEN)
    assert ids.shape == (MAX_LEN,) and ids.dtype == np.int64
    assert decode(ids) == tokenize(text)
    assert " ".join(decode(ids)).replace(" ,", ",") == text


def test_padding_and_never_truncating():
    ids = encode("go to the red ball", 8)
    assert (ids[:5] > 1).all() and (ids[5:] == 0).all()
    assert decode(encode("go to the red ball", 5)) == ["go", "to", "the", "red", "ball"]
    with pytest.raises(MissionTooLong, match=r"'go to the red ball' has 5 tokens but the encoding keeps 3; pass a larger max_len"):
        encode("go to the red ball", 3)
    assert encode("", 4).tolist() == [0, 0, 0, 0]


def test_a_mission_that_does_not_fit_raises_instead_of_being_cut():
    """The issue's case: Sequence instructions/far missions of 33+ tokens lost their last words at 32."""
    plain = gym.make("shiftgrid/Sequence-v1", split="instructions/far", oracle=False, num_clauses=6)
    seed = next(s for s in range(100) if len(tokenize(plain.reset(seed=s)[0]["mission"])) > 32)
    n = len(tokenize(plain.unwrapped.mission))
    env = MissionTokens(gym.make("shiftgrid/Sequence-v1", split="instructions/far", oracle=False, num_clauses=6), max_len=32)
    with pytest.raises(MissionTooLong, match=rf"has {n} tokens but the encoding keeps 32"):
        env.reset(seed=seed)
    obs, _ = MissionTokens(plain).reset(seed=seed)
    assert decode(obs["mission"]) == tokenize(plain.unwrapped.mission)


def test_default_length_covers_the_longest_sequence_mission():
    """Sequence at its declared maximum of clauses (the longest grammar): every mission fits the default."""
    high = SequenceFactors.field_of("num_clauses").metadata["high"]
    longest = 0
    for seed in range(40):
        level = generate_sequence(SequenceFactors(num_clauses=high, layout="rooms", size=10), np.random.default_rng(seed))
        longest = max(longest, len(tokenize(level.mission_text)))
    assert 7 * high - 10 <= longest <= DEFAULT_MAX_LEN == 7 * high - 2


def test_unknown_words_map_to_one_and_case_is_ignored():
    ids = encode("go to the zebra quickly", 8)
    assert ids[3] == UNK_ID and ids[4] == UNK_ID and (ids[:3] > 1).all()
    assert decode(ids)[3:] == [UNK, UNK]
    assert encode("Go To The RED Ball", 8).tolist() == encode("go to the red ball", 8).tolist()


def test_wrapper_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Dict observation space"):
        MissionTokens(ImgObsWrapper(gym.make("MiniGrid-Empty-5x5-v0")))
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        MissionTokens(gym.make("shiftgrid/GoTo-v1"), max_len=0)
    with pytest.raises(ValueError, match="none of"):
        MissionTokens(gym.make("shiftgrid/GoTo-v1"), keys=("advice",))


def _tokens_match(env, obs):
    text = env.unwrapped.mission
    ids = obs["mission"]
    assert env.observation_space.contains(obs)
    assert ids.shape == (MAX_LEN,) and ids.dtype == np.int64
    assert not (ids == UNK_ID).any(), f"unknown words in {text!r}: {[w for w in tokenize(text.lower()) if w not in VOCAB]}"
    assert decode(ids) == tokenize(text.lower())[:MAX_LEN]


@pytest.mark.parametrize("env_name", ["MiniGrid-Empty-5x5-v0", "BabyAI-GoToLocal-v0"])
def test_wrapper_on_minigrid_and_babyai(env_name):
    env = MissionTokens(gym.make(env_name))
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        _tokens_match(env, obs)
    obs, *_ = env.step(env.action_space.sample())
    _tokens_match(env, obs)
    if env_name.startswith("MiniGrid-Empty"):
        assert decode(obs["mission"]) == ["get", "to", "the", "green", "goal", "square"]


RESETS_PER_SPLIT = 30  # a few hundred resets per id over its splits
#: minigrid's FlatObsWrapper asserts on missions longer than this (its default ``maxStrLen``).
FLAT_OBS_MAX_CHARS = 96
#: The one split whose missions may exceed it (the README's environment table says so).
LONG_MISSIONS = ("shiftgrid/Sequence-v1", "instructions/far")


def test_every_mission_tokenizes_without_unknowns(env_id, split_name):
    env = MissionTokens(gym.make(env_id, split=split_name, oracle=False))
    for seed in range(RESETS_PER_SPLIT):
        obs, _ = env.reset(seed=seed)
        text = env.unwrapped.mission
        _tokens_match(env, obs)
        assert decode(obs["mission"]) == tokenize(text)
        if (env_id, split_name) != LONG_MISSIONS:
            assert len(text) <= FLAT_OBS_MAX_CHARS, f"{text!r} is too long for minigrid's FlatObsWrapper"


def test_missions_only_space_keeps_the_grammar_vocabulary():
    """Learners trained before advice words existed (69 token ids) keep their observation space."""
    from shiftgrid.envs.language import MISSION_VOCAB_SIZE

    env = MissionTokens(gym.make("shiftgrid/GoTo-v1"))
    assert int(env.observation_space["mission"].high.max()) == MISSION_VOCAB_SIZE - 1 == 68
    assert MISSION_VOCAB_SIZE < len(VOCAB)  # the advice words come after the grammar's
    obs, _ = env.reset(seed=0)
    ids = env.observation({**obs, "mission": "go forward"})["mission"]
    assert ids.max() < MISSION_VOCAB_SIZE and decode(ids) == ["go", "<unk>"]

"""Demonstrations as Minari datasets: round trip, reproducibility, and clear errors for bad datasets."""

from __future__ import annotations

import numpy as np
import pytest

from shiftgrid.agents.imitation.datasets import (
    DATA_DIR,
    DATA_FILE,
    METADATA_FILE,
    DatasetError,
    find_dataset,
    minari_root,
    read_episodes,
    write_demos,
)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("d") / "goto"
    write_demos(out, "shiftgrid/GoTo-v1", episodes=6, seed=3)
    return out


def test_minari_round_trip(demos):
    import minari

    mine = list(read_episodes(demos, env_id="shiftgrid/GoTo-v1", split="train"))
    folder = find_dataset(demos)
    with minari_root(demos):
        theirs = list(minari.load_dataset(str(folder.relative_to(demos))).iterate_episodes())
    assert len(mine) == len(theirs) == 6
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.observations["image"], b.observations["image"])  # stored losslessly
        assert list(a.observations["mission_text"]) == list(b.observations["mission"])
        assert a.success and a.level_hash and a.level_seed is not None


def test_episodes_replay_their_levels_and_are_optimal(demos):
    import gymnasium as gym

    env = gym.make("shiftgrid/GoTo-v1")
    for ep in read_episodes(demos):
        obs, info = env.reset(seed=ep.seed)
        assert info["level_hash"] == ep.level_hash and obs["mission"] == ep.mission
        assert len(ep) == info["optimal_steps"]  # the oracle's demonstrations are shortest
        np.testing.assert_array_equal(obs["image"], ep.observations["image"][0])


def test_recovers_its_environment(demos):
    import minari

    folder = find_dataset(demos)
    with minari_root(demos):
        env = minari.load_dataset(str(folder.relative_to(demos))).recover_environment()
    assert env.spec.id == "shiftgrid/GoTo-v1" and env.spec.kwargs["split"] == "train"
    assert env.reset(seed=3)[1]["level_hash"] == next(read_episodes(demos)).level_hash


def test_same_seed_same_dataset(demos, tmp_path):
    again = list(read_episodes(write_demos(tmp_path / "again", "shiftgrid/GoTo-v1", episodes=6, seed=3)))
    for a, b in zip(read_episodes(demos), again):
        assert (a.seed, a.level_hash) == (b.seed, b.level_hash)
        np.testing.assert_array_equal(a.actions, b.actions)
    other = next(read_episodes(write_demos(tmp_path / "other", "shiftgrid/GoTo-v1", episodes=1, seed=4)))
    assert other.seed == 4 and other.level_hash == again[1].level_hash


def test_refuses_to_overwrite(demos):
    with pytest.raises(DatasetError, match="already exists"):
        write_demos(demos, "shiftgrid/GoTo-v1", episodes=1)


def test_other_environment_or_split(demos):
    with pytest.raises(DatasetError, match=r"holds episodes of shiftgrid/GoTo-v1 \(split train\), not shiftgrid/Pickup-v1"):
        next(read_episodes(demos, env_id="shiftgrid/Pickup-v1"))
    with pytest.raises(DatasetError, match="split 'train', not split 'size/far'"):
        next(read_episodes(demos, env_id="shiftgrid/GoTo-v1", split="size/far"))


def test_missing_and_truncated_files(demos, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        next(read_episodes(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no Minari dataset"):
        next(read_episodes(tmp_path / "empty"))
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demos, copy)
    data = find_dataset(copy) / DATA_DIR
    blob = (data / DATA_FILE).read_bytes()
    (data / DATA_FILE).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        next(read_episodes(copy))
    (data / DATA_FILE).unlink()
    with pytest.raises(DatasetError, match="missing its episodes file"):
        next(read_episodes(copy))
    (data / METADATA_FILE).unlink()
    with pytest.raises(DatasetError, match="holds no Minari dataset"):
        next(read_episodes(copy))


def test_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="episodes must be >= 1"):
        write_demos(tmp_path / "a", "shiftgrid/GoTo-v1", episodes=0)
    from shiftgrid.envs import SplitError, UnknownEnvError

    with pytest.raises(UnknownEnvError):
        write_demos(tmp_path / "b", "shiftgrid/Nope-v0", episodes=1)
    with pytest.raises(SplitError):
        write_demos(tmp_path / "c", "shiftgrid/GoTo-v1", episodes=1, split="nope")
    assert not any(tmp_path.iterdir())  # nothing written for bad input

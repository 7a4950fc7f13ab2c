"""Checkpoints: weights_only files, exact round trips through load_agent, clear errors for bad ones."""

import numpy as np
import pytest
import torch

from shiftgrid.agents.algos import build_model, make_vec
from shiftgrid.agents.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_agent,
    read_checkpoint,
    restore,
    save_checkpoint,
)
from shiftgrid.agents.config import TrainConfig

SMALL = {"ppo": {"n_steps": 16, "batch_size": 16}, "a2c": {"n_steps": 4}, "dqn": {"buffer_size": 64},
         "recurrent-ppo": {"n_steps": 16, "batch_size": 16}}


def trained_like(algo: str, env: str = "shiftgrid/GoTo-v0"):
    """A model whose weights and optimizer state differ from a fresh build with the same seed."""
    config = TrainConfig(algo=algo, env=env, n_envs=2, device="cpu", hyperparams=SMALL[algo], extractor={"channels": 16})
    model = build_model(config, make_vec(config))
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    loss = sum(p.square().sum() for p in model.policy.parameters())
    loss.backward()
    model.policy.optimizer.step()  # fills the optimizer state (Adam moments / RMSprop averages)
    model.num_timesteps, model._episode_num = 1234, 56
    return model, config


def observation_batch(env_id: str = "shiftgrid/GoTo-v0", n: int = 8) -> dict[str, np.ndarray]:
    from shiftgrid.agents.envs import make_env

    env = make_env(env_id, "id")
    obs = [env.reset(seed=s)[0] for s in range(n)]
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "recurrent-ppo"])
def test_load_agent_round_trip_gives_identical_actions(algo, tmp_path):
    model, config = trained_like(algo)
    path = save_checkpoint(model, config, tmp_path / "run" / "checkpoints" / "latest.pt", best_success=0.5)
    agent, saved = load_agent(tmp_path / "run", device="cpu")
    assert saved == config.to_dict() and agent.num_timesteps == 1234 and agent._episode_num == 56
    for (name, a), b in zip(model.policy.state_dict().items(), agent.policy.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    obs = observation_batch()
    start = np.ones(len(obs["image"]), dtype=bool)
    expected, _ = model.predict(obs, episode_start=start, deterministic=True)
    actions, _ = agent.predict(obs, episode_start=start, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    assert path.is_file()


def test_optimizer_state_is_restored(tmp_path):
    model, config = trained_like("ppo")
    save_checkpoint(model, config, tmp_path / "a.pt")
    fresh = build_model(config, make_vec(config))
    restore(fresh, read_checkpoint(tmp_path / "a.pt"))
    saved, loaded = model.policy.optimizer.state_dict(), fresh.policy.optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for key, state in saved["state"].items():
        torch.testing.assert_close(state["exp_avg"], loaded["state"][key]["exp_avg"])


def test_file_is_plain_state_dicts_loadable_weights_only(tmp_path):
    model, config = trained_like("a2c")
    path = save_checkpoint(model, config, tmp_path / "x.pt", eval={"id": 0.25})
    state = torch.load(path, weights_only=True)
    assert state["config"]["algo"] == "a2c" and state["eval"] == {"id": 0.25}
    assert state["counters"]["num_timesteps"] == 1234
    assert all(isinstance(v, torch.Tensor) for v in state["policy"].values())
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_best_is_preferred_over_latest(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "latest.pt"
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "best.pt"
    assert find_checkpoint(tmp_path / "checkpoints" / "latest.pt").name == "latest.pt"


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_agent(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_agent(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as e:
        load_agent(tmp_path / "bad.pt")
    assert "\n" not in str(e.value)


def test_foreign_and_incompatible_files_are_rejected(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a shiftgrid checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
    model, config = trained_like("ppo")
    save_checkpoint(model, config, tmp_path / "old.pt")
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    torch.save({**state, "shiftgrid_version": "9.0.0"}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=r"shiftgrid 9\.0\.0.*train again"):
        load_agent(tmp_path / "future.pt")
    torch.save({**state, "format": 99}, tmp_path / "format.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        read_checkpoint(tmp_path / "format.pt")

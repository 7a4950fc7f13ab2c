"""Checkpoints: weights_only envelopes, exact round trips through load_agent, old files, clear errors for bad ones."""

import numpy as np
import pytest
import torch

from shiftgrid.agents.run.checkpoint import (
    Checkpoint,
    CheckpointError,
    find_checkpoint,
    load_agent,
    read_checkpoint,
    save_checkpoint,
)
from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.registry import get_learner

SMALL = {"ppo": {"n_steps": 16, "batch_size": 16}, "a2c": {"n_steps": 4}, "dqn": {"buffer_size": 64},
         "recurrent-ppo": {"n_steps": 16, "batch_size": 16}}


def trained_like(algo: str, env: str = "shiftgrid/GoTo-v1"):
    """A model whose weights and optimizer state differ from a fresh build with the same seed."""
    config = TrainConfig(algo=algo, env=env, n_envs=2, device="cpu", hyperparams=SMALL[algo], extractor={"channels": 16})
    learner = get_learner(algo)(config, training=True)
    model = learner.model
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    loss = sum(p.square().sum() for p in model.policy.parameters())
    loss.backward()
    model.policy.optimizer.step()  # fills the optimizer state (Adam moments / RMSprop averages)
    model.num_timesteps, model._episode_num = 1234, 56
    return learner, config


def envelope(learner, config, **fields) -> Checkpoint:
    return Checkpoint(config.algo, config.to_dict(), learner.state_dict(), learner.num_timesteps, **fields)


def observation_batch(env_id: str = "shiftgrid/GoTo-v1", n: int = 8) -> dict[str, np.ndarray]:
    from shiftgrid.envs.learner_env import make_env

    env = make_env(env_id, "id")
    obs = [env.reset(seed=s)[0] for s in range(n)]
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "recurrent-ppo"])
def test_load_agent_round_trip_gives_identical_actions(algo, tmp_path):
    learner, config = trained_like(algo)
    model = learner.model
    best = {"split": "id", "success": 0.5, "step": 1000, "seeds": [10, 19]}
    path = save_checkpoint(envelope(learner, config, best=best), tmp_path / "run" / "checkpoints" / "latest.pt")
    agent, saved = load_agent(tmp_path / "run", device="cpu")
    assert saved == config.to_dict() and agent.num_timesteps == 1234 and agent.model._episode_num == 56
    assert agent.env is None  # no training environments were built
    assert read_checkpoint(path).best == best
    for (name, a), b in zip(model.policy.state_dict().items(), agent.model.policy.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    obs = observation_batch()
    start = np.ones(len(obs["image"]), dtype=bool)
    expected, _ = model.predict(obs, episode_start=start, deterministic=True)
    actions, _ = agent.predict(obs, episode_start=start, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    assert path.is_file()


def test_optimizer_state_is_restored(tmp_path):
    learner, config = trained_like("ppo")
    save_checkpoint(envelope(learner, config), tmp_path / "a.pt")
    fresh = get_learner("ppo")(config, training=True)
    fresh.load_state_dict(read_checkpoint(tmp_path / "a.pt").state)
    saved, loaded = learner.model.policy.optimizer.state_dict(), fresh.model.policy.optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for key, state in saved["state"].items():
        torch.testing.assert_close(state["exp_avg"], loaded["state"][key]["exp_avg"])


def test_file_is_plain_state_dicts_loadable_weights_only(tmp_path):
    learner, config = trained_like("a2c")
    history = [{"step": 1000, "success": {"id": 0.25}}]
    path = save_checkpoint(envelope(learner, config, eval={"id": 0.25}, history=history), tmp_path / "x.pt")
    state = torch.load(path, weights_only=True)
    assert state["config"]["algo"] == "a2c" and state["learner"] == "a2c" and state["eval"] == {"id": 0.25}
    assert state["counters"]["num_timesteps"] == 1234 and state["history"] == history and state["format"] == 2
    assert all(isinstance(v, torch.Tensor) for v in state["state"]["policy"].values())
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
    learner, config = trained_like("ppo")
    save_checkpoint(envelope(learner, config), tmp_path / "old.pt")
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    torch.save({**state, "shiftgrid_version": "9.0.0"}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=r"shiftgrid 9\.0\.0.*train again"):
        load_agent(tmp_path / "future.pt")
    torch.save({**state, "format": 99}, tmp_path / "format.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        read_checkpoint(tmp_path / "format.pt")
    torch.save({**state, "learner": "no-such-learner"}, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="learner 'no-such-learner', which is not registered.*register_learner"):
        load_agent(tmp_path / "unknown.pt")


def test_a_torch_zip_that_is_no_checkpoint_is_one_line_without_torch_internals(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "foreign.pt", "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(tmp_path / "foreign.pt")
    assert str(e.value) == f"cannot read checkpoint {tmp_path / 'foreign.pt'} (corrupt or not a checkpoint): not a readable torch file"


def format1_file(learner, config, path):
    """A checkpoint as shiftgrid 0.1.0 wrote it (format 1: SB3 keys at the top level)."""
    state = learner.state_dict()
    old = {**config.to_dict(), "eval": {**config.to_dict()["eval"], "seed": 0}}
    torch.save({"format": 1, "shiftgrid_version": "0.1.0", "algo": config.algo, "config": old,
                "policy": state["policy"], "optimizer": state["optimizer"], "counters": state["counters"],
                "best_success": 0.25, "eval": {"id": 0.25}, "elapsed_s": 12.5, "target": None}, path)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_checkpoints_of_the_previous_format_still_load(algo, tmp_path):
    learner, config = trained_like(algo)
    format1_file(learner, config, tmp_path / "best.pt")
    ckpt = read_checkpoint(tmp_path / "best.pt")
    best = {"split": "id", "success": 0.25, "seeds": [0, 19]}  # chosen on the evaluation seeds of its day: 0..19
    assert (ckpt.learner, ckpt.num_timesteps, ckpt.best, ckpt.elapsed_s) == (algo, 1234, best, 12.5)
    agent, saved = load_agent(tmp_path / "best.pt", device="cpu")
    obs = observation_batch()
    start = np.ones(len(obs["image"]), dtype=bool)
    np.testing.assert_array_equal(agent.predict(obs, episode_start=start, deterministic=True)[0],
                                  learner.predict(obs, episode_start=start, deterministic=True)[0])

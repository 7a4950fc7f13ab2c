"""The world-model trainer as a learner: collection boundaries per behaviour, oracle noise, resume,
signals, NaN stop, load_world_model round trip, incompatible checkpoints (tiny presets, few steps)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from shiftgrid.agents.model_based.behaviour import OracleBehaviour, make_behaviour
from shiftgrid.agents.model_based.world_model import WorldModelLearner, load_world_model
from shiftgrid.agents.run.checkpoint import CheckpointError, read_checkpoint
from shiftgrid.agents.run.config import ConfigError, EvalConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import resume_config, train
from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.models import model_names

#: Few, small updates: a tiny model on 2 x 8 sequences.
TINY = {"preset": "tiny", "batch_size": 2, "seq_len": 8, "learning_starts": 16, "train_ratio": 4, "log_every": 2,
        "openloop_every": 4, "openloop_context": 2, "openloop_horizon": 4, "openloop_sequences": 2}


def wm_config(tmp_path, steps=64, name="wm", env="MiniGrid-Empty-5x5-v0", checkpoint_freq=32, **hyperparams) -> TrainConfig:
    return TrainConfig(algo="world-model", env=env, steps=steps, n_envs=2, device="cpu", progress=False,
                       run_dir=str(tmp_path / name), eval=EvalConfig(freq=0), checkpoint_freq=checkpoint_freq,
                       hyperparams={**TINY, **hyperparams})


@dataclass
class Recorder:
    """Run services that record what a learner reports (for learner-level tests)."""

    episodes: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    state: object = None

    def on_step(self, num_timesteps, episodes=()):
        self.episodes += list(episodes)
        return True

    def on_update(self, num_timesteps, metrics=None, *, log=True):
        self.metrics.append(dict(metrics or {}))
        return True

    def log_image(self, tag, image):
        pass


def segments(stream):
    """(length, return) of every complete episode of a replay stream, and the boundary checks."""
    first, done = stream["is_first"].numpy(), (stream["terminated"] | stream["truncated"]).numpy()
    assert first[0], "a stream starts at a reset observation"
    out, start = [], 0
    for j in range(1, len(first)):
        assert first[j] == done[j - 1], f"step {j}: is_first must follow exactly the done steps"
    for j in np.nonzero(done)[0]:
        assert stream["action"][j] == 0  # no action is taken from a last observation
        out.append((int(j - start), float(stream["reward"][start + 1:j + 1].sum())))
        start = j + 1
    return out


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """A (barely) trained PPO agent on the empty room, as a behaviour policy."""
    run = tmp_path_factory.mktemp("agent") / "ppo"
    train(TrainConfig(algo="ppo", env="MiniGrid-Empty-5x5-v0", steps=128, n_envs=2, device="cpu", progress=False,
                      run_dir=str(run), eval=EvalConfig(freq=0), extractor={"channels": 8, "features_dim": 16},
                      hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1}))
    return run


@pytest.mark.parametrize("env, policy", [("MiniGrid-Empty-5x5-v0", "random"), ("shiftgrid/GoTo-v1", "oracle"),
                                         ("BabyAI-GoToLocal-v0", "oracle"), ("MiniGrid-Empty-5x5-v0", "agent")])
def test_collection_keeps_episode_boundaries(env, policy, tmp_path, request):
    if policy == "agent":
        policy = str(request.getfixturevalue("ppo_run"))
    config = wm_config(tmp_path, env=env, policy=policy, noise=0.0, learning_starts=10**6)  # collect only
    if env.startswith("MiniGrid"):
        config.env_kwargs = {"max_steps": 10}  # episodes end by truncation too
    learner = WorldModelLearner(config, training=True)
    run = Recorder()
    learner.learn(120, run)
    learner.close()
    assert learner.num_timesteps == 120 == len(learner.replay)
    found = [seg for i in range(2) for seg in segments(learner.replay.stream(i))]
    reported = sorted((e.length, e.ret) for e in run.episodes)
    # An episode that ends on the budget's very last step is reported, but its last observation
    # would be the next step's, which is never taken: at most one such episode per env.
    assert len(found) >= 2 and 0 <= len(reported) - len(found) <= 2
    unmatched = list(reported)
    for n, ret in found:
        match = next((r for r in unmatched if r[0] == n and r[1] == pytest.approx(ret, abs=1e-5)), None)
        assert match is not None, f"replayed episode {(n, ret)} was not reported"  # the replay keeps float32 rewards
        unmatched.remove(match)
    if policy == "oracle":  # noise 0: the oracle (shiftgrid) and BabyAI's bot solve every episode
        assert all(e.success for e in run.episodes)


def test_oracle_with_noise_takes_both_optimal_and_random_actions():
    import gymnasium as gym

    from shiftgrid.envs.oracle import solve_from

    envs = gym.vector.SyncVectorEnv([lambda: make_env("shiftgrid/GoTo-v1")] * 2)
    obs, _ = envs.reset(seed=0)
    behaviour = make_behaviour("oracle", noise=0.5, seed=3)
    assert isinstance(behaviour, OracleBehaviour)
    optimal = randoms = 0
    for _ in range(60):
        wanted = [None if e.unwrapped.progress.complete else solve_from(e).actions[0] for e in envs.envs]
        actions = behaviour.act(envs, obs)
        for i, want in enumerate(wanted):
            if want is not None and not behaviour.last_random[i]:
                assert actions[i] == want
                optimal += 1
        randoms += int(behaviour.last_random.sum())
        obs, *_ = envs.step(actions)
    envs.close()
    assert optimal >= 30 and randoms >= 30  # about half each of 120 actions


def test_a_resumed_run_continues_the_same_data_to_the_same_total(tmp_path):
    def stop_at(run):
        if run.num_timesteps >= 64 and run.state.signum is None and run.learner.num_timesteps < 100:
            signal.raise_signal(signal.SIGTERM)

    first = train(wm_config(tmp_path, steps=128), hooks=[stop_at])
    assert (first.interrupted, first.num_timesteps) == (signal.SIGTERM, 64)
    stopped = read_checkpoint(RunDir(first.run_dir).latest)
    assert stopped.num_timesteps == 64 and stopped.state["counters"]["updates"] > 0
    second = train(resume_config(first.run_dir), resume=True)
    assert (second.interrupted, second.num_timesteps) == (None, 128)
    final = read_checkpoint(RunDir(first.run_dir).latest).state
    assert final["counters"]["updates"] > stopped.state["counters"]["updates"]
    before, after = stopped.state["replay"], final["replay"]
    assert after["size"].tolist() == [64, 64]
    for key in ("data.image", "data.action", "data.reward", "data.is_first"):  # the first call's steps are kept as they were
        assert torch.equal(after[key][:, :32], before[key][:, :32]), key


def test_a_resume_without_a_replay_says_so_and_what_it_costs(tmp_path, capsys):
    first = train(wm_config(tmp_path, steps=32, save_replay=False))
    assert read_checkpoint(RunDir(first.run_dir).latest).state["replay"] is None
    capsys.readouterr()
    train(resume_config(first.run_dir, steps=64), resume=True)
    assert capsys.readouterr().err.strip().splitlines() == [
        "world model: resumed at step 32 without a replay (hyperparams.save_replay was false): "
        "16 environment steps are collected again before training goes on"]  # a sequence (8 steps) in each of 2 streams


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_first(signum, tmp_path):
    def hook(run):
        if run.num_timesteps >= 40 and run.state.signum is None:
            signal.raise_signal(signum)

    result = train(wm_config(tmp_path, steps=128, checkpoint_freq=0), hooks=[hook])
    assert result.interrupted == signum and result.stop_reason == "signal"
    assert read_checkpoint(RunDir(result.run_dir).latest).num_timesteps == result.num_timesteps == 40


@pytest.mark.parametrize("poison", ["weights", "loss"])
def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(poison, tmp_path, monkeypatch):
    if poison == "loss":  # a NaN loss with finite weights: nothing is updated, so the state then is the last good one
        from shiftgrid.world_models.rssm import RSSM

        real = RSSM.loss_and_states  # what a training step calls
        monkeypatch.setattr(RSSM, "loss_and_states", lambda self, batch: (lambda t, m, s: (t * float("nan"), m, s))(
            *real(self, batch)) if self.poisoned else real(self, batch))
        monkeypatch.setattr(RSSM, "poisoned", False, raising=False)
    kept_weights = {}

    def hook(run):
        if run.num_timesteps == 48:
            model = run.learner.model
            kept_weights.update({k: v.clone() for k, v in model.state_dict().items()})
            if poison == "loss":
                model.poisoned = True
            else:
                with torch.no_grad():
                    next(model.parameters()).fill_(float("nan"))

    result = train(wm_config(tmp_path, steps=128), hooks=[hook])
    assert result.stop_reason == "nan" and result.interrupted is None and result.num_timesteps < 128
    assert "world-model loss is nan" in result.stop_detail
    kept = read_checkpoint(RunDir(result.run_dir).latest)
    assert all(torch.isfinite(v).all() for v in kept.state["model"].values() if v.is_floating_point())
    if poison == "weights":
        assert 32 <= kept.num_timesteps < 48  # the last periodic save: the state at the NaN is not saved
    else:
        assert kept.num_timesteps == result.num_timesteps >= 48  # saved at the NaN, from the weights not updated since
        assert all(torch.equal(kept.state["model"][k], v) for k, v in kept_weights.items())


@pytest.mark.parametrize("family", model_names())
def test_load_world_model_gives_identical_predictions(family, tmp_path):
    held = {}
    result = train(wm_config(tmp_path, steps=64, model=family), hooks=[lambda run: held.setdefault("learner", run.learner)])
    trained = held["learner"]
    model, config = load_world_model(result.run_dir, device="cpu")
    assert config.hyperparams["model"] == family and type(model) is type(trained.model)
    batch = trained.replay.sample(2, 8, generator=torch.Generator().manual_seed(0))
    outs = []
    for m in (trained.model.eval(), model):
        torch.manual_seed(1)
        outs.append(m.observe(batch)[1].predictions.obs)
    for a, b in zip(outs[0].__dict__.values(), outs[1].__dict__.values()):
        assert torch.equal(a, b)


def test_incompatible_checkpoints_are_refused_in_one_line(tmp_path, ppo_run):
    result = train(wm_config(tmp_path, steps=32))
    with pytest.raises(CheckpointError, match="is a checkpoint of learner 'ppo', not a world model"):
        load_world_model(ppo_run)
    other = next(m for m in model_names() if m != "rssm")
    with pytest.raises(CheckpointError, match=f"holds a world-model run's rssm/tiny world model, but a {other} one was asked for: another model family"):
        load_world_model(result.run_dir, model=other)
    with pytest.raises(CheckpointError, match="of MiniGrid-Empty-5x5-v0, but one of shiftgrid/GoTo-v1 was asked for: another environment"):
        load_world_model(result.run_dir, env="shiftgrid/GoTo-v1")
    with pytest.raises(CheckpointError, match="another observation spec"):
        load_world_model(result.run_dir, spec=ObsSpec(num_actions=3))
    # a run whose config.yaml was changed to another preset cannot load its checkpoint
    config = resume_config(result.run_dir, steps=64)
    config.hyperparams["preset"] = "small"
    with pytest.raises(CheckpointError, match="another preset"):
        train(config, resume=True)


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown world model 'lstm'; valid: rssm"):
        WorldModelLearner(wm_config(tmp_path, model="lstm"), training=False)
    with pytest.raises(ConfigError, match="unknown world-model preset 'huge'"):
        WorldModelLearner(wm_config(tmp_path, preset="huge"), training=False)
    with pytest.raises(ConfigError, match="oracle needs a shiftgrid id .* MiniGrid-Empty-5x5-v0 has neither"):
        WorldModelLearner(wm_config(tmp_path, policy="oracle"), training=True)
    with pytest.raises(ConfigError, match="unknown config key hyperparams.gamma"):
        WorldModelLearner(wm_config(tmp_path, gamma=0.9), training=False)


def test_weights_of_an_earlier_version_of_the_same_model_are_refused_in_one_line(tmp_path):
    """A mechanism model saved before its decoder read a context (same family, preset and overrides then)."""
    earlier = WorldModelLearner(wm_config(tmp_path, model="mechanism", model_overrides={"decoder_context": 0}), training=False)
    now = WorldModelLearner(wm_config(tmp_path, model="mechanism"), training=False)
    state = earlier.state_dict()
    state["world_model"] = dict(now.identity)  # what such a checkpoint says of itself
    with pytest.raises(CheckpointError, match=r"^the checkpoint holds a mechanism/tiny .*size mismatch.* earlier version.*model_overrides\)$"):
        now.load_state_dict(state)

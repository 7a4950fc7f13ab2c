"""Dreamer: the four grid-world pitfalls (each a test), and a tiny run through train, resume and evaluate."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from shiftgrid.agents.model_based.actor_critic import ActorCritic, ActorCriticConfig
from shiftgrid.agents.model_based.dreamer import Dreamer
from shiftgrid.agents.run.checkpoint import read_checkpoint
from shiftgrid.agents.run.config import ConfigError, EvalConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.services import RunState
from shiftgrid.agents.run.train import resume_config, train
from shiftgrid.agents.run.world_model import load_world_model
from shiftgrid.envs.learner_env import SuccessInfo
from shiftgrid.scripts.cli import main
from shiftgrid.world_models.interface import Imagined, LatentState, ObsSpec, Predictions, WorldModel
from shiftgrid.world_models.models import build_model

EMPTY = "MiniGrid-Empty-5x5-v0"
TINY = {"preset": "tiny", "batch_size": 8, "seq_len": 8, "replay_capacity": 10_000, "actor_critic": {"hidden": 32, "layers": 1}}


# ---- (a) an imagined action is scored at the state it was taken from -------------------------------

class Ring(WorldModel):
    """Five states in a ring; every action moves on by one; action 1 pays 1 at state 2 and costs 0.2 elsewhere.

    ``deter`` is the state's one-hot, ``stoch`` holds the reward earned by the step into it.
    """

    N = 5

    def __init__(self):
        super().__init__()
        self.spec, self.config, self.features_dim = ObsSpec(num_actions=3), None, self.N + 1

    def state(self, index: torch.Tensor, reward: torch.Tensor) -> LatentState:
        return LatentState(nn.functional.one_hot(index, self.N).float(), reward.float()[:, None, None])

    def imagine(self, start, actions, horizon=None, decode=False, generator=None):
        states, taken, s = [], [], start
        for k in range(horizon):
            a = actions(s) if callable(actions) else actions[:, k]
            index = s.deter.argmax(-1)
            s = self.state((index + 1) % self.N, (a == 1) * torch.where(index == 2, 1.0, -0.2))
            states.append(s)
            taken.append(a)
        stacked = LatentState.stack(states, 1)
        return Imagined(stacked, torch.stack(taken, 1), self.predict(stacked))

    def predict(self, state, decode=True):
        reward = state.stoch[..., 0, 0]
        return Predictions(None, reward, reward[..., None], torch.full_like(reward, 20.0))

    def observe(self, batch):
        raise NotImplementedError

    def initial(self, batch):  # an imagination-only stub: it never filters online
        raise NotImplementedError

    def obs_step(self, state, action, embed, is_first, generator=None):
        raise NotImplementedError

    def loss(self, batch):
        raise NotImplementedError


def test_a_imagined_action_is_scored_at_the_state_it_was_taken_from():
    torch.manual_seed(0)
    ring = Ring()
    ac = ActorCritic(ActorCriticConfig(hidden=32, layers=1, horizon=5, actor_lr=1e-2, critic_lr=1e-2, gamma=0.9),
                     ring.features_dim, num_actions=3)
    index = torch.arange(64) % Ring.N
    start = ring.state(index, torch.zeros(64))
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        ac.update(ring, start, torch.ones(64), generator=gen)
    probs = ac.actor.log_probs(ring.state(torch.arange(Ring.N), torch.zeros(Ring.N)).features()).exp().detach()
    # scored at the state it was taken from, action 1 is learned where it pays and avoided elsewhere; scored one
    # state off, its reward would be uncorrelated with the action credited and neither would be learned
    assert probs[2, 1] > 0.9, probs
    assert torch.cat([probs[:2, 1], probs[3:, 1]]).max() < 0.1, probs


# ---- (d) no gradient flows through a categorical sample into the actor -----------------------------

def test_d_no_gradient_flows_through_a_categorical_sample():
    torch.manual_seed(0)
    model = build_model("rssm", "tiny", ObsSpec())
    ac = ActorCritic(ActorCriticConfig(hidden=32, layers=1), model.features_dim, num_actions=7)
    start = model.initial(16)
    feats, actions, reward, cont = ac.rollout(model, start, torch.Generator().manual_seed(0))
    assert actions.dtype == torch.long  # integer samples, not relaxed or straight-through one-hots
    assert not any(t.requires_grad for t in (feats, reward, cont))  # no path from the rollout back to the actor
    ac.update(model, start, torch.ones(16), generator=torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in model.parameters())  # the actor-critic step reaches no world-model weight
    # the actor's gradient is the score function's alone: recompute it by hand at the same rollout
    gen = torch.Generator().manual_seed(1)
    feats, actions, reward, cont = ac.rollout(model, start, gen)
    logp = ac.actor.log_probs(feats[:, :-1])
    surrogate = (logp.gather(-1, actions[..., None])[..., 0] * torch.randn(actions.shape)).sum()
    grads = torch.autograd.grad(surrogate, list(ac.actor.parameters()))
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


# ---- toy envs for (b) and (c), through SB3's auto-reset ---------------------------------------------

class Countdown(gym.Env):
    """Episodes of exactly 3 steps; ``image[0, 0, 0]`` is the step; reward ``reward_at_end`` on the last one.

    ``first_success_only``: only the very first episode pays (a success seen once); ``paying=False``: none does.
    """

    observation_space = spaces.Dict({"image": spaces.Box(0, 10, (7, 7, 3), np.uint8), "direction": spaces.Discrete(4),
                                     "mission": spaces.Box(0, 68, (40,), np.int64)})
    action_space = spaces.Discrete(7)

    def __init__(self, first_success_only: bool = False, paying: bool = True):
        self.first_success_only, self.paying, self.episodes, self.t = first_success_only, paying, 0, 0

    def _obs(self):
        image = np.ones((7, 7, 3), np.uint8)
        image[..., 2] = 0
        image[0, 0, 0] = 1 + self.t
        mission = np.zeros(40, np.int64)
        mission[0] = 5
        return {"image": image, "direction": 0, "mission": mission}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        done = self.t == 3
        paid = done and self.paying and (not self.first_success_only or self.episodes == 0)
        self.episodes += done
        return self._obs(), float(paid), done, False, {"success": paid}


class Run:
    """The run services a learner needs, minus TensorBoard and checkpoints."""

    def __init__(self):
        self.state, self.episodes = RunState(), []

    def on_step(self, num_timesteps, episodes=()):
        self.episodes += list(episodes)
        return True

    def on_update(self, num_timesteps, metrics=None, log=True):
        return True

    def log_image(self, tag, image):
        pass


def learner(n_envs: int = 2, first_success_only: bool = False, **hyperparams) -> Dreamer:
    made = []  # with first_success_only, only the first env's first episode pays

    def make() -> gym.Env:
        made.append(None)
        return SuccessInfo(Countdown(first_success_only, paying=len(made) == 1 or not first_success_only))

    venv = make_vec_env(make, n_envs=n_envs, seed=0)
    config = TrainConfig(algo="dreamer", env=EMPTY, n_envs=n_envs, device="cpu", progress=False,
                         hyperparams={**TINY, **hyperparams})
    return Dreamer(config, training=True, env=venv)


def test_b_replay_keeps_a_success_seen_once():
    agent = learner(n_envs=4, first_success_only=True, prefill=10**9, replay_capacity=10_000)  # collect only
    run = Run()
    agent.learn(4000, run)
    assert sum(e.success for e in run.episodes) == 1 and len(run.episodes) > 1000
    gen = torch.Generator().manual_seed(0)
    hits = sum(int((agent.replay.sample(8, 8, generator=gen)["reward"] > 0).any()) for _ in range(300))
    # 4000 steps later the one success is still replayed, about as often as uniform sampling says (8 of ~4000 starts)
    assert 0.1 * 300 * 8 * 8 / 4000 < hits, hits


@pytest.mark.training
def test_c_imagined_rollouts_contain_the_rewards_of_real_episode_ends():
    torch.manual_seed(0)
    agent = learner(prefill=100, train_ratio=32.0, world_model={"lr": 3e-3})
    agent.learn(400, Run())  # 150 updates
    batch = agent.replay.sample(64, 8, generator=torch.Generator().manual_seed(1))
    step = batch["image"][..., 0, 0, 0].long() - 1
    ends = batch["terminated"]
    assert bool((batch["reward"][ends] == 1).all()) and bool((step[ends] == 3).all())  # real last observation, rewarded
    after = torch.zeros_like(ends)
    after[:, 1:] = ends[:, :-1]
    assert bool(batch["is_first"][after].all()) and not bool(batch["is_first"][ends].any())  # first after the end, not on it
    with torch.no_grad():
        agent.model.eval()
        states, _ = agent.model.observe(batch)
        two_before = (step == 1) & ~batch["is_first"].roll(-1, 1)
        start = states[two_before]
        imagined = agent.model.imagine(start, torch.zeros(start.deter.shape[0], 2, dtype=torch.long))
    reward, cont = imagined.predictions.reward, imagined.predictions.cont_prob
    assert float(reward[:, 1].mean()) > 0.7 and float(reward[:, 0].abs().mean()) < 0.3  # paid on the real end, 2 steps on
    assert float(cont[:, 1].mean()) < 0.3 and float(cont[:, 0].mean()) > 0.7


def test_an_update_filters_its_batch_once_and_imagines_from_the_states_of_its_loss():
    """DreamerV3's way: the actor-critic starts from the posterior states of the world model's loss pass (the
    parameters before the step), detached; the batch is not filtered a second time."""
    torch.manual_seed(0)
    agent = learner(prefill=10**9)
    agent.learn(200, Run())  # collect only
    before, sampler, rng = copy.deepcopy(agent.model), agent.generator.get_state(), torch.get_rng_state()
    observed, starts = [], []
    observe, update = agent.model.observe, agent.ac.update
    agent.model.observe = lambda batch, *a, **k: observed.append(1) or observe(batch, *a, **k)
    agent.ac.update = lambda model, start, cont, generator=None: starts.append(start) or update(model, start, cont, generator)
    agent._update()
    assert len(observed) == 1 and len(starts) == 1
    batch = agent.replay.sample(8, 8, generator=torch.Generator().set_state(sampler))
    torch.set_rng_state(rng)
    want = before.train().observe(batch)[0].reshape(64)
    got = starts[0]
    assert torch.equal(got.deter, want.deter) and torch.equal(got.stoch, want.stoch) and torch.equal(got.logits, want.logits)
    assert not (got.deter.requires_grad or got.stoch.requires_grad)
    assert not all(torch.equal(p, q) for p, q in zip(before.parameters(), agent.model.parameters()))  # the step came after


# ---- a tiny run: train, save, resume to the same total, evaluate ------------------------------------

def test_tiny_dreamer_run_trains_resumes_and_evaluates(tmp_path, capsys):
    hp = {**TINY, "prefill": 100, "train_ratio": 8.0, "log_every": 100, "openloop_every": 50}
    config = TrainConfig(algo="dreamer", env=EMPTY, env_kwargs={"max_steps": 20}, steps=200, n_envs=2, device="cpu", progress=False,
                         run_dir=str(tmp_path / "run"), eval=EvalConfig(freq=0), checkpoint_freq=100, hyperparams=hp)
    first = train(config)
    run = RunDir(first.run_dir)
    assert first.num_timesteps == 200 and first.stop_reason is None
    saved = read_checkpoint(run.latest)
    assert saved.learner == "dreamer" and saved.state["counters"]["updates"] > 0
    assert {"model", "actor", "critic"} <= set(saved.state["optimizers"])
    replay = saved.state["replay"]  # kept by default: its filled part, about 100 steps a stream of 5,000
    assert replay["data.image"].shape[1] == int(replay["size"].max()) < 200
    events = EventAccumulator(str(run.tb), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert {"rollout/success_rate", "time/sps", "world_model/obs", "world_model/cell_accuracy", "train/actor_entropy",
            "train/return_scale", "train/imagined_return", "openloop/cell_accuracy"} <= set(events.Tags()["scalars"])
    assert "openloop/prediction" in events.Tags()["images"]
    capsys.readouterr()
    second = train(resume_config(run.root, steps=300), resume=True)
    assert second.num_timesteps == 300 and read_checkpoint(run.latest).num_timesteps == 300
    assert read_checkpoint(run.latest).state["counters"]["updates"] > saved.state["counters"]["updates"]
    assert "without a replay" not in capsys.readouterr().err
    model, saved_config = load_world_model(str(run.root), "cpu")  # what wm evaluate and a dream env need
    assert saved_config.algo == "dreamer" and not model.training
    assert torch.equal(next(model.parameters()), next(iter(read_checkpoint(run.latest).state["model"].values())))
    assert main(["evaluate", str(run.root), "--episodes", "2", "--n-envs", "2", "--device", "cpu"]) == 0
    doc = json.loads((run.eval / "results.json").read_text())
    assert 0.0 <= doc["runs"][0]["metrics"]["id"]["success_rate"] <= 1.0


def test_bad_hyperparams_name_the_key():
    with pytest.raises(ConfigError, match="hyperparams.trian_ratio"):
        Dreamer(TrainConfig(algo="dreamer", env=EMPTY, device="cpu", hyperparams={"trian_ratio": 4}), training=False)
    with pytest.raises(ConfigError, match="hyperparams.model"):
        Dreamer(TrainConfig(algo="dreamer", env=EMPTY, device="cpu", hyperparams={"model": "lstm"}), training=False)


def test_a_non_finite_loss_stops_the_run_and_keeps_the_checkpoint_before_it(tmp_path, monkeypatch, capsys):
    hp = {**TINY, "prefill": 100, "train_ratio": 8.0}
    config = TrainConfig(algo="dreamer", env=EMPTY, steps=400, n_envs=2, device="cpu", progress=False,
                         run_dir=str(tmp_path / "run"), eval=EvalConfig(freq=0), checkpoint_freq=100, hyperparams=hp)
    update = Dreamer._update

    def poisoned(self):
        if self.num_timesteps >= 250:
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return update(self)

    monkeypatch.setattr(Dreamer, "_update", poisoned)
    result = train(config)
    assert result.stop_reason == "nan" and result.num_timesteps < 400
    assert "world-model loss is nan" in capsys.readouterr().err
    kept = read_checkpoint(RunDir(result.run_dir).latest)
    assert 100 <= kept.num_timesteps < 250 and all(torch.isfinite(t).all() for t in kept.state["model"].values())


def test_a_resume_without_a_replay_says_so_and_what_it_costs(tmp_path, capsys):
    hp = {**TINY, "prefill": 60, "train_ratio": 4.0, "save_replay": False}
    config = TrainConfig(algo="dreamer", env=EMPTY, env_kwargs={"max_steps": 20}, steps=80, n_envs=2, device="cpu", progress=False,
                         run_dir=str(tmp_path / "run"), eval=EvalConfig(freq=0), checkpoint_freq=0, hyperparams=hp)
    first = train(config)
    assert "replay" not in read_checkpoint(RunDir(first.run_dir).latest).state
    updates = read_checkpoint(RunDir(first.run_dir).latest).state["counters"]["updates"]
    capsys.readouterr()
    train(resume_config(first.run_dir, steps=160), resume=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dreamer: resumed at step 80 without a replay (hyperparams.save_replay was false): "
                   "60 environment steps are collected again before training goes on"]  # max(prefill, n_envs x seq_len)
    assert read_checkpoint(RunDir(first.run_dir).latest).state["counters"]["updates"] > updates


def test_a_run_shorter_than_openloop_every_still_logs_its_open_loop_image(tmp_path):
    hp = {**TINY, "prefill": 32, "train_ratio": 4.0, "log_every": 16, "openloop_every": 10**6}
    config = TrainConfig(algo="dreamer", env=EMPTY, env_kwargs={"max_steps": 20}, steps=64, n_envs=2, device="cpu",
                         progress=False, run_dir=str(tmp_path / "run"), eval=EvalConfig(freq=0), hyperparams=hp)
    train(config)
    events = EventAccumulator(str(RunDir(tmp_path / "run").tb), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert [e.step for e in events.Images("openloop/prediction")] == [64]  # drawn once, at the end

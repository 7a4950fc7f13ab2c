"""Imitation learners: BC learns from demonstrations, DAgger's labels are the oracle's, the expert demonstrates failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from shiftgrid.agents.evaluation.baselines import RandomAgent, ScriptedAgent
from shiftgrid.agents.evaluation.episodes import run_episodes
from shiftgrid.agents.evaluation.report import scalars
from shiftgrid.agents.imitation.datasets import DatasetError, write_demos
from shiftgrid.agents.run.config import ConfigError, EvalConfig, TrainConfig
from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.train import train

ENV = "shiftgrid/GoTo-v1"
#: A small GoTo: one distractor, a short episode limit (so chance is low), a small network (so tests are quick).
KW = {"size": 6, "num_distractors": 1, "max_steps": 16}
SMALL = {"channels": 16, "text_dim": 16, "word_dim": 16, "features_dim": 64}


def config(tmp_path, algo, name="run", **kw):
    base = dict(algo=algo, env=ENV, env_kwargs=KW, extractor=SMALL, device="cpu", progress=False, n_envs=2,
                run_dir=str(tmp_path / name), eval=EvalConfig(freq=0))
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    return write_demos(tmp_path_factory.mktemp("demos") / "goto", ENV, episodes=100, seed=0, env_kwargs=KW)


@pytest.fixture(scope="module")
def bc_run(demos, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bc")
    cfg = config(tmp, "bc", demos=str(demos), steps=150 * 64, hyperparams={"batch_size": 64, "learning_rate": 2e-3})
    return train(cfg)


def test_bc_learns_a_small_task_from_a_few_demonstrations(bc_run):
    from shiftgrid.agents.run.checkpoint import load_agent

    agent, _ = load_agent(bc_run.run_dir, "cpu")
    held_out = 10**6  # training-split levels the 100 demonstrations (seeds 0-99) did not show
    bc = np.mean([r.success for r in run_episodes(agent, ENV, "train", 100, seed=held_out, env_kwargs=KW)])
    chance = np.mean([r.success for r in run_episodes(RandomAgent(spaces.Discrete(7), seed=0), ENV, "train", 100,
                                                      seed=held_out, env_kwargs=KW)])
    assert bc >= 0.3 and bc >= 2 * chance, (bc, chance)


def test_bc_reports_the_teachers_cost(bc_run, demos):
    from shiftgrid.agents.imitation.datasets import open_dataset

    cost = json.loads((RunDir(bc_run.run_dir).teacher / "cost.json").read_text())
    dataset = open_dataset(demos)
    assert cost == {"demo_episodes": 100.0, "demo_steps": float(dataset.total_steps)}
    assert bc_run.num_timesteps == 150 * 64  # transitions learned from
    from shiftgrid.agents.evaluation.report import learning_curve

    tb = RunDir(bc_run.run_dir).tb
    assert learning_curve(tb, "teacher/demo_steps")[-1][1] == dataset.total_steps


@pytest.mark.parametrize("memory", [False, True])
def test_bc_resumes_where_it_stopped(demos, tmp_path, memory):
    from shiftgrid.agents.imitation.bc import BCLearner

    small = {"batch_size": 64, "memory": memory}
    straight = train(config(tmp_path, "bc", name="straight", demos=str(demos), steps=12 * 64, hyperparams=small))
    half = config(tmp_path, "bc", name="half", demos=str(demos), steps=5 * 64, hyperparams=small)  # inside the first pass
    if memory:  # after 5 minibatches of whole episodes
        half.steps = int(sum(m.sum() for _, _, m in list(BCLearner(half, training=True).episode_batches(0))[:5]))
    train(half)
    half.steps = 12 * 64
    resumed = train(half, resume=True)
    assert resumed.num_timesteps == straight.num_timesteps == 12 * 64
    a = torch.load(RunDir(straight.run_dir).latest, weights_only=True)["state"]["policy"]
    b = torch.load(RunDir(resumed.run_dir).latest, weights_only=True)["state"]["policy"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same minibatches, in the same order, from the same state


def test_init_from_starts_ppo_from_the_cloned_weights(bc_run, tmp_path):
    from shiftgrid.agents.run.checkpoint import find_checkpoint, read_checkpoint

    cloned = read_checkpoint(find_checkpoint(bc_run.run_dir)).state["policy"]
    seen = []

    def first_rollout(run):  # before PPO's first update, its policy is the cloned one
        if not seen:
            seen.append({k: v.clone() for k, v in run.learner.model.policy.state_dict().items()})

    cfg = config(tmp_path, "ppo", init_from=str(bc_run.run_dir), steps=64,
                 hyperparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1})
    train(cfg, hooks=[first_rollout])
    assert seen and seen[0].keys() == cloned.keys()
    assert all(torch.equal(seen[0][k], cloned[k]) for k in cloned)
    cost = json.loads((RunDir(cfg.run_dir).teacher / "cost.json").read_text())
    assert cost["init_demo_episodes"] == 100.0  # the demonstrations behind the cloned policy count here too


def test_init_from_refuses_another_network(bc_run, tmp_path):
    from shiftgrid.agents.run.checkpoint import CheckpointError

    cfg = config(tmp_path, "ppo", init_from=str(bc_run.run_dir), steps=64, extractor={},
                 hyperparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1})
    with pytest.raises(CheckpointError, match="does not fit this learner's network"):
        train(cfg)


def test_the_readmes_bc_then_ppo_init_from_works_through_the_cli_with_the_presets(demos, tmp_path, capsys):
    """bc trains PPO's network as PPO's presets shape it, so `train --algo ppo --init-from runs/bc` needs no flags."""
    from shiftgrid.scripts.cli import main

    common = ["--env", ENV, "--device", "cpu", "--n-envs", "2", "--no-progress", "--set", f"env_kwargs={json.dumps(KW)}",
              "--set", f"extractor={json.dumps(SMALL)}", "--set", "eval.freq=0"]
    bc = tmp_path / "bc"
    assert main(["train", "--algo", "bc", "--demos", str(demos), "--steps", "128", "--run-dir", str(bc), *common,
                 "--set", "hyperparams.batch_size=64"]) == 0
    ppo = tmp_path / "ppo"
    assert main(["train", "--algo", "ppo", "--init-from", str(bc), "--steps", "64", "--run-dir", str(ppo), *common,
                 "--set", "hyperparams={n_steps: 32, batch_size: 32, n_epochs: 1}"]) == 0, capsys.readouterr().err
    import yaml

    assert yaml.safe_load((bc / "config.yaml").read_text())["policy"] == yaml.safe_load((ppo / "config.yaml").read_text())["policy"]
    capsys.readouterr()
    assert main(["train", "--algo", "ppo", "--init-from", str(bc), "--steps", "64", "--run-dir", str(tmp_path / "other"),
                 *common, "--set", "policy.net_arch={pi: [8], vf: [8]}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'its network was policy={"net_arch":{"pi":[64],"vf":[64]}' in err, err
    assert err.endswith(": give the same with --set")


def test_dagger_labels_are_the_oracles_optimal_actions(tmp_path):
    import gymnasium as gym

    from shiftgrid.agents.imitation.dagger import DaggerLearner
    from shiftgrid.envs.oracle import solve_from

    cfg = config(tmp_path, "dagger", n_envs=1, steps=40, hyperparams={"rollout_steps": 40, "updates": 0, "beta": 0.0})
    result = train(cfg)
    learner = DaggerLearner(cfg, training=False)
    learner.load_state_dict(torch.load(RunDir(result.run_dir).latest, weights_only=True)["state"])
    obs, labels, _ = learner.data.batch(np.arange(len(learner.data)))
    assert len(labels) == 40 and learner.teacher["labels"] == 40 and learner.teacher["teacher_steps"] == 0
    # replay the learner's own trajectory (beta 0: it acted alone, with the weights it ended with) against the oracle
    env = gym.make(ENV, split="train", **KW)
    raw, _ = env.reset(seed=cfg.seed)
    strayed = 0
    for t in range(40):
        np.testing.assert_array_equal(raw["image"], obs["image"][t])
        assert labels[t] == solve_from(env).actions[0]
        action = int(learner.predict({k: v[t:t + 1] for k, v in obs.items()}, deterministic=True)[0][0])
        strayed += action != labels[t]
        raw, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            raw, _ = env.reset()
    assert strayed > 0  # the labels were given on states off the teacher's own path


def test_dagger_mixing_lets_the_teacher_act(tmp_path):
    cfg = config(tmp_path, "dagger", n_envs=2, steps=64, hyperparams={"rollout_steps": 32, "updates": 1, "beta": 1.0})
    result = train(cfg)
    cost = json.loads((RunDir(result.run_dir).teacher / "cost.json").read_text())
    assert cost == {"labels": 64.0, "teacher_steps": 64.0}  # beta 1: every labelled step was the teacher's
    mixture = scalars(RunDir(result.run_dir).tb, ["train/mixture_success"])["train/mixture_success"]
    assert result.num_timesteps == 64 and [v for _, v, _ in mixture] == [1.0]  # the oracle acting alone succeeds


@pytest.mark.parametrize("beta", [1.0, 0.0])
def test_dagger_reports_the_learners_own_success_not_the_mixtures(tmp_path, monkeypatch, beta):
    from shiftgrid.agents.imitation.dagger import DaggerLearner

    # a learner that always answers "done", an action the oracle never takes on GoTo
    monkeypatch.setattr(DaggerLearner, "predict", lambda self, obs, *a, **k: (np.full(len(obs["direction"]), 6), None))
    cfg = config(tmp_path, "dagger", n_envs=2, steps=64, hyperparams={"rollout_steps": 32, "updates": 1, "beta": beta,
                                                                       "beta_decay": 1.0})
    result = train(cfg)
    tb = scalars(RunDir(result.run_dir).tb, ["train/mixture_success", "rollout/success_rate"])
    mixture, own = [v for _, v, _ in tb["train/mixture_success"]], [v for _, v, _ in tb["rollout/success_rate"]]
    if beta == 1.0:  # the teacher acted in every episode: it succeeded, and none of those episodes was the learner's
        assert mixture == [1.0] and own == [] and result.success is None
    else:  # the learner acted alone: its own failures are what is reported
        assert mixture == [0.0] and own == [0.0] and result.success == 0.0


def test_dagger_ends_at_its_steps(tmp_path):
    result = train(config(tmp_path, "dagger", n_envs=2, steps=50, hyperparams={"rollout_steps": 32, "updates": 1}))
    assert result.num_timesteps == 50  # a rollout of 25 steps in each of 2 envs, not a whole one of 32


def test_expert_starts_no_episode_once_its_steps_are_taken(tmp_path):
    cfg = config(tmp_path, "expert", steps=120, eval=EvalConfig(freq=0, n_envs=2),
                 hyperparams={"initial_demos": 5, "probe_episodes": 40, "epochs": 1})  # 40 probes could take 640 steps
    result = train(cfg)
    state = torch.load(RunDir(result.run_dir).latest, weights_only=True)["state"]
    assert 120 <= result.num_timesteps <= 120 + 2 * KW["max_steps"]  # at most the 2 episodes under way finish past it
    assert state["counters"]["rounds"] >= 1 and state["counters"]["updates"] > 0


def test_expert_demonstrates_exactly_the_failed_missions(tmp_path):
    from shiftgrid.agents.imitation.expert import PROBE_SEED, ExpertLearner

    learner = ExpertLearner(config(tmp_path, "expert", hyperparams={"probe_episodes": 30}), training=True)
    fake = ScriptedAgent([2, 2], fallback=0)  # forward twice, then spin: succeeds on some levels only
    first = learner.teach(fake)
    again = run_episodes(fake, ENV, "train", 30, seed=PROBE_SEED, env_kwargs=KW)  # the same levels, independently
    failed = [PROBE_SEED + i for i, r in enumerate(again) if not r.success]
    assert 0 < len(failed) < 30
    assert first.failed_seeds == failed and [d.seed for d in first.demos] == failed
    assert first.probes == again  # probed on the engine: the minigrid env's episodes
    hashes = {PROBE_SEED + i: r.level_hash for i, r in enumerate(again)}
    assert all(d.success and d.level_hash == hashes[d.seed] for d in first.demos)
    second = learner.teach(fake)
    assert min(second.seeds) == PROBE_SEED + 30  # each round probes fresh levels


def test_expert_run_counts_every_environment_step(tmp_path):
    cfg = config(tmp_path, "expert", steps=60, hyperparams={"initial_demos": 5, "probe_episodes": 4, "epochs": 1})
    result = train(cfg)
    state = torch.load(RunDir(result.run_dir).latest, weights_only=True)["state"]
    cost = state["teacher"]
    assert cost["demo_episodes"] >= 5 and state["counters"]["rounds"] >= 1
    assert result.num_timesteps >= 60 and result.num_timesteps > cost["demo_steps"]  # probes and demos both count


def test_bad_settings(tmp_path, demos):
    with pytest.raises(ConfigError, match="give --demos DIR"):
        train(config(tmp_path, "bc", name="a", steps=64))
    with pytest.raises(ConfigError, match="unknown config key hyperparams.lr"):
        train(config(tmp_path, "bc", name="b", demos=str(demos), steps=64, hyperparams={"lr": 0.1}))
    with pytest.raises(DatasetError, match="not shiftgrid/Pickup-v1"):
        train(config(tmp_path, "bc", name="c", demos=str(demos), steps=64, env="shiftgrid/Pickup-v1"))
    with pytest.raises(DatasetError, match="recorded with env kwargs"):
        train(config(tmp_path, "bc", name="d", demos=str(demos), steps=64, env_kwargs={}))
    with pytest.raises(DatasetError, match="not split 'size/far'"):  # held-out levels never train
        train(config(tmp_path, "bc", name="e", demos=str(demos), steps=64, split="size/far"))
    with pytest.raises(ConfigError, match="beta and beta_decay in"):
        train(config(tmp_path, "dagger", name="f", steps=64, hyperparams={"beta": 2.0}))
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_the_steps_of_a_failed_teacher_demonstration_are_counted(tmp_path):
    from types import SimpleNamespace

    from shiftgrid.agents.imitation.expert import ExpertLearner

    learner = ExpertLearner(config(tmp_path, "expert", hyperparams={"probe_episodes": 3}), training=True)
    learner.teacher_model = SimpleNamespace(act=lambda env: 0)  # a teacher that only turns left fails every level
    round_ = learner.teach(ScriptedAgent([], fallback=0))  # so does the learner: all 3 probes are failed missions
    assert round_.demos == [] and learner.failed_steps > 0
    wasted, before = learner.failed_steps, learner.num_timesteps
    reported = {}
    learner._add(SimpleNamespace(teacher_cost=lambda **cost: reported.update(cost)), round_.demos)
    assert learner.num_timesteps == before + wasted and learner.failed_steps == 0
    assert reported["failed_demo_steps"] == wasted and reported["demo_episodes"] == 0


def test_bcs_defaults_are_the_imitation_benchmarks_settings():
    """`shiftgrid train --algo bc` with no flags trains as the benchmark's rows did: 2,000 updates of 256 at 1e-3."""
    import inspect

    from shiftgrid.agents.benchmarks.imitation import measure
    from shiftgrid.agents.run.presets import presets

    bench = inspect.signature(measure).parameters
    preset = presets("bc", "shiftgrid/GoTo-v1")
    assert preset["steps"] == bench["updates"].default * bench["batch_size"].default
    assert preset["hyperparams"] == {"batch_size": bench["batch_size"].default, "learning_rate": bench["learning_rate"].default}


def test_bc_max_demos_clones_the_datasets_first_demonstrations(demos, tmp_path):
    from shiftgrid.agents.imitation.datasets import open_dataset

    run = train(config(tmp_path, "bc", name="first30", demos=str(demos), steps=64, hyperparams={"max_demos": 30}))
    cost = json.loads((RunDir(run.run_dir).teacher / "cost.json").read_text())
    lengths = [len(e.actions) for e in open_dataset(demos).iterate_episodes()]
    assert cost == {"demo_episodes": 30.0, "demo_steps": float(sum(lengths[:30]))}
    with pytest.raises(ConfigError, match="max_demos is 101, but the dataset .* holds 100"):
        train(config(tmp_path, "bc", name="too-many", demos=str(demos), steps=64, hyperparams={"max_demos": 101}))
    with pytest.raises(ConfigError, match="max_demos must be >= 1"):
        train(config(tmp_path, "bc", name="none", demos=str(demos), steps=64, hyperparams={"max_demos": 0}))


@pytest.fixture(scope="module")
def memory_run(demos, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bc-memory")
    cfg = config(tmp, "bc", demos=str(demos), steps=150 * 64 + 5,  # not a whole minibatch: the last one is cut short
                 hyperparams={"batch_size": 64, "learning_rate": 2e-3, "memory": True})
    return train(cfg)


def test_bc_with_memory_learns_and_acts_with_its_memory(memory_run):
    from shiftgrid.agents.run.checkpoint import load_agent

    assert memory_run.num_timesteps == 150 * 64 + 5  # exactly the steps given, the last episodes cut to fit
    agent, _ = load_agent(memory_run.run_dir, "cpu")
    assert agent.model.policy.lstm_actor is not None
    held_out = 10**6
    scored = run_episodes(agent, ENV, "train", 100, seed=held_out, env_kwargs=KW)
    chance = np.mean([r.success for r in run_episodes(RandomAgent(spaces.Discrete(7), seed=0), ENV, "train", 100,
                                                      seed=held_out, env_kwargs=KW)])
    success = np.mean([r.success for r in scored])
    assert success >= 0.3 and success >= 2 * chance, (success, chance)


def test_bc_with_memory_learns_each_step_as_the_policy_acts_on_it_step_by_step(memory_run, demos):
    """A minibatch of padded episodes gives every step the distribution the policy gives it acting from the episode's start."""
    from shiftgrid.agents.imitation.bc import BCLearner

    cfg = config(memory_run.run_dir.parent, "bc", name="probe", demos=str(demos), steps=64,
                 hyperparams={"batch_size": 20, "memory": True, "max_demos": 12})
    learner = BCLearner(cfg, training=True)
    indices, episodes, mask = next(iter(learner.episode_batches(0)))
    assert episodes > 1 and not mask.all()  # several episodes of different lengths, padded
    policy = learner.policy
    obs, actions, _ = learner.data.batch(indices)
    with torch.no_grad():
        together = learner._forward_sequences(policy.obs_to_tensor(obs)[0], episodes)[0].distribution.probs
        width = len(indices) // episodes
        for e in range(episodes):
            zeros = torch.zeros(policy.lstm_actor.num_layers, 1, policy.lstm_actor.hidden_size)
            state = (zeros, zeros.clone())
            for t in range(width):
                if not mask[e * width + t]:
                    continue
                one = {k: v[e * width + t:e * width + t + 1] for k, v in obs.items()}
                dist, state = policy.get_distribution(policy.obs_to_tensor(one)[0], state, torch.zeros(1))
                assert torch.allclose(dist.distribution.probs[0], together[e * width + t], atol=1e-5)


def test_memory_is_bcs_alone(tmp_path):
    with pytest.raises(ConfigError, match="memory"):
        train(config(tmp_path, "dagger", steps=64, hyperparams={"memory": True}))


def test_init_from_a_bc_run_with_memory_starts_recurrent_ppo_from_its_weights(memory_run, tmp_path):
    from shiftgrid.agents.run.checkpoint import find_checkpoint, read_checkpoint

    cloned = read_checkpoint(find_checkpoint(memory_run.run_dir)).state["policy"]
    seen = []

    def first_rollout(run):
        if not seen:
            seen.append({k: v.clone() for k, v in run.learner.model.policy.state_dict().items()})

    cfg = config(tmp_path, "recurrent-ppo", init_from=str(memory_run.run_dir), steps=64,
                 hyperparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1})
    train(cfg, hooks=[first_rollout])
    assert seen and seen[0].keys() == cloned.keys() and all(torch.equal(seen[0][k], cloned[k]) for k in cloned)

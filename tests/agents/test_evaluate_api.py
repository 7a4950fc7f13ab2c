"""evaluate_policy: a policy written in a few lines, scored like `shiftgrid evaluate` scores a run."""

import json

import gymnasium as gym
import numpy as np
import pytest
from minigrid.wrappers import ImgObsWrapper

import shiftgrid.agents.evaluation.episodes as evaluation
from shiftgrid.agents import Evaluation, PolicyError, evaluate_policy
from shiftgrid.envs import SplitError, UnknownEnvError
from shiftgrid.envs.learner_env import make_env

GOTO = "shiftgrid/GoTo-v1"
FORWARD, LEFT = 2, 0


def forward(obs):
    """Always move forward: one action per row of the batch."""
    return np.full(len(obs["image"]), FORWARD)


def wall_follower(obs):
    """Forward unless the cell ahead (view centre column, one row up) is a wall, then turn left."""
    ahead = obs["image"][:, 3, 5, 0]  # object index of the cell in front of the agent
    return np.where(ahead == 2, LEFT, FORWARD)


def test_a_function_policy_gives_per_split_results_and_report_files(tmp_path):
    ev = evaluate_policy(wall_follower, GOTO, ["id", "size/far"], episodes=3, out=tmp_path)
    assert isinstance(ev, Evaluation) and list(ev.results) == ["id", "size/far"]
    assert all(len(eps) == 3 and all(e.length >= 1 and e.optimal_return > 0 for e in eps) for eps in ev.results.values())
    assert {p.name for p in ev.paths.values()} == {"results.json", "results.csv", "results.md", "shift_success_rate.png",
                                                   "shift_optimality_ratio.png"}
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["meta"]["evaluation reset seeds"] == "0..2 on every split" and doc["meta"]["env kwargs"] == "none"
    hashes = [e["level_hash"] for e in doc["runs"][0]["episodes"]["id"]]
    assert hashes == [e.level_hash for e in ev.results["id"]]
    md = (tmp_path / "results.md").read_text()
    assert "## size" in md and "| far (`size/far`) |" in md and "- observation wrapper: tokens" in md


def test_same_reset_seeds_as_the_cli_and_nothing_written_without_out(tmp_path):
    ev = evaluate_policy(forward, GOTO, "id", episodes=2, seed=5)
    assert ev.paths == {} and not list(tmp_path.iterdir())
    expected = []
    for s in (5, 6):
        _, info = make_env(GOTO, "id").reset(seed=s)
        expected.append(info["level_hash"])
    assert [e.level_hash for e in ev.results["id"]] == expected


def test_a_mapping_of_seeds_is_summarised_with_iqm_and_intervals(tmp_path):
    ev = evaluate_policy({0: forward, 1: wall_follower}, GOTO, ["id", "size/near"], episodes=4, out=tmp_path)
    assert [r.name for r in ev.runs] == ["0", "1"] and [r.seed for r in ev.runs] == [0, 1]
    with pytest.raises(ValueError, match="2 runs"):
        ev.results
    length = ev.summary.splits["id"]["mean_length"]
    per_run = [np.mean([e.length for e in r.results["id"]]) for r in ev.runs]
    assert length.n_runs == 2 and length.per_run == pytest.approx(per_run)
    assert min(per_run) <= length.low <= length.iqm <= length.high <= max(per_run)
    assert ev.summary.axes["size"]["near"]["success_rate"].n_runs == 2
    md = (tmp_path / "results.md").read_text()
    assert "- runs (2): 0 (seed 0), 1 (seed 1)" in md and "| `id` |" in md


def test_the_same_object_twice_is_flagged_as_not_independent(tmp_path):
    with pytest.warns(UserWarning, match="not independent"):
        ev = evaluate_policy([forward, forward], GOTO, "id", episodes=1)
    assert "policy0 and policy1" in ev.meta["warning: not independent"]


def test_env_kwargs_make_the_evaluation_envs_and_are_reported(tmp_path):
    widths = []

    def seen(env):
        widths.append(env.unwrapped.width)
        return ImgObsWrapper(env)

    ev = evaluate_policy(lambda img: np.full(len(img), FORWARD), GOTO, ["id", "size/far"], episodes=2,
                         wrapper=seen, env_kwargs={"size": 9}, out=tmp_path)
    assert widths and set(widths) == {9}
    assert ev.meta["env kwargs"].startswith("size=9")
    assert "- env kwargs: size=9" in (tmp_path / "results.md").read_text()
    plain = evaluate_policy(forward, GOTO, ["size/far"], episodes=2)
    assert [e.level_hash for e in plain.results["size/far"]] != [e.level_hash for e in ev.results["size/far"]]


@pytest.mark.parametrize("wrapper, shape", [("image", (7, 7, 3)), ("flat", None), (ImgObsWrapper, (7, 7, 3)),
                                            ("minigrid.wrappers:ImgObsWrapper", (7, 7, 3))])
def test_observation_wrappers_decide_what_the_policy_sees(wrapper, shape):
    shapes = set()

    def policy(obs):
        shapes.add(obs.shape[1:])
        return np.full(len(obs), FORWARD)

    ev = evaluate_policy(policy, GOTO, "id", episodes=2, wrapper=wrapper, n_envs=2)
    assert len(ev.results["id"]) == 2 and len(shapes) == 1
    (seen,) = shapes
    assert seen == shape if shape else len(seen) == 1 and seen[0] > 7 * 7 * 3
    assert ev.meta["observation wrapper"].endswith("ObsWrapper")


def test_recurrent_predict_objects_get_state_and_episode_start():
    calls = []

    class Counter:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            state = np.zeros(len(episode_start)) if state is None else state
            state = np.where(episode_start, 0, state + 1)
            calls.append((state.copy(), deterministic))
            return np.full(len(state), FORWARD), state

    evaluate_policy(Counter(), GOTO, "id", episodes=3, n_envs=1, deterministic=False, backend="minigrid")
    assert calls[0][0].tolist() == [0] and calls[1][0].tolist() == [1] and {d for _, d in calls} == {False}
    assert sum(1 for s, _ in calls if s[0] == 0) == 3  # memory reset at each of the 3 episode starts
    calls.clear()
    evaluate_policy(Counter(), GOTO, "id", episodes=3, n_envs=1, deterministic=False, backend="engine")
    assert calls[0][0].tolist() == [0, 0, 0] and {d for _, d in calls} == {False}  # the engine starts all 3 at once
    assert all((s > 0).all() for s, _ in calls[1:])  # and never restarts one


@pytest.mark.parametrize("policy, message", [
    (42, "must have SB3's predict"),
    (lambda obs: np.full((len(obs["image"]), 2), FORWARD), r"returned an array of shape \(1, 2\) \(int64\) .* expected .*\(shape \(1,\)\) of Discrete\(7\)"),
    (lambda obs: np.full(len(obs["image"]), 7), r"returned action 7 .* valid actions: Discrete\(7\) \(integers 0..6\)"),
    (lambda obs: np.full(len(obs["image"]), 2.0), r"returned action 2.0"),
    (lambda obs: "forward", r"returned str 'forward'"),
])
def test_bad_policies_are_refused_naming_what_they_returned(policy, message):
    error = TypeError if policy == 42 else PolicyError
    with pytest.raises(error, match=message):
        evaluate_policy(policy, GOTO, "id", episodes=1)


def test_unknown_env_split_and_wrapper_are_refused_with_the_valid_ones():
    with pytest.raises(UnknownEnvError, match="unknown environment id"):
        evaluate_policy(forward, "shiftgrid/Nope-v0", "id", episodes=1)
    with pytest.raises(SplitError, match="size/far"):
        evaluate_policy(forward, GOTO, ["size/huge"], episodes=1)
    with pytest.raises(ValueError, match="valid: tokens, image, flat"):
        evaluate_policy(forward, GOTO, "id", episodes=1, wrapper="pixels")
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate_policy(forward, GOTO, "id", episodes=0)


def test_a_model_whose_observation_space_differs_is_refused_with_both_spaces():
    class Model:
        observation_space = gym.spaces.Box(0, 1, (10,), np.float32)

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            raise AssertionError("never called")

    with pytest.raises(ValueError, match=r"expects observations Box\(0.0, 1.0, \(10,\), float32\), but .* gives Dict\("):
        evaluate_policy(Model(), GOTO, "id", episodes=1)


def test_run_episodes_makes_envs_with_env_kwargs(monkeypatch):
    made = []
    monkeypatch.setattr(evaluation, "make_env", lambda env_id, split, **kw: made.append(kw) or make_env(env_id, split, **kw))
    evaluation.run_episodes(evaluation_agent(), GOTO, "id", 1, env_kwargs={"size": 9})
    assert made == [{"size": 9}]


def evaluation_agent():
    from shiftgrid.agents.evaluation.policies import as_predictor

    return as_predictor(forward)


def test_training_time_validation_uses_the_runs_env_kwargs(monkeypatch, tmp_path):
    from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    from shiftgrid.agents.run.rundir import RunDir
    from shiftgrid.agents.run.services import RunServices, RunState

    made = []
    monkeypatch.setattr(evaluation, "make_env", lambda env_id, split, **kw: made.append(kw) or make_env(env_id, split, **kw))

    class Learner:
        num_timesteps = 0

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return forward(obs), None

        def state_dict(self):
            return {}

    config = TrainConfig(algo="ppo", env=GOTO, env_kwargs={"size": 9}, progress=False, checkpoint_freq=0,
                         eval=EvalConfig(freq=1, episodes=1, n_envs=1, render=False, backend="minigrid"))
    run = RunServices(config, RunDir(tmp_path), Learner(), RunState())
    run.open()
    try:
        run.evaluate()
    finally:
        run.close()
    assert made and all(kw == {"size": 9} for kw in made)  # (the engine's levels with env_kwargs: test_engine_evaluation)


def test_every_report_shows_random_and_the_best_constant_action_on_the_same_levels(tmp_path):
    from shiftgrid.agents.evaluation.baselines import RandomAgent, constant_agent

    splits = ["id", "size/near"]
    ev = evaluate_policy(wall_follower, GOTO, splits, episodes=6, seed=3, out=tmp_path)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["references"] == ev.references and doc["references"]["episodes"] == 6
    for split in splits:
        ref = doc["references"]["splits"][split]
        # the references played the evaluation's levels: each one scores what it scores when evaluated itself
        left = evaluate_policy(constant_agent(LEFT), GOTO, split, episodes=6, seed=3)
        assert ref["constant actions"]["left"] == left.summary.splits[split]["success_rate"].iqm
        assert [e.level_hash for e in left.results[split]] == [e.level_hash for e in ev.results[split]]
        rand = evaluate_policy(RandomAgent(make_env(GOTO, split).action_space, seed=3), GOTO, split, episodes=6, seed=3)
        assert ref["uniform random"]["success_rate"] == rand.summary.splits[split]["success_rate"].iqm
        best = ref["best constant action"]
        assert best["success_rate"] == max(ref["constant actions"].values()) and best["action"] in ref["constant actions"]
    md = (tmp_path / "results.md").read_text()
    assert "## References on the same levels" in md and "| split | this policy: success rate (IQM) | uniform random |" in md
    assert "- references: uniform random and the best constant action on the first 6 of the same levels" in md
    assert "constant policy" not in md and doc["runs"][0]["actions"]["constant"] is False


def test_a_nearly_constant_policy_is_warned_of_in_the_report_and_the_json(tmp_path):
    from shiftgrid.agents.evaluation.baselines import constant_agent

    ev = evaluate_policy(constant_agent(LEFT), GOTO, ["id"], episodes=4, out=tmp_path, reference_episodes=2)
    warning = ("policy took one action (left) in 100% of its steps: a (nearly) constant policy, whose scores are a "
               "constant action's")
    assert warning in ev.meta["warning: constant policy"]
    assert f"- warning: constant policy: {warning}" in (tmp_path / "results.md").read_text()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["runs"][0]["actions"]["most_common"] == "left" and doc["runs"][0]["actions"]["constant"] is True
    assert doc["references"]["episodes"] == 2 and "first 2 of the same levels" in doc["meta"]["references"]
    assert all(sum(e["action_counts"]) == e["length"] for e in doc["runs"][0]["episodes"]["id"])
    none = evaluate_policy(constant_agent(LEFT), GOTO, ["id"], episodes=2, reference_episodes=0)
    assert none.references is None and none.meta["references"] == "not measured (reference episodes 0)"
    with pytest.raises(ValueError, match="reference episodes must be in 0..2"):
        evaluate_policy(forward, GOTO, ["id"], episodes=2, reference_episodes=3)

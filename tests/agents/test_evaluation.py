"""run_episodes / evaluate_splits: exact episode counts, reset seeds, recurrent state, split bookkeeping."""

import gymnasium as gym
import pytest
from gymnasium import spaces

import shiftgrid.agents.evaluation.episodes as evaluation
from shiftgrid.agents.evaluation.baselines import RandomAgent, ScriptedAgent
from shiftgrid.agents.evaluation.episodes import (
    HELD_OUT_SEED_BASE,
    axis_layout,
    evaluate_splits,
    run_episodes,
    splits_to_evaluate,
)
from shiftgrid.envs import SplitError, UnknownEnvError
from shiftgrid.envs.learner_env import make_env

GOTO = "shiftgrid/GoTo-v1"
EMPTY = "MiniGrid-Empty-5x5-v0"


def oracle_plan(split: str, seed: int) -> tuple[tuple[int, ...], dict]:
    env = make_env(GOTO, split)
    _, info = env.reset(seed=seed)
    return env.unwrapped.optimal_actions, info


@pytest.fixture
def reset_seeds(monkeypatch):
    """Record the seed of every reset of the envs run_episodes makes."""
    seen: list[int | None] = []

    class Record(gym.Wrapper):
        def reset(self, *, seed=None, options=None):
            seen.append(seed)
            return self.env.reset(seed=seed, options=options)

    monkeypatch.setattr(evaluation, "make_env", lambda env_id, split: Record(make_env(env_id, split)))
    return seen


def test_runs_exactly_the_requested_episodes():
    results = run_episodes(RandomAgent(spaces.Discrete(7), seed=0), GOTO, "id", 5, n_envs=2)
    assert len(results) == 5
    for r in results:
        assert r.length >= 1 and 0 < r.optimal_return <= 1 and r.optimal_steps >= 1
        assert isinstance(r.level_hash, str)
        assert r.success == (r.ret > 0)


def test_scripted_oracle_plan_is_optimal():
    plan, info = oracle_plan("size/near", seed=7)
    [r] = run_episodes(ScriptedAgent(plan), GOTO, "size/near", 1, seed=7)
    assert r.success and r.length == len(plan) == info["optimal_steps"]
    assert r.ret == pytest.approx(info["optimal_return"]) and r.level_hash == info["level_hash"]


def test_episode_start_resets_recurrent_state():
    plan, info = oracle_plan("id", seed=1)  # the script fits the second episode only
    first, second = run_episodes(ScriptedAgent(plan), GOTO, "id", 2, seed=0, n_envs=1)
    assert second.success and second.length == len(plan) and second.level_hash == info["level_hash"]
    assert first.level_hash != second.level_hash


def test_results_do_not_depend_on_n_envs():
    agent = ScriptedAgent([2, 2, 1, 2, 0, 2, 2])
    one = run_episodes(agent, GOTO, "distractors/near", 5, seed=3, n_envs=1)
    three = run_episodes(agent, GOTO, "distractors/near", 5, seed=3, n_envs=3)
    assert one == three


def test_shiftgrid_reset_seeds_are_seed_plus_index(reset_seeds):
    run_episodes(RandomAgent(spaces.Discrete(7), seed=0), GOTO, "id", 5, seed=10, n_envs=2)
    assert sorted(reset_seeds) == [10, 11, 12, 13, 14]


def test_ids_without_splits_use_held_out_reset_seeds(reset_seeds):
    results = run_episodes(RandomAgent(spaces.Discrete(7), seed=0), EMPTY, None, 3, seed=2, n_envs=2)
    assert sorted(reset_seeds) == [HELD_OUT_SEED_BASE + 2 + i for i in range(3)]
    assert all(r.optimal_return is None and r.level_hash is None for r in results)


def test_episodes_must_be_positive():
    with pytest.raises(ValueError, match="episodes"):
        run_episodes(RandomAgent(spaces.Discrete(7)), GOTO, "id", 0)


def test_all_splits_evaluate_id_once_and_every_shifted_split():
    names = splits_to_evaluate(GOTO, "all")
    assert names[0] == "id" and len(names) == 11
    assert not any(n.endswith("/id") for n in names) and "train" not in names
    assert {"size/near", "size/far", "composition/far"} <= set(names)
    assert splits_to_evaluate(GOTO, ["size/id", "layout/id", "size/far"]) == ["id", "size/far"]
    assert splits_to_evaluate(EMPTY, "all") == ["id"]


def test_unknown_splits_are_refused_with_the_valid_ones():
    with pytest.raises(SplitError, match="size/far"):
        splits_to_evaluate(GOTO, ["size/huge"])
    with pytest.raises(UnknownEnvError, match="no splits"):
        splits_to_evaluate(EMPTY, ["size/far"])


def test_axis_layout_reuses_id_for_every_axis():
    layout = axis_layout(GOTO, ["id", "size/near", "size/far", "layout/far"])
    assert layout == {"size": {"id": "id", "near": "size/near", "far": "size/far"}, "layout": {"id": "id", "far": "layout/far"}}
    assert axis_layout(EMPTY, ["id"]) == {}


def test_evaluate_splits_returns_per_split_results():
    out = evaluate_splits(RandomAgent(spaces.Discrete(7), 0), GOTO, ["size/id", "size/far"], episodes=3, progress=False)
    assert list(out) == ["id", "size/far"] and [len(v) for v in out.values()] == [3, 3]
    hashes = {s: {r.level_hash for r in v} for s, v in out.items()}
    assert not hashes["id"] & hashes["size/far"]


def untrained_ppo():
    from shiftgrid.agents.run.config import TrainConfig
    from shiftgrid.agents.sb3.build import build_model
    from shiftgrid.agents.training.envs import make_vec

    config = TrainConfig(algo="ppo", n_envs=1, device="cpu", extractor={"channels": 16}, hyperparams={"n_steps": 16, "batch_size": 16})
    return build_model(config, make_vec(config))


def test_stochastic_evaluation_is_seeded_and_leaves_the_global_generator_alone():
    import torch

    agent = untrained_ppo()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = run_episodes(agent, "shiftgrid/GoTo-v1", "id", 6, seed=3, deterministic=False)
    assert torch.rand(1) == expected_next
    assert run_episodes(agent, "shiftgrid/GoTo-v1", "id", 6, seed=3, deterministic=False) == first


def test_deterministic_and_sampled_actions_differ_for_an_untrained_policy():
    # an untrained policy is close to uniform: its argmax repeats, its samples do not
    agent = untrained_ppo()
    argmax = run_episodes(agent, "shiftgrid/GoTo-v1", "id", 8, deterministic=True)
    sampled = run_episodes(agent, "shiftgrid/GoTo-v1", "id", 8, deterministic=False)
    assert [r.length for r in argmax] != [r.length for r in sampled]


def test_episodes_record_whether_the_oracle_was_exact():
    """DoorKey rules/far is slippery with objects: its optimum is a bound, and episodes say so."""
    agent = RandomAgent(spaces.Discrete(7), seed=0)
    slippery = evaluation.run_episodes(agent, "shiftgrid/DoorKey-v1", "rules/far", episodes=2, n_envs=1)
    plain = evaluation.run_episodes(agent, "shiftgrid/GoTo-v1", "id", episodes=2, n_envs=1)
    assert [r.optimal_exact for r in slippery] == [False, False]
    assert [r.optimal_exact for r in plain] == [True, True]
    minigrid = evaluation.run_episodes(agent, "MiniGrid-Empty-5x5-v0", None, episodes=1, n_envs=1)
    assert minigrid[0].optimal_exact is None


def test_rendered_episodes_use_the_runs_factor_keywords():
    from shiftgrid.agents.run.render import episode_frames

    spin = ScriptedAgent([], fallback=0)
    default = episode_frames(spin, "shiftgrid/GoTo-v1", "id")[0]
    larger = episode_frames(spin, "shiftgrid/GoTo-v1", "id", env_kwargs={"size": 12})[0]
    assert larger.shape == (12 * 8, 12 * 8, 3) and default.shape[0] < larger.shape[0]

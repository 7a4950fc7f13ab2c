"""Evaluation on the tensor engine: the minigrid env's levels and, for the same actions, the same episodes and report."""

import json

import numpy as np
import pytest
import yaml

import shiftgrid.agents.reports.runs as evaluate_runs_module
import shiftgrid.scripts.cli as cli
from shiftgrid.agents.evaluation.baselines import ScriptedAgent, measure_references
from shiftgrid.agents.evaluation.backends import EngineRefused
from shiftgrid.agents.evaluation.engine_episodes import run_engine_episodes, run_engine_panel, split_backend, split_episodes
from shiftgrid.agents.evaluation.episodes import run_episodes
from shiftgrid.agents.evaluation.policies import as_predictor
from shiftgrid.agents.evaluation.scoring import evaluate_policy
from shiftgrid.agents.run.rundir import RunDir

GOTO = "shiftgrid/GoTo-v1"
#: Actions a closed-loop test policy picks among (forward-heavy, with turns, pickup, toggle and done).
MENU = np.array([2, 2, 2, 0, 1, 2, 3, 5, 6, 2, 1])


def sees(obs):
    """A fixed closed-loop policy: the action is a hash of the whole observation (so it also checks what is seen)."""
    image = obs["image"].reshape(len(obs["image"]), -1).astype(np.int64)
    key = image @ (np.arange(image.shape[1]) % 13 + 1) + 7 * np.asarray(obs["direction"]) + obs["mission"].sum(1)
    return MENU[key % len(MENU)]


class TupleMemory:
    """A scripted policy whose memory is a tuple (the engine cannot shrink it: the batch keeps its size)."""

    def __init__(self, actions):
        self.script = ScriptedAgent(actions)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        actions, t = self.script.predict(obs, None if state is None else state[0], episode_start, deterministic)
        return actions, (t,)


def sees_and_says_so():
    """:func:`sees`, declared a function of the observation alone: the engine records its cycling episodes at once."""
    policy = as_predictor(sees)
    policy.acts_on_observation_only = True
    return policy


POLICIES = {"closed loop": lambda: as_predictor(sees), "closed loop, cycles cut": sees_and_says_so,
            "scripted": lambda: ScriptedAgent([2, 2, 1, 2, 2, 0, 2, 6]), "tuple memory": lambda: TupleMemory([2, 1, 2, 2, 6, 2])}


@pytest.mark.parametrize("env_id, split, env_kwargs", [
    (GOTO, "id", {}), (GOTO, "size/far", {}), (GOTO, "layout/far", {}), (GOTO, "observation/far", {}),
    (GOTO, "composition/far", {}), (GOTO, "id", {"size": 9, "max_steps": 30}), ("shiftgrid/DoorKey-v1", "distractors/near", {}),
    ("MiniGrid-Empty-5x5-v0", None, {}),
])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_the_engine_plays_the_minigrid_envs_levels_with_the_same_episodes(env_id, split, env_kwargs, policy):
    engine = run_engine_episodes(POLICIES[policy](), env_id, split, 40, seed=3, env_kwargs=env_kwargs)
    minigrid = run_episodes(POLICIES[policy](), env_id, split, 40, seed=3, n_envs=4, env_kwargs=env_kwargs)
    assert engine == minigrid  # success, return, length, level hash, oracle figures and action counts, episode by episode
    if split is not None:  # (MiniGrid-Empty-5x5: one layout, which these policies never solve)
        assert len({r.length for r in engine}) > 1  # episodes of different lengths: the batch shrank under way


def test_the_parity_levels_include_successes():
    results = run_engine_episodes(as_predictor(sees), GOTO, "id", 200, seed=3)
    assert 0 < sum(r.success for r in results) < 200 and all(r.level_hash for r in results)


def test_the_reports_agree(tmp_path):
    splits = ["id", "size/near", "composition/far", "observation/far"]
    paths = {backend: evaluate_policy(sees, GOTO, splits, episodes=30, seed=5, out=tmp_path / backend, backend=backend,
                                      reference_episodes=0).paths for backend in ("engine", "minigrid")}
    docs = {backend: json.loads(p["json"].read_text()) for backend, p in paths.items()}
    where = {backend: doc["meta"].pop("episodes ran on") for backend, doc in docs.items()}
    assert where == {"engine": "the tensor engine (every split)", "minigrid": "the minigrid env (every split)"}
    assert docs["engine"] == docs["minigrid"]
    assert paths["engine"]["csv"].read_text() == paths["minigrid"]["csv"].read_text()
    md = {b: [line for line in p["md"].read_text().splitlines() if "episodes ran on" not in line] for b, p in paths.items()}
    assert md["engine"] == md["minigrid"]


def test_the_constant_action_references_agree():
    engine, minigrid = (measure_references(GOTO, ["id", "layout/near"], 20, seed=2, backend=b) for b in ("engine", "minigrid"))
    for split in ("id", "layout/near"):
        assert engine["splits"][split]["constant actions"] == minigrid["splits"][split]["constant actions"]
        assert engine["splits"][split]["best constant action"] == minigrid["splits"][split]["best constant action"]


def test_agents_played_in_one_batch_get_the_episodes_each_gets_alone():
    from gymnasium import spaces

    from shiftgrid.agents.evaluation.baselines import RandomAgent, constant_agent

    def panel():  # fresh agents: the random one's generator and the scripted one's memory start anew
        return [RandomAgent(spaces.Discrete(7), seed=3), constant_agent(2), as_predictor(sees),
                TupleMemory([2, 1, 2, 2, 0]), constant_agent(0)]

    together = run_engine_panel(panel(), GOTO, "size/far", 40, seed=1)
    alone = [run_engine_episodes(agent, GOTO, "size/far", 40, seed=1) for agent in panel()]
    assert together == alone
    assert len({tuple(r.success for r in rs) for rs in together}) > 1  # the agents did play differently
    # in batches of 12 levels x 5 agents: the same, the random agent's draws aside (they follow the batching)
    assert together[1:] == run_engine_panel(panel(), GOTO, "size/far", 40, seed=1, batch=64)[1:]


def test_agents_with_fewer_episodes_in_the_panel_play_the_first_levels_as_alone():
    from gymnasium import spaces

    from shiftgrid.agents.evaluation.baselines import RandomAgent, constant_agent

    def panel():
        return [as_predictor(sees), RandomAgent(spaces.Discrete(7), seed=3), TupleMemory([2, 1, 2, 2, 0]), constant_agent(2)]

    counts = [30, 7, 12, 1]
    together = run_engine_panel(panel(), GOTO, "id", counts, seed=4)
    assert [len(rs) for rs in together] == counts
    assert together == [run_engine_episodes(agent, GOTO, "id", n, seed=4) for agent, n in zip(panel(), counts)]
    # batches of 20 envs: 5 levels per agent at a time, each agent's episodes still its own (the random one's draws aside)
    assert together[2:] == run_engine_panel(panel(), GOTO, "id", counts, seed=4, batch=20)[2:]
    assert together[0] == run_engine_panel(panel(), GOTO, "id", counts, seed=4, batch=20)[0]
    with pytest.raises(ValueError, match="for each of the 4 agents"):
        run_engine_panel(panel(), GOTO, "id", [3, 3])


def test_the_report_plays_agents_and_references_together_with_the_numbers_each_gets_alone():
    from shiftgrid.agents.evaluation.baselines import evaluate_with_references
    from shiftgrid.agents.evaluation.engine_episodes import evaluate_splits

    splits = ["id", "size/far", "layout/far", "distractors/near"]  # three of one canvas: played in one batch
    (first, second, third), references = evaluate_with_references(
        [as_predictor(sees), ScriptedAgent([2, 1, 2, 2]), TupleMemory([2, 1, 2, 2, 0])], GOTO, splits, 25, 10, seed=2)
    assert first == evaluate_splits(as_predictor(sees), GOTO, splits, 25, seed=2, progress=False, backend="engine")
    assert second == evaluate_splits(ScriptedAgent([2, 1, 2, 2]), GOTO, splits, 25, seed=2, progress=False, backend="engine")
    assert third == evaluate_splits(TupleMemory([2, 1, 2, 2, 0]), GOTO, splits, 25, seed=2, progress=False, backend="engine")
    assert references == measure_references(GOTO, splits, 10, seed=2, backend="engine")
    report = evaluate_policy(as_predictor(sees), GOTO, splits, 25, seed=2, reference_episodes=10, backend="engine")
    assert report.references == references and report.results == first


@pytest.mark.parametrize("env_id, split, wrapper, why", [
    ("shiftgrid/DoorKey-v1", "rules/far", None, "slips"),
    ("MiniGrid-Fetch-5x5-N2-v0", None, None, "cannot run"),
    (GOTO, "id", "image", "observation wrapper"),
])
def test_what_the_engine_cannot_play_is_refused_when_forced_and_runs_on_the_minigrid_env_in_auto(env_id, split, wrapper, why):
    from shiftgrid.agents.evaluation.policies import observation_wrapper

    wrap = observation_wrapper(wrapper)
    with pytest.raises(EngineRefused, match=why):
        split_backend(object(), env_id, split, "engine", wrapper=wrap)
    assert split_backend(object(), env_id, split, "auto", wrapper=wrap) == "minigrid"
    if wrapper is None:
        auto = split_episodes(ScriptedAgent([2, 2, 1]), env_id, split, 6, backend="auto")
        assert auto == run_episodes(ScriptedAgent([2, 2, 1]), env_id, split, 6)


def test_an_unknown_backend_is_refused():
    with pytest.raises(EngineRefused, match="valid: auto, engine, minigrid"):
        split_backend(object(), GOTO, "id", "gpu")


def test_evaluate_forced_on_the_engine_where_it_cannot_play_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ("evaluate",))
    monkeypatch.setattr(evaluate_runs_module, "load_run", lambda path, device: (
        as_predictor(sees), yaml.safe_load((RunDir.of(path).root / "config.yaml").read_text()), {"steps": 0}))
    run_dir = tmp_path / "doorkey"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": "shiftgrid/DoorKey-v1", "seed": 0, "algo": "ppo"}))
    code = cli.main(["evaluate", str(run_dir), "--splits", "rules/far", "--episodes", "2", "--backend", "engine"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "slips" in err[0] and "--backend auto or minigrid" in err[0]


def test_a_policy_of_the_observation_alone_whose_episode_cycles_is_recorded_at_once(monkeypatch):
    steps = []
    from shiftgrid.envs.engine.batch import TensorEngine

    real = TensorEngine.step
    monkeypatch.setattr(TensorEngine, "step", lambda self, *a, **kw: steps.append(1) or real(self, *a, **kw))
    cut = run_engine_episodes(sees_and_says_so(), GOTO, "size/far", 60)
    assert cut == run_episodes(as_predictor(sees), GOTO, "size/far", 60)
    assert len(steps) < max(r.length for r in cut)  # the longest episode ran to its limit on paper only


def test_a_constant_policy_whose_episode_cycles_is_recorded_at_once_as_the_minigrid_env_ends_it(monkeypatch):
    from shiftgrid.agents.evaluation.baselines import constant_agent
    from shiftgrid.envs.engine.batch import TensorEngine

    steps = []
    real = TensorEngine.step
    monkeypatch.setattr(TensorEngine, "step", lambda self, *a, **kw: steps.append(1) or real(self, *a, **kw))
    for action in range(7):
        steps.clear()
        engine = run_engine_episodes(constant_agent(action), GOTO, "size/far", 30)
        limit = max(r.length for r in engine)
        assert engine == run_episodes(constant_agent(action), GOTO, "size/far", 30)
        if action in (0, 1):  # turning in place: every unsolved level cycles within 8 steps
            assert len(steps) <= 8 < limit

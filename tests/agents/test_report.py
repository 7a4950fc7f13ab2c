"""The shift report end to end (random agents on GoTo) and on hand-made results."""

import json

import pandas as pd
import pytest
from gymnasium import spaces

from shiftgrid.agents.evaluation.baselines import RandomAgent
from shiftgrid.agents.evaluation.episodes import EpisodeResult, axis_layout, evaluate_splits
from shiftgrid.agents.evaluation.report import RunRecord, learning_curve, markdown, training_table, write_report
from shiftgrid.agents.evaluation.stats import summarize

GOTO = "shiftgrid/GoTo-v1"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def random_runs():
    """Two seeds of a random agent on every GoTo test split."""
    return [
        RunRecord(f"random-s{s}", s, evaluate_splits(RandomAgent(spaces.Discrete(7), s), GOTO, "all", episodes=4, progress=False))
        for s in range(2)
    ]


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"non-JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_random_agent_pipeline_writes_every_file(tmp_path, random_runs):
    layout = axis_layout(GOTO, random_runs[0].results)
    paths = write_report(tmp_path, random_runs, layout, env_id=GOTO, meta={"episodes per split": 4})
    assert {"json", "csv", "md", "shift_success_rate", "shift_optimality_ratio"} <= set(paths)
    assert "learning_curves" not in paths  # no tb/ folders
    for key in ("shift_success_rate", "shift_optimality_ratio"):
        assert paths[key].read_bytes()[:8] == PNG

    doc = strict_json(paths["json"])
    assert doc["env"] == GOTO and [r["seed"] for r in doc["runs"]] == [0, 1]
    assert len(doc["runs"][0]["episodes"]["size/far"]) == 4
    axes = doc["summary"]["axes"]
    assert set(axes) == {"size", "distractors", "layout", "composition", "observation"}
    for axis, rows in axes.items():
        assert set(rows) == {"id", "near", "far", "gap_near", "gap_far"}
        for level in ("id", "near", "far"):
            success = rows[level]["success_rate"]
            assert len(success["per_run"]) == 2 and success["low"] <= success["iqm"] <= success["high"]
            assert 0 <= rows[level]["optimality_ratio"]["iqm"] <= 1 and rows[level]["regret"]["iqm"] >= 0
    assert doc["summary"]["splits"]["id"]["success_rate"]["iqm"] < 0.6  # a random agent rarely succeeds

    table = pd.read_csv(paths["csv"])
    assert list(table.columns) == ["run", "seed", "split", "axis", "level", "metric", "value"]
    assert len(table) == 2 * 11 * 5  # runs x splits x metrics
    far = table[(table.split == "size/far") & (table.metric == "optimality_ratio")]
    assert set(far.axis) == {"size"} and set(far.level) == {"far"} and far.value.between(0, 1).all()

    md = paths["md"].read_text()
    for axis in axes:
        section = md.split(f"## {axis}\n")[1].split("\n## ")[0]
        rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "level" not in line]
        assert [r.split(" ")[0] for r in rows] == ["id", "near", "far", "gap", "gap"]
        assert f"`{axis}/far`" in section


def test_markdown_cells_on_known_numbers():
    runs = [
        RunRecord("a", 0, {"id": [EpisodeResult(True, 0.5, 2, 1.0, 1.0), EpisodeResult(False, 0.0, 4, 1.0, 1.0)],
                           "size/far": [EpisodeResult(False, 0.0, 8, 0.5, 4.0)] * 2}),
    ]
    layout = {"size": {"id": "id", "far": "size/far"}}
    md = markdown(summarize([{"id": {"success_rate": 0.5}, "size/far": {"success_rate": 0.0}}], layout), runs, GOTO)
    assert "| id (`id`) | 0.500 [0.500, 0.500] |" in md
    assert "| gap id − far | 0.500 [0.500, 0.500] |" in md
    assert "One run" in md


def test_report_without_axes_or_oracle(tmp_path):
    """minigrid/BabyAI ids: one `id` split, no optimality, no per-axis tables."""
    runs = [RunRecord(f"r{s}", s, {"id": [EpisodeResult(s % 2 == 0, 0.5 * (s % 2 == 0), 5)] * 3}) for s in range(3)]
    paths = write_report(tmp_path, runs, {}, env_id="MiniGrid-Empty-5x5-v0")
    md = paths["md"].read_text()
    assert "## Every split" in md and "## size" not in md and "optimality ratio" not in md
    assert "shift_optimality_ratio" not in paths and paths["shift_success_rate"].read_bytes()[:8] == PNG
    assert strict_json(paths["json"])["summary"]["splits"]["id"]["success_rate"]["per_run"] == [1.0, 0.0, 1.0]


def test_learning_curves_from_tensorboard(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "run" / "tb"
    writer = SummaryWriter(str(tb / "PPO_1"))
    for step, value in [(100, 0.1), (200, 0.4), (300, 0.7)]:
        writer.add_scalar("rollout/success_rate", value, step)
        writer.add_scalar("train/loss", 1.0, step)
    writer.close()
    curve = learning_curve(tb)
    assert [s for s, _ in curve] == [100, 200, 300]
    assert [v for _, v in curve] == pytest.approx([0.1, 0.4, 0.7])
    assert learning_curve(tb, tag="rollout/ep_rew_mean") == []

    run = RunRecord("run", 0, {"id": [EpisodeResult(True, 0.9, 3, 0.95, 2.0)]}, tb_dir=tb)
    paths = write_report(tmp_path / "out", [run], {}, env_id=GOTO)
    assert paths["learning_curves"].read_bytes()[:8] == PNG


def test_training_table_says_when_each_run_met_its_target():
    met = {"success": 0.95, "episodes": 1000, "rate": 0.951, "steps": 612352, "wall_s": 852.0}
    target = {"target": {"success": 0.95, "episodes": 1000}}
    best = {"file": "checkpoints/best.pt", "steps": 900000, "chosen": "best `id` success (0.950) on validation seeds 1000000..1000019 of 10 evaluations"}
    runs = [RunRecord("s0", 0, {}, target, training={"steps": 900000, "target": met, "checkpoint": best}),
            RunRecord("s1", 1, {}, target, training={"steps": 1000448, "target": None}),
            RunRecord("s2", 2, {}, {}, training={"steps": 5000, "target": None})]
    assert training_table(runs)[2:] == [
        "| s0 | 0 | 900,000 | `checkpoints/best.pt`: best `id` success (0.950) on validation seeds 1000000..1000019 of 10 "
        "evaluations | 0.95 over 1000 episodes | 612,352 | 14.2 min |",
        "| s1 | 1 | 1,000,448 | – | 0.95 over 1000 episodes | not met | – |",
        "| s2 | 2 | 5,000 | – | none | – | – |",
    ]


def test_report_names_the_splits_where_the_oracle_was_inexact(tmp_path):
    exact = EpisodeResult(True, 0.8, 5, 0.9, 4.0, "a", True)
    bound = EpisodeResult(True, 0.95, 3, 0.9, 4.0, "b", False)
    runs = [RunRecord("r0", 0, {"id": [exact, exact], "rules/far": [bound, exact]}),
            RunRecord("r1", 1, {"id": [exact, exact], "rules/far": [bound, bound]})]
    paths = write_report(tmp_path, runs, {}, env_id="shiftgrid/DoorKey-v1")
    text = paths["md"].read_text()
    assert "Oracle inexact on `rules/far`: 3 of 4 episodes" in text
    assert "Oracle inexact on `id`" not in text
    saved = json.loads(paths["json"].read_text())
    assert [e["optimal_exact"] for e in saved["runs"][1]["episodes"]["rules/far"]] == [False, False]
    all_exact = write_report(tmp_path / "exact", [RunRecord("r0", 0, {"id": [exact]})], {}, env_id="shiftgrid/DoorKey-v1")
    assert "Oracle inexact" not in all_exact["md"].read_text()

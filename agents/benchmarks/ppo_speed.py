"""Training throughput of ``tensor-ppo`` against SB3's ``ppo`` on the same environment, measured in one run.

Each learner trains through :func:`~shiftgrid.agents.run.train.train` as ``shiftgrid train`` would
(its presets, one torch thread, no evaluation, no checkpoints in between), in a temporary run
directory. The figure is environment steps per second over ``learn`` (rollouts and updates; the
learner's construction is left out), in wall-clock, and per CPU-second of this process over the
whole call (construction included; steadier than wall-clock on a shared machine). Repeats are interleaved (ppo,
tensor-ppo per network, ppo, ...) and their median is reported, with the ratio to ``ppo``'s.

Example:
    >>> rows = measure_all("MiniGrid-Empty-5x5-v0", networks=["cheap"], reference_steps=256, tensor_steps=1024,
    ...                    repeats=1, overrides={"ppo": {"hyperparams": {"n_steps": 32, "batch_size": 64}},
    ...                                          "tensor-ppo": {"n_envs": 16, "hyperparams": {"n_steps": 32}, "engine": {"bank_size": 64}}})
    >>> [r.name for r in rows], rows[0].ratio
    (['ppo', 'tensor-ppo (cheap)'], 1.0)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from shiftgrid.agents.run.config import TrainConfig, merge
from shiftgrid.agents.run.presets import layered
from shiftgrid.agents.run.train import train

REFERENCE = "ppo"
#: The goals: tensor-ppo's steps/s over SB3 ppo's, per network.
GOALS = {"cheap": 15.0, "babyai": 1.3}


@dataclass(frozen=True)
class Row:
    """One learner's median figures and its ratio to ``ppo`` (wall-clock and per CPU-second)."""

    name: str
    network: str
    steps: int
    sps: float
    cpu_sps: float
    ratio: float = 1.0
    cpu_ratio: float = 1.0


def measure(algo: str, env_id: str, steps: int, overrides: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """(steps/s wall-clock, steps per CPU-second) of one training run of ``algo`` on ``env_id`` for ``steps`` steps."""
    with tempfile.TemporaryDirectory() as tmp:
        cli = merge({"algo": algo, "env": env_id, "steps": steps, "device": "cpu", "progress": False, "run_dir": f"{tmp}/run",
                     "eval": {"freq": 0}, "checkpoint_freq": 0, "target": {"success": None}}, dict(overrides or {}))
        config = TrainConfig.from_dict(layered({}, cli))
        cpu = time.process_time()
        result = train(config)
        cpu = time.process_time() - cpu
        return result.sps, result.num_timesteps / max(cpu, 1e-9)


def measure_all(env_id: str, networks: Sequence[str] = ("cheap", "babyai"), reference_steps: int = 8192,
                tensor_steps: int = 32768, repeats: int = 3,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Row]:
    """ppo and tensor-ppo with each network, interleaved ``repeats`` times; medians and ratios to ppo."""
    overrides = overrides or {}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in [REFERENCE, *networks]}
    for _ in range(repeats):
        runs[REFERENCE].append(measure(REFERENCE, env_id, reference_steps, overrides.get(REFERENCE)))
        for network in networks:
            over = merge(dict(overrides.get("tensor-ppo") or {}), {"hyperparams": {"network": network}})
            runs[network].append(measure("tensor-ppo", env_id, tensor_steps, over))
    medians = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs)) for k, vs in runs.items()}
    ref, ref_cpu = medians[REFERENCE]
    rows = [Row(REFERENCE, "babyai", reference_steps, ref, ref_cpu)]
    for network in networks:
        sps, cpu_sps = medians[network]
        rows.append(Row(f"tensor-ppo ({network})", network, tensor_steps, sps, cpu_sps, sps / ref, cpu_sps / ref_cpu))
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as a text table, with each goal said reached or not (on both clocks)."""
    lines = [f"{'learner':<22} {'network':<8} {'steps':>8} {'steps/s':>9} {'ratio':>7} {'steps/CPU-s':>12} {'ratio':>7}  goal"]
    for r in rows:
        goal = GOALS.get(r.network) if r.name != REFERENCE else None
        verdict = "" if goal is None else (f">= {goal:g}x: " + ("reached" if min(r.ratio, r.cpu_ratio) >= goal else
                                           "reached per CPU-s only" if r.cpu_ratio >= goal else
                                           "reached in wall-clock only" if r.ratio >= goal else "not reached"))
        lines.append(f"{r.name:<22} {r.network:<8} {r.steps:>8} {r.sps:>9.0f} {r.ratio:>6.1f}x {r.cpu_sps:>12.0f} "
                     f"{r.cpu_ratio:>6.1f}x  {verdict}")
    return "\n".join(lines)

"""The engine's speed against minigrid's env and shiftgrid's minigrid env, measured in one run.

Every figure is a uniformly random policy stepping envs with resets included: the engine at
each batch size (eager, and under ``torch.compile`` where asked) on a bank of the family's
training levels, minigrid's own env of the family's reference id
(:data:`~shiftgrid.envs.throughput.REFERENCES`) and shiftgrid's minigrid env of the family, each
one env in one Python thread. The engine runs on ``threads`` torch threads; its figure per
thread is what the goals compare. A reset from the bank (every env of the batch at once) is
timed against a step of the same batch. :func:`goals` says which of the goals are reached.

Example:
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 20, workers=1, progress=False, save=False)
    >>> fig = engine_throughput(make_tensor_vec("shiftgrid/GoTo-v1", 64, bank=bank), steps=3)
    >>> fig.batch, fig.mode, fig.steps_per_second > 0
    (64, 'eager', True)
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import gymnasium as gym
import torch

from shiftgrid.envs.engine.bank import Bank
from shiftgrid.envs.engine.vector import TensorVectorEnv, make_tensor_vec
from shiftgrid.envs.registration import family_splits
from shiftgrid.envs.throughput import REFERENCES, measure

#: The goals: engine steps/s per thread over minigrid's, eager and compiled; a bank reset over a step.
EAGER_GOAL, COMPILED_GOAL, RESET_GOAL = 100.0, 300.0, 1.2
#: Batch sizes measured by default.
BATCHES = (256, 1024, 4096, 16384)


@dataclass(frozen=True)
class EngineFigure:
    """One engine measurement: ``steps`` batched steps of ``batch`` envs, and full resets of the batch."""

    env_id: str
    batch: int
    mode: str
    threads: int
    device: str
    step_seconds: float
    reset_seconds: float
    compile_seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        return self.batch / self.step_seconds

    @property
    def per_thread(self) -> float:
        return self.steps_per_second / self.threads

    @property
    def reset_over_step(self) -> float:
        return self.reset_seconds / self.step_seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_throughput(venv: TensorVectorEnv, steps: int, resets: int | None = None, seed: int = 0) -> EngineFigure:
    """Time ``steps`` auto-resetting steps and ``resets`` (default ``steps``) full resets of an engine batch, after
    two untimed steps (the first compiles the step under ``torch.compile``; its time is reported the first time)."""
    resets = steps if resets is None else resets
    engine, dev, batch = venv.engine, venv.device, venv.num_envs
    generator = torch.Generator(device=dev).manual_seed(seed)
    actions = torch.randint(0, 7, (steps + 2, batch), generator=generator, device=dev)
    compiled = engine.compiled
    first = not getattr(venv, "_benchmarked", False)
    venv._benchmarked = True  # type: ignore[attr-defined]
    engine.reset(seed=seed)
    started = time.perf_counter()
    engine.step(actions[0], autoreset=True, check=False)  # under compile, the first time: the compilation
    _sync(dev)
    compile_seconds = time.perf_counter() - started if compiled and first else 0.0
    engine.step(actions[1], autoreset=True, check=False)
    _sync(dev)
    started = time.perf_counter()
    for t in range(2, steps + 2):
        engine.step(actions[t], autoreset=True, check=False)
    _sync(dev)
    step_seconds = (time.perf_counter() - started) / steps
    started = time.perf_counter()
    for _ in range(resets):
        engine.reset()
    _sync(dev)
    reset_seconds = (time.perf_counter() - started) / resets
    return EngineFigure(venv.env_id, batch, "compiled" if compiled else "eager", torch.get_num_threads(), str(dev),
                        step_seconds, reset_seconds, compile_seconds)


def reference_throughput(make: Callable[[], gym.Env], steps: int, seed: int = 0) -> float:
    """Random-policy steps/s of one env (resets included), its prints silenced (BabyAI prints rejected samples)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return measure(make, steps, seed=seed).steps_per_second


@dataclass(frozen=True)
class FamilyFigures:
    """A family's references (median steps/s) and its engine figures (median step and reset time per batch and mode)."""

    family: str
    reference_id: str
    minigrid: float
    shiftgrid: float
    engine: list[EngineFigure]


def _median(figures: list[EngineFigure]) -> EngineFigure:
    step = statistics.median(f.step_seconds for f in figures)
    reset = statistics.median(f.reset_seconds for f in figures)
    first = figures[0]
    return EngineFigure(first.env_id, first.batch, first.mode, first.threads, first.device, step, reset,
                        max(f.compile_seconds for f in figures))


def steps_for(batch: int) -> int:
    """Timed steps at ``batch``: about 2^18 env steps, between 5 and 50 batched steps."""
    return max(5, min(50, (1 << 18) // batch))


def measure_family(family: str, bank: Bank, batches: tuple[int, ...], compile_batches: tuple[int, ...], reference_steps: int,
                   repeats: int, device: str = "cpu", progress: Callable[[str], Any] = lambda _: None) -> FamilyFigures:
    """Every figure of a family, the references and the engine interleaved over ``repeats`` (medians reported)."""
    env_id = family_splits(family).family.env_id()
    reference_id = REFERENCES[family]
    ours = partial(gym.make, env_id, split="train")
    theirs = partial(gym.make, reference_id)
    minigrid: list[float] = []
    shiftgrid: list[float] = []
    runs: dict[tuple[str, int], list[EngineFigure]] = {}
    venvs = {(mode, b): make_tensor_vec(env_id, b, bank=bank, seed=0, compile=mode == "compiled", device=device)
             for mode, sizes in (("eager", batches), ("compiled", compile_batches)) for b in sizes}
    for r in range(repeats):
        progress(f"{family}: references (repeat {r + 1})")
        minigrid.append(reference_throughput(theirs, reference_steps, seed=r))
        shiftgrid.append(reference_throughput(ours, reference_steps, seed=r))
        for (mode, b), venv in venvs.items():
            progress(f"{family}: engine {mode} B={b} (repeat {r + 1})")
            runs.setdefault((mode, b), []).append(engine_throughput(venv, steps_for(b), seed=r))
    return FamilyFigures(family, reference_id, statistics.median(minigrid), statistics.median(shiftgrid),
                         [_median(f) for f in runs.values()])


def goals(fig: FamilyFigures) -> list[tuple[str, bool | None, str]]:
    """``(goal, reached (None: not measured), best figure)`` for the eager, compiled and reset goals of a family."""
    out: list[tuple[str, bool | None, str]] = []
    for mode, goal in (("eager", EAGER_GOAL), ("compiled", COMPILED_GOAL)):
        mine = [f for f in fig.engine if f.mode == mode]
        text = f"{mode} >= {goal:.0f}x minigrid's steps/s per thread"
        if not mine:
            out.append((text, None, "not measured"))
            continue
        best = max(mine, key=lambda f: f.per_thread)
        ratio = best.per_thread / fig.minigrid
        out.append((text, ratio >= goal, f"best {ratio:.1f}x at B={best.batch}"))
    eager = [f for f in fig.engine if f.mode == "eager"]
    worst = max(eager, key=lambda f: f.reset_over_step) if eager else None
    out.append((f"reset <= {RESET_GOAL}x a step", None if worst is None else worst.reset_over_step <= RESET_GOAL,
                "not measured" if worst is None else f"worst {worst.reset_over_step:.2f}x at B={worst.batch}"))
    return out

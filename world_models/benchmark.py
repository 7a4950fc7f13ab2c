"""Throughput figures of a world model next to the real environment's, measured in the same run.

Imagination: imagined steps per second of :meth:`WorldModel.imagine` under given random
actions (prior steps with their reward and continuation heads, no frames decoded: what an
actor-critic needs), at ``batch`` x ``horizon``. Training: replayed steps per second of
:func:`~shiftgrid.world_models.train_step.train_step` at B x T. The real environment: random
reset+step throughput of ``make_env(env_id)`` (the learner-facing env, one process), via
:func:`shiftgrid.envs.throughput.measure`. Figures, not tests: the machine may be shared.

Example:
    >>> fig = benchmark("tiny", env_id="MiniGrid-Empty-5x5-v0", batch=8, horizon=3, repeats=1, env_steps=50,
    ...                 train_batch=(2, 4))
    >>> fig.imagined_per_second > 0 and fig.ratio > 0
    True
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from shiftgrid.agents.envs import make_env
from shiftgrid.envs.throughput import measure
from shiftgrid.world_models.config import preset as get_preset
from shiftgrid.world_models.interface import ObsSpec, WorldModel
from shiftgrid.world_models.rssm import RSSM
from shiftgrid.world_models.train_step import make_optimizer, train_step


@dataclass(frozen=True)
class Figures:
    """One benchmark run's figures."""

    preset: str
    device: str
    batch: int
    horizon: int
    imagined_per_second: float
    train_batch: tuple[int, int]
    replayed_per_second: float
    env_id: str
    env_per_second: float
    threads: int

    @property
    def ratio(self) -> float:
        """Imagined steps per real environment step, per second."""
        return self.imagined_per_second / self.env_per_second

    def __str__(self) -> str:
        b, t = self.train_batch
        return (f"rssm/{self.preset} on {self.device} ({self.threads} torch threads): imagination {self.imagined_per_second:,.0f} steps/s "
                f"(batch {self.batch}, horizon {self.horizon}); training {self.replayed_per_second:,.0f} replayed steps/s "
                f"(B x T = {b} x {t}); {self.env_id} {self.env_per_second:,.0f} steps/s; "
                f"imagination / env = {self.ratio:.1f}x")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def imagination_throughput(model: WorldModel, batch: int = 1024, horizon: int = 15, repeats: int = 5) -> float:
    """Median imagined steps per second over ``repeats`` rollouts (after one warm-up)."""
    device = next(model.parameters()).device
    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    start = model.imagine(model.initial(batch), torch.zeros(batch, 1, dtype=torch.long, device=device)).states[:, 0]
    actions = torch.randint(model.spec.num_actions, (batch, horizon), device=device, generator=gen)
    times = []
    for i in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        model.imagine(start, actions, generator=gen)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return batch * horizon / statistics.median(times)


def training_throughput(model: WorldModel, batch: int = 16, length: int = 64, steps: int = 5) -> float:
    """Replayed steps per second of updates on random ``batch`` x ``length`` batches (after one warm-up)."""
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(0)
    h, w, _ = model.spec.image_shape
    r = lambda high, *shape: torch.randint(high, (batch, length, *shape), device=device, generator=g)  # noqa: E731
    data = {"image": torch.stack([r(n, h, w) for n in (11, 6, 3)], -1).to(torch.uint8), "direction": r(4),
            "action": r(model.spec.num_actions), "reward": torch.zeros(batch, length, device=device),
            "terminated": r(2).bool() & False, "is_first": r(2).bool() & False,
            **{k: r(model.spec.vocab_size, n) for k, n in model.spec.token_lengths}}
    opt = make_optimizer(model)
    times = []
    for i in range(steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        train_step(model, opt, data)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return batch * length / statistics.median(times)


def benchmark(preset: str = "small", env_id: str = "shiftgrid/GoTo-v0", device: str = "cpu", batch: int = 1024,
              horizon: int = 15, repeats: int = 5, env_steps: int = 5000,
              train_batch: tuple[int, int] = (16, 64), threads: int | None = None) -> Figures:
    """Imagination and training throughput of a fresh ``preset`` RSSM on ``device``, and ``env_id``'s steps/s.

    ``threads`` sets ``torch.set_num_threads`` for the run (restored after); ``None`` keeps torch's.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _benchmark(preset, env_id, device, batch, horizon, repeats, env_steps, train_batch)
    finally:
        torch.set_num_threads(before)


def _benchmark(preset: str, env_id: str, device: str, batch: int, horizon: int, repeats: int, env_steps: int,
               train_batch: tuple[int, int]) -> Figures:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available; valid here: cpu, auto")
    env = make_env(env_id)
    spec = ObsSpec.from_spaces(env.observation_space, env.action_space)
    env_sps = measure(lambda: make_env(env_id), steps=env_steps).steps_per_second
    torch.manual_seed(0)
    model = RSSM(get_preset(preset), spec).to(device)
    imagined = imagination_throughput(model, batch, horizon, repeats)
    replayed = training_throughput(model, *train_batch, steps=max(1, repeats // 2))
    return Figures(preset, device, batch, horizon, imagined, train_batch, replayed, env_id, env_sps,
                   torch.get_num_threads())


__all__ = ["Figures", "benchmark", "imagination_throughput", "training_throughput"]

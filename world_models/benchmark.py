"""Throughput figures of a world model next to the real environment's, measured in the same run.

Imagination: imagined steps per second of :meth:`WorldModel.imagine` under given random
actions (prior steps with their reward and continuation heads, no frames decoded: what an
actor-critic needs), at ``batch`` x ``horizon``, from states :meth:`WorldModel.observe`
returned after ``start_steps`` real steps (so a transformer starts with a full context).
Training: replayed steps per second of :func:`~shiftgrid.world_models.train_step.train_step`
at B x T. The real environment: random reset+step throughput of ``make_env(env_id)`` (the
learner-facing env, one process), via :func:`shiftgrid.envs.throughput.measure`. Models are
built by :func:`shiftgrid.world_models.models.build_model`. Figures, not tests: the machine
may be shared, so compare figures of one run.

Example:
    >>> fig = benchmark("transformer", "tiny", env_id="MiniGrid-Empty-5x5-v0", batch=8, horizon=3, repeats=1,
    ...                 env_steps=50, train_batch=(2, 4))
    >>> fig.imagined_per_second > 0 and fig.ratio > 0
    True
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from shiftgrid.envs.learner_env import env_spaces, make_env
from shiftgrid.envs.throughput import measure
from shiftgrid.world_models.device import resolve_device
from shiftgrid.world_models.interface import NUM_COLORS, NUM_STATES, NUM_TYPES, LatentState, ObsSpec, WorldModel
from shiftgrid.world_models.models import build_model, check_model
from shiftgrid.world_models.train_step import make_optimizer, train_step


@dataclass(frozen=True)
class Figures:
    """One benchmark run's figures."""

    model: str
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
    parameters: int

    @property
    def ratio(self) -> float:
        """Imagined steps per real environment step, per second."""
        return self.imagined_per_second / self.env_per_second

    def __str__(self) -> str:
        b, t = self.train_batch
        return (f"{self.model}/{self.preset} ({self.parameters:,} parameters) on {self.device} ({self.threads} torch threads): imagination {self.imagined_per_second:,.0f} steps/s "
                f"(batch {self.batch}, horizon {self.horizon}); training {self.replayed_per_second:,.0f} replayed steps/s "
                f"(B x T = {b} x {t}); {self.env_id} {self.env_per_second:,.0f} steps/s; "
                f"imagination / env = {self.ratio:.1f}x")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_batch(spec: ObsSpec, batch: int, length: int, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """A replay-like ``batch`` x ``length`` batch of random codes within one episode (no ``is_first``)."""
    g = torch.Generator(device=device).manual_seed(seed)
    h, w, _ = spec.image_shape
    r = lambda high, *shape: torch.randint(high, (batch, length, *shape), device=device, generator=g)  # noqa: E731
    no = torch.zeros(batch, length, dtype=torch.bool, device=device)
    return {"image": torch.stack([r(n, h, w) for n in (NUM_TYPES, NUM_COLORS, NUM_STATES)], -1).to(torch.uint8),
            "direction": r(4), "action": r(spec.num_actions), "reward": torch.zeros(batch, length, device=device),
            "terminated": no, "truncated": no, "is_first": no, **{k: r(spec.vocab_size, n) for k, n in spec.token_lengths}}


@torch.no_grad()
def imagination_start(model: WorldModel, batch: int, start_steps: int = 16) -> LatentState:
    """``batch`` copies of the state after observing ``start_steps`` random real-like steps."""
    device = next(model.parameters()).device
    states, _ = model.observe(random_batch(model.spec, 1, start_steps, device))
    return states[:, -1][torch.zeros(batch, dtype=torch.long, device=device)]


@torch.no_grad()
def imagination_throughput(model: WorldModel, batch: int = 1024, horizon: int = 15, repeats: int = 5,
                           start_steps: int = 16) -> float:
    """Median imagined steps per second over ``repeats`` rollouts (after one warm-up)."""
    device = next(model.parameters()).device
    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    start = imagination_start(model, batch, start_steps)
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
    data = random_batch(model.spec, batch, length, device)
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


def env_throughput(env_id: str = "shiftgrid/GoTo-v1", steps: int = 5000) -> float:
    """Random-policy reset+step throughput of ``make_env(env_id)`` (steps per second)."""
    return measure(lambda: make_env(env_id), steps=steps).steps_per_second


def benchmark(model: str = "rssm", preset: str = "small", env_id: str = "shiftgrid/GoTo-v1", device: str = "cpu",
              batch: int = 1024, horizon: int = 15, repeats: int = 5, env_steps: int = 5000,
              train_batch: tuple[int, int] = (16, 64), threads: int | None = None,
              env_per_second: float | None = None) -> Figures:
    """Imagination and training throughput of a fresh ``model`` at ``preset`` on ``device``, and ``env_id``'s steps/s.

    ``threads`` sets ``torch.set_num_threads`` for the run (restored after); ``None`` keeps torch's.
    ``env_per_second`` reuses an env figure measured in the same run (else it is measured here).
    """
    check_model(model)
    device = str(resolve_device(device))
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        spec = ObsSpec.from_spaces(*env_spaces(env_id))
        env_sps = env_throughput(env_id, env_steps) if env_per_second is None else env_per_second
        torch.manual_seed(0)
        wm = build_model(model, preset, spec).to(device)
        imagined = imagination_throughput(wm, batch, horizon, repeats)
        replayed = training_throughput(wm, *train_batch, steps=max(1, repeats // 2))
        return Figures(model, preset, device, batch, horizon, imagined, train_batch, replayed, env_id, env_sps,
                       torch.get_num_threads(), sum(p.numel() for p in wm.parameters()))
    finally:
        torch.set_num_threads(before)


__all__ = ["Figures", "benchmark", "env_throughput", "imagination_throughput", "random_batch", "training_throughput"]

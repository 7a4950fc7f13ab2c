"""The engine against the minigrid env, step by step: the check behind the parity tests.

:func:`play` steps a batch of minigrid envs (each reset on its level) and the engine (reset
on the same levels) with the same actions, feeding each env the engine's slip draws, and
compares at every step what an agent sees and is told: ``image``, ``direction``, reward,
``terminated``, ``truncated``, ``success`` and ``level_hash``. Policies: ``random``,
``adversarial`` (pickup, drop and toggle everywhere, walking into walls and lava, ``done``
mid-episode) and ``oracle`` (the level's optimal plan, then random actions).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> envs = [gym.make("shiftgrid/DoorKey-v0") for _ in range(3)]
    >>> report = play(envs, seeds=[0, 1, 2], policies=["random", "adversarial", "oracle"])
    >>> report.mismatches, report.steps > 0
    ([], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from shiftgrid.envs.engine.batch import LevelStore, TensorEngine
from shiftgrid.envs.engine.levels import Layout, int_to_hash, row_from_sample, stack

POLICIES = ("random", "adversarial", "oracle")
#: Action weights of the adversarial policy: left, right, forward, pickup, drop, toggle, done.
ADVERSARIAL = np.array([1, 1, 3, 3, 3, 3, 1], dtype=float) / 15


class FedDraws:
    """Stands in for an env's ``np_random`` during steps: ``random()`` returns the numbers queued."""

    def __init__(self) -> None:
        self.queue: list[float] = []

    def random(self) -> float:
        if not self.queue:
            raise RuntimeError("the env drew more random numbers in a step than the engine gave it")
        return self.queue.pop(0)


@dataclass
class Mismatch:
    """One disagreement: env ``index`` (its level seed ``seed``) at ``step``, on ``what``."""

    index: int
    seed: int
    step: int
    what: str
    engine: Any
    env: Any
    actions: tuple[int, ...]


@dataclass
class Report:
    """Steps compared, episodes played to their end, and the mismatches (at most one per env)."""

    steps: int = 0
    episodes: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    oracle_returns: list[tuple[float, float]] = field(default_factory=list)  # (engine's return, optimal_return)


def shiftgrid_row(env: Any, layout: Layout) -> dict[str, np.ndarray]:
    """The level row of a reset shiftgrid env (unwrapped or not)."""
    u = env.unwrapped
    return row_from_sample(u.sample, u.max_steps, layout)


def _policy(kind: str, rng: np.random.Generator, plan: Sequence[int], t: int) -> int:
    if kind == "oracle" and t < len(plan):
        return int(plan[t])
    if kind == "adversarial":
        return int(rng.choice(7, p=ADVERSARIAL))
    return int(rng.integers(7))


def play(envs: Sequence[Any], seeds: Sequence[int], policies: Sequence[str], *, max_steps: int = 400,
         device: str = "cpu", row: Callable[[Any, Layout], dict] = shiftgrid_row, rng_seed: int = 0,
         engine_seed: int = 0, options: Callable[[int], dict] | None = None) -> Report:
    """Play ``envs[i]`` from ``reset(seed=seeds[i])`` under ``policies[i]`` against one engine batch; compare every step.

    ``row(env, layout)`` reads a reset env's level row (default: shiftgrid envs). Each env plays
    one episode (at most ``max_steps`` steps). Where a level slips, each env is fed the engine's
    draws. Returns a :class:`Report`; ``oracle_returns`` holds the return of every ``oracle``
    episode next to its ``optimal_return`` (where the env reports one).
    """
    if not (len(envs) == len(seeds) == len(policies)):
        raise ValueError("envs, seeds and policies must have the same length")
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown policies {bad}; valid: {', '.join(POLICIES)}")
    first = [env.reset(seed=int(s), **({"options": options(int(s))} if options else {})) for env, s in zip(envs, seeds)]
    h, w = envs[0].unwrapped.height, envs[0].unwrapped.width
    rows = [row(env, Layout(h, w)) for env in envs]
    layout = Layout(h, w, max(r["obj_cell"].shape[0] for r in rows), max(r["verb"].shape[0] for r in rows),
                    max(r["tokens"].shape[0] for r in rows))
    store = LevelStore(stack(rows, layout), layout, device)
    engine = TensorEngine(store, len(envs), seed=engine_seed)
    obs = engine.reset(levels=torch.arange(len(envs), device=engine.device))
    report = Report()
    rng = np.random.default_rng(rng_seed)
    plans = [getattr(env.unwrapped, "optimal_actions", ()) if p == "oracle" else () for env, p in zip(envs, policies)]
    live = list(range(len(envs)))
    actions: list[list[int]] = [[] for _ in envs]
    returns = [0.0] * len(envs)
    feeds = [FedDraws() for _ in envs]
    for env, feed in zip(envs, feeds):
        env.unwrapped._np_random = feed
    image = obs["image"].cpu().numpy()
    for i in live:
        _compare(report, i, seeds[i], 0, actions[i], image[i], first[i][0]["image"], "image")
    for t in range(max_steps):
        if not live:
            break
        chosen = np.zeros(len(envs), dtype=np.int64)
        for i in live:
            chosen[i] = _policy(policies[i], rng, plans[i], t)
        draws = engine.next_draws()
        cpu_draws = draws.cpu().numpy()
        obs, reward, terminated, truncated, info = engine.step(torch.as_tensor(chosen, device=engine.device), draws)
        image, direction = obs["image"].cpu().numpy(), obs["direction"].cpu().numpy()
        reward, terminated, truncated = reward.cpu().numpy(), terminated.cpu().numpy(), truncated.cpu().numpy()
        success, hashes = info["success"].cpu().numpy(), info["level_hash"].cpu().numpy()
        still = []
        for i in live:
            feeds[i].queue = [float(v) for v in cpu_draws[i]]
            actions[i].append(int(chosen[i]))
            o, r, te, tr, inf = envs[i].step(int(chosen[i]))
            report.steps += 1
            returns[i] += float(reward[i])  # the engine's reward (equal to the env's, or a mismatch is recorded)
            checks = [("image", image[i], o["image"]), ("direction", int(direction[i]), int(o["direction"])),
                      ("reward", float(reward[i]), float(np.float32(r))), ("terminated", bool(terminated[i]), bool(te)),
                      ("truncated", bool(truncated[i]), bool(tr)), ("success", bool(success[i]), bool(inf.get("success", r > 0)))]
            if "level_hash" in inf:
                checks.append(("level_hash", int_to_hash(int(hashes[i])), inf["level_hash"]))
            if not all(_compare(report, i, seeds[i], t + 1, actions[i], a, b, what) for what, a, b in checks):
                continue
            if te or tr:
                report.episodes += 1
                if policies[i] == "oracle" and "optimal_return" in first[i][1]:
                    report.oracle_returns.append((float(np.float32(returns[i])), float(np.float32(first[i][1]["optimal_return"]))))
                continue
            still.append(i)
        live = still
    return report


def _compare(report: Report, i: int, seed: int, t: int, actions: list[int], engine: Any, env: Any, what: str) -> bool:
    same = bool(np.array_equal(engine, env)) if isinstance(engine, np.ndarray) else engine == env
    if not same:
        report.mismatches.append(Mismatch(i, seed, t, what, engine, env, tuple(actions)))
    return same

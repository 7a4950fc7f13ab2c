"""The engine against the minigrid env, step by step: the check behind the parity tests.

:func:`play` steps a batch of minigrid envs (each reset on its level) and the engine (reset
on the same levels) with the same actions, feeding each env the engine's slip draws, and
compares at every step what an agent sees and is told: ``image``, ``direction``, reward,
``terminated``, ``truncated``, ``success`` and ``level_hash``. Policies: ``random``,
``adversarial`` (pickup, drop and toggle everywhere, walking into walls and lava, ``done``
mid-episode) and ``oracle`` (the level's optimal plan, then random actions).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> envs = [gym.make("shiftgrid/DoorKey-v1") for _ in range(3)]
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


def shiftgrid_plan(env: Any) -> Sequence[int]:
    """The oracle's plan of a reset shiftgrid env."""
    return env.unwrapped.optimal_actions


def _policy(kind: str, rng: np.random.Generator, plan: Sequence[int], t: int) -> int:
    if kind == "oracle" and t < len(plan):
        return int(plan[t])
    if kind == "adversarial":
        return int(rng.choice(7, p=ADVERSARIAL))
    return int(rng.integers(7))


class _Episode:
    """One env's current episode: its seed, policy, plan, actions so far and return."""

    def __init__(self, seed: int, policy: str, plan: Sequence[int], optimal: float):
        self.seed, self.policy, self.plan, self.optimal = seed, policy, tuple(plan), optimal
        self.actions: list[int] = []
        self.ret = 0.0


def play(envs: Sequence[Any], seeds: Sequence[Any], policies: Sequence[str], *, max_steps: int = 400,
         device: str = "cpu", row: Callable[[Any, Layout], dict] = shiftgrid_row,
         plan: Callable[[Any], Sequence[int]] = shiftgrid_plan, rng_seed: int = 0, engine_seed: int = 0,
         layout: Layout | None = None, budget: int | None = None) -> Report:
    """Play ``envs[i]`` on the levels of ``reset(seed=...)`` for each seed in ``seeds[i]`` (an int: one episode)
    under ``policies[i]``, against one engine batch; compare every step.

    ``row(env, layout)`` reads a reset env's level row and ``plan(env)`` its optimal actions
    (defaults: shiftgrid envs). Episodes last at most ``max_steps`` steps. ``layout`` bounds the
    levels' objects, clauses and tokens (default: those of each env's first level, or more).
    No episode starts once ``budget`` steps have been compared. Where a level slips, each env is
    fed the engine's draws. ``oracle_returns`` in the report
    holds the engine's return of every finished ``oracle`` episode next to its optimal return.
    """
    if not (len(envs) == len(seeds) == len(policies)):
        raise ValueError("envs, seeds and policies must have the same length")
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown policies {bad}; valid: {', '.join(POLICIES)}")
    queues = [[int(s)] if isinstance(s, (int, np.integer)) else [int(v) for v in s] for s in seeds]
    h, w = envs[0].unwrapped.height, envs[0].unwrapped.width
    feeds = [FedDraws() for _ in envs]

    def start(i: int) -> tuple[dict, dict, _Episode]:
        seed = queues[i].pop(0)
        obs, info = envs[i].reset(seed=seed)
        envs[i].unwrapped._np_random = feeds[i]
        r = row(envs[i], Layout(h, w))
        optimal = float(r["optimal_steps"])
        optimal = float("nan") if np.isnan(optimal) else float(np.float32(1 - 0.9 * optimal / float(r["max_steps"])))
        return obs, r, _Episode(seed, policies[i], plan(envs[i]) if policies[i] == "oracle" else (), optimal)

    firsts = [start(i) for i in range(len(envs))]
    rows = [r for _, r, _ in firsts]
    if layout is None:
        layout = Layout(h, w, max(r["obj_cell"].shape[0] for r in rows), max(r["verb"].shape[0] for r in rows),
                        max(r["tokens"].shape[0] for r in rows))
    store = LevelStore(stack(rows, layout), layout, device)
    engine = TensorEngine(store, len(envs), seed=engine_seed)
    obs = engine.reset(levels=torch.arange(len(envs), device=engine.device))
    report, rng = Report(), np.random.default_rng(rng_seed)
    episodes = [e for _, _, e in firsts]
    steps_in = [0] * len(envs)
    live = list(range(len(envs)))
    image = obs["image"].cpu().numpy()
    for i in live:
        _compare(report, i, episodes[i].seed, 0, [], image[i], firsts[i][0]["image"], "image")
    while live:
        chosen = np.zeros(len(envs), dtype=np.int64)
        for i in live:
            chosen[i] = _policy(episodes[i].policy, rng, episodes[i].plan, steps_in[i])
        draws = engine.next_draws()
        cpu_draws = draws.cpu().numpy()
        out = engine.step(torch.as_tensor(chosen, device=engine.device), draws)
        obs, info = out[0], out[4]
        image, direction = obs["image"].cpu().numpy(), obs["direction"].cpu().numpy()
        reward, terminated, truncated = (t.cpu().numpy() for t in out[1:4])
        success, hashes = info["success"].cpu().numpy(), info["level_hash"].cpu().numpy()
        still, restarts = [], []
        for i in live:
            ep = episodes[i]
            feeds[i].queue = [float(v) for v in cpu_draws[i]]
            ep.actions.append(int(chosen[i]))
            o, r, te, tr, inf = envs[i].step(int(chosen[i]))
            report.steps += 1
            steps_in[i] += 1
            ep.ret += float(reward[i])  # the engine's reward (equal to the env's, or a mismatch is recorded)
            checks = [("image", image[i], o["image"]), ("direction", int(direction[i]), int(o["direction"])),
                      ("reward", float(reward[i]), float(np.float32(r))), ("terminated", bool(terminated[i]), bool(te)),
                      ("truncated", bool(truncated[i]), bool(tr)), ("success", bool(success[i]), bool(inf.get("success", r > 0)))]
            if "level_hash" in inf:
                checks.append(("level_hash", int_to_hash(int(hashes[i])), inf["level_hash"]))
            if not all(_compare(report, i, ep.seed, steps_in[i], ep.actions, a, b, what) for what, a, b in checks):
                continue
            if te or tr or steps_in[i] >= max_steps:
                if te or tr:
                    report.episodes += 1
                    if ep.policy == "oracle" and not np.isnan(ep.optimal):
                        report.oracle_returns.append((float(np.float32(ep.ret)), ep.optimal))
                if queues[i] and (budget is None or report.steps < budget):
                    restarts.append(i)
                    still.append(i)
                continue
            still.append(i)
        for i in restarts:
            o, r, episodes[i] = start(i)
            level = engine.store.append(stack([r], layout), pool=False)
            engine.restart([i], level)
            steps_in[i] = 0
            _compare(report, i, episodes[i].seed, 0, [], engine.observation()["image"][i].cpu().numpy(), o["image"], "image")
        live = still
    return report


def _compare(report: Report, i: int, seed: int, t: int, actions: list[int], engine: Any, env: Any, what: str) -> bool:
    same = bool(np.array_equal(engine, env)) if isinstance(engine, np.ndarray) else engine == env
    if not same:
        report.mismatches.append(Mismatch(i, seed, t, what, engine, env, tuple(actions)))
    return same

"""Chance level of a split: the success of uniformly random actions, measured on the tensor engine.

The engine's counterpart of :class:`~shiftgrid.agents.evaluation.baselines.RandomAgent` in the
shift reports, for whole splits at once: one episode on each of the split's first ``episodes``
levels (its bank, in seed order, so the figure is reproducible), every env given uniformly
random actions from one seeded generator until its episode ends (success, failure such as lava,
or the episode limit). Success rates come with a 95% Wilson score interval over the episodes.
It says how often a learner that has learnt nothing stumbles on the reward, which is what its
first gradient depends on: a family whose chance level is near zero on its training split needs
longer episodes, a curriculum or a teacher before PPO can start.

Example:
    >>> c = random_policy_success("shiftgrid/GoTo-v1", "train", episodes=20, workers=1)
    >>> c.episodes, 0.0 <= c.low <= c.success_rate <= c.high <= 1.0, c.limits[0] <= c.limits[1]
    (20, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy import stats

from shiftgrid.envs.engine.bank import build_bank
from shiftgrid.envs.engine.batch import EngineError, LevelStore, TensorEngine, check_device

#: The engine steps this many times between checks that every episode has ended (each check syncs with the host).
CHECK_EVERY = 32
#: minigrid's seven actions.
N_ACTIONS = 7


@dataclass(frozen=True)
class Chance:
    """Uniform random actions on one split: success rate with its 95% interval, mean return and length, the
    episode limits (shortest, longest), the oracle's median plan length and its largest share of a level's limit."""

    env_id: str
    split: str
    episodes: int
    successes: int
    success_rate: float
    low: float
    high: float
    mean_return: float
    mean_length: float
    limits: tuple[int, int]
    median_optimal_steps: float
    max_optimal_share: float


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate of ``successes`` in ``n`` trials.

    Example:
        >>> low, high = wilson_interval(0, 1000)
        >>> low, round(high, 4)
        (0.0, 0.0038)
    """
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def random_policy_success(env_id: str, split: str = "train", episodes: int = 1000, *, seed: int = 0,
                          device: str = "cpu", workers: int | None = None, progress: bool = False) -> Chance:
    """One episode of uniformly random actions on each of the first ``episodes`` levels of ``split``.

    The split's bank is built (and cached) on first use; ``workers`` build it. Raises the
    engine's errors (one line, naming what is valid) for an id, split or device it cannot run.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise EngineError(f"episodes={episodes!r} is not valid; valid: an integer >= 1")
    dev = check_device(device)
    bank = build_bank(env_id, split, int(episodes), workers=workers, progress=progress)
    n = len(bank)
    engine = TensorEngine(LevelStore(bank.rows, bank.layout, dev), n, seed=seed)
    engine.reset(levels=torch.arange(n, device=dev))
    generator = torch.Generator(device=dev).manual_seed(seed)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    success, ret = torch.zeros_like(done), torch.zeros(n, dtype=torch.float64, device=dev)
    length = torch.zeros(n, dtype=torch.int64, device=dev)
    limit = int(bank.rows["max_steps"].max())
    for t in range(1, limit + 1):
        actions = torch.randint(0, N_ACTIONS, (n,), generator=generator, device=dev)
        _, reward, terminated, truncated, info = engine.step(actions, check=False)
        ended = (terminated | truncated) & ~done
        success |= ended & info["success"]
        ret = torch.where(ended, reward.to(torch.float64), ret)
        length = torch.where(ended, t, length)
        done |= ended
        if t % CHECK_EVERY == 0 and bool(done.all()):
            break
    if not bool(done.all()):
        raise RuntimeError(f"{env_id} {split}: {int((~done).sum())} episodes outlived the longest limit ({limit} steps)")
    k = int(success.sum())
    low, high = wilson_interval(k, n)
    return Chance(env_id, split, n, k, k / n, low, high, float(ret.mean()), float(length.to(torch.float64).mean()),
                  (int(bank.rows["max_steps"].min()), limit), float(np.nanmedian(bank.rows["optimal_steps"])),
                  float(np.nanmax(bank.rows["optimal_steps"] / bank.rows["max_steps"])))


def chance_table(rows: Sequence[Chance]) -> str:
    """A Markdown table of chance levels, one row per split.

    Example:
        >>> row = Chance("shiftgrid/GoTo-v1", "train", 1000, 231, 0.231, 0.206, 0.258, 0.141, 43.6, (36, 64), 4.0, 0.22)
        >>> print(chance_table([row]).splitlines()[2])
        | `shiftgrid/GoTo-v1` | `train` | 36-64 | 4.0 (22%) | 0.231 [0.206, 0.258] | 0.141 | 43.6 |
    """
    out = ["| id | split | episode limit | oracle's steps: median (most of a limit) | random success [95% CI] | mean return | mean length |",
           "|---|---|---:|---:|---|---:|---:|"]
    for r in rows:
        limits = f"{r.limits[0]}" if r.limits[0] == r.limits[1] else f"{r.limits[0]}-{r.limits[1]}"
        out.append(f"| `{r.env_id}` | `{r.split}` | {limits} | {r.median_optimal_steps:.1f} ({r.max_optimal_share:.0%}) | "
                   f"{r.success_rate:.3f} [{r.low:.3f}, {r.high:.3f}] | {r.mean_return:.3f} | {r.mean_length:.1f} |")
    return "\n".join(out)

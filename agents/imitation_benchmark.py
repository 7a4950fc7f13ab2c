"""How many demonstrations behavioural cloning needs: BabyAI's sample-efficiency measurement (figures, not a test).

For each demonstration count ``n``: the oracle records ``n`` demonstrations of the training split
(reset seeds ``seed * 10**7 + i``), ``bc`` clones them (``updates`` minibatch updates, the same
network as PPO) and the clone is scored, most likely action, on ``episodes`` held-out
training-split episodes (reset seeds from :data:`HELD_OUT_SEED` on, BabyAI's protocol of 1,000
episodes on seeds disjoint from the demonstrations'). Levels are compared by hash too: an
evaluation level that a demonstration also showed is counted (``overlap``) and reported.

Example:
    $ shiftgrid benchmark imitation --env shiftgrid/GoTo-v0 --demos 500,1000,2000,5000 --updates 2000 --seed 0

    >>> rows = demos_needed("shiftgrid/GoTo-v0", [500, 1000], seed=0)  # doctest: +SKIP
    >>> print(table(rows))  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

#: First reset seed of the held-out evaluation episodes (demonstrations use ``seed * 10**7 + i``).
HELD_OUT_SEED = 900_000_000


def demos_needed(env_id: str, counts: Sequence[int], *, seed: int = 0, episodes: int = 1000, updates: int = 2000,
                 batch_size: int = 256, learning_rate: float = 1e-3, device: str = "cpu", n_envs: int = 8,
                 env_kwargs: Mapping[str, Any] | None = None, extractor: Mapping[str, Any] | None = None,
                 progress: bool = False, torch_threads: int = 1,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One row per demonstration count: demos, demo steps, success on held-out training levels, timings.

    ``on_row`` is called with each row as soon as it is measured (a long run shows its figures as it goes).
    """
    from shiftgrid.agents.checkpoint import load_agent
    from shiftgrid.agents.config import EvalConfig, TrainConfig
    from shiftgrid.agents.datasets import read_episodes, write_demos
    from shiftgrid.agents.evaluation import run_episodes
    from shiftgrid.agents.train import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            t0 = time.perf_counter()
            out = write_demos(Path(tmp) / f"demos{n}", env_id, n, seed=seed * 10**7, env_kwargs=env_kwargs, progress=progress)
            demo_hashes = {e.level_hash for e in read_episodes(out)}
            t1 = time.perf_counter()
            steps = updates * batch_size
            config = TrainConfig(algo="bc", env=env_id, demos=str(out), steps=steps, seed=seed, device=device,
                                 progress=progress, env_kwargs=dict(env_kwargs or {}), extractor=dict(extractor or {}),
                                 run_dir=str(Path(tmp) / f"bc{n}"), eval=EvalConfig(freq=0), checkpoint_freq=0,
                                 torch_threads=torch_threads,
                                 hyperparams={"batch_size": batch_size, "learning_rate": learning_rate})
            result = train(config)
            t2 = time.perf_counter()
            agent, _ = load_agent(result.run_dir, device)
            scored = run_episodes(agent, env_id, "train", episodes, seed=HELD_OUT_SEED, n_envs=n_envs,
                                  env_kwargs=env_kwargs)
            t3 = time.perf_counter()
            fresh = [r for r in scored if r.level_hash not in demo_hashes]
            demo_steps = _steps(out)
            rows.append({"demos": n, "demo_steps": demo_steps, "eval_episodes": len(scored),
                         "overlap": len(scored) - len(fresh), "success": float(np.mean([r.success for r in scored])),
                         "success_fresh": float(np.mean([r.success for r in fresh])) if fresh else None,
                         "passes": round(steps / max(demo_steps, 1), 1), "demos_s": round(t1 - t0, 1),
                         "train_s": round(t2 - t1, 1), "eval_s": round(t3 - t2, 1)})
            if on_row is not None:
                on_row(rows[-1])
    return rows


def _steps(dataset: Path) -> int:
    from shiftgrid.agents.datasets import open_dataset

    return int(open_dataset(dataset).total_steps)


HEADER = ("| demos | demo steps | passes | eval episodes | seen in demos | success | success (unseen levels) | "
          "demos s | train s | eval s |")


def row_line(r: Mapping[str, Any]) -> str:
    """One row of :func:`table`."""
    fresh = "–" if r["success_fresh"] is None else f"{r['success_fresh']:.3f}"
    return (f"| {r['demos']:,} | {r['demo_steps']:,} | {r['passes']} | {r['eval_episodes']:,} | {r['overlap']} | "
            f"{r['success']:.3f} | {fresh} | {r['demos_s']} | {r['train_s']} | {r['eval_s']} |")


def table(rows: Sequence[Mapping[str, Any]], target: float = 0.99) -> str:
    """The rows as Markdown, and the smallest count that reached ``target`` success.

    Example:
        >>> print(table([{"demos": 10, "demo_steps": 40, "passes": 5.0, "eval_episodes": 2, "overlap": 0,
        ...               "success": 0.5, "success_fresh": 0.5, "demos_s": 1.0, "train_s": 2.0, "eval_s": 3.0}]).splitlines()[-1])
        smallest demonstration count reaching 0.99 success: not reached
    """
    lines = [HEADER, "|---" * HEADER.count(" | ") + "|---|"] + [row_line(r) for r in rows]
    met = [r["demos"] for r in rows if r["success"] >= target]
    lines += ["", f"smallest demonstration count reaching {target} success: {min(met):,}" if met else
              f"smallest demonstration count reaching {target} success: not reached"]
    return "\n".join(lines)

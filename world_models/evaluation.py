"""World models scored under shift: open-loop prediction of real episodes on every split.

For a model and the behaviour policy it was trained with (:mod:`shiftgrid.world_models.behaviour`;
for a Dreamer's model, the Dreamer agent itself: :mod:`shiftgrid.world_models.run_model`),
:func:`record_splits` plays real episodes on every split with that behaviour, and
:func:`score_splits` scores the model on them: for windows of each episode the model filters
``context`` real steps (:meth:`~shiftgrid.world_models.interface.WorldModel.observe`), then
predicts ``max(horizons)`` steps open-loop given the real actions
(:meth:`~shiftgrid.world_models.interface.WorldModel.imagine` with ``decode``). A window starts
at every ``stride``-th step of an episode; horizon ``k`` scores the ``k``-th predicted step of
every window whose ``k``-th step is still inside its episode (so a window near the end counts
for short horizons only, and an episode of fewer than ``context + k - 1`` steps not at all;
``windows@k`` says how many were scored: short competent episodes, such as the oracle's on
GoTo, leave long horizons few windows or none, and their metrics NaN).

Metrics at horizon ``k`` (names carry it: ``cell_accuracy@5``), of the predicted frame's most
likely codes (:meth:`~shiftgrid.world_models.interface.ObsDistribution.mode`) unless said:

- ``cell_accuracy``: share of view cells whose (type, colour, state) are all right;
  ``changed_cell_accuracy``: the same over the cells that differ from the previous real frame
  (a static background otherwise hides every error; NaN where no cell changed);
  ``frame_accuracy``: share of frames with every cell right; ``direction_accuracy``.
- ``obs_nll``: exact negative log-likelihood of the real frame (all cells and the direction)
  under the predicted distribution, nats per frame.
- ``reward_f1``: a step is rewarded when its reward exceeds :data:`REWARD_THRESHOLD` (0.05),
  the real reward and the predicted mean alike (minigrid pays 0, or at least 0.1 for a
  success, so for real steps this is ``reward > 0``); ``termination_f1``: a real step is
  positive when it terminated the episode (truncation is not termination), a predicted one
  when its continuation probability is below 0.5. F1 is ``2 TP / (2 TP + FP + FN)``; NaN where
  there are neither real nor predicted positives.
- ``return_gap``: mean ``|imagined - real|`` return of the behaviour over the ``k`` predicted
  steps (undiscounted; the imagined one weights each predicted reward by the predicted
  probability that the episode was still going, DreamerV3's convention); ``return_bias``: the
  signed mean ``imagined - real``.

Seeds: episode ``i`` of every split resets with ``first_reset_seed(env_id, seed) + i``, as
``shiftgrid evaluate`` does (:mod:`shiftgrid.agents.evaluation`): on shiftgrid ids the
evaluated splits (``id``, ``<axis>/near|far``) are held out from the ``train`` split a world
model collects its data on by construction (own level-seed ranges and a level-hash bucket
training never draws); on ids without splits the seeds start at ``HELD_OUT_SEED_BASE`` (10^9),
which training collection never passes to ``reset``. ``reserved`` seed ranges (a run's
validation collection) that overlap the evaluation seeds are refused. Build the behaviour
with a fixed seed (``shiftgrid wm evaluate`` uses ``--seed``) and torch's generator (latent
samples) is seeded too, so an evaluation repeats exactly; the real episodes do not depend on
the model, so every run of one configuration is scored on the same ones.

Example:
    >>> from shiftgrid.world_models.behaviour import make_behaviour
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> from shiftgrid.world_models.models import build_model
    >>> model = build_model("rssm", "tiny", ObsSpec())
    >>> played = record_splits(make_behaviour("random", noise=1.0, seed=0), "shiftgrid/GoTo-v0", ["id", "size/far"],
    ...                        episodes=2, progress=False)
    >>> scores = score_splits(model, played, context=3, horizons=(1, 5), progress=False)
    >>> sorted(scores), 0 <= scores["id"]["cell_accuracy@5"] <= 1, scores["id"]["windows@1"] > 0
    (['id', 'size/far'], True, True)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from shiftgrid.agents.envs import has_splits, make_env
from shiftgrid.agents.evaluation import first_reset_seed, splits_to_evaluate
from shiftgrid.agents.report import ReportStyle
from shiftgrid.world_models.interface import ObsDistribution, WorldModel

#: A step counts as rewarded (real or predicted) when its reward is above this.
REWARD_THRESHOLD = 0.05
#: A predicted step counts as terminal when its continuation probability is below this.
CONTINUE_THRESHOLD = 0.5
DEFAULT_HORIZONS = (1, 5, 15)
DEFAULT_CONTEXT = 5
#: Metric -> the words report tables use (each is reported at every horizon: ``name@k``).
METRICS: dict[str, str] = {
    "cell_accuracy": "cell accuracy",
    "changed_cell_accuracy": "changed-cell accuracy",
    "frame_accuracy": "frame accuracy",
    "direction_accuracy": "direction accuracy",
    "obs_nll": "obs NLL (nats)",
    "reward_f1": "reward F1",
    "termination_f1": "termination F1",
    "return_gap": "return gap (abs.)",
    "return_bias": "return bias",
    "windows": "windows",
}
#: The metrics of the Markdown tables (everything is in results.json / results.csv).
TABLE_METRICS = ("changed_cell_accuracy", "frame_accuracy", "obs_nll", "return_gap")
#: One recorded episode in the replay layout (:mod:`shiftgrid.world_models.replay`): arrays of ``L + 1`` steps.
Episode = dict[str, np.ndarray]


def metric_names(horizons: Iterable[int]) -> list[str]:
    """Every metric at every horizon, in report order.

    Example:
        >>> metric_names([1, 5])[:3]
        ['cell_accuracy@1', 'cell_accuracy@5', 'changed_cell_accuracy@1']
    """
    return [f"{m}@{k}" for m in METRICS for k in horizons]


def check_horizons(horizons: Iterable[int], context: int) -> tuple[int, ...]:
    """Sorted distinct horizons; ``ValueError`` for a horizon or a context below 1.

    Example:
        >>> check_horizons([15, 1, 5, 5], 3)
        (1, 5, 15)
    """
    hs = tuple(sorted({int(k) for k in horizons}))
    if not hs or hs[0] < 1:
        raise ValueError(f"horizons must be integers >= 1, got {list(horizons)}")
    if context < 1:
        raise ValueError(f"context must be >= 1 real step, got {context}")
    return hs


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


@dataclass
class Tally:
    """Sums over scored predictions at one horizon; :meth:`metrics` turns them into the metrics."""

    frames: int = 0
    cells: int = 0
    cells_right: int = 0
    changed: int = 0
    changed_right: int = 0
    frames_right: int = 0
    direction_right: int = 0
    nll: float = 0.0
    reward_tp: int = 0
    reward_fp: int = 0
    reward_fn: int = 0
    term_tp: int = 0
    term_fp: int = 0
    term_fn: int = 0
    return_abs: float = 0.0
    return_signed: float = 0.0

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def metrics(self, horizon: int) -> dict[str, float]:
        """``name@horizon`` -> value (NaN where nothing was scored)."""
        n, nan = self.frames, float("nan")
        values = {
            "cell_accuracy": self.cells_right / self.cells if self.cells else nan,
            "changed_cell_accuracy": self.changed_right / self.changed if self.changed else nan,
            "frame_accuracy": self.frames_right / n if n else nan,
            "direction_accuracy": self.direction_right / n if n else nan,
            "obs_nll": self.nll / n if n else nan,
            "reward_f1": _f1(self.reward_tp, self.reward_fp, self.reward_fn),
            "termination_f1": _f1(self.term_tp, self.term_fp, self.term_fn),
            "return_gap": self.return_abs / n if n else nan,
            "return_bias": self.return_signed / n if n else nan,
            "windows": float(n),
        }
        return {f"{m}@{horizon}": v for m, v in values.items()}


def tally(dist: ObsDistribution, reward: Tensor, cont_prob: Tensor, imagined_return: Tensor, target: Mapping[str, Tensor],
          previous_image: Tensor, real_reward: Tensor, terminated: Tensor, real_return: Tensor) -> Tally:
    """Score ``N`` predicted frames (all at one horizon) against the real ones.

    Args:
        dist: predicted observation distributions ``(N, ...)``.
        reward, cont_prob: predicted reward (mean) and continuation probability ``(N,)``.
        imagined_return, real_return: returns over the predicted window ``(N,)``.
        target: the real frames: ``image`` ``(N, H, W, 3)`` and ``direction`` ``(N,)``.
        previous_image: the real frame before each target ``(N, H, W, 3)`` (which cells changed).
        real_reward, terminated: the real step's reward and termination ``(N,)``.

    Example:
        >>> image = torch.zeros(2, 1, 1, 3, dtype=torch.uint8)
        >>> logits = lambda n: torch.nn.functional.one_hot(torch.zeros(2, 1, 1, dtype=torch.long), n).float() * 50
        >>> dist = ObsDistribution(logits(11), logits(6), logits(3), torch.zeros(2, 4))
        >>> t = tally(dist, torch.zeros(2), torch.ones(2), torch.zeros(2), {"image": image, "direction": torch.tensor([0, 1])},
        ...           image, torch.zeros(2), torch.zeros(2, dtype=torch.bool), torch.zeros(2))
        >>> t.metrics(1)["cell_accuracy@1"], t.metrics(1)["direction_accuracy@1"]
        (1.0, 0.5)
    """
    mode = dist.mode()
    image = target["image"].to(mode["image"].device)
    right = (mode["image"] == image).all(-1)
    changed = (image != previous_image.to(image.device)).any(-1)
    real_pos = real_reward.float() > REWARD_THRESHOLD
    pred_pos = reward.float() > REWARD_THRESHOLD
    real_end, pred_end = terminated.bool(), cont_prob.float() < CONTINUE_THRESHOLD
    error = imagined_return.float() - real_return.float()

    def count(x: Tensor) -> int:
        return int(x.sum())

    return Tally(
        frames=int(right.shape[0]), cells=right.numel(), cells_right=count(right), changed=count(changed),
        changed_right=count(right & changed), frames_right=count(right.flatten(1).all(-1)),
        direction_right=count(mode["direction"] == target["direction"].to(image.device).long()),
        nll=float(-dist.log_prob({"image": image, "direction": target["direction"].to(image.device)}).double().sum()),
        reward_tp=count(real_pos & pred_pos), reward_fp=count(~real_pos & pred_pos), reward_fn=count(real_pos & ~pred_pos),
        term_tp=count(real_end & pred_end), term_fp=count(~real_end & pred_end), term_fn=count(real_end & ~pred_end),
        return_abs=float(error.abs().double().sum()), return_signed=float(error.double().sum()),
    )


# ---- real episodes ---------------------------------------------------------------------------

def evaluation_seeds(env_id: str, episodes: int, seed: int = 0, reserved: Sequence[tuple[int, int]] = ()) -> range:
    """The reset seeds of episodes ``0..episodes-1`` of every split; ``ValueError`` if one is ``reserved``.

    ``reserved`` holds inclusive ``(first, last)`` seed ranges the run used (its validation collection).

    Example:
        >>> evaluation_seeds("shiftgrid/GoTo-v0", 3), evaluation_seeds("MiniGrid-Empty-5x5-v0", 2)
        (range(0, 3), range(1000000000, 1000000002))
    """
    first = first_reset_seed(env_id, seed)
    seeds = range(first, first + episodes)
    for low, high in reserved:
        if low <= seeds[-1] and seeds[0] <= high:
            raise ValueError(f"evaluation seeds {seeds[0]}..{seeds[-1]} overlap seeds {low}..{high} the run collected "
                             "its validation data on; pass a --seed past them")
    return seeds


def _record(envs: gym.vector.SyncVectorEnv, behaviour: Any, seeds: Sequence[int], bar: tqdm) -> list[Episode]:
    """One episode per seed, played ``envs.num_envs`` side by side; each sub-env's steps after its episode end are dropped."""
    n, out = envs.num_envs, []
    for start in range(0, len(seeds), n):
        chunk = list(seeds[start:start + n])
        obs, _ = envs.reset(seed=chunk + [seeds[-1] + 1 + i for i in range(n - len(chunk))])  # spare sub-envs: discarded
        steps: list[list[dict[str, Any]]] = [[_step(obs, j)] for j in range(n)]
        active = np.arange(n) < len(chunk)
        while active.any():
            actions = np.asarray(behaviour.act(envs, obs))
            obs, reward, terminated, truncated, _ = envs.step(actions)
            for j in np.flatnonzero(active):
                steps[j][-1]["action"] = int(actions[j])
                steps[j].append({**_step(obs, j), "reward": float(reward[j]), "terminated": bool(terminated[j]),
                                 "truncated": bool(truncated[j])})
                if terminated[j] or truncated[j]:
                    active[j] = False
                    bar.update(1)
        out += [_stack(steps[j]) for j in range(len(chunk))]
    return out


def _step(obs: Mapping[str, np.ndarray], j: int) -> dict[str, Any]:
    return {k: np.asarray(v[j]) for k, v in obs.items()}


def _stack(steps: list[dict[str, Any]]) -> Episode:
    """Steps in the replay layout: ``action`` taken from each observation (0 at the end), reward into it (0 at the start)."""
    keys = [k for k in steps[0] if k not in ("action",)]
    defaults = {"action": (0, np.int64), "reward": (0.0, np.float32), "terminated": (False, bool), "truncated": (False, bool)}
    episode = {k: np.stack([np.asarray(s[k]) for s in steps]) for k in keys}
    for k, (d, dtype) in defaults.items():
        episode[k] = np.array([s.get(k, d) for s in steps], dtype=dtype)
    episode["is_first"] = np.arange(len(steps)) == 0
    return episode


def record_splits(behaviour: Any, env_id: str, splits: str | Iterable[str] = "all", episodes: int = 100, seed: int = 0, *,
                  env_kwargs: Mapping[str, Any] | None = None, n_envs: int = 8, reserved: Sequence[tuple[int, int]] = (),
                  progress: bool = True) -> dict[str, list[Episode]]:
    """Real episodes of ``behaviour`` (``act(envs, obs)`` on a ``SyncVectorEnv``) on every split, on the evaluation seeds.

    Returns:
        canonical split name -> ``episodes`` episodes, each a dict of ``(L + 1, ...)`` arrays in
        the replay layout (``image``, ``direction``, token keys, ``action``, ``reward``,
        ``terminated``, ``truncated``, ``is_first``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    names = splits_to_evaluate(env_id, splits)
    seeds = evaluation_seeds(env_id, episodes, seed, reserved)
    out: dict[str, list[Episode]] = {}
    bar = tqdm(total=len(names) * episodes, desc=f"play {env_id}", unit="episode", disable=not progress)
    try:
        for name in names:
            bar.set_postfix_str(name)
            split = name if has_splits(env_id) else None
            n = max(1, min(n_envs, episodes))
            envs = gym.vector.SyncVectorEnv([functools.partial(make_env, env_id, split, **dict(env_kwargs or {}))] * n)
            try:
                if hasattr(behaviour, "check"):
                    behaviour.check(envs)
                out[name] = _record(envs, behaviour, seeds, bar)
            finally:
                envs.close()
    finally:
        bar.close()
    return out


# ---- scoring ---------------------------------------------------------------------------------

def _windows(lengths: Sequence[int], context: int, horizon: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices of every window: context ``(W, C)``, predicted steps ``(W, K)`` (clipped to the episode), valid ``(W, K)``."""
    ctx, tgt, valid = [], [], []
    offset = 0
    for n in lengths:  # an episode of n observations: indices offset .. offset + n - 1
        starts = np.arange(0, n - context, stride)  # the last context step must have a next observation
        last = starts + context - 1
        steps = last[:, None] + np.arange(1, horizon + 1)[None]
        ctx.append(offset + starts[:, None] + np.arange(context)[None])
        valid.append(steps <= n - 1)
        tgt.append(offset + np.minimum(steps, n - 1))
        offset += n
    return np.concatenate(ctx), np.concatenate(tgt), np.concatenate(valid)


@torch.no_grad()
def score_episodes(model: WorldModel, episodes: Sequence[Episode], *, context: int = DEFAULT_CONTEXT,
                   horizons: Iterable[int] = DEFAULT_HORIZONS, stride: int = 1, batch_size: int = 1024) -> dict[str, float]:
    """Open-loop prediction metrics of ``model`` on real ``episodes`` (see the module docstring): ``name@k`` -> value."""
    hs = check_horizons(horizons, context)
    if stride < 1 or batch_size < 1:
        raise ValueError(f"stride and batch_size must be >= 1, got {stride}, {batch_size}")
    model.eval()
    device = next(model.parameters()).device
    keys = ["image", "direction", *(k for k, _ in model.spec.token_lengths), "action", "reward", "terminated",
            "truncated", "is_first"]
    missing = [k for k in keys if k not in episodes[0]]
    if missing:
        raise ValueError(f"the model reads {missing}, which the episodes do not hold (they hold {sorted(episodes[0])})")
    flat = {k: torch.as_tensor(np.concatenate([e[k] for e in episodes])).to(device) for k in keys}
    ctx, tgt, valid = (torch.as_tensor(a, device=device) for a in _windows([len(e["action"]) for e in episodes], context,
                                                                               hs[-1], stride))
    tallies = {k: Tally() for k in hs}
    for i in range(0, len(ctx), batch_size):
        c, t, v = ctx[i:i + batch_size], tgt[i:i + batch_size], valid[i:i + batch_size]
        batch = {k: x[c] for k, x in flat.items()}
        states, _ = model.observe(batch)
        imagined = model.imagine(states[:, -1], flat["action"][t - 1].long(), decode=True)
        p = imagined.predictions
        cont = p.cont_prob
        alive = torch.cumprod(torch.cat([torch.ones_like(cont[:, :1]), cont[:, :-1]], 1), 1)
        imagined_return = torch.cumsum(p.reward.float() * alive, 1)
        real_return = torch.cumsum(flat["reward"][t].float(), 1)
        for k in hs:
            rows = v[:, k - 1]
            if not rows.any():
                continue
            j = k - 1
            step = t[rows, j]
            dist = ObsDistribution(*(lg[rows, j] for lg in (p.obs.type_logits, p.obs.color_logits, p.obs.state_logits,
                                                            p.obs.direction_logits)))
            tallies[k] += tally(dist, p.reward[rows, j], cont[rows, j], imagined_return[rows, j],
                                {"image": flat["image"][step], "direction": flat["direction"][step]},
                                flat["image"][step - 1], flat["reward"][step], flat["terminated"][step],
                                real_return[rows, j])
    return {name: value for k in hs for name, value in tallies[k].metrics(k).items()}


def score_splits(model: WorldModel, recorded: Mapping[str, Sequence[Episode]], *, context: int = DEFAULT_CONTEXT,
                 horizons: Iterable[int] = DEFAULT_HORIZONS, stride: int = 1, batch_size: int = 1024, seed: int = 0,
                 progress: bool = True) -> dict[str, dict[str, float]]:
    """:func:`score_episodes` on every split of :func:`record_splits`: split -> ``name@k`` -> value, in report order.

    Latent samples are drawn from torch's generator seeded with ``seed`` (restored after): the same
    ``seed`` and ``batch_size`` give the same numbers (another batch size draws other samples).
    """
    hs = check_horizons(horizons, context)
    device = next(model.parameters()).device
    order = metric_names(hs)
    out = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for split in tqdm(recorded, desc="score", unit="split", disable=not progress):
            scores = score_episodes(model, recorded[split], context=context, horizons=hs, stride=stride,
                                    batch_size=batch_size)
            out[split] = {m: scores[m] for m in order}
    return out


def evaluate_world_model(model: WorldModel, behaviour: Any, env_id: str, splits: str | Iterable[str] = "all",
                         episodes: int = 100, *, context: int = DEFAULT_CONTEXT, horizons: Iterable[int] = DEFAULT_HORIZONS,
                         seed: int = 0, env_kwargs: Mapping[str, Any] | None = None, stride: int = 1, n_envs: int = 8,
                         batch_size: int = 1024, progress: bool = False) -> dict[str, dict[str, float]]:
    """:func:`record_splits` then :func:`score_splits`: split -> ``name@k`` -> value of one model.

    ``behaviour`` is the one the model was trained with (``make_behaviour(policy, noise=..., seed=...)``), or for
    a Dreamer's model the Dreamer agent (:meth:`~shiftgrid.world_models.run_model.RunWorldModel.behaviour`).
    Several models of one configuration: record once, score each (as ``shiftgrid wm evaluate`` does).

    Example:
        >>> from shiftgrid.world_models.behaviour import make_behaviour
        >>> from shiftgrid.world_models.interface import ObsSpec
        >>> from shiftgrid.world_models.models import build_model
        >>> scores = evaluate_world_model(build_model("rssm", "tiny", ObsSpec()), make_behaviour("random", noise=1.0, seed=0),
        ...                               "MiniGrid-Empty-5x5-v0", episodes=1, context=2, horizons=[1])
        >>> list(scores), scores["id"]["windows@1"] > 0
        (['id'], True)
    """
    check_horizons(horizons, context)
    played = record_splits(behaviour, env_id, splits, episodes, seed, env_kwargs=env_kwargs, n_envs=n_envs,
                           progress=progress)
    return score_splits(model, played, context=context, horizons=horizons, stride=stride, batch_size=batch_size,
                        seed=seed, progress=progress)


#: The learning curve of a ``wm train`` run's report: TensorBoard tag and the words of its axis.
ONE_STEP_CURVE = ("train/one_step/cell_accuracy", "one-step cell accuracy (training batches)")


def report_style(horizons: Iterable[int], curve: tuple[str, str] = ONE_STEP_CURVE) -> ReportStyle:
    """How the shift report of :func:`shiftgrid.agents.report.write_report` shows world-model metrics at ``horizons``
    (``curve``: the TensorBoard tag of its learning curves, and the words of their axis).

    Example:
        >>> style = report_style([1, 5])
        >>> style.label("obs_nll@5"), style.per_seed, len(style.table)
        ('obs NLL (nats) @5', 'changed_cell_accuracy@5', 8)
    """
    hs = sorted(set(horizons))
    return ReportStyle(
        title="World-model shift report",
        labels={f"{m}@{k}": f"{words} @{k}" for m, words in METRICS.items() for k in hs},
        table=[f"{m}@{k}" for m in TABLE_METRICS for k in hs],
        plotted=[f"{m}@{k}" for m in ("changed_cell_accuracy", "obs_nll") for k in hs],
        per_seed=f"changed_cell_accuracy@{hs[-1]}",
        gap_note="Gaps are id − shifted: for accuracies and F1 a positive gap is a loss under shift; for obs NLL and "
                 "the return gap (errors) a negative gap is.",
        curve=curve,
    )

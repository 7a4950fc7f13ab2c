"""World models scored on recorded real episodes: open-loop prediction metrics per horizon.

For windows of each episode the model filters ``context`` real steps
(:meth:`~shiftgrid.world_models.interface.WorldModel.observe`), then predicts ``max(horizons)``
steps open-loop given the real actions (:meth:`~shiftgrid.world_models.interface.WorldModel.imagine`
with ``decode``). A window starts at every ``stride``-th step of an episode; horizon ``k`` scores
the ``k``-th predicted step of every window whose ``k``-th step is still inside its episode (so a
window near the end counts for short horizons only, and an episode of fewer than ``context + k - 1``
steps not at all; ``windows@k`` says how many were scored: short competent episodes, such as the
oracle's on GoTo, leave long horizons few windows or none, and their metrics NaN).

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

Episodes come in the replay layout (:mod:`shiftgrid.world_models.replay`); playing them on
shift splits is :func:`shiftgrid.agents.evaluation.world_model.record_splits`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

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


def f1_score(real: Tensor, predicted: Tensor) -> float:
    """F1 of boolean ``predicted`` against ``real`` (same shape); NaN where neither has a positive.

    Example:
        >>> f1_score(torch.tensor([True, False, True]), torch.tensor([True, True, False]))
        0.5
    """
    return _f1(int((real & predicted).sum()), int((~real & predicted).sum()), int((real & ~predicted).sum()))


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
            obs = p.decoded
            dist = ObsDistribution(*(lg[rows, j] for lg in (obs.type_logits, obs.color_logits, obs.state_logits,
                                                            obs.direction_logits)))
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

"""Where a world model's open-loop predictions go wrong: by mechanism (the action) and by what could be known.

``shiftgrid wm evaluate`` scores changed cells as one number. This analysis splits the same
scores (the same episodes, windows and predicted modes, :mod:`shiftgrid.world_models.scoring`)
two ways, per split and horizon ``k``:

- **by mechanism**: changed-cell and frame accuracy after each action (``left``, ``right``,
  ``forward``, ``pickup``, ``drop``, ``toggle``, ``done``: the action that led into the scored frame),
  and the changed-cell accuracy on knowable and on novel cells after it;
- **by what the cell shows**: changed-cell accuracy on knowable and novel cells per true object
  type (``wall``, ``floor``'s ``empty``, ``door``, ``key``, ...), and what novel cells were mistaken for;
- **by what could be known**: a cell of the scored frame is *novel* when it shows something
  (not minigrid's ``unseen`` code), is not the agent's own cell, and its position in the level
  was not visible in any of the ``context`` frames the model filtered; otherwise it is
  *knowable*. No model can know a novel cell's content from its inputs, only guess it; the
  share of novel changed cells bounds what any model can score from its history, and the
  accuracy on knowable cells is what the learned mechanisms get right.

Knowing which cells are novel needs the agent's true pose at every step, which the analysis
reads from the environment (``agent_pos``, ``agent_dir``) while the episodes are played; no
model ever sees it. :func:`record_with_poses` records the episodes ``shiftgrid wm evaluate``
records (same behaviour, seeds and batching), each with a ``pose`` array ``(L + 1, 3)``.

Example:
    >>> from shiftgrid.agents.model_based.behaviour import make_behaviour
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> from shiftgrid.world_models.models import build_model
    >>> played = record_with_poses(make_behaviour("random", noise=1.0, seed=0), "shiftgrid/GoTo-v1", ["id"], episodes=2)
    >>> played["id"][0]["pose"].shape[1]
    3
    >>> table = breakdown(build_model("mechanism", "tiny", ObsSpec()), played["id"], context=3, horizons=(1,))
    >>> 0.0 <= table[1]["novel_share"] <= 1.0, sorted(table[1]["by_action"])[:2], "empty" in table[1]["by_type"]
    (True, ['done', 'drop'], True)
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from minigrid.core.constants import DIR_TO_VEC, IDX_TO_OBJECT

from shiftgrid.agents.evaluation.world_model import record_splits
from shiftgrid.world_models.interface import NUM_TYPES, WorldModel
from shiftgrid.world_models.scoring import DEFAULT_CONTEXT, Episode, _windows, check_horizons

#: minigrid's actions, by index.
ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


class PoseObservation(gym.Wrapper):
    """Adds ``pose`` = (x, y, direction) of the agent, read from the env, to every observation (analysis only)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = spaces.Dict({**cast(spaces.Dict, env.observation_space).spaces,
                                              "pose": spaces.Box(-(2 ** 31), 2 ** 31 - 1, (3,), np.int64)})

    def _with_pose(self, obs: dict) -> dict:
        u: Any = self.env.unwrapped
        return {**obs, "pose": np.array([*u.agent_pos, u.agent_dir], dtype=np.int64)}

    def reset(self, **kwargs: Any) -> tuple[dict, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._with_pose(obs), info

    def step(self, action: Any) -> tuple[Any, ...]:
        obs, *rest = self.env.step(action)
        return (self._with_pose(obs), *rest)


def record_with_poses(behaviour: Any, env_id: str, splits: str | Iterable[str] = "all", episodes: int = 100,
                      seed: int = 0, **kwargs: Any) -> dict[str, list[Episode]]:
    """:func:`~shiftgrid.agents.evaluation.world_model.record_splits`'s episodes (its keyword arguments), each with the
    agent's true ``pose`` ``(L + 1, 3)``."""
    return record_splits(behaviour, env_id, splits, episodes, seed, wrapper=PoseObservation, **{"progress": False, **kwargs})


def _cell_positions(pose: np.ndarray, view: int) -> np.ndarray:
    """Level positions ``(N, V, V, 2)`` of the view cells of agents at ``pose`` ``(N, 3)``."""
    forward = np.array(DIR_TO_VEC)[pose[:, 2]]  # (N, 2)
    right = np.stack([-forward[:, 1], forward[:, 0]], -1)
    i, j = np.meshgrid(np.arange(view), np.arange(view), indexing="ij")
    f, l = view - 1 - j, i - view // 2
    return pose[:, None, None, :2] + f[None, ..., None] * forward[:, None, None] + l[None, ..., None] * right[:, None, None]


def novel_cells(image: np.ndarray, pose: np.ndarray, context: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(W, V, V)``: which cells of frames ``target`` ``(W,)`` are novel given frames ``context`` ``(W, C)`` (flat indices).

    ``image`` ``(N, V, V, 3)`` and ``pose`` ``(N, 3)`` are the frames and true poses of the episodes, concatenated.
    """
    view = image.shape[1]
    where = _cell_positions(pose, view)  # (N, V, V, 2)
    code = (where[..., 0].astype(np.int64) << 32) + (where[..., 1].astype(np.int64) & 0xFFFFFFFF)
    seen = np.where(image[..., 0] != 0, code, np.iinfo(np.int64).min)  # unseen cells reveal nothing
    out = np.empty((len(target), view, view), dtype=bool)
    for w in range(len(target)):
        known = np.isin(code[target[w]], seen[context[w]].ravel())
        out[w] = ~known & (image[target[w], ..., 0] != 0)
    out[:, view // 2, view - 1] = False  # the agent's own cell shows what it carries
    return out


@torch.no_grad()
def breakdown(model: WorldModel, episodes: Sequence[Episode], *, context: int = DEFAULT_CONTEXT,
              horizons: Iterable[int] = (1, 5, 15), batch_size: int = 1024) -> dict[int, dict[str, Any]]:
    """Per horizon ``k``: changed-cell accuracy on knowable and novel cells, frame accuracy on frames without a
    novel cell, changed-cell and frame accuracy after each action, and changed-cell accuracy per true cell
    type (see the module docstring).

    Returns ``k -> {"changed_knowable", "changed_novel", "novel_share", "frame_knowable", "knowable_frames",
    "windows", "by_action": {action: {"windows", "changed_accuracy", "frame_accuracy", "changed_knowable",
    "changed_novel", "novel_share"}}, "by_type": {type: {"knowable", "knowable_accuracy", "novel",
    "novel_accuracy", "novel_predicted": {type: count}}}}`` (NaN where nothing was scored; types with no changed cell
    are left out).
    """
    hs = check_horizons(horizons, context)
    if "pose" not in episodes[0]:
        raise ValueError("the episodes hold no true poses; record them with record_with_poses")
    model.eval()
    device = next(model.parameters()).device
    keys = ["image", "direction", *(k for k, _ in model.spec.token_lengths), "action", "reward", "terminated",
            "truncated", "is_first"]
    arrays = {k: np.concatenate([e[k] for e in episodes]) for k in [*keys, "pose"]}
    flat = {k: torch.as_tensor(arrays[k]).to(device) for k in keys}
    ctx, tgt, valid = _windows([len(e["action"]) for e in episodes], context, hs[-1], 1)
    sums: dict[int, dict[str, Any]] = {k: {"c_known": 0, "r_known": 0, "c_novel": 0, "r_novel": 0, "f_known": 0,
                                           "fr_known": 0, "windows": 0,
                                           "actions": np.zeros((len(ACTIONS), 8), dtype=np.int64),
                                           "types": np.zeros((NUM_TYPES, 4), dtype=np.int64),
                                           "confusion": np.zeros((NUM_TYPES, NUM_TYPES), dtype=np.int64)} for k in hs}
    for i in range(0, len(ctx), batch_size):
        c, t, v = ctx[i:i + batch_size], tgt[i:i + batch_size], valid[i:i + batch_size]
        states, _ = model.observe({k: x[torch.as_tensor(c, device=device)] for k, x in flat.items()})
        actions = flat["action"][torch.as_tensor(t - 1, device=device)].long()
        predicted = model.imagine(states[:, -1], actions, decode=True).predictions.obs
        assert predicted is not None, "imagine(decode=True) decodes frames"
        mode = predicted.mode()["image"].cpu().numpy()
        for k in hs:
            rows = np.flatnonzero(v[:, k - 1])
            if not len(rows):
                continue
            step = t[rows, k - 1]
            real, before = arrays["image"][step], arrays["image"][step - 1]
            right = (mode[rows, k - 1] == real).all(-1)
            changed = (real != before).any(-1)
            novel = novel_cells(arrays["image"], arrays["pose"], c[rows], step)
            s = sums[k]
            s["c_known"] += int((changed & ~novel).sum())
            s["r_known"] += int((changed & ~novel & right).sum())
            s["c_novel"] += int((changed & novel).sum())
            s["r_novel"] += int((changed & novel & right).sum())
            clean = ~novel.reshape(len(rows), -1).any(-1)
            s["f_known"] += int(clean.sum())
            s["fr_known"] += int((clean & right.reshape(len(rows), -1).all(-1)).sum())
            s["windows"] += len(rows)
            act = arrays["action"][step - 1]
            known, new = changed & ~novel, changed & novel
            np.add.at(s["actions"], act, np.stack([np.ones(len(rows), dtype=np.int64), changed.sum((1, 2)),
                                                   (changed & right).sum((1, 2)), right.all((1, 2)),
                                                   known.sum((1, 2)), (known & right).sum((1, 2)),
                                                   new.sum((1, 2)), (new & right).sum((1, 2))], -1))
            kind = real[..., 0].astype(np.int64)
            for column, mask in enumerate((known, known & right, new, new & right)):
                np.add.at(s["types"][:, column], kind[mask], 1)
            np.add.at(s["confusion"], (kind[new], mode[rows, k - 1][..., 0].astype(np.int64)[new]), 1)
    return {k: _summary(s) for k, s in sums.items()}


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def _type_name(index: int) -> str:
    return IDX_TO_OBJECT.get(index, str(index))


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    by_action = {name: {"windows": int(row[0]), "changed_accuracy": _ratio(int(row[2]), int(row[1])),
                        "frame_accuracy": _ratio(int(row[3]), int(row[0])),
                        "changed_knowable": _ratio(int(row[5]), int(row[4])), "changed_novel": _ratio(int(row[7]), int(row[6])),
                        "novel_share": _ratio(int(row[6]), int(row[1]))}
                 for name, row in zip(ACTIONS, s["actions"]) if row[0]}
    by_type = {_type_name(t): {"knowable": int(row[0]), "knowable_accuracy": _ratio(int(row[1]), int(row[0])),
                               "novel": int(row[2]), "novel_accuracy": _ratio(int(row[3]), int(row[2])),
                               "novel_predicted": {_type_name(p): int(n) for p, n in enumerate(s["confusion"][t]) if n}}
               for t, row in enumerate(s["types"]) if row[0] or row[2]}
    return {"changed_knowable": _ratio(s["r_known"], s["c_known"]), "changed_novel": _ratio(s["r_novel"], s["c_novel"]),
            "novel_share": _ratio(s["c_novel"], s["c_known"] + s["c_novel"]),
            "frame_knowable": _ratio(s["fr_known"], s["f_known"]), "knowable_frames": _ratio(s["f_known"], s["windows"]),
            "windows": s["windows"], "by_action": by_action, "by_type": by_type}



def _cell(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"


def _each(tables: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> Iterable[tuple[str, dict[str, Any]]]:
    """``("| run | split | k |", breakdown at k)`` for every run, split and horizon of ``tables``."""
    for run, splits in tables.items():
        for split, table in splits.items():
            for k, v in table.items():
                yield f"| {run} | {split} | {k} |", v


def breakdown_markdown(tables: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> str:
    """Markdown of ``run -> split -> breakdown(...)``: what could be known, then per action, then per true cell type.

    Example:
        >>> row = {"changed_knowable": 0.9, "changed_novel": 0.5, "novel_share": 0.2, "frame_knowable": 0.8,
        ...        "knowable_frames": 0.7, "windows": 10, "by_action": {"forward": {"windows": 4, "changed_accuracy": 0.8,
        ...        "frame_accuracy": 0.5, "changed_knowable": 0.9, "changed_novel": 0.4, "novel_share": 0.2}},
        ...        "by_type": {"empty": {"knowable": 5, "knowable_accuracy": 1.0, "novel": 2, "novel_accuracy": 0.5,
        ...                              "novel_predicted": {"empty": 1, "wall": 1}}}}
        >>> print(breakdown_markdown({"seed=0": {"id": {1: row}}}).splitlines()[4])
        | seed=0 | id | 1 | 0.90 | 0.50 | 0.20 | 0.80 | 0.70 | 10 |
    """
    lines = ["## What could be known", "",
             "| run | split | k | changed, knowable | changed, novel | novel share | frame, no novel cell | frames with no novel cell | windows |",
             "|---|---|---|---|---|---|---|---|---|"]
    for head, v in _each(tables):
        lines.append(f"{head} " + " | ".join(_cell(v[m]) for m in (
            "changed_knowable", "changed_novel", "novel_share", "frame_knowable", "knowable_frames")) + f" | {v['windows']} |")
    lines += ["", "## By the action that led into the scored frame", "",
              "| run | split | k | action | frames | changed | changed, knowable | changed, novel | novel share | frame |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for head, v in _each(tables):
        for action, a in v["by_action"].items():
            lines.append(f"{head} {action} | {a['windows']} | " + " | ".join(_cell(a[m]) for m in (
                "changed_accuracy", "changed_knowable", "changed_novel", "novel_share", "frame_accuracy")) + " |")
    lines += ["", "## By what the changed cell truly shows", "",
              "| run | split | k | type | knowable cells | right | novel cells | right | novel cells predicted as |",
              "|---|---|---|---|---|---|---|---|---|"]
    for head, v in _each(tables):
        for kind, t in v["by_type"].items():
            guesses = ", ".join(f"{p} {n}" for p, n in sorted(t["novel_predicted"].items(), key=lambda pn: -pn[1]))
            lines.append(f"{head} {kind} | {t['knowable']} | {_cell(t['knowable_accuracy'])} | "
                         f"{t['novel']} | {_cell(t['novel_accuracy'])} | {guesses or '–'} |")
    return "\n".join(lines) + "\n"

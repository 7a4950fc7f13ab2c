"""Kickstarting from the oracle: the teacher's next optimal action as a training signal for a learner on the engine.

(The same teacher speaks words for advice distillation, :mod:`shiftgrid.agents.tensor_ppo.advice_distillation`.)

The teacher watches the first ``advice.watched_envs`` envs of the learner's batch and, at every
step they play, names the next action of an optimal plan from their current state (the exact
oracle, :class:`~shiftgrid.envs.teacher.oracle_teacher.OracleTeacher`, on the minigrid env set to the
engine env's state). The learner adds ``weight * cross_entropy(policy, teacher's action)`` over
those steps to its loss, the weight falling linearly to 0 over ``advice.fade_steps``; the learner
never sees the teacher's words or actions as input, and it is evaluated without the teacher. Once
the weight is 0 the teacher stops labelling (and costs nothing more).

A step has no label (``-1``) where the oracle has no plan: the mission is already complete, or the
learner has made it impossible (e.g. toggled away the box it should pick up). Its cost is counted
as ``actions_labelled`` (every label given) beside the learner's steps.

With ``words`` (a granularity: ``subgoal``, ``direction`` or ``action``) :class:`OracleLabels` also
says the advice at that granularity, from the same plan, as mission-vocabulary tokens
(:attr:`OracleLabels.advice`), counted as ``advice_tokens``.

Making a minigrid env for a level is most of a label's cost, so :class:`OracleLabels` keeps one per
watched env and reuses it while that env plays the same level (``TensorVectorEnv.to_minigrid(into=)``).

Example:
    >>> import torch
    >>> from shiftgrid.envs.engine.bank import build_bank
    >>> from shiftgrid.envs.engine.vector import make_tensor_vec
    >>> bank = build_bank("shiftgrid/GoTo-v1", "train", 8, workers=1, progress=False, save=False)
    >>> venv = make_tensor_vec("shiftgrid/GoTo-v1", 4, bank=bank); _ = venv.reset(seed=0)
    >>> labels = OracleLabels(venv, watched=2)
    >>> actions = labels.label(torch.ones(4, dtype=torch.bool))
    >>> actions.tolist()[2:], labels.labelled
    ([-1, -1], 2)
"""

from __future__ import annotations

from typing import Any

import torch

from shiftgrid.envs.language import tokenize
from shiftgrid.envs.oracle import UnsolvableLevel
from shiftgrid.envs.teacher.advice import TRAINING_PROTOCOLS, AdviceConfig, advice_text, fade_probability
from shiftgrid.envs.teacher.oracle_teacher import OracleTeacher
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, encode

#: The label of a step the teacher did not (or could not) label.
NO_LABEL = -1
#: Why an env cannot be kickstarted (``{env}``: its id): the one wording, checked on the config and on the env.
NOT_PLANNED = "kickstarting and advice distillation ask the exact oracle, which plans shiftgrid ids' levels; {env} is not one (valid: shiftgrid/<Family>-v<N> ids)"


def advice_weight(advice: AdviceConfig, step: int) -> float:
    """The weight of the kickstarting (or distillation) loss at training step ``step``: ``advice.weight``, falling
    linearly over ``fade_steps``; 0 for advice that is not a training signal. While it is above 0 the teacher speaks.

    Example:
        >>> advice_weight(AdviceConfig("action", protocol="kickstart", weight=2.0, fade_steps=100), 25)
        1.5
    """
    if not advice.enabled or advice.protocol not in TRAINING_PROTOCOLS:
        return 0.0
    return advice.weight * fade_probability(advice, step)


class OracleLabels:
    """The oracle's next action for each of the first ``watched`` envs of an engine vector env, as it stands.

    ``venv`` is the engine's :class:`~shiftgrid.envs.engine.vector.TensorVectorEnv` (under any curriculum
    wrapper: the envs' states are the engine's). ``labelled`` and ``unsolvable`` count labels given and
    states without a plan since construction, ``tokens`` the advice's words (:meth:`restore_counts` sets
    them on a resume). With ``words``, each :meth:`label` also sets :attr:`advice`: ``(watched,
    DEFAULT_MAX_LEN)`` token ids of what the teacher says at that granularity (all padding: silence,
    where it has no plan).
    """

    def __init__(self, venv: Any, watched: int, words: str | None = None):
        if getattr(getattr(venv, "source", None), "kind", None) != "split":
            env_id = getattr(getattr(venv, "source", None), "env_id", type(venv).__name__)
            raise ValueError(NOT_PLANNED.format(env=env_id))
        self.venv, self.watched = venv, min(int(watched), venv.num_envs)
        self.teacher = OracleTeacher()
        self._envs: dict[int, tuple[int, Any]] = {}  # watched env -> (store row it plays, its minigrid env)
        self.labelled = self.unsolvable = self.tokens = 0
        self.words = words
        self.advice = torch.zeros(self.watched, DEFAULT_MAX_LEN, dtype=torch.int64, device=venv.device)

    def label(self, acting: torch.Tensor) -> torch.Tensor:
        """``(num_envs,)`` int64 on the env's device: the teacher's action for watched envs where ``acting``, else ``-1``.

        ``acting`` ``(num_envs,)`` bool marks the envs whose action this step counts (not the engine's
        reset steps, whose action is ignored).
        """
        out = torch.full((self.venv.num_envs,), NO_LABEL, dtype=torch.int64)
        advice = torch.zeros(self.advice.shape, dtype=torch.int64) if self.words is not None else None
        acting = acting[: self.watched].cpu()
        for i in range(self.watched):
            if not bool(acting[i]):
                continue
            row = self.venv.level_of(i)
            cached = self._envs.get(i)
            env = self.venv.to_minigrid(i, into=cached[1] if cached is not None and cached[0] == row else None)
            self._envs[i] = (row, env)
            try:
                plan = self.teacher.plan(env)
            except (UnsolvableLevel, ValueError):  # no plan: mission complete, or made impossible
                self.unsolvable += 1
                continue
            out[i] = int(plan.actions[0])
            self.labelled += 1
            if advice is not None and self.words is not None:
                text = advice_text(self.words, env, self.teacher, plan, int(plan.actions[0]))
                advice[i] = torch.from_numpy(encode(text, advice.shape[1]))
                self.tokens += len(tokenize(text))
        if advice is not None:
            self.advice = advice.to(self.venv.device)
        return out.to(self.venv.device)

    def counts(self) -> tuple[int, int, int]:
        """``(labelled, unsolvable, tokens)`` so far."""
        return self.labelled, self.unsolvable, self.tokens

    def restore_counts(self, labelled: int, unsolvable: int, tokens: int = 0) -> None:
        """Continue the counts of an earlier run (a resume)."""
        self.labelled, self.unsolvable, self.tokens = int(labelled), int(unsolvable), int(tokens)

    def close(self) -> None:
        for _, env in self._envs.values():
            env.close()
        self._envs.clear()

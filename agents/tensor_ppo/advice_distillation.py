"""Advice distillation: a policy that reads the teacher's words, and an advice-free policy that learns its behaviour.

The protocol of Watkins et al. (2021), *Teachable Reinforcement Learning via Advice
Distillation*, on the engine (``--algo tensor-ppo --advice <granularity> --set
advice.protocol=distill``). Two policies train side by side in one run:

- the **advised** policy reads the observation *and* the oracle teacher's advice at the chosen
  granularity (``subgoal``, ``direction`` or ``action``, :mod:`shiftgrid.envs.teacher.advice`),
  as words (:class:`~shiftgrid.agents.tensor_ppo.networks.CheapEncoder` with ``advice_vocab``);
  it plays the first ``advice.watched_envs`` envs of the batch and learns from their rewards by PPO;
- the **learner** (the run's policy, the one saved, evaluated and compared) never sees advice: it
  plays the other envs and learns from their rewards by PPO, and on the advised policy's steps it
  also learns the advised policy's action distribution, a cross-entropy
  (:func:`distillation_loss`) with ``advice.weight`` falling to 0 over ``advice.fade_steps``.

Once the weight is 0 the advised policy stops playing and the teacher stops speaking: the learner
plays every env and learns by PPO alone. Every env step counts toward the run's steps, the
advised policy's included; the teacher's cost is ``utterances`` (states it spoke in) and
``advice_tokens``.

Example:
    >>> import torch
    >>> student = torch.tensor([[0.0, 0.0]]); advised = torch.tensor([[0.0, 10.0]])
    >>> round(float(distillation_loss(student, advised)), 3)  # log 2: the student is uniform
    0.693
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from shiftgrid.agents.tensor_ppo.networks import ActorCritic
from shiftgrid.envs.language import MISSION_VOCAB_SIZE, VOCAB


def advised_network(extractor: Mapping[str, Any], hidden: int) -> ActorCritic:
    """The advised policy: the ``cheap`` network that also reads the ``advice`` words (every word of the vocabulary)."""
    return ActorCritic.build("cheap", MISSION_VOCAB_SIZE, {**extractor, "advice_vocab": len(VOCAB)}, hidden)


def distillation_loss(student_logits: torch.Tensor, advised_logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the student's policy toward the advised policy's (no gradient flows into the advised one)."""
    target = torch.softmax(advised_logits.detach(), dim=1)
    return -(target * torch.log_softmax(student_logits, dim=1)).sum(dim=1).mean()

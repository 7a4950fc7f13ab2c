"""A tensor-ppo rollout, ``(T, N, ...)`` tensors on the engine's device, and its GAE advantages.

Example:
    >>> T, N = 2, 1
    >>> z = torch.zeros(T, N); f = torch.zeros(T, N, dtype=torch.bool)
    >>> r = Rollout({}, z, z, z, torch.tensor([[0.], [1.]]), f, f, ~f, f, z, z, torch.zeros(N))
    >>> gae(r, gamma=1.0, lam=1.0)[1][:, 0].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Rollout:
    """One rollout, ``(T, N, ...)`` tensors on the device.

    Per step: the observation the action was chosen in, the action, its log-probability and the
    value, then what the step returned: ``rewards``, ``terminated``, ``ended`` (terminated or
    truncated), ``success``, and the episode's return and length so far (read where it ended).
    ``valid`` is False on the engine's reset steps. ``last_value`` is the value of the observation
    after the last step. ``first`` marks an episode's first observation, and ``state`` ``(N, memory)``
    is the policy's recurrent state before the first step (no columns without memory). ``labels``
    ``(T, N)``: the kickstarting teacher's action per step (-1: none; empty when no teacher labelled).
    ``advised``: advice distillation's advised policy acted in the first ``advised`` envs (0: none did);
    ``spoken``: advice as words, the teacher spoke in the first ``spoken`` envs (0: it was silent).
    """

    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    ended: torch.Tensor
    valid: torch.Tensor
    success: torch.Tensor
    returns_so_far: torch.Tensor
    lengths: torch.Tensor
    last_value: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    first: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    state: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    labels: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    advised: int = 0
    spoken: int = 0


def gae(r: Rollout, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets ``(T, N)`` of a rollout (zero on reset steps).

    Step ``t``'s next observation is step ``t + 1``'s (the last one's is ``last_value``'s), also
    where an episode ended: it is then the episode's last observation, so a truncated episode is
    bootstrapped from it, a terminated one is not, and no advantage flows across the end.

    Example:
        >>> T, N = 3, 1
        >>> z = torch.zeros(T, N); f = torch.zeros(T, N, dtype=torch.bool)
        >>> r = Rollout({}, z, z, z, torch.tensor([[0.], [0.], [1.]]), f, f, ~f, f, z, z, torch.zeros(N))
        >>> adv, ret = gae(r, gamma=0.5, lam=1.0)
        >>> ret[:, 0].tolist()
        [0.25, 0.5, 1.0]
    """
    steps = r.rewards.shape[0]
    advantages = torch.zeros_like(r.rewards)
    running = torch.zeros_like(r.last_value)
    for t in reversed(range(steps)):
        next_value = r.last_value if t == steps - 1 else r.values[t + 1]
        delta = r.rewards[t] + gamma * next_value * (~r.terminated[t]) - r.values[t]
        running = delta + gamma * lam * (~r.ended[t]) * running
        running = running * r.valid[t]  # a reset step passes nothing back (its predecessor ended anyway)
        advantages[t] = running
    return advantages, (advantages + r.values) * r.valid

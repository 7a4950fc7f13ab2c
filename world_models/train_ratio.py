"""The train ratio: replayed steps per environment step, paid out as whole updates of ``B x T`` replayed steps.

Both the world-model trainer and Dreamer schedule their updates with it: each batch of
environment steps adds ``steps * ratio / (B * T)`` updates of credit, and every whole unit of
credit is one update. The fraction left over carries to the next steps (and into checkpoints).

Example:
    >>> ratio = TrainRatio(ratio=32.0, batch_size=16, seq_len=64)   # one update per 32 env steps
    >>> ratio.add(8); [ratio.take() for _ in range(2)]
    [False, False]
    >>> ratio.add(24); ratio.take(), ratio.take()
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainRatio:
    """Update credit of ``ratio`` replayed steps per environment step, in updates of ``batch_size x seq_len``."""

    ratio: float
    batch_size: int
    seq_len: int
    credit: float = 0.0

    def add(self, env_steps: int) -> None:
        """Credit ``env_steps`` environment steps."""
        self.credit += env_steps * self.ratio / (self.batch_size * self.seq_len)

    def take(self) -> bool:
        """Spend one update of credit if there is one (True: update now)."""
        if self.credit >= 1.0:
            self.credit -= 1.0
            return True
        return False

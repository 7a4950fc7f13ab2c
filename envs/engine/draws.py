"""Counter-based random numbers: the same draws on every device, from ``(seed, stream, counter)`` alone.

The engine draws what a step needs (the slip of the rules axis, the next level at an
auto-reset) from a hash of the run's seed, the env's stream id and its own counter
(SplitMix64's finaliser), in int64 tensor arithmetic. No generator state lives on a device,
nothing syncs with the host, a CPU run and a CUDA run draw the same numbers, and one env run
alone draws what it draws inside a batch.

Example:
    >>> import torch
    >>> u = uniform(torch.tensor(0), torch.arange(3), torch.zeros(3, dtype=torch.int64), 0)
    >>> u.dtype, bool(((0 <= u) & (u < 1)).all())
    (torch.float64, True)
    >>> float(u[1]) == reference_uniform(0, 1, 0, 0)
    True
"""

from __future__ import annotations

import torch

_MASK = (1 << 64) - 1
_GOLDEN, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _signed(v: int) -> int:
    v &= _MASK
    return v - (1 << 64) if v >= 1 << 63 else v


def _lsr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 ``x`` by ``k`` (torch's ``>>`` is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function on int64 tensors (wrapping arithmetic)."""
    x = x + _signed(_GOLDEN)
    x = (x ^ _lsr(x, 30)) * _signed(_M1)
    x = (x ^ _lsr(x, 27)) * _signed(_M2)
    return x ^ _lsr(x, 31)


def uniform(seed: torch.Tensor, stream: torch.Tensor, counter: torch.Tensor, k: int) -> torch.Tensor:
    """float64 draws in [0, 1): one per env, from the run's ``seed``, each env's ``stream`` and ``counter``, and draw ``k``."""
    h = mix(mix(mix(seed + stream) ^ counter) + k)
    return _lsr(h, 11).to(torch.float64) * (1.0 / (1 << 53))


# -- the same in Python integers (tests, and documentation of the arithmetic) -------------------------

def _reference_mix(x: int) -> int:
    x = (x + _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def reference_uniform(seed: int, stream: int, counter: int, k: int) -> float:
    """:func:`uniform` for one env, in Python integers."""
    h = _reference_mix((_reference_mix((_reference_mix((seed + stream) & _MASK) ^ (counter & _MASK))) + k) & _MASK)
    return (h >> 11) * (1.0 / (1 << 53))

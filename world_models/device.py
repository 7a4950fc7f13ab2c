"""Where tensors live: the one rule turning a ``--device`` value into a torch device, and why CUDA is absent.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shiftgrid.envs.errors import UserInputError

if TYPE_CHECKING:
    import torch


class DeviceError(UserInputError, ValueError):
    """A device this torch cannot use: an unknown name, or CUDA asked for where none is present."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; anything else is checked to exist.

    Raises:
        DeviceError: an unknown device, or CUDA asked for but absent (naming what is valid).
    """
    import torch  # here, so that the error class can be imported (and caught) without torch

    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:<index>") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but this torch sees no CUDA device; use --device auto or cpu")
    return dev


def no_cuda_reason() -> str | None:
    """Why this torch cannot use CUDA (built without it, or no device seen); ``None`` where it can.

    Example:
        >>> reason = no_cuda_reason()
        >>> reason is None or reason.startswith("torch ")
        True
    """
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"

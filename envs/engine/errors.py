"""The engine's user errors (no torch needed to name them): each says what was given and what is valid.

Both derive from :class:`~shiftgrid.envs.errors.UserInputError`, so the command line prints them as
one line and exits 2.

Example:
    >>> from shiftgrid.envs.errors import UserInputError
    >>> issubclass(EngineError, UserInputError) and issubclass(BankError, ValueError)
    True
"""

from __future__ import annotations

from shiftgrid.envs.errors import UserInputError


class EngineError(UserInputError, ValueError):
    """Bad input to the engine: actions of the wrong shape or range, a device torch cannot use, a bad level index,
    ``num_envs`` < 1, or no torch to run it."""


class BankError(UserInputError, ValueError):
    """A bank that cannot be used: another splits, family, minigrid or format version, a corrupt file, too few levels."""

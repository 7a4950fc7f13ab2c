"""The base of every error that means the user gave bad input.

An unknown id, split, algorithm or factor value, a malformed config, an unreadable checkpoint, a
device this torch cannot use: each raises an error that names what was given and what is valid,
and each error class derives from :class:`UserInputError` as well as from its usual base
(``ValueError`` mostly). The command line catches this one class, prints the message as one line
and exits with status 2, without importing the heavy parts of the suite to recognise it.

Example:
    >>> from shiftgrid.envs import errors, factors
    >>> issubclass(factors.FactorError, errors.UserInputError) and issubclass(factors.FactorError, ValueError)
    True
"""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user: the message says what was given and what is valid (the CLI: one line, exit 2)."""

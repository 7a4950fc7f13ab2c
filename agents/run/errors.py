"""The run machinery's user errors (the CLI prints each as one line and exits 2)."""

from __future__ import annotations

from shiftgrid.envs.errors import UserInputError


class ConfigError(UserInputError, ValueError):
    """A malformed configuration: unreadable YAML, a bad ``--set``, an unknown key or a wrong type."""

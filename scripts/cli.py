"""The ``shiftgrid`` command: one subcommand per module in :data:`COMMANDS`.

Each command module defines ``add_parser(subparsers)`` (which sets ``func``) and the function
it points at. A user error (bad id, split, factor, config, checkpoint) prints one line and
exits with status 2; nothing prints a traceback for those.

Example:
    $ shiftgrid envs
    $ shiftgrid benchmark envs --seconds 5
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules (``shiftgrid.scripts.<name>_cmd``), in the order ``--help`` lists them.
COMMANDS = ("main", "envs", "check", "benchmark", "train", "evaluate")


class UserError(Exception):
    """Raised by commands for bad input; the CLI prints its message and exits 2."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean the user gave bad input (printed as one line, exit 2)."""
    from shiftgrid.envs import FactorError, SplitError, UnknownEnvError

    errors: tuple[type[BaseException], ...] = (UserError, FactorError, SplitError, UnknownEnvError)
    try:  # the learner side needs torch; without it only the environment errors exist
        from shiftgrid.agents.checkpoint import CheckpointError
        from shiftgrid.agents.config import ConfigError
    except ImportError:
        return errors
    return errors + (CheckpointError, ConfigError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftgrid",
        description="Grid-world agents and world models, evaluated under distribution shift.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"shiftgrid.scripts.{name}_cmd").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_error_types() as e:
        print(f"shiftgrid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"shiftgrid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module, so commands' ``UserError`` is the class caught above.
    from shiftgrid.scripts.cli import main as _main

    sys.exit(_main())

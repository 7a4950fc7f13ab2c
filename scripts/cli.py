"""The ``shiftgrid`` command: one subcommand per module in :data:`COMMANDS`.

Each command module defines ``add_parser(subparsers)`` (which sets ``func``) and the function
it points at. A user error (bad id, split, factor, config, checkpoint) prints one line and
exits with status 2; nothing prints a traceback for those.

Modules are imported one by one: on the base install (no ``[agents]`` extra) the environment
commands (``envs``, ``check``, ``benchmark envs``) work, and a learner command says in one
line which extra to install (exit 2).

Example:
    $ shiftgrid envs
    $ shiftgrid benchmark envs --seconds 5
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from typing import Callable, NoReturn

from shiftgrid.envs.errors import UserInputError

#: Subcommand modules (``shiftgrid.scripts.<name>_cmd``), in the order ``--help`` lists them.
COMMANDS = ("main", "envs", "check", "bank", "benchmark", "train", "evaluate", "sweep", "demos", "wm")
#: Top-level packages of the ``[agents]`` extra: a command whose module needs one is replaced by a hint.
AGENTS_EXTRA = ("torch", "stable_baselines3", "sb3_contrib", "tensorboard", "pandas", "matplotlib", "PIL", "scipy", "minari",
                "h5py")
INSTALL_AGENTS = "pip install 'shiftgrid[agents]'"
#: Top-level packages of the ``[sweep]`` extra (``shiftgrid sweep --backend ray``).
SWEEP_EXTRA = ("ray",)
INSTALL_SWEEP = "pip install 'shiftgrid[sweep]'"


class UserError(UserInputError):
    """Raised by commands for bad input; the CLI prints its message and exits 2 (as for every :class:`UserInputError`)."""


def one_line_errors(parser: argparse.ArgumentParser, prog: str) -> None:
    """Make ``parser``'s bad-flag errors one line and exit 2 (``<prog>: error: ...``), like other user errors."""
    def error(message: str) -> NoReturn:
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]


def package_version() -> str:
    """The installed distribution's version (``shiftgrid --version``)."""
    try:
        return importlib.metadata.version("shiftgrid")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The one-line hint for an import that failed because the ``[agents]`` (or ``[sweep]``) extra is not installed, else None."""
    if (error.name or "").split(".")[0] in SWEEP_EXTRA:
        return f"this needs the sweep extra (no module {error.name!r}): {INSTALL_SWEEP}"
    if (error.name or "").split(".")[0] not in AGENTS_EXTRA:
        return None
    return f"this command needs the learner extra (no module {error.name!r}): {INSTALL_AGENTS}"


def _add_commands(sub: argparse._SubParsersAction) -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"shiftgrid.scripts.{name}_cmd")
        except ModuleNotFoundError as e:
            if missing_extra(e) is None:
                raise
            p = sub.add_parser(name, help=f"(needs {INSTALL_AGENTS})", add_help=False)
            p.set_defaults(func=_raiser(e), needs_extra=True)
            continue
        module.add_parser(sub)


def _raiser(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise error

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftgrid",
        description="Grid-world agents and world models, evaluated under distribution shift.",
    )
    parser.add_argument("--version", action="version", version=f"shiftgrid {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "needs_extra", False):
        print(f"shiftgrid {args.command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(its options: shiftgrid {args.command} --help)", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserInputError as e:
        print(f"shiftgrid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        hint = missing_extra(e)
        if hint is None:
            raise
        print(f"shiftgrid {args.command}: error: {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"shiftgrid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module, so commands' ``UserError`` is the class caught above.
    from shiftgrid.scripts.cli import main as _main

    sys.exit(_main())

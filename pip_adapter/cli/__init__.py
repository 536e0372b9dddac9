"""The ``pip-adapter`` command line: demo, train, eval, restore, export."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pip_adapter._version import __version__
from pip_adapter.cli.errors import run_reporting_errors

# command -> its module in pip_adapter.cli (HELP, add_arguments, run)
COMMANDS = {
    "demo": "demo",
    "train": "train",
    "eval": "evaluate",
    "restore": "restore",
    "export": "export",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of the command line. A command's module is imported when its parser is
    built: only ``command``'s when it names one (a run imports what it runs), else all."""
    parser = argparse.ArgumentParser(
        prog="pip-adapter",
        description="Prompt-In-Prompt adapters for universal image restoration.",
    )
    parser.add_argument("--version", action="version", version=f"pip-adapter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [command] if command in COMMANDS else list(COMMANDS):
        module = importlib.import_module(f"pip_adapter.cli.{COMMANDS[name]}")
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors are reported as one line on stderr with exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        parser = build_parser(command)
    except ImportError as err:  # a missing extra (its message names it), not a bug of ours
        if (err.name or "").startswith("pip_adapter"):
            raise
        print(f"pip-adapter: error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    return run_reporting_errors(f"pip-adapter {args.command}", lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())

"""The ``pip-adapter`` command line: demo, train, eval, restore."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pip_adapter._version import __version__
from pip_adapter.cli.errors import run_reporting_errors

COMMANDS = ("demo", "train", "eval", "restore")
MODULES = {"demo": "demo", "train": "train", "eval": "evaluate", "restore": "restore"}


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="pip-adapter",
        description="Prompt-In-Prompt adapters for universal image restoration.",
    )
    parser.add_argument("--version", action="version", version=f"pip-adapter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        module = importlib.import_module(f"pip_adapter.cli.{MODULES[command]}")
        sub = commands.add_parser(command, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors are reported as one line on stderr with exit status 2."""
    args = build_parser().parse_args(argv)
    return run_reporting_errors(f"pip-adapter {args.command}", lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())

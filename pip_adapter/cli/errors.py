"""User errors as one line on stderr, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    ImportError,
    FloatingPointError,
)


def run_reporting_errors(name: str, action: Callable[[], None]) -> int:
    """Run ``action``; report user errors as ``NAME: error: ...`` and return the exit status
    (0, 2 for an error, 130 when interrupted). Anything else is a bug and keeps its traceback."""
    try:
        action()
    except USER_ERRORS as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return 0

"""User errors as one line on stderr, not a traceback."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    ImportError,
    FloatingPointError,
)


class SomeInputsFailed(Exception):
    """A command processed all its inputs but some failed (each reported on its own line);
    its message is the summary. Exit status 1, where a command that failed as a whole gives 2."""


def run_reporting_errors(name: str, action: Callable[[], None]) -> int:
    """Run ``action``; report user errors as ``NAME: error: ...`` and return the exit status
    (0; 1 when some inputs failed, ``SomeInputsFailed``; 2 for an error; 130 when interrupted).
    Anything else is a bug and keeps its traceback."""
    previous = _interrupt_on_sigterm()
    try:
        action()
    except SomeInputsFailed as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 1
    except USER_ERRORS as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> Any:
    """Make ``kill`` (SIGTERM) stop the command as Ctrl-C does, through the clean-up of
    ``finally`` blocks, so that an interrupted atomic write leaves no temporary file. Returns
    the previous handler (None where handlers cannot be set: outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    return signal.SIG_DFL if previous is None else previous  # None: set outside Python

"""Optional dependencies: the error that names the extra to install when one is missing.

``pip install pip-adapter`` brings what the adapter itself needs (``inject_pip``,
``PromptInPrompt``, ``load_adapter``, ``DegradationSensor``, ``pa.metrics``). Training, data
synthesis, image files, plots and the command line come with the ``train`` extra; the modules
that need it import its packages inside ``needs_extra``, so a user without them learns what to
install instead of reading a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["install_hint", "needs_extra"]


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'pip-adapter[{extra}]'"


@contextlib.contextmanager
def needs_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn a third-party module missing inside the block into an ImportError that names the
    module, what needs it (``feature``) and the extra that installs it. A missing module of
    pip-adapter itself is a bug, not a missing extra: it propagates unchanged."""
    try:
        yield
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if not missing or missing == __name__.partition(".")[0]:
            raise
        raise ImportError(
            f"{feature} needs {missing}, which comes with pip-adapter's {extra!r} extra: "
            f"{install_hint(extra)}",
            name=missing,
        ) from error

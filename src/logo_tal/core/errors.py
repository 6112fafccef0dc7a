"""Expected errors: bad input that a user can fix, reported in one line with exit status 2.

Every command (``train``, ``evaluate``, ``predict``, ``score``, ``validate``) treats an error in
this taxonomy as the user's to fix: it prints one line on standard error (the file, video or
config key, and what to do) and exits with :data:`EXIT_BAD_INPUT`. Any other exception is a bug
and keeps its traceback. ``LOGO_TAL_DEBUG=1`` (or Hydra's ``HYDRA_FULL_ERROR=1``) shows the
traceback of expected errors too (docs/decisions.md D100; the table is docs/bad_inputs.md).

The taxonomy:

* :class:`UserInputError` (a ``ValueError``) and its subclasses: ``AnnotationError``,
  ``FeatureFileError``, ``MissingFeaturesError``, ``ConfigError``, ``EvaluationInputError``,
  ``MissingScoresError``, ``CheckpointError``, ``NonFiniteError``, ...;
* ``FileNotFoundError`` and other ``OSError`` s that name a file (missing or unreadable data,
  checkpoints, output directories);
* whatever an entry point adds through ``extra`` (Hydra's composition errors in
  :mod:`logo_tal.app.cli`).

A wrapped error counts when its cause does (Hydra's ``InstantiationException`` carries the
constructor's error as ``__cause__``).

Imports nothing of the package and nothing heavy, so the scorer stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence

EXIT_BAD_INPUT = 2
# Where the README explains the expected data layout (missing-data messages point here).
DATA_DOCS = "README.md, section 'Data'"


class UserInputError(ValueError):
    """Bad input the user can fix (a file, a video, a config key); the message says which."""


class DataNotFoundError(UserInputError, FileNotFoundError):
    """A dataset's files are not where the config expects them."""


class CheckpointError(UserInputError):
    """A checkpoint that is missing, unreadable, or does not fit the run's configuration."""


class NonFiniteError(UserInputError):
    """A NaN or infinite loss or weight; the message names the batch's videos or the tensor."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the whole usage on a bad argument; keep errors to one line instead."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def debug_requested() -> bool:
    """True when ``LOGO_TAL_DEBUG`` or ``HYDRA_FULL_ERROR`` asks for full tracebacks."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
        for name in ("LOGO_TAL_DEBUG", "HYDRA_FULL_ERROR")
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _is_expected(exc: BaseException) -> bool:
    if isinstance(exc, UserInputError):
        return True
    return isinstance(exc, OSError) and (
        isinstance(exc, FileNotFoundError) or exc.filename is not None
    )


def expected_error(
    exc: BaseException, extra: Callable[[BaseException], bool] | None = None
) -> BaseException | None:
    """The first error of ``exc``'s chain (itself, then its causes) that is a user's to fix.

    Args:
        exc: the raised exception.
        extra: more kinds that count as expected (e.g. Hydra's composition errors).

    Returns:
        That error, or None when ``exc`` is a bug.
    """
    for err in _chain(exc):
        if _is_expected(err) or (extra is not None and extra(err)):
            return err
    return None


def one_line(message: str) -> str:
    """Fold a multi-line message (a list of config problems, Hydra's option lists) into one line.

    Bullets (``- ``) are dropped, lines are joined with ``; `` (with a space after a line that
    ends in ``:``), and Hydra's trailing "Config search path" listing is cut.
    """
    parts: list[str] = []
    for raw in str(message).splitlines():
        line = raw.strip()
        if line.startswith("Config search path"):
            break
        line = line[2:].strip() if line.startswith("- ") else line
        if not line:
            continue
        if parts and not parts[-1].endswith(":"):
            parts[-1] += ";"
        parts.append(line)
    return " ".join(parts) or type(message).__name__


def describe(err: BaseException) -> str:
    """The one-line text of an expected error (an ``OSError`` without text gets its file)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err)
        if isinstance(err, KeyError) and len(err.args) == 1 and text.startswith(("'", '"')):
            text = str(err.args[0])
    override = getattr(err, "override", None)  # Hydra's OverrideParseException
    if isinstance(override, str) and override not in text:
        text = f"override {override!r}: {text}"
    return one_line(text or type(err).__name__)


def report(prog: str, err: BaseException | str, stream=None) -> int:
    """Print ``prog: error: <one line>`` on standard error; return :data:`EXIT_BAD_INPUT`."""
    text = one_line(err) if isinstance(err, str) else describe(err)
    print(f"{prog}: error: {text}", file=stream or sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def run_reporting(
    prog: str,
    func: Callable[[], int | None],
    extra: Callable[[BaseException], bool] | None = None,
    debug: bool | None = None,
) -> int:
    """Run ``func``; an expected error becomes one line on stderr and status 2.

    Unexpected exceptions (bugs) propagate with their traceback, and so do expected ones when
    ``debug`` (default: :func:`debug_requested`).

    Returns:
        ``func``'s status (None counts as 0), or :data:`EXIT_BAD_INPUT`.
    """
    try:
        status = func()
    except Exception as exc:
        err = expected_error(exc, extra)
        if err is None or (debug_requested() if debug is None else debug):
            raise
        return report(prog, err)
    return int(status or 0)


def parse_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace | int:
    """Parse ``argv``; ``--help`` and usage errors become the exit status argparse chose (0 or
    2) instead of a ``SystemExit``, so a command's ``main`` can be called from Python."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)

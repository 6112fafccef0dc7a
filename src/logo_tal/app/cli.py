"""Run a ``@hydra.main`` function as a command: one line and exit status 2 for bad input.

Hydra catches every exception of a job, prints "Error executing job ..." and its own stripped
traceback, and exits with status 1. So the two halves of the reporting sit on both sides of
Hydra:

* inside the job, :func:`capture_errors` (under ``@hydra.main``) keeps an expected error
  (:mod:`logo_tal.core.errors`) from Hydra and ends the job normally; in a multirun the other jobs
  still run;
* around the Hydra call, :func:`hydra_command` asks Hydra to re-raise what happens before a
  job starts (``HYDRA_FULL_ERROR=1`` for the duration of the call: a config that does not
  compose, an unknown override), then prints one line for an expected error, captured or
  raised, and returns exit status 2.

Bugs keep their traceback. ``--help``, ``--cfg`` and ``--multirun`` are Hydra's, unchanged.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from logo_tal.app import resolvers  # noqa: F401  (every config resolver, before any config)
from logo_tal.core.errors import debug_requested, describe, expected_error, report, run_reporting

# The configs, by absolute path: a relative config_path is resolved against the module's package
# when the command runs as a console script (logo-tal-train), where no "conf" package exists.
CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")

# Set by hydra_command for the duration of one call: whether to capture expected job errors,
# and the errors captured (first one reported).
_session: dict[str, Any] = {"active": False, "errors": []}


def hydra_expected(err: BaseException) -> bool:
    """Hydra and OmegaConf errors that mean the config, not the code, is wrong."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        OverrideParseException,
        SearchPathException,
    )
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    if isinstance(err, InstantiationException):
        # A _target_ that does not exist, or a constructor rejecting its arguments (ValueError,
        # TypeError: the config's values), is the config's fault; the message names the key.
        cause = err.__cause__
        return str(err).startswith("Error locating target") or isinstance(
            cause, (ValueError, TypeError)
        )
    return isinstance(
        err,
        (
            ConfigCompositionException,
            OverrideParseException,
            SearchPathException,
            MissingMandatoryValue,
            InterpolationResolutionError,
        ),
    )


def _route_library_logs() -> None:
    """Send Lightning's messages (and Python warnings) to the job's log (console and
    ``<task>.log``) instead of Lightning's own stderr handler: standard error carries only the
    error line."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def capture_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a Hydra task (below ``@hydra.main``): inside :func:`hydra_command`, an expected
    error ends the job with None and is reported by :func:`hydra_command` instead of Hydra."""

    @functools.wraps(task)
    def job(cfg: Any) -> Any:
        _route_library_logs()
        logging.captureWarnings(True)
        try:
            return task(cfg)
        except Exception as exc:
            if not _session["active"] or expected_error(exc, hydra_expected) is None:
                raise
            _session["errors"].append(exc)
            _record_failure(exc)
            return None
        finally:
            logging.captureWarnings(False)

    return job


def _record_failure(exc: BaseException) -> None:
    """Leave the reason in the job's directory: a multirun's summary lists the job as missing
    with it (the job itself ends normally, so Hydra does not know it failed)."""
    from hydra.core.hydra_config import HydraConfig

    from logo_tal.sweeps.summary import write_failure

    if HydraConfig.initialized():
        reason = f"{type(exc).__name__}: {describe(exc)}"
        write_failure(HydraConfig.get().runtime.output_dir, reason)


def hydra_command(
    prog: str, hydra_main: Callable[[], object], argv: Sequence[str] | None = None
) -> int:
    """Call a ``@hydra.main``-decorated function with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        prog: the command's name, the prefix of the error line.
        hydra_main: the decorated function (called without arguments).
        argv: command-line overrides and flags, for in-process use (tests).

    Returns:
        0, or :data:`logo_tal.core.errors.EXIT_BAD_INPUT` after an expected error.
    """
    from hydra.core.global_hydra import GlobalHydra

    debug = debug_requested()
    saved_env = os.environ.get("HYDRA_FULL_ERROR")
    saved_argv = sys.argv
    os.environ["HYDRA_FULL_ERROR"] = "1"
    if argv is not None:
        sys.argv = [saved_argv[0] if saved_argv else prog, *argv]
    GlobalHydra.instance().clear()
    _session.update(active=not debug, errors=[])

    def call() -> int:
        hydra_main()  # Hydra discards the task's return value
        errors = _session["errors"]
        if not errors:
            return 0
        message = describe(expected_error(errors[0], hydra_expected) or errors[0])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more failed job(s): see their logs)"
        return report(prog, message)

    try:
        return run_reporting(prog, call, hydra_expected, debug=debug)
    finally:
        _session.update(active=False, errors=[])
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
        GlobalHydra.instance().clear()

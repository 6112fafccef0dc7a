"""Run and sweep directory names: what ``${safe_name:...}`` and ``${logo_tal.cwd:}`` compute
(registered by :mod:`logo_tal.app.resolvers`)."""

from __future__ import annotations

import os


def safe_name(text: str) -> str:
    """Make a Hydra ``override_dirname`` usable as one directory name.

    Group overrides contain a slash (``model/encoder=conv``), which would nest the job directory
    of a multirun; it becomes ``model-encoder=conv``.
    """
    return str(text).replace("/", "-").replace("\\", "-") or "default"


def launch_dir() -> str:
    """The directory the command was started from (Hydra 1.3 does not chdir).

    Equal to ``${hydra:runtime.cwd}`` in a run, but also resolvable where Hydra's runtime is not
    set: the multirun sweeper resolves ``hydra.sweep.dir`` (which depends on ``paths.log_dir``)
    before any job exists, and ``oc.env`` evaluates its default even when the variable is set.
    """
    return os.getcwd()

"""OmegaConf resolvers used by the configs; registered on import (train/evaluate/predict)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from logo_tal.utils.sweeps import register_sweep_resolvers


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


def register_resolvers() -> None:
    """Register the package's resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("safe_name"):
        OmegaConf.register_new_resolver("safe_name", safe_name)
    if not OmegaConf.has_resolver("logo_tal.cwd"):
        OmegaConf.register_new_resolver("logo_tal.cwd", launch_dir)
    # logo_tal.sweep_group, logo_tal.job_name, logo_tal.threads_per_job (multirun jobs).
    register_sweep_resolvers()


register_resolvers()

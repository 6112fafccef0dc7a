"""Every OmegaConf resolver the configs use, registered in this one module, on import.

:mod:`logo_tal.app.cli` imports it, and every command module imports ``cli``: so a command has the
resolvers before Hydra resolves its first config (the multirun sweeper resolves
``hydra.sweep.dir`` before any job exists), and so does a launcher's job process, which imports
the command's module to unpickle the job. Code that composes configs without a command (tests,
notebooks) imports this module.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from logo_tal.data.config_resolvers import annotation_num_classes, extraction_field, scale
from logo_tal.utils.run_dirs import launch_dir, safe_name
from logo_tal.utils.sweeps import job_name, sweep_group, threads_per_job

RESOLVERS = {
    "safe_name": safe_name,  # override_dirname -> one directory name
    "logo_tal.cwd": launch_dir,  # where the command was started
    "logo_tal.sweep_group": sweep_group,  # W&B group of a multirun's jobs
    "logo_tal.job_name": job_name,
    "logo_tal.threads_per_job": threads_per_job,  # cores // parallel jobs
    "logo_tal.extraction": extraction_field,  # a field of the features' extraction.json
    "logo_tal.num_classes": annotation_num_classes,  # classes of an annotation file
    "logo_tal.scale": scale,  # X * FACTOR
}


def register_resolvers() -> None:
    """Register every resolver of :data:`RESOLVERS` once (safe to call repeatedly)."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()

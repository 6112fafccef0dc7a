"""What a job knows about the multirun it belongs to: its W&B group and name, its share of cores.

Read from Hydra's runtime config (``HydraConfig``), which every launcher sets in the job's own
process (basic, joblib, submitit). Without a Hydra runtime (tests composing configs, library
use) every function returns its single-run answer. Registered as OmegaConf resolvers by
:mod:`logo_tal.app.resolvers`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from logo_tal.utils.config_access import is_multirun


def _hydra_runtime() -> Any | None:
    """Hydra's config of this job, or None outside a Hydra run."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def group_name(task_name: str, sweep_dir: str | Path) -> str:
    """``<task_name>-<sweep dir name>``: the W&B group of every job of one multirun.

    The sweep directory's name is its start time (``conf/hydra/default.yaml``), so two sweeps of
    one task never share a group, and the group names the directory the jobs wrote to.
    """
    return f"{task_name}-{Path(str(sweep_dir)).name}"


def sweep_group(task_name: str) -> str:
    """``${logo_tal.sweep_group:${task_name}}``: the multirun's group, or "" for a single run."""
    hydra_cfg = _hydra_runtime()
    if not is_multirun(hydra_cfg):
        return ""
    return group_name(task_name, hydra_cfg.sweep.dir)


def job_name(task_name: str) -> str:
    """``${logo_tal.job_name:${task_name}}``: a multirun job's ``<num>_<overrides>`` (its run
    directory's name), so that the runs of a group tell their settings apart; else the task."""
    hydra_cfg = _hydra_runtime()
    if not is_multirun(hydra_cfg):
        return str(task_name)
    overrides = str(hydra_cfg.job.override_dirname).replace("/", "-")
    return f"{hydra_cfg.job.num}_{overrides}" if overrides else f"{hydra_cfg.job.num}"


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a SLURM allocation), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_job() -> int | None:
    """``${logo_tal.threads_per_job:}``: usable cores // jobs running at once, or None.

    Only a launcher that runs several jobs on one machine says how many (``hydra.launcher.n_jobs``,
    the joblib launcher; ``-1`` means one job per core). Elsewhere: None, torch's default.
    See docs/decisions.md D113.
    """
    hydra_cfg = _hydra_runtime()
    n_jobs = None if hydra_cfg is None else OmegaConf.select(hydra_cfg, "launcher.n_jobs")
    if n_jobs is None:
        return None
    cores = usable_cores()
    jobs = cores if int(n_jobs) < 0 else min(int(n_jobs), cores)
    return max(1, cores // max(1, jobs))

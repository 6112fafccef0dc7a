"""Hydra callback: rewrite the sweep's summary after every job and at the end of a multirun.

Registered in conf/hydra/default.yaml (``hydra.callbacks.sweep_summary``). Writing after every
job, not only in ``on_multirun_end``, matters: when a job fails, Hydra's BasicSweeper raises
after the batch and never calls ``on_multirun_end``, yet the summary must still exist and name
the failed job. A summary error is logged, never raised: it must not fail a finished training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from logo_tal.sweeps.summary import write_failure, write_summary
from logo_tal.utils.config_access import is_multirun, select

log = logging.getLogger(__name__)


class SweepSummaryCallback(Callback):
    """Writes ``summary.md``, ``summary.csv`` and ``summary.png`` into the sweep directory."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if not is_multirun(select(config, "hydra")):
            return
        try:
            job_dir = Path(str(config.hydra.runtime.output_dir))
            if job_return.status == JobStatus.FAILED:
                try:
                    _ = job_return.return_value  # re-raises the job's exception
                except Exception as err:
                    write_failure(job_dir, err)
            self._write(Path(str(config.hydra.sweep.dir)))
        except Exception:
            log.exception("sweep summary failed")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            paths = self._write(Path(str(config.hydra.sweep.dir)))
            log.info(f"sweep summary: {paths['md']}")
        except Exception:
            log.exception("sweep summary failed")

    @staticmethod
    def _write(sweep_dir: Path) -> dict[str, Path]:
        return write_summary(sweep_dir)

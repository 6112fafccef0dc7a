"""Hydra callback: the sweep's summary table as a W&B run in the sweep's group.

At the end of a multirun, when the job config logs to W&B (``logger=wandb`` or ``logger=many``),
``<sweep dir>/summary.csv`` (written by the sweep-summary callback, which runs before this one:
docs/decisions.md D116) is logged as a ``wandb.Table`` in a run of job_type ``sweep-summary``
whose group is the jobs' group (:func:`logo_tal.utils.sweeps.group_name`), next to their runs
in the dashboard. Without W&B or without the file it logs one line and does nothing.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from logo_tal.utils.config_access import select
from logo_tal.utils.sweeps import group_name

log = logging.getLogger(__name__)

JOB_TYPE = "sweep-summary"
TABLE_KEY = "sweep/summary"


def wandb_settings(config: DictConfig) -> dict[str, Any] | None:
    """``wandb.init`` arguments of the sweep's summary run, or None when W&B is not logged to.

    Args:
        config: the multirun's config (with its ``hydra`` node), as Hydra callbacks receive it.
    """
    node = select(config, "logger.wandb")
    if not isinstance(node, DictConfig) or node.get("_target_") is None:
        return None
    sweep_dir = Path(str(config.hydra.sweep.dir))
    group = group_name(str(config.task_name), sweep_dir)
    tags = select(config, "logger.wandb.tags") or []
    return {
        "project": select(config, "logger.wandb.project"),
        "entity": select(config, "logger.wandb.entity"),
        "group": group,
        "job_type": JOB_TYPE,
        "name": f"{group}-summary",
        "tags": [*[str(t) for t in tags], JOB_TYPE],
        "dir": str(sweep_dir),
        "mode": "offline" if select(config, "logger.wandb.offline", True) else "online",
    }


def _column(values: Sequence[str]) -> list[Any]:
    """A CSV column as numbers when every filled cell is one (blank -> None), else as text."""
    filled = [v for v in values if v.strip() != ""]
    try:
        [float(v) for v in filled]
    except ValueError:
        return list(values)
    return [float(v) if v.strip() != "" else None for v in values]


def read_table(path: str | Path) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a CSV file, each column typed by :func:`_column`."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    header, body = rows[0], [r + [""] * (len(rows[0]) - len(r)) for r in rows[1:]]
    columns = [_column([row[i] for row in body]) for i in range(len(header))]
    return header, [list(cells) for cells in zip(*columns, strict=True)] if body else []


def log_summary(settings: dict[str, Any], table: Path, extra_files: Sequence[Path]) -> str:
    """Log ``table`` (and the extra files that exist) in a new W&B run; returns its directory."""
    import wandb

    header, rows = read_table(table)
    run = wandb.init(**settings, config={"sweep_dir": settings["dir"], "jobs": len(rows)})
    try:
        payload: dict[str, Any] = {TABLE_KEY: wandb.Table(columns=header, data=rows)}
        for path in extra_files:
            if path.suffix.lower() == ".png":
                # "_plot": summary.png must not overwrite the summary table's key.
                payload[f"sweep/{path.stem}_plot"] = wandb.Image(str(path))
            else:
                run.save(str(path), base_path=str(path.parent), policy="now")
        run.log(payload)
        return str(run.dir)
    finally:
        run.finish()


class WandbSweepSummary(Callback):
    """Logs ``<sweep dir>/<summary_file>`` to W&B at the end of a multirun (see the module doc).

    Args:
        summary_file: the table, relative to the sweep directory.
        extra_files: more files of the sweep directory to log when present (``.png`` as images,
            others saved with the run).
    """

    def __init__(self, summary_file: str = "summary.csv", extra_files: Sequence[str] = ()) -> None:
        self.summary_file = summary_file
        self.extra_files = list(extra_files)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        settings = wandb_settings(config)
        if settings is None:
            return
        sweep_dir = Path(settings["dir"])
        table = sweep_dir / self.summary_file
        if not table.is_file():
            log.info(f"no {table}: the sweep summary is not logged to W&B")
            return
        extras = [sweep_dir / name for name in self.extra_files if (sweep_dir / name).is_file()]
        try:
            where = log_summary(settings, table, extras)
        except Exception:  # the jobs' results are on disk already: report, do not fail the sweep
            log.exception(f"logging {table} to W&B failed")
            return
        log.info(f"sweep summary logged to W&B (group {settings['group']}): {where}")

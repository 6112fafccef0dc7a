"""Lightning callback: the test results as W&B tables, timeline images and an artifact.

When a ``WandbLogger`` is attached, the end of a test logs

- ``test/mAP_per_tIoU``: a table of mAP per tIoU threshold and their average;
- ``test/per_class_AP``: the rows of ``per_class_ap.csv`` (class, ground-truth count, AP per
  threshold, average);
- ``test/timelines``: the timeline plot of ``predict``
  (:func:`logo_tal.evaluation.plot.plot_timeline`) for the first ``num_timelines`` test
  videos, detections under their ground truth (the PNGs stay in ``<run dir>/timelines/``);
- with ``artifact_detections``, the detections file as an artifact of type ``detections``.

The results arrive through the module's :class:`~logo_tal.evaluation.report.ResultsWriter`: the
callback registers itself as one of its sinks in ``setup`` (docs/decisions.md D117), so the
module needs no W&B code. Without a W&B logger (``logger=csv``, ``fast_dev_run``) it does
nothing; it is in ``conf/callbacks/default.yaml`` for every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from logo_tal.core.protocol import threshold_key
from logo_tal.evaluation.plot import plot_timelines
from logo_tal.evaluation.report import per_class_rows, report_to_dict

Records = Mapping[str, Sequence[Mapping[str, Any]]]


def wandb_logger(trainer: pl.Trainer) -> Any | None:
    """The trainer's ``WandbLogger``, or None."""
    from lightning.pytorch.loggers import WandbLogger

    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def map_table_rows(report: Any) -> list[list[Any]]:
    """``[[tIoU, mAP], ..., ["avg", average mAP]]`` (thresholds as text, mAP as fractions)."""
    data = report_to_dict(report)
    pairs = zip(data["tiou_thresholds"], data["mAP"], strict=True)
    rows = [[threshold_key(t), float(v)] for t, v in pairs]
    return [*rows, ["avg", float(data["average_mAP"])]]


def split_records(trainer: pl.Trainer) -> dict[str, Any]:
    """Video id -> the test split's ``VideoRecord`` (duration, ground truth), or {} if unknown."""
    try:
        records = trainer.datamodule.dataset("test").records
    except (AttributeError, KeyError, ValueError, TypeError):
        return {}
    return {r.video_id: r for r in records}


class WandbDashboard(Callback):
    """Logs the test results to W&B (see the module doc).

    Args:
        num_timelines: test videos whose timeline is logged (0: none).
        timeline_top_k: detections drawn per timeline.
        artifact_detections: also log the detections file as a W&B artifact (it can be large:
            up to 2000 detections per video on THUMOS).
    """

    def __init__(
        self, num_timelines: int = 4, timeline_top_k: int = 10, artifact_detections: bool = False
    ) -> None:
        self.num_timelines = int(num_timelines)
        self.timeline_top_k = int(timeline_top_k)
        self.artifact_detections = bool(artifact_detections)
        self._results: tuple[Any, Records, dict[str, Path]] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        sinks = getattr(getattr(pl_module, "writer", None), "sinks", None)
        if sinks is not None and self.receive not in sinks:
            sinks.append(self.receive)

    def receive(self, report: Any, detections: Records, files: dict[str, Path]) -> None:
        """The writer's sink: keeps the results of the test epoch until ``on_test_end``."""
        self._results = (report, detections, dict(files))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results, self._results = self._results, None
        logger = wandb_logger(trainer) if trainer.is_global_zero else None
        if results is None or logger is None:
            return
        report, detections, files = results
        self.log_results(logger, trainer, report, detections, files)

    def log_results(
        self, logger: Any, trainer: pl.Trainer, report: Any, detections: Records, files: dict
    ) -> None:
        """Tables, timeline images and (optionally) the detections artifact, in one W&B step."""
        import wandb

        header, rows = per_class_rows(report)
        payload: dict[str, Any] = {
            "test/mAP_per_tIoU": wandb.Table(columns=["tIoU", "mAP"], data=map_table_rows(report)),
            "test/per_class_AP": wandb.Table(columns=header, data=[list(r) for r in rows]),
        }
        out_dir = Path(files["metrics"]).parent / "timelines"
        first = sorted(detections)[: max(0, self.num_timelines)]
        records = split_records(trainer)
        timelines = plot_timelines(out_dir, detections, records, self.timeline_top_k, first)
        if timelines:
            payload["test/timelines"] = [wandb.Image(str(p), caption=v) for v, p in timelines]
        logger.experiment.log({**payload, "trainer/global_step": trainer.global_step})
        if self.artifact_detections:
            run = logger.experiment
            artifact = wandb.Artifact(
                f"detections-{run.id}",
                type="detections",
                metadata={"average_mAP": report_to_dict(report)["average_mAP"]},
            )
            artifact.add_file(str(files["detections"]))
            run.log_artifact(artifact)

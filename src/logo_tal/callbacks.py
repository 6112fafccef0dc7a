"""Lightning callbacks of logo-tal."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging

from logo_tal.utils.report import (
    print_map_table,
    write_detections,
    write_metrics,
    write_per_class,
)


class EMAUpdate:
    """``ema <- decay * ema + (1 - decay) * current``, as a picklable object.

    Lightning's ``get_ema_avg_fn`` returns a closure, which DDP-spawn cannot pickle.
    """

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)

    def __call__(
        self, ema_param: torch.Tensor, current_param: torch.Tensor, num_averaged: Any = None
    ) -> torch.Tensor:
        return self.decay * ema_param + (1.0 - self.decay) * current_param


class EMA(EMAWeightAveraging):
    """Lightning's ``EMAWeightAveraging`` (ActionFormer/TriDet ``ModelEma``, decay 0.999), usable
    under every strategy including ``ddp_spawn``.

    The averaged weights are swapped in for validation, copied into the model when training
    ends (so the final test uses them) and saved as the checkpoints' ``state_dict`` (the raw
    weights go to ``current_model_state`` for resuming).

    Args:
        decay: EMA decay per optimiser step.
        **kwargs: ``EMAWeightAveraging`` arguments (``use_buffers``, ``update_every_n_steps``...).
    """

    def __init__(self, decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)
        self.decay = float(decay)
        # WeightAveraging forwards _kwargs to torch's AveragedModel; only avg_fn changes.
        self._kwargs["avg_fn"] = EMAUpdate(decay)


class TestResultsWriter(Callback):
    """After a test epoch, write metrics.json, the detections JSON and the per-class AP table.

    It runs inside the worker processes (so it also works under DDP-spawn, where the module in
    the launching process never sees the results) and only on global rank zero; the metric has
    already gathered every rank's predictions by then.

    Args:
        output_dir: the run directory.
        split: name recorded in metrics.json (the data split that was tested).
        extra: more keys for metrics.json (e.g. the checkpoint evaluated).
        print_table: print the mAP table with rich.
        detections_file: file name of the detections JSON.
    """

    def __init__(
        self,
        output_dir: str | Path,
        split: str = "test",
        extra: Mapping[str, Any] | None = None,
        print_table: bool = True,
        detections_file: str = "detections.json",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.split = split
        self.extra = dict(extra or {})
        self.print_table = print_table
        self.detections_file = detections_file
        self.written: list[Path] = []

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        report = getattr(pl_module, "test_report", None)
        if report is None:
            return
        extra = {
            "split": self.split,
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "fusion": getattr(pl_module, "fusion", "none"),
            **self.extra,
        }
        self.written = [
            write_metrics(self.output_dir, report, extra),
            write_detections(
                self.output_dir,
                getattr(pl_module, "test_detections", {}),
                name=self.detections_file,
                extra={"external_data": {"fusion": extra["fusion"]}},
            ),
            write_per_class(self.output_dir, report),
        ]
        if self.print_table:
            print_map_table(report, title=f"{self.split} mAP (%)")

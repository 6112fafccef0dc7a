"""The one Lightning module: when each injected piece runs, what is logged, what a checkpoint
carries besides the weights.

Everything model-side arrives already built (Hydra ``_target_``), and so do the dataset's
evaluation vocabulary, its tIoU thresholds, the optional score-fusion step and the results
writer (the entry points pass them explicitly; docs/design.md, "Data flow").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from logo_tal.core.detections import Detections
from logo_tal.core.errors import NonFiniteError, UserInputError
from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.data.batch import Batch
from logo_tal.engine.callbacks import ClosePostprocessing
from logo_tal.engine.checkpoints.runs import CHECKPOINT_KEY
from logo_tal.evaluation.metric import DetectionMAP
from logo_tal.evaluation.records import Records, as_written, to_records
from logo_tal.evaluation.report import ResultsWriter
from logo_tal.models.input_noise import add_input_noise
from logo_tal.models.optim import param_groups, warmup_cosine_schedule
from logo_tal.models.outputs import DetectorOutput
from logo_tal.models.postprocess_pool import postprocessing
from logo_tal.utils.dist import gather_objects

log = logging.getLogger(__name__)
FusionStep = Callable[[Sequence[str], list[Detections]], list[Detections]]


class TALLitModule(pl.LightningModule):
    """Training, validation, test and predict steps of a LoGo-style detector.

    Args:
        detector: ``Detector``; ``forward(feats (B,C,T), mask (B,T)) -> DetectorOutput``.
        assigner: ``PointAssigner``; ``(FlatOutput, segments, labels) -> Targets``.
        criterion: ``DetectionLoss``; ``(FlatOutput, Targets) -> {loss, loss_cls, loss_reg, ...}``.
        postprocess: ``PostProcessor``; ``(DetectorOutput, grids, durations) -> list[Detections]``.
        optimizer: partial optimiser (``torch.optim.AdamW`` with ``_partial_: true``), called with
            the parameter groups of :func:`logo_tal.models.optim.param_groups`.
        weight_decay: decay of the decay group (the no-decay group always gets 0).
        warmup_epochs: linear warm-up epochs (may be fractional), then cosine to the end.
        eta_min: final learning rate of the cosine.
        input_noise: std of the training noise on valid input steps (TriDet: 5e-4 / 0.5 ANet).
        class_names: the evaluation vocabulary (detection labels, metric classes); None uses
            the class indices of the detector's classification head.
        tiou_thresholds: thresholds of the dataset's mAP.
        fusion: ``(video_ids, detections) -> detections`` after post-processing, or None.
        writer: receives the test results (metrics, detections) on global rank zero, or None.
        on_nonfinite: a NaN/Inf training loss ``stop`` s the run naming the batch's videos, or
            ``skip`` s the step with a counted warning (docs/decisions.md D102).
        postprocess_workers: validation / test post-processing inline (0) or in N worker
            processes while the detector runs on; the same results (docs/decisions.md D120).
        run_record: the run's config and environment, saved in every checkpoint so that
            evaluate / predict rebuild the model from the file alone (``train.run_record``).
    """

    def __init__(
        self,
        detector: nn.Module,
        assigner: Callable,
        criterion: nn.Module,
        postprocess: Callable,
        optimizer: Callable[..., torch.optim.Optimizer],
        weight_decay: float = 0.0,
        warmup_epochs: float = 0.0,
        eta_min: float = 0.0,
        input_noise: float = 0.0,
        class_names: Sequence[str] | None = None,
        tiou_thresholds: Sequence[float] = THUMOS_TIOU,
        fusion: FusionStep | None = None,
        writer: ResultsWriter | None = None,
        on_nonfinite: str = "stop",
        postprocess_workers: int = 0,
        run_record: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if on_nonfinite not in ("stop", "skip"):
            raise UserInputError(f"module.on_nonfinite must be stop or skip, got {on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.nonfinite_steps = 0
        self.detector = detector
        self.assigner = assigner
        self.criterion = criterion
        self.postprocess = postprocess
        if int(postprocess_workers) < 0:
            raise UserInputError(f"module.postprocess_workers must be >= 0: {postprocess_workers}")
        self.postprocessing = postprocessing(postprocess, postprocess_workers)
        self.optimizer_factory = optimizer
        self.weight_decay = float(weight_decay)
        self.warmup_epochs = float(warmup_epochs)
        self.eta_min = float(eta_min)
        self.input_noise = float(input_noise)
        self.class_names = list(class_names) if class_names else None
        self.fusion = fusion
        self.writer = writer
        thresholds = [float(t) for t in tiou_thresholds]
        num_classes = len(self.class_names) if self.class_names else int(detector.num_classes)
        self.val_map = DetectionMAP(thresholds, num_classes, class_names=self.class_names)
        self.test_map = DetectionMAP(thresholds, num_classes, class_names=self.class_names)
        self.run_record: dict[str, Any] = dict(run_record or {})
        self._test_records: Records = {}

    def forward(self, feats: torch.Tensor, masks: torch.Tensor) -> DetectorOutput:
        """Raw per-level detector output for ``feats (B, C, T)`` and ``masks (B, T)``."""
        return self.detector(feats, masks)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        # TriDet perturbs the input features in training only; drawn per video, so that the
        # padded length changes no draw (docs/decisions.md D122).
        feats = add_input_noise(batch.feats, batch.masks, self.input_noise)
        flat = self.detector(feats, batch.masks).flat()
        with torch.no_grad():
            targets = self.assigner(flat, batch.segments, batch.labels)
        losses = self.criterion(flat, targets)
        if not bool(torch.isfinite(losses["loss"])):
            return self._nonfinite_loss(batch, losses["loss"])
        size = len(batch)
        for name in ("loss", "loss_cls", "loss_reg"):
            self.log(f"train/{name}", losses[name], prog_bar=name == "loss", batch_size=size)
        if "num_pos" in losses:
            self.log("train/num_pos", losses["num_pos"].float(), batch_size=size)
        if self._trainer is not None and self.trainer.optimizers:
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log("train/lr", lr, prog_bar=True, batch_size=size)
        return losses["loss"]

    def _nonfinite_loss(self, batch: Batch, loss: torch.Tensor) -> None:
        """Stop with the batch's videos named, or skip the step (returning None skips backward
        and the optimiser step)."""
        videos = ", ".join(batch.video_ids)
        where = f"epoch {self.current_epoch}, step {self.global_step}, videos {videos}"
        if self.on_nonfinite == "stop":
            raise NonFiniteError(
                f"non-finite training loss ({float(loss)}) at {where}: check these videos' "
                "features (logo-tal-validate --check-values), lower module.optimizer.lr, or set "
                "module.on_nonfinite=skip to skip such steps"
            )
        self.nonfinite_steps += 1
        log.warning(
            "non-finite training loss at %s: step skipped (%d so far)", where, self.nonfinite_steps
        )
        self.log("train/nonfinite_steps", float(self.nonfinite_steps), batch_size=len(batch))
        return None

    def detect(self, batch: Batch) -> list[Detections]:
        """Detections in seconds for every video of ``batch``, rounded as files hold them."""
        out = self.detector(batch.feats, batch.masks)
        return self._finish(
            batch.video_ids, self.postprocess(out, batch.grids, batch.durations.tolist())
        )

    def _finish(self, video_ids: Sequence[str], detections: list[Detections]) -> list[Detections]:
        if self.fusion is not None:
            detections = self.fusion(video_ids, detections)
        # The metric scores exactly the values of the detections file, so that
        # `logo-tal-score GT detections.json` reproduces metrics.json to the last digit.
        return [as_written(d) for d in detections]

    def _evaluate(self, stage: str, batch: Batch) -> None:
        """Run the detector on ``batch`` and hand its post-processing on (scored by ``_drain``)."""
        meta = (batch.video_ids, batch.video_index, batch.gt_segments, batch.gt_labels)
        out = self.detector(batch.feats, batch.masks)
        self.postprocessing.submit(out, batch.grids, batch.durations.tolist(), meta)

    def _score(self, stage: str, meta: tuple, raw: list[Detections]) -> None:
        video_ids, video_index, gt_segments, gt_labels = meta
        detections = self._finish(video_ids, raw)
        metric = self.val_map if stage == "val" else self.test_map
        metric.update(video_index, detections, gt_segments, gt_labels)
        if stage == "test":
            self._test_records.update(to_records(video_ids, detections, self.class_names))

    def _drain(self, stage: str) -> None:
        """Score the epoch's post-processed batches, in batch order."""
        for meta, raw in self.postprocessing.collect():
            self._score(stage, meta, raw)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._drain("val")
        results = self.val_map.compute()
        self.val_map.reset()
        self.log_dict({f"val/{k}": v for k, v in results.items()}, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._test_records = {}

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        self._drain("test")
        results = self.test_map.compute()
        report = self.test_map.last_report
        self.test_map.reset()
        self.log_dict({f"test/{k}": v for k, v in results.items()}, sync_dist=True)
        merged: Records = {}
        for part in gather_objects(self._test_records):
            merged.update(part)  # a video repeated by the distributed sampler is the same video
        self._test_records = {}
        if self.writer is not None and self.trainer.is_global_zero:
            extra = {
                "epoch": self.trainer.current_epoch,
                "global_step": self.trainer.global_step,
                "fusion": "none" if self.fusion is None else "external",
            }
            self.writer.write(report, dict(sorted(merged.items())), extra)

    def predict_step(self, batch: Batch, batch_idx: int) -> Records:
        # Inline: Lightning wants each batch's records back from its own step.
        return to_records(batch.video_ids, self.detect(batch), self.class_names)

    def configure_callbacks(self) -> list:
        # Lightning calls no LightningModule hook on an exception, only callbacks': one
        # callback closes the post-processing workers at every end (docs/decisions.md D120).
        return [ClosePostprocessing()]

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        groups = [g for g in param_groups(self.detector, self.weight_decay) if g["params"]]
        optimizer = self.optimizer_factory(params=groups)
        total, epochs = int(self.trainer.estimated_stepping_batches), self.trainer.max_epochs
        schedule = warmup_cosine_schedule(
            optimizer, total, epochs, self.warmup_epochs, self.eta_min
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step"},
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {**self.run_record, "class_names": self.class_names}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = dict(checkpoint.get(CHECKPOINT_KEY) or {})
        stored.pop("class_names", None)
        if stored and not self.run_record:
            self.run_record = stored

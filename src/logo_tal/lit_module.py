"""The one Lightning module: wires detector, assigner, loss, post-processing and the mAP metric.

Everything model-side is injected already built (Hydra ``_target_``); this module only decides
*when* each piece runs, what is logged, and what a checkpoint carries besides the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from logo_tal.data.batch import Batch
from logo_tal.evaluation.metric import DetectionMAP
from logo_tal.grid import FeatureGrid
from logo_tal.models.optim import param_groups
from logo_tal.models.outputs import Detections, DetectorOutput
from logo_tal.utils.checkpoint import CHECKPOINT_KEY
from logo_tal.utils.dist import gather_objects
from logo_tal.utils.fusion import ExternalScores, check_score_file
from logo_tal.utils.report import threshold_key

# THUMOS14 protocol (notes/ancestors.md section 5); ANet uses linspace(0.5, 0.95, 10).
THUMOS_TIOU = (0.3, 0.4, 0.5, 0.6, 0.7)
FUSION_MODES = ("none", "external")


class WarmupCosine:
    """Per-step LR factor: linear warm-up from 0, then cosine to ``eta_min`` (ancestors 3.4).

    ``lr(0) = 0``; ``lr(s) = base * s / (W - 1)`` for ``0 < s < W`` (base is reached at ``W - 1``);
    ``lr(s) = eta_min + (base - eta_min) * (1 + cos(pi * (s - W) / (M - W))) / 2`` for ``s >= W``.
    A class (not a closure) so that ``LambdaLR.state_dict`` saves it and DDP-spawn can pickle it.

    Args:
        warmup_steps: W.
        total_steps: M, the number of optimiser steps of the whole run.
        eta_min_ratio: ``eta_min / base``.
    """

    def __init__(self, warmup_steps: int, total_steps: int, eta_min_ratio: float = 0.0) -> None:
        self.warmup_steps = max(int(warmup_steps), 0)
        self.total_steps = max(int(total_steps), 1)
        self.eta_min_ratio = float(eta_min_ratio)

    def __call__(self, step: int) -> float:
        w = self.warmup_steps
        if step < w:
            return step / (w - 1) if w > 1 else 1.0
        span = max(self.total_steps - w, 1)
        progress = min(max(step - w, 0) / span, 1.0)
        return self.eta_min_ratio + (1.0 - self.eta_min_ratio) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )


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
        warmup_epochs: linear warm-up length in epochs (may be fractional); the cosine covers the
            rest of ``trainer.max_epochs``.
        eta_min: final learning rate of the cosine.
        tiou_thresholds: thresholds of the mAP.
        num_eval_classes: classes of the evaluation vocabulary (the metric's ``num_classes``);
            defaults to the detector's class count. ActivityNet trains 1 class, evaluates 200.
        input_noise: std of the Gaussian noise added to valid input steps in training (TriDet:
            0.0005 THUMOS, 0.5 ANet); ``None`` takes ``detector.input_noise`` if it exists.
        fusion: ``"none"`` or ``"external"`` (video-level class scores from ``fusion_file``,
            ActivityNet, notes/ancestors.md 1.7).
        fusion_file: the score file for ``fusion="external"``.
        fusion_topk: classes per video taken from the external scores (2).
        fusion_max_dets: detections per video kept before fusion (200).
        class_names: evaluation class names (labels of the detection files). Filled from the
            datamodule in :meth:`setup` when not given, and stored in checkpoints.
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
        tiou_thresholds: Sequence[float] = THUMOS_TIOU,
        num_eval_classes: int | None = None,
        input_noise: float | None = None,
        fusion: str = "none",
        fusion_file: str | None = None,
        fusion_topk: int = 2,
        fusion_max_dets: int = 200,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if fusion not in FUSION_MODES:
            raise ValueError(f"module.fusion must be one of {FUSION_MODES}, got {fusion!r}")
        if fusion == "external":
            check_score_file(fusion_file)  # fail at start-up, not after hours of training
        self.detector = detector
        self.assigner = assigner
        self.criterion = criterion
        self.postprocess = postprocess
        self.optimizer_factory = optimizer
        self.weight_decay = float(weight_decay)
        self.warmup_epochs = float(warmup_epochs)
        self.eta_min = float(eta_min)
        self.tiou_thresholds = [float(t) for t in tiou_thresholds]
        if input_noise is None:
            input_noise = float(getattr(detector, "input_noise", 0.0) or 0.0)
        self.input_noise = float(input_noise)
        self.fusion = fusion
        self.fusion_file = fusion_file
        self.fusion_topk = int(fusion_topk)
        self.fusion_max_dets = int(fusion_max_dets)
        self.class_names: list[str] | None = list(class_names) if class_names else None
        if num_eval_classes is None:
            num_eval_classes = len(class_names) if class_names else _detector_classes(detector)
        self.num_eval_classes = int(num_eval_classes)
        self.val_map = DetectionMAP(self.tiou_thresholds, self.num_eval_classes)
        self.test_map = DetectionMAP(self.tiou_thresholds, self.num_eval_classes)
        if self.class_names is not None:
            self._size_metrics(self.class_names)
        # Filled by train.py: the run config (raw and resolved), the resolved paths and the
        # environment record that every checkpoint carries, so that evaluate/predict rebuild the
        # model from the file alone (utils/checkpoint.py).
        self.run_record: dict[str, Any] = {}
        self._external: ExternalScores | None = None
        # video id -> (segments (M, 2) s, labels (M,)) in the evaluation vocabulary, when it
        # differs from the batches' (class-agnostic training with external fusion).
        self._eval_gt: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._test_detections: dict[str, list[dict[str, Any]]] = {}
        # Results of the last test epoch (on every rank), read by the results-writer callback.
        self.test_report: Any = None
        self.test_results: dict[str, float] = {}
        self.test_detections: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        """Take the evaluation vocabulary from the datamodule, load and check fusion scores.

        ``fusion="none"`` evaluates the classes the batches carry (one "action" class on
        class-agnostic ActivityNet). ``fusion="external"`` labels detections with the dataset's
        real classes, so the vocabulary is ``datamodule.eval_class_names`` and, when the
        batches are class-agnostic, the ground truth is ``datamodule.eval_ground_truth()``.
        Every video the stage evaluates must have external scores: checked here, before any
        training step.
        """
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        # Predicting new videos needs no annotation file: the checkpoint's names are used.
        if datamodule is not None and not (stage == "predict" and self.class_names):
            external = self.fusion == "external"
            names = _datamodule_class_names(datamodule, real=external)
            if external and getattr(datamodule, "class_agnostic", False):
                self._eval_gt = datamodule.eval_ground_truth()
            if names is not None:
                self.class_names = names
        if self.fusion == "external" and self._external is None:
            if self.class_names is None:
                raise ValueError(
                    "fusion=external maps classes by name, but no class names are known"
                )
            self._external = ExternalScores(self.fusion_file, self.class_names)
        if self.fusion == "external" and datamodule is not None:
            for split, videos in _evaluated_videos(datamodule, stage).items():
                self._external.require(videos, f"the {split} split")
        if self.class_names is not None:
            self._size_metrics(self.class_names)

    def _size_metrics(self, class_names: Sequence[str]) -> None:
        if len(class_names) != self.num_eval_classes:
            self.num_eval_classes = len(class_names)
            self.val_map = DetectionMAP(self.tiou_thresholds, self.num_eval_classes)
            self.test_map = DetectionMAP(self.tiou_thresholds, self.num_eval_classes)
        for metric in (self.val_map, self.test_map):
            metric.class_names = tuple(class_names)

    # ------------------------------------------------------------------ steps
    def forward(self, feats: torch.Tensor, masks: torch.Tensor) -> DetectorOutput:
        """Raw per-level detector output for ``feats (B, C, T)`` and ``masks (B, T)``."""
        return self.detector(feats, masks)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        feats = batch.feats
        if self.input_noise > 0:
            # TriDet perturbs the input features in training only; padded steps stay zero so
            # that padding never changes a valid output (DESIGN principle 4).
            noise = torch.randn_like(feats) * self.input_noise
            feats = feats + noise * batch.masks.unsqueeze(1).to(feats.dtype)
        flat = self.detector(feats, batch.masks).flat()
        with torch.no_grad():
            targets = self.assigner(flat, batch.segments, batch.labels)
        losses = self.criterion(flat, targets)
        size = len(batch)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log("train/loss_cls", losses["loss_cls"], batch_size=size)
        self.log("train/loss_reg", losses["loss_reg"], batch_size=size)
        if "num_pos" in losses:
            self.log("train/num_pos", losses["num_pos"].float(), batch_size=size)
        if self._trainer is not None and self.trainer.optimizers:
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log("train/lr", lr, prog_bar=True, batch_size=size)
        return losses["loss"]

    def detect(self, batch: Batch) -> list[Detections]:
        """Detections in seconds for every video of ``batch`` (fused when fusion is on)."""
        out = self.detector(batch.feats, batch.masks)
        grids = [
            FeatureGrid(float(fps), float(stride), float(frames))
            for fps, stride, frames in zip(
                batch.fps.tolist(),
                batch.feat_stride.tolist(),
                batch.num_frames.tolist(),
                strict=True,
            )
        ]
        detections = self.postprocess(out, grids, [float(d) for d in batch.durations.tolist()])
        if self.fusion == "external":
            detections = self._fuse(batch.video_ids, detections)
        return detections

    def _fuse(self, video_ids: Sequence[str], detections: list[Detections]) -> list[Detections]:
        from logo_tal.models.postprocess import fuse_external_scores

        assert self._external is not None, "setup() loads the external scores"
        fused = []
        for video, dets in zip(video_ids, detections, strict=True):
            scores = self._external.get(video).to(dets.scores.device)
            fused.append(
                fuse_external_scores(
                    dets, scores, topk=self.fusion_topk, max_dets=self.fusion_max_dets
                )
            )
        return fused

    def _update_metric(self, metric: DetectionMAP, batch: Batch, dets: list[Detections]) -> None:
        segments, labels = batch.gt_segments, batch.gt_labels
        if self._eval_gt is not None:
            segments = [self._eval_gt[v][0] for v in batch.video_ids]
            labels = [self._eval_gt[v][1] for v in batch.video_ids]
        metric.update(batch.video_index, dets, segments, labels)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._update_metric(self.val_map, batch, [as_written(d) for d in self.detect(batch)])

    def on_validation_epoch_end(self) -> None:
        results = self.val_map.compute()
        self.val_map.reset()
        self.log_dict(_prefixed("val", results), sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        # The metric scores exactly the values of the detections file, so that
        # `logo-tal-score GT detections.json` reproduces metrics.json to the last digit.
        dets = [as_written(d) for d in self.detect(batch)]
        self._update_metric(self.test_map, batch, dets)
        self._test_detections.update(self.to_records(batch.video_ids, dets))

    def on_test_epoch_start(self) -> None:
        self._test_detections = {}

    def on_test_epoch_end(self) -> None:
        results = self.test_map.compute()
        self.test_report = getattr(self.test_map, "last_report", None)
        self.test_map.reset()
        self.test_results = {k: float(v) for k, v in _prefixed("test", results).items()}
        self.log_dict(_prefixed("test", results), sync_dist=True)
        merged: dict[str, list[dict[str, Any]]] = {}
        for part in gather_objects(self._test_detections):
            merged.update(part)  # a video repeated by the distributed sampler is the same video
        self.test_detections = dict(sorted(merged.items()))
        self._test_detections = {}

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, list[dict[str, Any]]]:
        return self.to_records(batch.video_ids, self.detect(batch))

    def to_records(
        self, video_ids: Sequence[str], detections: Sequence[Detections]
    ) -> dict[str, list[dict[str, Any]]]:
        """ActivityNet result entries ``{"segment", "label", "score"}`` per video, class names
        as labels (class indices when no names are known)."""
        names = self.class_names
        records = {}
        for video, dets in zip(video_ids, detections, strict=True):
            segments, scores, labels = _written_values(dets)
            records[str(video)] = [
                {
                    "segment": [s, e],
                    "label": names[c] if names is not None else int(c),
                    "score": score,
                }
                for (s, e), score, c in zip(segments, scores, labels, strict=True)
            ]
        return records

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        groups = param_groups(self.detector, self.weight_decay)
        groups = [g for g in groups if g["params"]]
        optimizer = self.optimizer_factory(params=groups)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = self.trainer.max_epochs
        steps_per_epoch = total / epochs if epochs and epochs > 0 else total
        warmup = int(round(self.warmup_epochs * steps_per_epoch))
        base_lr = optimizer.param_groups[0]["lr"]
        schedule = WarmupCosine(warmup, total, self.eta_min / base_lr if base_lr > 0 else 0.0)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": LambdaLR(optimizer, schedule), "interval": "step"},
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {**self.run_record, "class_names": self.class_names}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = dict(checkpoint.get(CHECKPOINT_KEY) or {})
        names = stored.pop("class_names", None)
        if names and self.class_names is None:
            self.class_names = list(names)
            self._size_metrics(self.class_names)
        if stored and not self.run_record:
            self.run_record = stored


def _written_values(dets: Detections) -> tuple[list[list[float]], list[float], list[int]]:
    """Segments rounded to 0.1 ms and scores at float32 precision, as detection files hold them.

    Scores keep every float32 digit (shortest round-trip form): fixed decimals would tie the
    small fused ActivityNet scores (sqrt(p * s) ~ 1e-3) and change the ranking the mAP sees.
    """
    segments = [[round(s, 4), round(e, 4)] for s, e in dets.segments.detach().cpu().tolist()]
    scores = dets.scores.detach().cpu().float().numpy().astype(str)
    labels = dets.labels.detach().cpu().tolist()
    return segments, [float(x) for x in scores], [int(c) for c in labels]


def as_written(dets: Detections) -> Detections:
    """``dets`` with exactly the values :meth:`TALLitModule.to_records` writes."""
    segments, scores, labels = _written_values(dets)
    return Detections(
        segments=torch.tensor(segments, dtype=torch.float64).reshape(-1, 2),
        scores=torch.tensor(scores, dtype=torch.float64),
        labels=torch.tensor(labels, dtype=torch.int64),
    )


def _detector_classes(detector: nn.Module) -> int:
    for attr in ("num_classes",):
        value = getattr(detector, attr, None)
        if value is not None:
            return int(value)
    cls_head = getattr(detector, "cls_head", None)
    if cls_head is not None and getattr(cls_head, "num_classes", None) is not None:
        return int(cls_head.num_classes)
    raise ValueError("cannot tell the number of classes: pass module.num_eval_classes")


def _datamodule_class_names(datamodule: Any, real: bool = False) -> list[str] | None:
    """Training class names, or with ``real`` the evaluation (real-class) vocabulary."""
    if datamodule is None:
        return None
    attrs = ("eval_class_names", "class_names") if real else ("class_names",)
    for attr in attrs:
        names = getattr(datamodule, attr, None)
        if names:
            return [str(n) for n in names]
    return None


# Splits whose videos a stage evaluates. fit includes test so that a video without external
# scores fails before training, not after it.
_STAGE_SPLITS = {"fit": ("val", "test"), "validate": ("val",), "test": ("test",)}


def _evaluated_videos(datamodule: Any, stage: str) -> dict[str, list[str]]:
    videos = getattr(datamodule, "videos", None)
    if videos is None:
        return {}
    out = {}
    for split in _STAGE_SPLITS.get(stage, ()):
        try:
            out[split] = list(videos(split))
        except (KeyError, ValueError, FileNotFoundError):
            if stage == "fit" and split == "test":
                continue  # checked again by the test stage, where it is required
            raise
    return out


def _prefixed(stage: str, results: dict[str, Any]) -> dict[str, Any]:
    """``{"mAP@0.3": t, "mAP_avg": t}`` -> ``{"val/mAP@0.3": t, "val/mAP_avg": t}``."""
    return {f"{stage}/{key}": value for key, value in results.items()}


__all__ = ["CHECKPOINT_KEY", "TALLitModule", "THUMOS_TIOU", "WarmupCosine", "threshold_key"]

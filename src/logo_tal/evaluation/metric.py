"""Detection mAP as a torchmetrics metric, computed by :mod:`logo_tal.evaluation.ap`.

The states are ``cat`` lists of integer and float tensors only (strings cannot be synced across
processes), so ground truth and detections gathered from every rank reach one
:func:`~logo_tal.evaluation.ap.evaluate_detections` call that sees the whole split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from logo_tal.core.detections import Detections
from logo_tal.core.protocol import MAP_AVG, map_key
from logo_tal.evaluation.ap import (
    DetectionReport,
    GroundTruth,
    Predictions,
    evaluate_detections,
)


def _cat(state: list[torch.Tensor] | torch.Tensor, width: int | None = None) -> np.ndarray:
    """A list state (or its synced concatenation) as one numpy array."""
    if isinstance(state, list) and not state:
        shape = (0,) if width is None else (0, width)
        return np.zeros(shape)
    return dim_zero_cat(state).detach().cpu().numpy()


# Per-row shape (after the first dimension) and dtype of each list state.
_STATE_LAYOUT: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
    "sample_info": ((3,), torch.int64),
    "gt_segments": ((2,), torch.float64),
    "gt_labels": ((), torch.int64),
    "det_segments": ((2,), torch.float64),
    "det_scores": ((), torch.float64),
    "det_labels": ((), torch.int64),
}


class DetectionMAP(Metric):
    """mAP over tIoU thresholds for detections in seconds, with ActivityNet semantics.

    Each video's ground truth travels with its detections, and a video seen more than once
    (a distributed sampler pads the last batch by repeating samples) is counted once: only its
    first occurrence in the gathered states is evaluated. As in ``logo-tal-score``, the mAP
    averages over the classes that have ground truth in the evaluated videos, not over all
    ``num_classes``.

    Args:
        tiou_thresholds: thresholds, e.g. ``ap.THUMOS_TIOU``; keys of :meth:`compute`
            are ``mAP@{t:g}``.
        num_classes: size of the label space; labels outside ``[0, num_classes)`` are ignored.
        class_names: optional names for ``last_report`` tables (default: the indices).
        **kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Attributes:
        last_report: the full :class:`~logo_tal.evaluation.ap.DetectionReport` of the last
            :meth:`compute` (per-class AP, counts), None before the first one.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        tiou_thresholds: Sequence[float],
        num_classes: int,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.tiou_thresholds = tuple(float(t) for t in tiou_thresholds)
        if not self.tiou_thresholds:
            raise ValueError("DetectionMAP needs at least one tIoU threshold")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names for num_classes={num_classes}"
            )
        self.class_names = (
            tuple(class_names) if class_names is not None else tuple(map(str, range(num_classes)))
        )
        self.last_report: DetectionReport | None = None
        # One row per update sample: (video index, #ground truth, #detections); the counts find
        # each sample's rows again after the ranks' states have been concatenated.
        for name in _STATE_LAYOUT:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        video_index: torch.Tensor,
        detections: Sequence[Detections],
        gt_segments: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
    ) -> None:
        """Add one batch.

        Args:
            video_index: (B,) int64 dataset index of each video (same video, same index).
            detections: list[B] of detections in seconds.
            gt_segments: list[B] of (M_i, 2) ground-truth segments in seconds (unclipped).
            gt_labels: list[B] of (M_i,) int64 ground-truth class indices.
        """
        video_index = torch.as_tensor(video_index).reshape(-1)
        batch = video_index.numel()
        if not len(detections) == len(gt_segments) == len(gt_labels) == batch:
            raise ValueError(
                f"DetectionMAP.update: {batch} video indices but {len(detections)} detections, "
                f"{len(gt_segments)} ground-truth segment and {len(gt_labels)} label tensors"
            )
        device, f64, i64 = self.device, torch.float64, torch.int64
        for b in range(batch):
            segs = torch.as_tensor(gt_segments[b]).reshape(-1, 2).to(device, f64)
            labels = torch.as_tensor(gt_labels[b]).reshape(-1).to(device, i64)
            det = detections[b]
            det_segs = torch.as_tensor(det.segments).reshape(-1, 2).to(device, f64)
            det_scores = torch.as_tensor(det.scores).reshape(-1).to(device, f64)
            det_labels = torch.as_tensor(det.labels).reshape(-1).to(device, i64)
            if segs.shape[0] != labels.shape[0] or not (
                det_segs.shape[0] == det_scores.shape[0] == det_labels.shape[0]
            ):
                raise ValueError(f"DetectionMAP.update: sample {b} has mismatched lengths")
            row = [int(video_index[b]), segs.shape[0], det_segs.shape[0]]
            self.sample_info.append(torch.tensor([row], dtype=i64, device=device))
            self.gt_segments.append(segs)
            self.gt_labels.append(labels)
            self.det_segments.append(det_segs)
            self.det_scores.append(det_scores)
            self.det_labels.append(det_labels)

    def _sync_dist(self, *args, **kwargs) -> None:
        # A rank that saw no video would otherwise send torchmetrics' placeholder, a 1-D tensor
        # of the default float dtype, which cannot be gathered with the others' 2-D int64 or
        # float64 states. Send empty tensors of the right shape and dtype instead; the local
        # states are restored from torchmetrics' cache after the sync.
        for name, (shape, dtype) in _STATE_LAYOUT.items():
            if isinstance(getattr(self, name), list) and not getattr(self, name):
                setattr(self, name, [torch.zeros((0, *shape), dtype=dtype, device=self.device)])
        super()._sync_dist(*args, **kwargs)

    def _gathered(self) -> tuple[GroundTruth, Predictions]:
        samples = _cat(self.sample_info, 3).astype(np.int64).reshape(-1, 3)
        gt_segments = _cat(self.gt_segments, 2).reshape(-1, 2)
        gt_labels = _cat(self.gt_labels).astype(np.int64)
        det_segments = _cat(self.det_segments, 2).reshape(-1, 2)
        det_scores = _cat(self.det_scores)
        det_labels = _cat(self.det_labels).astype(np.int64)

        # Labels outside the label space in the ground truth are a data bug upstream: fail loudly
        # rather than silently evaluate fewer classes.
        bad = (gt_labels < 0) | (gt_labels >= self.num_classes)
        if bad.any():
            raise ValueError(
                f"DetectionMAP: ground-truth label {int(gt_labels[bad][0])} outside "
                f"[0, {self.num_classes})"
            )
        video, num_gt, num_det = samples.T
        names, first, compact = np.unique(video, return_index=True, return_inverse=True)
        keep_sample = np.zeros(video.size, dtype=bool)
        keep_sample[first] = True
        keep_gt = np.repeat(keep_sample, num_gt)
        keep_det = np.repeat(keep_sample, num_det)
        ground_truth = GroundTruth(
            video_ids=[str(v) for v in names],
            class_names=self.class_names,
            video=np.repeat(compact, num_gt)[keep_gt],
            label=gt_labels[keep_gt],
            start=gt_segments[keep_gt, 0],
            end=gt_segments[keep_gt, 1],
        )
        in_range = (det_labels >= 0) & (det_labels < self.num_classes)
        predictions = Predictions(
            video=np.repeat(compact, num_det)[keep_det],
            label=np.where(in_range, det_labels, -1)[keep_det],
            start=det_segments[keep_det, 0],
            end=det_segments[keep_det, 1],
            score=det_scores[keep_det],
        )
        return ground_truth, predictions

    def compute(self) -> dict[str, torch.Tensor]:
        """mAP per threshold and averaged: ``{"mAP@0.3": t, ..., "mAP_avg": t}`` (float64)."""
        ground_truth, predictions = self._gathered()
        report = evaluate_detections(ground_truth, predictions, self.tiou_thresholds)
        self.last_report = report
        out = {
            map_key(t): torch.tensor(float(m), dtype=torch.float64)
            for t, m in zip(self.tiou_thresholds, report.mAP, strict=True)
        }
        out[MAP_AVG] = torch.tensor(report.average_mAP, dtype=torch.float64)
        return out

"""Data passed between the detector, the assigner/losses and post-processing."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DetectorOutput:
    """Raw per-level outputs of :class:`~logo_tal.models.detector.Detector`.

    Attributes:
        cls_logits: list[L] of (B, T_l, C) classification logits (pre-sigmoid).
        offsets: list[L] of (B, T_l, K, 2) decoded (left, right) distances >= 0 in units of the
            level stride. ``K == 1`` for class-agnostic heads (ActionFormer), ``K == C`` for
            class-aware heads (Trident, CLFF), where ``offsets[..., c, :]`` belongs to class c.
        masks: list[L] of (B, T_l) bool, True on valid steps.
        strides: list[L] of int, stride of each level in level-0 grid units.
    """

    cls_logits: list[torch.Tensor]
    offsets: list[torch.Tensor]
    masks: list[torch.Tensor]
    strides: list[int]

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def flat(self) -> FlatOutput:
        """Concatenate levels along time: P = sum_l T_l points."""
        device = self.cls_logits[0].device
        points, strides = [], []
        for logits, stride in zip(self.cls_logits, self.strides, strict=True):
            n = logits.shape[1]
            points.append(torch.arange(n, device=device, dtype=torch.float32) * stride)
            strides.append(torch.full((n,), float(stride), device=device))
        return FlatOutput(
            cls_logits=torch.cat(self.cls_logits, dim=1),
            offsets=torch.cat(self.offsets, dim=1),
            masks=torch.cat(self.masks, dim=1),
            points=torch.cat(points),
            point_strides=torch.cat(strides),
            level_sizes=[logits.shape[1] for logits in self.cls_logits],
        )


@dataclass
class FlatOutput:
    """Levels concatenated: cls_logits (B, P, C), offsets (B, P, K, 2), masks (B, P),
    points (P,) grid positions, point_strides (P,), level_sizes list[L] of T_l."""

    cls_logits: torch.Tensor
    offsets: torch.Tensor
    masks: torch.Tensor
    points: torch.Tensor
    point_strides: torch.Tensor
    level_sizes: list[int]

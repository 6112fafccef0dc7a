"""The batch contract between ``logo_tal.data`` and the model / LightningModule."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from logo_tal.core.grid import FeatureGrid


@dataclass
class Batch:
    """A padded batch of videos (built by :func:`logo_tal.data.collate.collate`).

    Attributes:
        feats: (B, C, T) float32 features, zero on padded steps; T is a multiple of the
            detector's divisor (max_seq_len in training, the next multiple at test time).
        masks: (B, T) bool, True on valid steps.
        segments: list[B] of (N_i, 2) float32 training targets in level-0 grid units (after
            cropping / clamping of the training transforms).
        labels: list[B] of (N_i,) int64 class indices (0..C-1) for ``segments``.
        video_ids: list[B] of str.
        video_index: (B,) int64 index of the video within its split (metric states are ints).
        durations: (B,) float64 video durations in seconds.
        grids: list[B] of the :class:`~logo_tal.core.grid.FeatureGrid` of each video (the effective
            one after any resize): how post-processing turns grid units back into seconds.
        gt_segments: list[B] of (M_i, 2) float64 evaluation ground truth in seconds, exactly as
            annotated (never clamped or dropped, docs/decisions.md D57, D61).
        gt_labels: list[B] of (M_i,) int64 class indices of ``gt_segments``.
    """

    feats: torch.Tensor
    masks: torch.Tensor
    segments: list[torch.Tensor]
    labels: list[torch.Tensor]
    video_ids: list[str]
    video_index: torch.Tensor
    durations: torch.Tensor
    grids: list[FeatureGrid]
    gt_segments: list[torch.Tensor]
    gt_labels: list[torch.Tensor]

    def __len__(self) -> int:
        return int(self.feats.shape[0])

    def _map(self, fn) -> Batch:
        def apply(value):
            if isinstance(value, torch.Tensor):
                return fn(value)
            if isinstance(value, list):
                return [apply(v) for v in value]
            return value

        return Batch(**{f.name: apply(getattr(self, f.name)) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """Page-locked copy (DataLoader ``pin_memory=True`` calls this on custom batch types)."""
        return self._map(lambda t: t.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Copy on ``device``. Lightning moves batches through this method; it cannot recurse
        into the frozen :class:`~logo_tal.core.grid.FeatureGrid` values itself."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

"""The detections contract between post-processing (producer) and evaluation (consumer).

A bottom-layer type like :mod:`logo_tal.core.grid`: ``logo_tal.models.postprocess`` produces
:class:`Detections`, ``logo_tal.evaluation`` scores and writes them, and neither imports the
other (docs/design.md, "Layers").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Detections:
    """Final detections of one video, in seconds: segments (N, 2), scores (N,), labels (N,)
    int64 class indices, sorted by descending score."""

    segments: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])

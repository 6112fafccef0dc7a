"""Video-level score fusion (ActivityNet): a post-processing step after Soft-NMS.

Class-agnostic detections are labelled with the top classes of an external video-level
classifier (docs/decisions.md D53-D55). The scores arrive already mapped to the dataset's
class order (``logo_tal.data.video_scores.VideoScores``); this module only does the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from logo_tal.core.detections import Detections


class ScoresByVideo(Protocol):
    """Anything that returns the ``(C,)`` class scores of a video id."""

    def get(self, video_id: str) -> torch.Tensor: ...


def fuse_external_scores(
    dets: Detections, video_scores: torch.Tensor, topk: int = 2, max_dets: int = 200
) -> Detections:
    """ActivityNet fusion with a video-level classifier (docs/decisions.md D53-D55).

    Keeps the ``max_dets`` best class-agnostic detections and emits each once per top-``topk``
    video class, with score ``sqrt(p_class * s_det)`` and that class's index as label.

    Args:
        dets: class-agnostic detections of one video.
        video_scores: (C_ext,) classifier probabilities of the video (CUHK file order).
        topk: classes per video (2).
        max_dets: detections kept before fusion (200).

    Returns:
        Detections with up to ``max_dets * topk`` rows, sorted by descending fused score.
    """
    video_scores = torch.as_tensor(video_scores, dtype=torch.float32).flatten()
    order = torch.argsort(dets.scores, descending=True, stable=True)[:max_dets]
    segs, scores = dets.segments[order], dets.scores[order].float()
    k = min(int(topk), video_scores.numel())
    class_prob, class_idx = video_scores.topk(k)
    fused = torch.sqrt((scores[:, None] * class_prob[None, :]).clamp(min=0)).flatten()
    new_segs = segs[:, None, :].expand(-1, k, -1).reshape(-1, 2)
    new_labels = class_idx[None, :].expand(scores.shape[0], -1).flatten()
    resort = torch.argsort(fused, descending=True, stable=True)
    return Detections(segments=new_segs[resort], scores=fused[resort], labels=new_labels[resort])


class ScoreFusion:
    """The fusion step: ``(video_ids, detections) -> fused detections``, one video at a time.

    Args:
        scores: per-video class scores in the evaluation vocabulary's order.
        topk: classes per video (ActionFormer/TriDet: 2).
        max_dets: detections kept before fusion (ActionFormer/TriDet: 200).
    """

    def __init__(self, scores: ScoresByVideo, topk: int = 2, max_dets: int = 200) -> None:
        self.scores = scores
        self.topk = int(topk)
        self.max_dets = int(max_dets)

    def __call__(self, video_ids: Sequence[str], detections: list[Detections]) -> list[Detections]:
        return [
            fuse_external_scores(
                dets,
                self.scores.get(video).to(dets.scores.device),
                topk=self.topk,
                max_dets=self.max_dets,
            )
            for video, dets in zip(video_ids, detections, strict=True)
        ]

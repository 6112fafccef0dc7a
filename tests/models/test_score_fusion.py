"""Video-level score fusion: the arithmetic and the per-video step."""

from __future__ import annotations

import math

import pytest
import torch

from logo_tal.core.detections import Detections
from logo_tal.models.score_fusion import ScoreFusion, fuse_external_scores


def test_fuse_external_scores():
    dets = Detections(
        segments=torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]),
        scores=torch.tensor([0.64, 0.36, 0.25]),
        labels=torch.zeros(3, dtype=torch.long),
    )
    video = torch.tensor([0.1, 0.25, 0.04, 0.61])
    fused = fuse_external_scores(dets, video, topk=2, max_dets=2)
    assert len(fused) == 4
    want = sorted(
        [
            (math.sqrt(s * p), c, seg)
            for s, seg in ((0.64, 0), (0.36, 2))
            for p, c in ((0.61, 3), (0.25, 1))
        ],
        key=lambda x: -x[0],
    )
    assert fused.scores.tolist() == pytest.approx([w[0] for w in want], rel=1e-6)
    assert fused.labels.tolist() == [w[1] for w in want]
    assert fused.segments[:, 0].tolist() == [float(w[2]) for w in want]
    empty = Detections(torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert len(fuse_external_scores(empty, video)) == 0


def test_score_fusion_step_fuses_each_video_with_its_scores():
    dets = Detections(
        segments=torch.tensor([[0.0, 1.0], [2.0, 3.0]]),
        scores=torch.tensor([0.9, 0.4]),
        labels=torch.zeros(2, dtype=torch.int64),
    )
    scores = {"a": torch.tensor([0.1, 0.6, 0.3]), "b": torch.tensor([0.5, 0.2, 0.3])}
    fused = ScoreFusion(scores, topk=1, max_dets=200)(["a", "b"], [dets, dets])
    assert fused[0].labels.tolist() == [1, 1] and fused[1].labels.tolist() == [0, 0]
    assert math.isclose(fused[0].scores[0].item(), math.sqrt(0.9 * 0.6), rel_tol=1e-6)
    assert math.isclose(fused[1].scores[1].item(), math.sqrt(0.4 * 0.5), rel_tol=1e-6)

"""Detections -> written values -> ActivityNet result entries."""

from __future__ import annotations

import torch

from logo_tal.core.detections import Detections
from logo_tal.evaluation.records import as_written, to_records


def test_records_are_activitynet_entries_with_class_names():
    dets = Detections(
        segments=torch.tensor([[1.0, 2.0]]), scores=torch.tensor([0.5]), labels=torch.tensor([1])
    )
    records = to_records(["v"], [as_written(dets)], ["x", "y", "z"])
    assert records == {"v": [{"segment": [1.0, 2.0], "label": "y", "score": 0.5}]}
    assert to_records(["v"], [as_written(dets)], None)["v"][0]["label"] == 1


def test_written_values_round_segments_and_keep_float32_scores():
    score = torch.tensor([1.0 / 3.0], dtype=torch.float32)
    dets = Detections(
        segments=torch.tensor([[1.234567, 9.87654321]], dtype=torch.float64),
        scores=score,
        labels=torch.tensor([0]),
    )
    written = as_written(dets)
    assert written.segments.tolist() == [[1.2346, 9.8765]]
    # the shortest decimal that round-trips the float32 score, not 4 decimals
    assert written.scores.tolist() == [float(str(score.numpy()[0]))]
    assert written.scores.dtype == torch.float64 and written.labels.dtype == torch.int64
    again = as_written(written)
    assert torch.equal(again.segments, written.segments)
    assert torch.equal(again.scores, written.scores)

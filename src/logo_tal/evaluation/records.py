"""Detections -> the values a detections file holds, done once for metric and file alike.

The metric scores exactly the values written to ``detections.json``, so that
``logo-tal-score GT detections.json`` reproduces ``metrics.json`` to the last digit: segments
are rounded to 0.1 ms and scores kept at float32 precision, then both the metric and the
ActivityNet result entries are built from those rounded values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from logo_tal.core.detections import Detections

Records = dict[str, list[dict[str, Any]]]


def as_written(dets: Detections) -> Detections:
    """``dets`` (any device, any float dtype) rounded as a detections file holds them.

    Scores keep every float32 digit (the shortest string that round-trips): fixed decimals would
    tie the small fused ActivityNet scores (sqrt(p * s) ~ 1e-3) and change the ranking the mAP
    sees.
    """
    segments = [[round(s, 4), round(e, 4)] for s, e in dets.segments.detach().cpu().tolist()]
    scores = dets.scores.detach().cpu().float().numpy().astype(str)
    return Detections(
        segments=torch.tensor(segments, dtype=torch.float64).reshape(-1, 2),
        scores=torch.tensor([float(x) for x in scores], dtype=torch.float64),
        labels=dets.labels.detach().cpu().to(torch.int64),
    )


def to_records(
    video_ids: Sequence[str],
    written: Sequence[Detections],
    class_names: Sequence[str] | None,
) -> Records:
    """ActivityNet result entries ``{"segment", "label", "score"}`` per video.

    Args:
        video_ids: one id per video.
        written: detections already passed through :func:`as_written`.
        class_names: labels of the class indices; None writes the indices.
    """
    records: Records = {}
    for video, dets in zip(video_ids, written, strict=True):
        labels = dets.labels.tolist()
        records[str(video)] = [
            {
                "segment": segment,
                "label": class_names[c] if class_names is not None else int(c),
                "score": score,
            }
            for segment, score, c in zip(
                dets.segments.tolist(), dets.scores.tolist(), labels, strict=True
            )
        ]
    return records

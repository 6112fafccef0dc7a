"""Evaluation-protocol constants shared by the data, the metric, the scorer and the reports.

Imports nothing (numpy-free too), so that ``logo_tal.evaluation.ap`` stays importable without
torch and every layer can use the same values (docs/decisions.md D63).
"""

from __future__ import annotations

# THUMOS14: tIoU 0.3:0.1:0.7; ActivityNet-1.3: 0.5:0.05:0.95.
THUMOS_TIOU: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
ANET_TIOU: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

MIN_SEGMENT_SECONDS = 0.001
"""Annotations shorter than this (seconds) are dropped, in training and in evaluation."""

DUPLICATE_TOLERANCE = 0.001
"""Same label, start and end each within this (seconds, inclusive): a duplicate annotation."""


def threshold_key(t: float) -> str:
    """``0.5`` -> ``"0.5"``, ``0.55`` -> ``"0.55"``: the suffix of ``mAP@t`` keys."""
    return f"{float(t):g}"


def map_key(t: float) -> str:
    """The metric name of one threshold, ``mAP@0.5``; the average is :data:`MAP_AVG`."""
    return f"mAP@{threshold_key(t)}"


MAP_AVG = "mAP_avg"

"""What kind of mistake each detection is: a false-positive breakdown at one tIoU threshold.

Every detection gets exactly one category, checked in this order (after the DETAD analysis of
Alwassel et al., ECCV 2018, with its "confusion" folded into wrong class):

* ``true_positive``: matched at ``tiou`` to a ground truth of its class by the same greedy
  one-to-one matching as the AP (:mod:`logo_tal.evaluation.ap`), so the count agrees with it;
* ``duplicate``: overlaps a ground truth of its class at ``>= tiou``, but every such ground truth
  was already taken by a higher-scored detection;
* ``wrong_class``: overlaps a ground truth of another class at ``>= tiou``, or (failing that and
  the localisation test) at ``>= low_tiou``;
* ``localisation``: overlaps a ground truth of its class at ``low_tiou <= tIoU < tiou``;
* ``background``: overlaps no ground truth at ``>= low_tiou`` (includes detections on videos
  absent from the ground truth).

Ground truth is cleaned with the evaluation's rules first. numpy only, like ``ap.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The private helpers are reused on purpose: the true positives must be the AP's own matches.
from logo_tal.evaluation.ap import (
    GroundTruth,
    Predictions,
    _greedy_match,
    _segmented_rank,
    clean_ground_truth,
    segment_tiou,
)

CATEGORIES: tuple[str, ...] = (
    "true_positive",
    "duplicate",
    "wrong_class",
    "localisation",
    "background",
)
TP, DUPLICATE, WRONG_CLASS, LOCALISATION, BACKGROUND = range(len(CATEGORIES))


@dataclass(frozen=True, eq=False)
class ErrorBreakdown:
    """Result of :func:`error_breakdown`.

    Attributes:
        category: (N,) int index into :data:`CATEGORIES`, one per detection (input order).
        best_tiou: (N,) highest tIoU with any accepted ground truth of the detection's video.
        tiou: the matching threshold.
        low_tiou: below this a detection is background.
    """

    category: np.ndarray
    best_tiou: np.ndarray
    tiou: float
    low_tiou: float

    @property
    def counts(self) -> dict[str, int]:
        """Detections per category (all categories present, summing to N)."""
        counts = np.bincount(self.category, minlength=len(CATEGORIES))
        return {name: int(c) for name, c in zip(CATEGORIES, counts, strict=True)}

    @property
    def false_positive_counts(self) -> dict[str, int]:
        """:attr:`counts` without the true positives."""
        return {k: v for k, v in self.counts.items() if k != "true_positive"}


def error_breakdown(
    ground_truth: GroundTruth,
    predictions: Predictions,
    tiou: float = 0.5,
    low_tiou: float = 0.1,
) -> ErrorBreakdown:
    """Assign every detection one category (see the module docstring).

    Args:
        ground_truth: annotations, cleaned here like in the evaluation.
        predictions: detections indexed like ``ground_truth`` (all of them are classified; to
            analyse only the top ones, filter them first).
        tiou: matching threshold (``>=`` matches, as in the AP).
        low_tiou: overlap below which a detection counts as background.

    Returns:
        The :class:`ErrorBreakdown`.
    """
    if not 0.0 <= low_tiou <= tiou:
        raise ValueError(f"need 0 <= low_tiou <= tiou, got low_tiou={low_tiou}, tiou={tiou}")
    n = len(predictions)
    pairs = _video_pairs(ground_truth, predictions)
    best_tiou = np.zeros(n)
    np.maximum.at(best_tiou, pairs.pred, pairs.tiou)
    match = pairs.same & (pairs.tiou >= tiou)
    tp = _true_positives(predictions, pairs, match, tiou, len(ground_truth.video_ids))
    category = _categorise(pairs, match, tp, n, tiou, low_tiou)
    return ErrorBreakdown(category=category, best_tiou=best_tiou, tiou=tiou, low_tiou=low_tiou)


@dataclass(frozen=True, eq=False)
class _Pairs:
    """Every (detection, accepted ground truth of the same video) pair.

    Attributes:
        pred: (Q,) detection index of each pair.
        gt: (Q,) ground-truth index of each pair, into the cleaned rows sorted by video.
        tiou: (Q,) tIoU of each pair.
        same: (Q,) whether the pair's labels agree.
        video: (N,) each detection's video, 0 for videos absent from the ground truth.
        num_gt: number of cleaned ground-truth rows.
    """

    pred: np.ndarray
    gt: np.ndarray
    tiou: np.ndarray
    same: np.ndarray
    video: np.ndarray
    num_gt: int


def _video_pairs(gt: GroundTruth, pred: Predictions) -> _Pairs:
    """All detection/ground-truth pairs within a video, from the cleaned ground truth."""
    n, num_videos = len(pred), len(gt.video_ids)
    kept = clean_ground_truth(gt)[0]
    g_video, g_label = gt.video[kept], gt.label[kept]
    g_start, g_end = gt.start[kept], gt.end[kept]
    # Grouping the ground truth by video turns each detection's pairs into one index range.
    g_order = np.argsort(g_video, kind="stable")
    g_video, g_label = g_video[g_order], g_label[g_order]
    g_start, g_end = g_start[g_order], g_end[g_order]
    per_video = np.bincount(g_video, minlength=num_videos)
    first = np.concatenate(([0], np.cumsum(per_video)))[:-1]
    known = (pred.video >= 0) & (pred.video < num_videos)
    video = np.where(known, pred.video, 0)
    counts = np.where(known, per_video[video], 0)
    pair_pred = np.repeat(np.arange(n), counts)
    pair_gt = np.repeat(first[video] - np.cumsum(counts) + counts, counts) + np.arange(
        pair_pred.size
    )
    pair_tiou = segment_tiou(
        pred.start[pair_pred], pred.end[pair_pred], g_start[pair_gt], g_end[pair_gt]
    )
    same = g_label[pair_gt] == pred.label[pair_pred]
    return _Pairs(pair_pred, pair_gt, pair_tiou, same, video, g_video.size)


def _true_positives(
    pred: Predictions, pairs: _Pairs, match: np.ndarray, tiou: float, num_videos: int
) -> np.ndarray:
    """(N,) bool: the detections the AP counts as true positives at ``tiou``.

    Ranks by descending score (stable, as the AP does), then matches each (class, video) group
    greedily through the AP's own routine, so that the count agrees with the AP's.
    """
    n = len(pred)
    if not n:
        return np.zeros(0, dtype=bool)
    order = np.argsort(-pred.score, kind="stable")
    group_key = pred.label.astype(np.int64) * (num_videos + 1) + pairs.video
    rank = np.empty(n, dtype=np.int64)
    rank[order] = _segmented_rank(group_key[order])
    return _greedy_match(
        rank,
        pairs.pred[match],
        pairs.gt[match],
        pairs.tiou[match],
        n,
        pairs.num_gt,
        np.array([tiou]),
    )[0]


def _categorise(
    pairs: _Pairs, match: np.ndarray, tp: np.ndarray, n: int, tiou: float, low_tiou: float
) -> np.ndarray:
    """(N,) category index of each detection (see the module docstring for the order)."""

    def any_pair(select: np.ndarray) -> np.ndarray:
        return np.bincount(pairs.pred[select], minlength=n) > 0

    same, pair_tiou = pairs.same, pairs.tiou
    category = np.full(n, BACKGROUND, dtype=np.int64)
    # Assigned from the weakest claim to the strongest so that later writes win.
    category[any_pair(~same & (pair_tiou >= low_tiou))] = WRONG_CLASS
    category[any_pair(same & (pair_tiou >= low_tiou) & (pair_tiou < tiou))] = LOCALISATION
    category[any_pair(~same & (pair_tiou >= tiou))] = WRONG_CLASS
    category[any_pair(match)] = DUPLICATE
    category[tp] = TP
    return category

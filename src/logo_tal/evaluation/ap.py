"""Detection average precision over tIoU thresholds (ActivityNet / ActionFormer semantics).

This is the one implementation of the detection mAP in the project; ``logo-tal-score`` and
:class:`~logo_tal.evaluation.metric.DetectionMAP` both call :func:`evaluate_detections`. The exact
semantics are those of docs/decisions.md D56-D62 (the reference is ActionFormer's
``ANETdetection``):

* ground truth is cleaned per video in row order: annotations shorter than 1 ms are dropped, and
  so is one whose label matches an already *accepted* annotation of the same video with start and
  end each within 1 ms;
* the classes of the evaluation are the labels of the accepted annotations; predictions of any
  other label are ignored, predictions on videos without ground truth of their class are false
  positives that keep their place in the ranking;
* per class, predictions are ranked by descending score (stable sort) over all videos and matched
  greedily, independently for every threshold, to the best free ground truth of their video with
  ``tIoU >= t`` (float64; tIoU is 0 where the union is not positive);
* AP is the all-point interpolated area under the precision/recall curve; mAP averages the AP of
  every class of the evaluation, a class without predictions contributing 0.

Only numpy is imported here (docs/decisions.md D66): no torch, Lightning or Hydra.

The computation is vectorised. Matching only interacts inside one (class, video) group, so the
ranked predictions of all groups are processed together, one *rank within the group* per step:
the Python loop runs over at most the largest group's number of overlapping predictions, with
all thresholds handled at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from logo_tal.core.protocol import DUPLICATE_TOLERANCE, MIN_SEGMENT_SECONDS, THUMOS_TIOU


def _as_1d(name: str, value, dtype) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _check_lengths(owner: str, **arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{owner}: arrays differ in length: {lengths}")
    return next(iter(lengths.values()))


def _check_finite(owner: str, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise ValueError(f"{owner}.{name}[{bad}] is not finite ({a[bad]!r})")


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground-truth instances as parallel arrays, one row per annotation.

    Rows of one video must be in file order: the duplicate rule keeps the first of two
    near-identical annotations.

    Args:
        video_ids: names of the evaluated videos (after any subset filter), including videos
            without annotations; ``video`` indexes this sequence.
        class_names: label vocabulary; ``label`` indexes it. Names that end up with no accepted
            annotation are not classes of the evaluation.
        video: (M,) int, video index of each annotation, in ``[0, len(video_ids))``.
        label: (M,) int, class index of each annotation, in ``[0, len(class_names))``.
        start: (M,) float, start in seconds.
        end: (M,) float, end in seconds.
        num_videos_other_subsets: videos of the source file left out by a subset filter (only
            reported).
    """

    video_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    video: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    num_videos_other_subsets: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "video_ids", tuple(self.video_ids))
        set_(self, "class_names", tuple(self.class_names))
        set_(self, "video", _as_1d("GroundTruth.video", self.video, np.int64))
        set_(self, "label", _as_1d("GroundTruth.label", self.label, np.int64))
        set_(self, "start", _as_1d("GroundTruth.start", self.start, np.float64))
        set_(self, "end", _as_1d("GroundTruth.end", self.end, np.float64))
        _check_lengths(
            "GroundTruth", video=self.video, label=self.label, start=self.start, end=self.end
        )
        _check_finite("GroundTruth", start=self.start, end=self.end)
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError("GroundTruth.class_names contains repeated names")
        for name, index, size in (
            ("video", self.video, len(self.video_ids)),
            ("label", self.label, len(self.class_names)),
        ):
            if index.size and (index.min() < 0 or index.max() >= size):
                raise ValueError(f"GroundTruth.{name} has indices outside [0, {size})")

    def __len__(self) -> int:
        return int(self.video.shape[0])


@dataclass(frozen=True, eq=False)
class Predictions:
    """Detections as parallel arrays, one row per detection, indexed like a :class:`GroundTruth`.

    Args:
        video: (N,) int, index into ``GroundTruth.video_ids``; any value outside that range
            (``-1`` by convention) marks a video that has no ground-truth entry.
        label: (N,) int, index into ``GroundTruth.class_names``; any value outside that range
            (``-1`` by convention) marks a label that is not in the vocabulary. Such detections,
            and those of a vocabulary label without accepted ground truth, are ignored.
        start: (N,) float, start in seconds (used as given, even if reversed).
        end: (N,) float, end in seconds.
        score: (N,) float confidence; higher ranks first.
        unknown_videos: names behind the out-of-range video indices (only reported).
        unknown_labels: names behind the out-of-range label indices (only reported).
    """

    video: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray
    unknown_videos: tuple[str, ...] = ()
    unknown_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "video", _as_1d("Predictions.video", self.video, np.int64))
        set_(self, "label", _as_1d("Predictions.label", self.label, np.int64))
        set_(self, "start", _as_1d("Predictions.start", self.start, np.float64))
        set_(self, "end", _as_1d("Predictions.end", self.end, np.float64))
        set_(self, "score", _as_1d("Predictions.score", self.score, np.float64))
        set_(self, "unknown_videos", tuple(self.unknown_videos))
        set_(self, "unknown_labels", tuple(self.unknown_labels))
        _check_lengths(
            "Predictions",
            video=self.video,
            label=self.label,
            start=self.start,
            end=self.end,
            score=self.score,
        )
        _check_finite("Predictions", start=self.start, end=self.end, score=self.score)

    @classmethod
    def empty(cls) -> Predictions:
        """No detections at all (a legal input: every AP is then 0)."""
        return cls(*(np.zeros(0) for _ in range(5)))

    def __len__(self) -> int:
        return int(self.video.shape[0])


@dataclass(frozen=True)
class EvaluationCounts:
    """What the evaluation counted, so that numbers can be compared across evaluators.

    Attributes:
        videos: videos of the ground truth (after the subset filter).
        videos_with_ground_truth: of those, videos with at least one accepted annotation.
        gt_total: annotations before cleaning.
        gt_kept: accepted annotations (the positives).
        gt_too_short: annotations dropped for ``end - start < 0.001``.
        gt_duplicate: annotations dropped as duplicates of an accepted one.
        classes: classes of the evaluation (labels with an accepted annotation).
        predictions: all detections given.
        predictions_scored: detections of a class of the evaluation (ranked and matched).
        predictions_unknown_label: detections ignored because their label is not a class.
        predictions_unknown_video: scored detections on a video missing from the ground truth
            (false positives).
        predictions_video_without_gt: scored detections on a known video without any accepted
            annotation (false positives).
    """

    videos: int
    videos_with_ground_truth: int
    gt_total: int
    gt_kept: int
    gt_too_short: int
    gt_duplicate: int
    classes: int
    predictions: int
    predictions_scored: int
    predictions_unknown_label: int
    predictions_unknown_video: int
    predictions_video_without_gt: int


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """Result of :func:`evaluate_detections`.

    Attributes:
        tiou_thresholds: (K,) thresholds, in the order given.
        mAP: (K,) mean AP over the classes of the evaluation (0 when there is none).
        average_mAP: mean of ``mAP`` over the thresholds.
        ap: (C, K) AP per vocabulary class; NaN for names that are not classes of the evaluation.
        class_names: (C,) vocabulary, aligned with ``ap``.
        evaluated: (C,) bool, True for the classes of the evaluation.
        num_positives: (C,) accepted annotations per class.
        counts: what was counted and dropped.
        recall: ``{k: (K,)}`` fraction of the accepted annotations matched (greedily, one to
            one, as for AP) by the ``k * n_v`` highest-scored detections of their video, where
            ``n_v`` is the number of accepted annotations of that video (all classes together).
        score_range: (min, max) of all detection scores, None without detections.
        score_histogram: (counts, bin_edges) of all detection scores, None without detections.
    """

    tiou_thresholds: np.ndarray
    mAP: np.ndarray
    average_mAP: float
    ap: np.ndarray
    class_names: tuple[str, ...]
    evaluated: np.ndarray
    num_positives: np.ndarray
    counts: EvaluationCounts
    recall: dict[int, np.ndarray] = field(default_factory=dict)
    score_range: tuple[float, float] | None = None
    score_histogram: tuple[np.ndarray, np.ndarray] | None = None

    def as_dict(self) -> dict[str, object]:
        """The ``logo-tal-score --json`` object: thresholds, mAP per threshold, average."""
        return {
            "tiou_thresholds": [float(t) for t in self.tiou_thresholds],
            "mAP": [float(m) for m in self.mAP],
            "average_mAP": float(self.average_mAP),
        }


def segment_tiou(
    start_a: np.ndarray, end_a: np.ndarray, start_b: np.ndarray, end_b: np.ndarray
) -> np.ndarray:
    """Element-wise temporal IoU in float64 (broadcasting), 0 where the union is not positive.

    Reversed or empty segments are used as given: their intersection is clipped at 0, so they
    overlap nothing. Guarding ``union <= 0`` avoids the reference's 0/0 = NaN, which would count
    as a match (docs/decisions.md D61).
    """
    start_a, end_a, start_b, end_b = (
        np.asarray(x, dtype=np.float64) for x in (start_a, end_a, start_b, end_b)
    )
    inter = np.maximum(np.minimum(end_a, end_b) - np.maximum(start_a, start_b), 0.0)
    union = (end_a - start_a) + (end_b - start_b) - inter
    positive = union > 0
    return np.where(positive, inter / np.where(positive, union, 1.0), 0.0)


def clean_ground_truth(gt: GroundTruth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the short and duplicate rules.

    Returns:
        (kept, too_short, duplicate), three (M,) bool masks that partition the rows.
    """
    m = len(gt)
    too_short = (gt.end - gt.start) < MIN_SEGMENT_SECONDS
    duplicate = np.zeros(m, dtype=bool)
    candidates = np.flatnonzero(~too_short)
    if candidates.size < 2:
        return ~too_short, too_short, duplicate

    # Near-duplicates share video and label and have close starts, so after sorting by
    # (video, label, start) they are neighbours; widen the offset until no row has a
    # neighbour that close any more. Float subtraction is monotonic, so stopping when the
    # start difference exceeds the tolerance misses nothing.
    order = candidates[
        np.lexsort((gt.start[candidates], gt.label[candidates], gt.video[candidates]))
    ]
    same_key = (gt.video[order][1:] == gt.video[order][:-1]) & (
        gt.label[order][1:] == gt.label[order][:-1]
    )
    pairs_a, pairs_b = [], []
    offset = 1
    active = np.arange(order.size - 1)
    while active.size:
        active = active[same_key[active + offset - 1]]
        i, j = order[active], order[active + offset]
        close_start = np.abs(gt.start[j] - gt.start[i]) <= DUPLICATE_TOLERANCE
        active, i, j = active[close_start], i[close_start], j[close_start]
        hit = np.abs(gt.end[j] - gt.end[i]) <= DUPLICATE_TOLERANCE
        pairs_a.append(np.minimum(i[hit], j[hit]))
        pairs_b.append(np.maximum(i[hit], j[hit]))
        offset += 1
        active = active[active + offset < order.size]
    first = np.concatenate(pairs_a)
    later = np.concatenate(pairs_b)
    if first.size == 0:
        return ~too_short, too_short, duplicate

    # Whether a row is dropped depends on whether its near-twins were themselves accepted (the
    # A, B, C chain rule), which is inherently sequential; only rows with an earlier near-twin
    # need this loop, and real files have few or none.
    pair_order = np.lexsort((first, later))
    first, later = first[pair_order], later[pair_order]
    bounds = np.flatnonzero(np.r_[True, later[1:] != later[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        row = later[a]
        if np.any(~duplicate[first[a:b]]):
            duplicate[row] = True
    return ~too_short & ~duplicate, too_short, duplicate


def _segmented_rank(keys: np.ndarray) -> np.ndarray:
    """Position of each element among the earlier elements with the same key (0-based)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    n = keys.size
    is_first = np.ones(n, dtype=bool)
    is_first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first_pos = np.maximum.accumulate(np.where(is_first, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first_pos
    return rank


def _greedy_match(
    rank: np.ndarray,
    pair_pred: np.ndarray,
    pair_gt: np.ndarray,
    pair_tiou: np.ndarray,
    num_preds: int,
    num_gt: int,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Greedy one-to-one matching of all (class, video) groups at once.

    Args:
        rank: (P,) rank of each prediction within its group, by descending score.
        pair_pred: (Q,) prediction of each (prediction, ground truth) pair of the same group.
        pair_gt: (Q,) ground truth of each pair, in ``[0, num_gt)``.
        pair_tiou: (Q,) tIoU of each pair.
        num_preds: P.
        num_gt: number of ground-truth rows addressed by ``pair_gt``.
        thresholds: (K,) tIoU thresholds.

    Returns:
        (K, P) bool, True where the prediction is a true positive at that threshold.
    """
    k = thresholds.size
    tp = np.zeros((k, num_preds), dtype=bool)
    if pair_pred.size == 0:
        return tp
    # Predictions in step order (rank within the group); each prediction's pairs contiguous and
    # sorted best first, ties towards the earlier ground-truth row.
    step_order = np.argsort(rank, kind="stable")
    position = np.empty(num_preds, dtype=np.int64)
    position[step_order] = np.arange(num_preds)
    pair_order = np.lexsort((pair_gt, -pair_tiou, position[pair_pred]))
    pair_gt = pair_gt[pair_order]
    pair_tiou = pair_tiou[pair_order]
    pairs_per_pred = np.bincount(position[pair_pred], minlength=num_preds)
    pair_start = np.concatenate(([0], np.cumsum(pairs_per_pred)))
    step_start = np.concatenate(([0], np.cumsum(np.bincount(rank, minlength=rank.max() + 1))))

    taken = np.zeros((k, num_gt), dtype=bool)
    row_offsets = np.arange(k)[:, None]
    for a, b in zip(step_start[:-1], step_start[1:], strict=True):
        pa, pb = pair_start[a], pair_start[b]
        n = pb - pa
        gts = pair_gt[pa:pb]
        free = (pair_tiou[pa:pb][None, :] >= thresholds[:, None]) & ~taken[:, gts]
        # The first free pair of each prediction is its best free ground truth that clears t,
        # which is what walking the candidates in decreasing tIoU order finds.
        hits = np.flatnonzero(free.ravel())
        seg_start = (row_offsets * n + (pair_start[a:b] - pa)[None, :]).ravel()
        seg_end = (row_offsets * n + (pair_start[a + 1 : b + 1] - pa)[None, :]).ravel()
        where = np.searchsorted(hits, seg_start)
        found = where < hits.size
        found[found] = hits[where[found]] < seg_end[found]
        chosen = hits[where[found]]
        taken[chosen // n, gts[chosen % n]] = True
        tp[:, step_order[a:b]] = found.reshape(k, b - a)
    return tp


def _interpolated_ap(
    tp: np.ndarray, cls: np.ndarray, npos: np.ndarray, num_classes: int
) -> np.ndarray:
    """All-point interpolated AP per (threshold, class) for ranked, class-grouped predictions.

    Args:
        tp: (K, N) bool, true positives of predictions grouped by class, best score first.
        cls: (N,) non-decreasing class position of each prediction.
        npos: (E,) positives per class (all > 0).
        num_classes: E.

    Returns:
        (K, E) AP.
    """
    k, n = tp.shape
    ap = np.zeros((k, num_classes))
    if n == 0:
        return ap
    class_start = np.concatenate(([0], np.cumsum(np.bincount(cls, minlength=num_classes))))
    position = np.arange(n) - class_start[cls]
    cum = np.cumsum(tp, axis=1)
    before = np.concatenate((np.zeros((k, 1), dtype=cum.dtype), cum[:, :-1]), axis=1)
    tp_cum = cum - before[:, class_start[cls]]
    precision = tp_cum / (position + 1.0)
    recall = tp_cum / npos[cls].astype(np.float64)
    recall_before = (tp_cum - 1) / npos[cls].astype(np.float64)

    # Running maximum from the right, restarted for each (threshold, class) segment: encode
    # each precision by its exact rank among all values and put the segment in the high digits,
    # so one cumulative maximum over the reversed array never carries across segments.
    segment = (np.arange(k)[:, None] * num_classes + cls[None, :]).ravel()
    values, value_rank = np.unique(precision.ravel(), return_inverse=True)
    num_segments = k * num_classes
    key = (num_segments - 1 - segment) * values.size + value_rank.ravel()
    envelope = values[np.maximum.accumulate(key[::-1])[::-1] % values.size]

    # Recall moves only at true positives; the appended (recall 1, precision 0) point adds 0.
    hit = tp.ravel()
    gain = (recall.ravel() - recall_before.ravel())[hit] * envelope[hit]
    ap += np.bincount(segment[hit], weights=gain, minlength=num_segments).reshape(k, num_classes)
    return ap


@dataclass
class _GroupedGroundTruth:
    """Accepted ground truth grouped by (evaluated class position, video), row order kept."""

    kept: np.ndarray  # (N,) bool over the input rows
    video: np.ndarray  # (M,) video of each accepted row, input order
    key: np.ndarray  # (M,) group key class * num_videos + video, group order
    start: np.ndarray
    end: np.ndarray
    group_keys: np.ndarray
    group_first: np.ndarray
    group_size: np.ndarray


@dataclass
class _RankedPredictions:
    """Scored predictions ranked per class by descending score (stable)."""

    ranked: np.ndarray  # indices into the predictions
    cls: np.ndarray  # evaluated class position of each ranked prediction
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    known_video: np.ndarray  # bool


def _group_ground_truth(
    gt: GroundTruth, kept: np.ndarray, class_position: np.ndarray
) -> _GroupedGroundTruth:
    num_videos = len(gt.video_ids)
    g_video, g_label = gt.video[kept], gt.label[kept]
    g_cls = class_position[g_label]
    order = np.lexsort((g_video, g_cls))
    key = (g_cls * num_videos + g_video)[order]
    group_keys, group_first, group_size = np.unique(key, return_index=True, return_counts=True)
    return _GroupedGroundTruth(
        kept=kept,
        video=g_video,
        key=key,
        start=gt.start[kept][order],
        end=gt.end[kept][order],
        group_keys=group_keys,
        group_first=group_first,
        group_size=group_size,
    )


def _rank_predictions(
    pred: Predictions, evaluated: np.ndarray, class_position: np.ndarray, num_videos: int
) -> _RankedPredictions:
    vocab = evaluated.size
    in_vocab = (pred.label >= 0) & (pred.label < vocab)
    scored = np.zeros(len(pred), dtype=bool)
    scored[in_vocab] = evaluated[pred.label[in_vocab]]
    selected = np.flatnonzero(scored)
    p_cls_unsorted = class_position[pred.label[selected]]
    ranked = selected[np.lexsort((-pred.score[selected], p_cls_unsorted))]
    video = pred.video[ranked]
    return _RankedPredictions(
        ranked=ranked,
        cls=class_position[pred.label[ranked]],
        video=video,
        start=pred.start[ranked],
        end=pred.end[ranked],
        known_video=(video >= 0) & (video < num_videos),
    )


def _true_positives(
    g: _GroupedGroundTruth, p: _RankedPredictions, num_videos: int, thresholds: np.ndarray
) -> np.ndarray:
    """(K, #ranked) bool: greedy matching of every ranked prediction at every threshold."""
    # Attach each prediction to its ground-truth group, if any.
    p_key = p.cls * num_videos + np.where(p.known_video, p.video, 0)
    group = np.searchsorted(g.group_keys, p_key)
    group = np.minimum(group, max(g.group_keys.size - 1, 0))
    has_group = p.known_video & (g.group_keys.size > 0)
    if g.group_keys.size:
        has_group &= g.group_keys[group] == p_key
    grouped = np.flatnonzero(has_group)
    grouped_group = group[grouped]

    # All (prediction, ground truth) pairs of a group. Pairs below the lowest threshold can
    # never match, so they (and predictions left without pairs) are dropped before matching.
    counts = g.group_size[grouped_group]
    pair_pred = np.repeat(np.arange(grouped.size), counts)
    pair_gt = np.repeat(g.group_first[grouped_group] - np.cumsum(counts) + counts, counts)
    pair_gt += np.arange(pair_gt.size)
    pair_tiou = segment_tiou(
        p.start[grouped][pair_pred], p.end[grouped][pair_pred], g.start[pair_gt], g.end[pair_gt]
    )
    useful = pair_tiou >= thresholds.min()
    pair_pred, pair_gt, pair_tiou = pair_pred[useful], pair_gt[useful], pair_tiou[useful]
    matchable = np.unique(pair_pred)
    local = np.full(grouped.size, -1, dtype=np.int64)
    local[matchable] = np.arange(matchable.size)
    match_rank = _segmented_rank(p_key[grouped][matchable])
    tp_matchable = _greedy_match(
        match_rank,
        local[pair_pred],
        pair_gt,
        pair_tiou,
        matchable.size,
        g.key.size,
        thresholds,
    )
    tp = np.zeros((thresholds.size, p.ranked.size), dtype=bool)
    tp[:, grouped[matchable]] = tp_matchable
    return tp


def _recall_at(
    tp: np.ndarray,
    g: _GroupedGroundTruth,
    p: _RankedPredictions,
    scores: np.ndarray,
    num_videos: int,
    recall_at: Sequence[int],
) -> dict[int, np.ndarray]:
    """Recall at k x #GT: a detection counts only if it is among the k * n_v best-scored
    scored detections of its video (all classes together, n_v = accepted annotations of the
    video). Inside a (class, video) group that keeps a prefix of the score order, so the greedy
    matching of the full ranking restricted to those detections is the matching they alone
    would get."""
    gt_per_video = np.bincount(g.video, minlength=num_videos)
    on_video = np.flatnonzero(p.known_video)
    video_rank = np.empty(on_video.size, dtype=np.int64)
    video_order = np.lexsort((p.ranked[on_video], -scores[p.ranked[on_video]], p.video[on_video]))
    video_rank[video_order] = _segmented_rank(p.video[on_video][video_order])
    recall: dict[int, np.ndarray] = {}
    for multiple in recall_at:
        within = video_rank < multiple * gt_per_video[p.video[on_video]]
        recovered = (tp[:, on_video] & within[None, :]).sum(axis=1)
        recall[int(multiple)] = recovered / max(int(g.kept.sum()), 1)
    return recall


def _counts(
    gt: GroundTruth,
    pred: Predictions,
    g: _GroupedGroundTruth,
    p: _RankedPredictions,
    cleaning: tuple[np.ndarray, np.ndarray],
    num_classes: int,
) -> EvaluationCounts:
    num_videos = len(gt.video_ids)
    too_short, duplicate = cleaning
    videos_with_gt = np.zeros(num_videos, dtype=bool)
    videos_with_gt[g.video] = True
    on_known_video_without_gt = p.known_video.copy()
    on_known_video_without_gt[p.known_video] = ~videos_with_gt[p.video[p.known_video]]
    return EvaluationCounts(
        videos=num_videos,
        videos_with_ground_truth=int(videos_with_gt.sum()),
        gt_total=len(gt),
        gt_kept=int(g.kept.sum()),
        gt_too_short=int(too_short.sum()),
        gt_duplicate=int(duplicate.sum()),
        classes=num_classes,
        predictions=len(pred),
        predictions_scored=int(p.ranked.size),
        predictions_unknown_label=int(len(pred) - p.ranked.size),
        predictions_unknown_video=int((~p.known_video).sum()),
        predictions_video_without_gt=int(on_known_video_without_gt.sum()),
    )


def evaluate_detections(
    ground_truth: GroundTruth,
    predictions: Predictions,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS_TIOU,
    recall_at: Sequence[int] = (1, 5),
    score_bins: int = 10,
) -> DetectionReport:
    """Compute detection AP / mAP over tIoU thresholds.

    Args:
        ground_truth: annotations (cleaned here, see :func:`clean_ground_truth`).
        predictions: detections indexed like ``ground_truth``.
        tiou_thresholds: (K,) thresholds; a tIoU equal to the threshold is a match.
        recall_at: multipliers k of the "top k x #GT detections per (class, video)" recall.
        score_bins: bins of the score histogram.

    Returns:
        The :class:`DetectionReport`.
    """
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
        raise ValueError(f"tiou_thresholds must be finite numbers, got {tiou_thresholds!r}")
    gt, pred = ground_truth, predictions
    num_videos, vocab = len(gt.video_ids), len(gt.class_names)

    kept, too_short, duplicate = clean_ground_truth(gt)
    num_positives = np.bincount(gt.label[kept], minlength=vocab)
    evaluated = num_positives > 0
    num_classes = int(evaluated.sum())
    class_position = np.cumsum(evaluated) - 1

    grouped = _group_ground_truth(gt, kept, class_position)
    ranked = _rank_predictions(pred, evaluated, class_position, num_videos)
    tp = _true_positives(grouped, ranked, num_videos, thresholds)

    ap_eval = _interpolated_ap(tp, ranked.cls, num_positives[evaluated], num_classes)
    ap = np.full((vocab, thresholds.size), np.nan)
    ap[evaluated] = ap_eval.T
    m_ap = ap_eval.mean(axis=1) if num_classes else np.zeros(thresholds.size)

    score_range = score_histogram = None
    if len(pred):
        score_range = (float(pred.score.min()), float(pred.score.max()))
        score_histogram = np.histogram(pred.score, bins=score_bins)
    return DetectionReport(
        tiou_thresholds=thresholds,
        mAP=m_ap,
        average_mAP=float(m_ap.mean()),
        ap=ap,
        class_names=gt.class_names,
        evaluated=evaluated,
        num_positives=num_positives,
        counts=_counts(gt, pred, grouped, ranked, (too_short, duplicate), num_classes),
        recall=_recall_at(tp, grouped, ranked, pred.score, num_videos, recall_at),
        score_range=score_range,
        score_histogram=score_histogram,
    )

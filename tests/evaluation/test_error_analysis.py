"""False-positive breakdown (logo_tal.evaluation.error_analysis): hand-made cases and
agreement with AP."""

from __future__ import annotations

import numpy as np
import pytest

from logo_tal.evaluation.ap import GroundTruth, Predictions, evaluate_detections
from logo_tal.evaluation.error_analysis import CATEGORIES, error_breakdown


def _gt() -> GroundTruth:
    # Video 0: class 0 at [10, 20], class 1 at [30, 40]; video 1 has no ground truth.
    return GroundTruth(
        video_ids=["a", "b"],
        class_names=["jump", "run"],
        video=[0, 0],
        label=[0, 1],
        start=[10.0, 30.0],
        end=[20.0, 40.0],
    )


def _preds(rows: list[tuple[int, int, float, float, float]]) -> Predictions:
    video, label, start, end, score = (list(c) for c in zip(*rows, strict=True))
    return Predictions(video=video, label=label, start=start, end=end, score=score)


def test_every_category_on_a_hand_made_video():
    rows = [
        (0, 0, 11.0, 20.0, 0.8),  # tIoU 0.9 but the GT goes to the better one: duplicate
        (0, 0, 10.0, 20.0, 0.9),  # exact: true positive
        (0, 0, 10.0, 14.0, 0.7),  # tIoU 0.4 with its class: localisation
        (0, 1, 10.0, 20.0, 0.6),  # exact, other class: wrong class
        (0, 0, 50.0, 60.0, 0.5),  # nothing there: background
        (0, 0, 30.0, 34.0, 0.4),  # tIoU 0.4 with the other class only: wrong class (confusion)
        (1, 0, 10.0, 20.0, 0.95),  # video without ground truth: background
        (-1, 0, 10.0, 20.0, 0.99),  # video unknown to the ground truth: background
    ]
    result = error_breakdown(_gt(), _preds(rows), tiou=0.5)
    names = [CATEGORIES[c] for c in result.category]
    assert names == [
        "duplicate",
        "true_positive",
        "localisation",
        "wrong_class",
        "background",
        "wrong_class",
        "background",
        "background",
    ]
    assert sum(result.counts.values()) == len(rows)
    assert result.false_positive_counts == {
        "duplicate": 1,
        "wrong_class": 2,
        "localisation": 1,
        "background": 3,
    }
    np.testing.assert_allclose(result.best_tiou[:4], [0.9, 1.0, 0.4, 1.0])


def test_thresholds_move_detections_between_categories():
    rows = [(0, 0, 10.0, 14.0, 0.7)]  # tIoU 0.4
    assert error_breakdown(_gt(), _preds(rows), tiou=0.3).counts["true_positive"] == 1
    assert error_breakdown(_gt(), _preds(rows), tiou=0.5, low_tiou=0.45).counts["background"] == 1
    with pytest.raises(ValueError, match="low_tiou"):
        error_breakdown(_gt(), _preds(rows), tiou=0.5, low_tiou=0.6)


def test_no_detections():
    empty = Predictions(video=[], label=[], start=[], end=[], score=[])
    result = error_breakdown(_gt(), empty)
    assert result.category.shape == (0,)
    assert sum(result.counts.values()) == 0


@pytest.mark.parametrize("tiou", [0.3, 0.5, 0.7])
def test_true_positives_are_the_ap_matches(tiou):
    rng = np.random.default_rng(0)
    m, n, videos, classes = 60, 400, 8, 4
    start = rng.uniform(0, 100, m)
    gt = GroundTruth(
        video_ids=[f"v{i}" for i in range(videos)],
        class_names=[f"c{i}" for i in range(classes)],
        video=rng.integers(0, videos, m),
        label=rng.integers(0, classes, m),
        start=start,
        end=start + rng.uniform(1, 20, m),
    )
    pick = rng.integers(0, m, n)
    jitter = rng.normal(0, 2, (2, n))
    preds = Predictions(
        video=np.where(rng.random(n) < 0.9, gt.video[pick], rng.integers(0, videos, n)),
        label=np.where(rng.random(n) < 0.8, gt.label[pick], rng.integers(0, classes, n)),
        start=gt.start[pick] + jitter[0],
        end=gt.end[pick] + jitter[1],
        score=np.round(rng.random(n), 2),  # ties exercise the stable order
    )
    result = error_breakdown(gt, preds, tiou=tiou)
    # With an unlimited budget the evaluation's recall is exactly its matched fraction.
    report = evaluate_detections(gt, preds, [tiou], recall_at=(10**6,))
    matched = round(report.recall[10**6][0] * report.counts.gt_kept)
    assert result.counts["true_positive"] == matched > 0
    assert sum(result.counts.values()) == n

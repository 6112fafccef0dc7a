"""Detection AP / mAP (logo_tal.evaluation.ap): hand-computed cases and a brute-force reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from logo_tal.evaluation.ap import (
    GroundTruth,
    Predictions,
    clean_ground_truth,
    evaluate_detections,
    segment_tiou,
)

# (video, label, start, end) and (video, label, start, end, score), as in the JSON files.
GtRow = tuple[str, str, float, float]
PredRow = tuple[str, str, float, float, float]


def make_inputs(
    gt_rows: list[GtRow], pred_rows: list[PredRow], videos: list[str] | None = None
) -> tuple[GroundTruth, Predictions]:
    """Index name-based rows the way io.py does (unknown video / label -> -1)."""
    video_ids = list(videos) if videos is not None else list(dict.fromkeys(r[0] for r in gt_rows))
    class_names = sorted({r[1] for r in gt_rows})
    v_index = {v: i for i, v in enumerate(video_ids)}
    c_index = {c: i for i, c in enumerate(class_names)}
    gt = GroundTruth(
        video_ids=video_ids,
        class_names=class_names,
        video=[v_index[r[0]] for r in gt_rows],
        label=[c_index[r[1]] for r in gt_rows],
        start=[r[2] for r in gt_rows],
        end=[r[3] for r in gt_rows],
    )
    preds = Predictions(
        video=[v_index.get(r[0], -1) for r in pred_rows],
        label=[c_index.get(r[1], -1) for r in pred_rows],
        start=[r[2] for r in pred_rows],
        end=[r[3] for r in pred_rows],
        score=[r[4] for r in pred_rows],
    )
    return gt, preds


def run(gt_rows, pred_rows, thresholds, videos=None):
    gt, preds = make_inputs(gt_rows, pred_rows, videos)
    return evaluate_detections(gt, preds, thresholds)


# ----------------------------------------------------------------------------------------------
# Brute force, straight from the prose of docs/decisions.md D57-D60, plain Python.
# ----------------------------------------------------------------------------------------------


def brute_force(gt_rows, pred_rows, thresholds, videos=None):
    """Returns (mAP list, {class: [AP per threshold]})."""
    kept_videos = set(videos) if videos is not None else {r[0] for r in gt_rows}
    accepted: dict[str, list[tuple[str, float, float]]] = {v: [] for v in kept_videos}
    for video, label, start, end in gt_rows:
        if end - start < 0.001:
            continue
        if any(
            lab == label and abs(s - start) <= 0.001 and abs(e - end) <= 0.001
            for lab, s, e in accepted[video]
        ):
            continue
        accepted[video].append((label, start, end))
    classes = sorted({lab for anns in accepted.values() for lab, _, _ in anns})
    per_class = {}
    for c in classes:
        npos = sum(1 for anns in accepted.values() for lab, _, _ in anns if lab == c)
        ranked = sorted([p for p in pred_rows if p[1] == c], key=lambda p: -p[4])
        aps = []
        for t in thresholds:
            taken = set()
            tp = []
            for video, _, ps, pe, _ in ranked:
                candidates = []
                for g, (lab, gs, ge) in enumerate(accepted.get(video, [])):
                    if lab != c:
                        continue
                    inter = max(0.0, min(pe, ge) - max(ps, gs))
                    union = (pe - ps) + (ge - gs) - inter
                    candidates.append((inter / union if union > 0 else 0.0, g))
                candidates.sort(key=lambda x: -x[0])
                hit = False
                for iou, g in candidates:
                    if iou < t:
                        break
                    if (video, g) in taken:
                        continue
                    taken.add((video, g))
                    hit = True
                    break
                tp.append(hit)
            rec, prec = [0.0], [0.0]
            n_tp = n_fp = 0
            for hit in tp:
                n_tp += hit
                n_fp += not hit
                rec.append(n_tp / npos)
                prec.append(n_tp / (n_tp + n_fp))
            rec.append(1.0)
            prec.append(0.0)
            for i in range(len(prec) - 2, -1, -1):
                prec[i] = max(prec[i], prec[i + 1])
            aps.append(
                sum(
                    (rec[i] - rec[i - 1]) * prec[i]
                    for i in range(1, len(rec))
                    if rec[i] != rec[i - 1]
                )
            )
        per_class[c] = aps
    if not classes:
        return [0.0] * len(thresholds), per_class
    m_ap = [sum(per_class[c][k] for c in classes) / len(classes) for k in range(len(thresholds))]
    return m_ap, per_class


def random_case(rng: np.random.Generator, n_videos=6, n_classes=4, n_gt=30, n_pred=80):
    videos = [f"v{i}" for i in range(n_videos)]
    labels = [f"c{i}" for i in range(n_classes)]
    gt_rows = []
    for _ in range(n_gt):
        video = videos[rng.integers(n_videos - 1)]  # the last video has no annotations
        start = float(rng.integers(0, 40))
        length = float(rng.choice([0.0, 0.0005, 1.0, 2.0, 3.0, 5.0, 10.0]))
        gt_rows.append((video, labels[rng.integers(n_classes)], start, start + length))
        if rng.random() < 0.15:  # near-duplicates, chains included
            jitter = float(rng.choice([0.0, 0.0008, 0.001, 0.0015]))
            gt_rows.append((video, gt_rows[-1][1], start + jitter, start + length + jitter))
    pred_rows = []
    for _ in range(n_pred):
        r = rng.random()
        if r < 0.5 and gt_rows:
            video, label, start, end = gt_rows[rng.integers(len(gt_rows))]
            start += float(rng.integers(-3, 4))
            end += float(rng.integers(-3, 4))
        else:
            video = videos[rng.integers(n_videos)] if rng.random() < 0.9 else "unknown"
            label = labels[rng.integers(n_classes)] if rng.random() < 0.9 else "nope"
            start = float(rng.integers(0, 40))
            end = start + float(rng.integers(-2, 12))  # reversed and empty ones too
        score = float(rng.integers(0, 20)) / 20 if rng.random() < 0.3 else float(rng.random())
        pred_rows.append((video, label, start, end, score))
        if rng.random() < 0.05:
            pred_rows.append(pred_rows[-1])  # verbatim repeat
    return gt_rows, pred_rows, videos


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows, videos = random_case(
        rng,
        n_videos=int(rng.integers(2, 8)),
        n_classes=int(rng.integers(1, 6)),
        n_gt=int(rng.integers(0, 40)),
        n_pred=int(rng.integers(0, 120)),
    )
    thresholds = [0.1, 0.3, 0.5, 0.7, 0.95] if seed % 2 else [0.5, 0.25, 1 / 3]
    report = run(gt_rows, pred_rows, thresholds, videos)
    expected_map, expected_ap = brute_force(gt_rows, pred_rows, thresholds, videos)
    np.testing.assert_allclose(report.mAP, expected_map, rtol=0, atol=1e-9)
    assert report.average_mAP == pytest.approx(np.mean(expected_map), abs=1e-9)
    names = [n for n, ok in zip(report.class_names, report.evaluated, strict=True) if ok]
    assert names == sorted(expected_ap)
    for name, row in zip(report.class_names, report.ap, strict=True):
        if name in expected_ap:
            np.testing.assert_allclose(row, expected_ap[name], rtol=0, atol=1e-9)
        else:
            assert np.isnan(row).all()


def test_matches_brute_force_on_a_crowded_video():
    # Many overlapping predictions and ground truths in one (class, video) group exercise the
    # fall-back to the next-best free ground truth and long greedy chains.
    rng = np.random.default_rng(7)
    gt_rows = []
    for _ in range(60):
        s = float(rng.integers(0, 100))
        gt_rows.append(("v", "a", s, s + float(rng.integers(1, 15))))
    pred_rows = []
    for _ in range(400):
        s = float(rng.integers(0, 100))
        pred_rows.append(("v", "a", s, s + float(rng.integers(1, 15)), float(rng.random())))
    thresholds = [0.1, 0.3, 0.5, 0.7, 0.9]
    report = run(gt_rows, pred_rows, thresholds)
    expected, _ = brute_force(gt_rows, pred_rows, thresholds)
    np.testing.assert_allclose(report.mAP, expected, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Hand-computed cases.
# ----------------------------------------------------------------------------------------------


def test_perfect_predictions_give_one():
    gt_rows = [("v1", "a", 0.0, 10.0), ("v1", "b", 5.0, 8.0), ("v2", "a", 1.5, 2.25)]
    preds = [(v, c, s, e, 0.5 + 0.1 * i) for i, (v, c, s, e) in enumerate(gt_rows)]
    report = run(gt_rows, preds, [0.3, 0.5, 0.7, 0.95])
    np.testing.assert_array_equal(report.mAP, 1.0)
    assert report.average_mAP == 1.0


def test_worked_example_with_false_positive():
    gt_rows = [("v1", "A", 0.0, 10.0), ("v1", "A", 20.0, 30.0), ("v1", "B", 40.0, 50.0)]
    preds = [
        ("v1", "A", 0.0, 10.0, 0.9),  # IoU 1 with A[0, 10]: TP at both thresholds
        ("v1", "A", 50.0, 60.0, 0.8),  # overlaps nothing: FP
        ("v1", "A", 24.0, 30.0, 0.7),  # IoU 6/10 = 0.6 with A[20, 30]: TP at 0.5, FP at 0.75
        ("v1", "B", 40.0, 50.0, 0.6),  # TP
    ]
    # Class A, npos 2.
    #   t = 0.5:  TP FP TP -> precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
    #             Interpolated precision at the recall steps: 1 (r 1/2) and 2/3 (r 1).
    #             AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    #   t = 0.75: TP FP FP -> one recall step to 1/2 at precision 1: AP = 1/2.
    # Class B: AP 1 at both. mAP = (5/6 + 1) / 2 = 11/12 and (1/2 + 1) / 2 = 3/4.
    report = run(gt_rows, preds, [0.5, 0.75])
    np.testing.assert_allclose(report.mAP, [11 / 12, 3 / 4], atol=1e-12)
    assert report.average_mAP == pytest.approx((11 / 12 + 3 / 4) / 2, abs=1e-12)
    np.testing.assert_allclose(report.ap, [[5 / 6, 1 / 2], [1.0, 1.0]], atol=1e-12)


def test_threshold_order_is_kept():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("v", "A", 4.0, 10.0, 0.9)]  # IoU 0.6
    report = run(gt_rows, preds, [0.7, 0.5])
    np.testing.assert_array_equal(report.tiou_thresholds, [0.7, 0.5])
    np.testing.assert_array_equal(report.mAP, [0.0, 1.0])


def test_iou_exactly_at_threshold_is_a_match():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("v", "A", 3.0, 10.0, 0.9)]  # IoU 7/10, equal to float("0.7") in float64
    report = run(gt_rows, preds, [float("0.7"), 0.7000001])
    np.testing.assert_array_equal(report.mAP, [1.0, 0.0])
    assert segment_tiou(3.0, 10.0, 0.0, 10.0) == float("0.7")


def test_class_without_predictions_scores_zero_and_is_averaged():
    gt_rows = [("v", "A", 0.0, 10.0), ("v", "B", 20.0, 30.0)]
    preds = [("v", "A", 0.0, 10.0, 0.9)]
    report = run(gt_rows, preds, [0.5])
    np.testing.assert_array_equal(report.ap[:, 0], [1.0, 0.0])
    assert report.mAP[0] == 0.5


def test_greedy_matching_falls_back_to_next_best_free_ground_truth():
    gt_rows = [("v", "A", 0.0, 10.0), ("v", "A", 2.0, 12.0)]
    preds = [
        ("v", "A", 0.0, 10.0, 0.9),  # takes the first ground truth
        ("v", "A", 0.5, 10.5, 0.8),  # best is taken; second IoU 8.5/11.5 ~ 0.74 >= 0.7
    ]
    report = run(gt_rows, preds, [0.7, 0.75])
    np.testing.assert_allclose(report.mAP, [1.0, 0.5])


def test_duplicate_ground_truth_chain_rule():
    gt_rows = [
        ("v", "A", 0.0, 1.0),  # A: accepted
        ("v", "A", 0.0008, 1.0008),  # B: within 1 ms of A -> dropped
        ("v", "A", 0.0016, 1.0016),  # C: within 1 ms of B (dropped) but not of A -> kept
        ("v", "A", 0.001, 1.001),  # within 1 ms of A (inclusive) -> dropped
        ("v", "B", 0.0, 1.0),  # same bounds, other label -> kept
    ]
    gt, preds = make_inputs(gt_rows, [])
    kept, short, dup = clean_ground_truth(gt)
    np.testing.assert_array_equal(kept, [True, False, True, False, True])
    np.testing.assert_array_equal(dup, [False, True, False, True, False])
    assert not short.any()
    report = evaluate_detections(gt, preds, [0.5])
    assert (report.counts.gt_kept, report.counts.gt_duplicate) == (3, 2)
    np.testing.assert_array_equal(report.num_positives, [2, 1])


def test_duplicates_are_only_within_a_video():
    gt_rows = [("v1", "A", 0.0, 1.0), ("v2", "A", 0.0, 1.0)]
    gt, _ = make_inputs(gt_rows, [])
    kept, _, _ = clean_ground_truth(gt)
    assert kept.all()


def test_short_ground_truth_is_dropped():
    gt_rows = [
        ("v", "A", 0.0, 10.0),
        ("v", "A", 5.0, 5.0009),  # shorter than 1 ms
        ("v", "A", 7.0, 6.0),  # reversed
        ("v", "B", 1.0, 1.0),  # B exists only as a dropped annotation: not a class
    ]
    preds = [("v", "A", 0.0, 10.0, 0.9), ("v", "B", 1.0, 1.0, 0.95)]
    report = run(gt_rows, preds, [0.5])
    assert report.counts.gt_too_short == 3 and report.counts.gt_kept == 1
    assert report.counts.classes == 1
    assert report.mAP[0] == 1.0  # the B prediction is ignored, not a false positive of A
    assert report.counts.predictions_unknown_label == 1


def test_unknown_label_is_ignored():
    gt_rows = [("v", "A", 0.0, 10.0)]
    base = run(gt_rows, [("v", "A", 0.0, 10.0, 0.5)], [0.5])
    extra = run(gt_rows, [("v", "A", 0.0, 10.0, 0.5), ("v", "Z", 0.0, 10.0, 0.9)], [0.5])
    assert base.mAP[0] == extra.mAP[0] == 1.0
    assert extra.counts.predictions_unknown_label == 1


def test_predictions_on_unknown_videos_are_false_positives():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("elsewhere", "A", 0.0, 10.0, 0.9), ("v", "A", 0.0, 10.0, 0.5)]
    report = run(gt_rows, preds, [0.5])
    # FP then TP: recall steps to 1 at precision 1/2.
    assert report.mAP[0] == 0.5
    assert report.counts.predictions_unknown_video == 1


def test_predictions_on_video_without_annotations_are_false_positives():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("empty", "A", 0.0, 10.0, 0.9), ("v", "A", 0.0, 10.0, 0.5)]
    report = run(gt_rows, preds, [0.5], videos=["v", "empty"])
    assert report.mAP[0] == 0.5
    assert report.counts.predictions_video_without_gt == 1
    assert report.counts.videos == 2 and report.counts.videos_with_ground_truth == 1


def test_degenerate_predictions_are_false_positives_that_keep_their_rank():
    gt_rows = [("v", "A", 0.0, 2.0)]
    preds = [
        ("v", "A", 10.0, 8.0, 0.9),  # reversed, union exactly 0: IoU 0, not NaN
        ("v", "A", 1.0, 1.0, 0.8),  # empty
        ("v", "A", 0.0, 2.0, 0.7),
    ]
    report = run(gt_rows, preds, [0.5])
    assert report.mAP[0] == pytest.approx(1 / 3)
    assert segment_tiou(10.0, 8.0, 0.0, 2.0) == 0.0


def test_verbatim_repeats_are_all_scored():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("v", "A", 0.0, 10.0, 0.9)] * 2
    report = run(gt_rows, preds, [0.5])
    assert report.mAP[0] == 1.0  # TP then FP: the recall step happened at precision 1
    assert report.counts.predictions_scored == 2


def test_empty_inputs_do_not_crash():
    gt_rows = [("v", "A", 0.0, 10.0)]
    report = run(gt_rows, [], [0.5, 0.7])
    np.testing.assert_array_equal(report.mAP, 0.0)
    assert report.score_range is None and report.score_histogram is None
    # No ground truth at all: no class, mAP 0 by convention rather than NaN.
    empty = evaluate_detections(GroundTruth(["v"], [], [], [], [], []), Predictions.empty(), [0.5])
    assert empty.mAP.tolist() == [0.0] and empty.counts.classes == 0


def test_recall_at_k_times_ground_truth():
    gt_rows = [("v", "A", 0.0, 10.0), ("v", "B", 20.0, 30.0)]
    preds = [
        ("v", "B", 50.0, 60.0, 0.9),
        ("v", "A", 70.0, 80.0, 0.8),
        ("v", "A", 0.0, 10.0, 0.7),  # third in the video: outside the top 1 x 2
        ("v", "B", 20.0, 30.0, 0.6),
    ]
    gt, p = make_inputs(gt_rows, preds)
    report = evaluate_detections(gt, p, [0.5], recall_at=(1, 2))
    assert report.recall[1].tolist() == [0.0]
    assert report.recall[2].tolist() == [1.0]


def test_score_histogram():
    gt_rows = [("v", "A", 0.0, 10.0)]
    preds = [("v", "A", 0.0, 1.0, s) for s in (0.1, 0.2, 0.9)] + [("x", "Q", 0, 1, 0.5)]
    gt, p = make_inputs(gt_rows, preds)
    report = evaluate_detections(gt, p, [0.5], score_bins=4)
    assert report.score_range == (0.1, 0.9)
    counts, edges = report.score_histogram
    assert counts.sum() == 4 and edges[0] == 0.1 and edges[-1] == 0.9


def test_containers_validate_their_arrays():
    with pytest.raises(ValueError, match="differ in length"):
        Predictions([0], [0, 1], [0.0], [1.0], [0.5])
    with pytest.raises(ValueError, match="not finite"):
        Predictions([0], [0], [0.0], [1.0], [float("nan")])
    with pytest.raises(ValueError, match="outside"):
        GroundTruth(["v"], ["A"], [1], [0], [0.0], [1.0])


def test_ap_module_does_not_import_torch():
    code = (
        "import sys, logo_tal.evaluation.ap, logo_tal.evaluation.io, logo_tal.score\n"
        "bad = [m for m in ('torch', 'lightning', 'hydra') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

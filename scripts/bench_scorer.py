"""Time the mAP scorer (logo_tal.evaluation.ap.evaluate_detections).

Two cases, each timed as the best of ``--repeats`` runs (docs/decisions.md D71: under 1 s each):

(a) the real THUMOS14 test ground truth (212 videos, 3358 instances, 20 classes) with 200
    synthetic detections per video, about half jittered copies of ground truth and half random,
    at the THUMOS thresholds 0.3:0.1:0.7;
(b) synthetic ActivityNet-like data: 20,000 detections over 200 classes and 1,000 videos at the
    ActivityNet thresholds 0.5:0.05:0.95.

Usage::

    python scripts/bench_scorer.py [--gt PATH] [--repeats N] [--seed S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from logo_tal.core.protocol import ANET_TIOU, THUMOS_TIOU
from logo_tal.evaluation.ap import (
    GroundTruth,
    Predictions,
    evaluate_detections,
)
from logo_tal.evaluation.io import load_ground_truth, load_predictions
from logo_tal.evaluation.report import write_detections

DEFAULT_GT = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "thumos14"
    / "thumos14_anet_style.json"
)


def synthetic_detections(
    gt: GroundTruth, per_video: int, rng: np.random.Generator, duration: float
) -> Predictions:
    """``per_video`` detections per video: jittered ground truth first, random ones after."""
    videos, labels, starts, ends = [], [], [], []
    num_classes = len(gt.class_names)
    for v in range(len(gt.video_ids)):
        rows = np.flatnonzero(gt.video == v)
        n_jitter = min(per_video // 2, 4 * rows.size)
        pick = rng.choice(rows, n_jitter) if rows.size else np.zeros(0, dtype=np.int64)
        length = gt.end[pick] - gt.start[pick]
        s = gt.start[pick] + rng.normal(0, 0.15, n_jitter) * length
        e = gt.end[pick] + rng.normal(0, 0.15, n_jitter) * length
        n_random = per_video - n_jitter
        rs = rng.uniform(0, duration, n_random)
        re = rs + rng.exponential(5.0, n_random)
        videos.append(np.full(per_video, v))
        labels.append(np.concatenate([gt.label[pick], rng.integers(0, num_classes, n_random)]))
        starts.append(np.concatenate([s, rs]))
        ends.append(np.concatenate([e, re]))
    n = sum(a.size for a in videos)
    return Predictions(
        np.concatenate(videos),
        np.concatenate(labels),
        np.concatenate(starts),
        np.concatenate(ends),
        rng.random(n),
    )


def synthetic_anet(rng: np.random.Generator, num_videos=1000, num_classes=200, num_gt=1500):
    """ActivityNet-like ground truth: one class per video and, as in ActivityNet, at least one
    instance in every video, so every class has ground truth whatever state ``rng`` is in
    (drawn at random, a class could go without, and then the report counts 199)."""
    extra = rng.integers(0, num_videos, num_gt - num_videos)
    video = np.concatenate([np.arange(num_videos), extra])
    video_class = rng.permutation(np.arange(num_videos) % num_classes)
    start = rng.uniform(0, 100, num_gt)
    end = start + rng.uniform(2, 60, num_gt)
    return GroundTruth(
        video_ids=[f"v_{i:05d}" for i in range(num_videos)],
        class_names=[f"class_{c:03d}" for c in range(num_classes)],
        video=video,
        label=video_class[video],
        start=start,
        end=end,
    )


def _results(preds: Predictions, gt: GroundTruth) -> dict[str, list[dict]]:
    """The ``"results"`` entries of a detections file holding ``preds``."""
    out: dict[str, list[dict]] = {video: [] for video in gt.video_ids}
    for v, label, s, e, x in zip(
        preds.video.tolist(), preds.label.tolist(), preds.start.tolist(), preds.end.tolist(),
        preds.score.tolist(), strict=True,
    ):  # fmt: skip
        out[gt.video_ids[v]].append(
            {"segment": [s, e], "label": gt.class_names[label], "score": x}
        )
    return out


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def thumos_case(gt_path: Path, repeats: int, rng: np.random.Generator) -> dict[str, float]:
    """Case (a): real THUMOS14 test ground truth, 200 detections per video."""
    load_s, gt = best_time(lambda: load_ground_truth(gt_path, subset="test"), repeats)
    preds = synthetic_detections(gt, 200, rng, duration=200.0)
    seconds, report = best_time(lambda: evaluate_detections(gt, preds, THUMOS_TIOU), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_detections(tmp, _results(preds, gt), "results.json")
        read_s, _ = best_time(lambda: load_predictions(path, gt), repeats)
    return {
        "videos": len(gt.video_ids),
        "instances": len(gt),
        "detections": len(preds),
        "thresholds": len(THUMOS_TIOU),
        "seconds": seconds,
        "average_mAP": float(report.average_mAP),
        "load_gt_s": load_s,
        "load_results_s": read_s,
    }


def anet_case(repeats: int, rng: np.random.Generator) -> dict[str, float]:
    """Case (b): synthetic ActivityNet-like data, 20 detections x 1,000 videos, 200 classes."""
    gt = synthetic_anet(rng)
    preds = synthetic_detections(gt, 20, rng, duration=160.0)
    seconds, report = best_time(lambda: evaluate_detections(gt, preds, ANET_TIOU), repeats)
    return {
        "videos": len(gt.video_ids),
        "classes": report.counts.classes,
        "instances": len(gt),
        "detections": len(preds),
        "thresholds": len(ANET_TIOU),
        "seconds": seconds,
        "average_mAP": float(report.average_mAP),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", type=Path, default=DEFAULT_GT, help="THUMOS14 ground truth JSON")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    if args.gt.is_file():
        r = thumos_case(args.gt, args.repeats, rng)
        print(
            f"(a) THUMOS14 test GT ({r['videos']} videos, {r['instances']} instances), "
            f"{r['detections']} detections, {r['thresholds']} thresholds: "
            f"{r['seconds']:.3f} s; average mAP {r['average_mAP']:.4f} "
            f"(JSON loading, not included: ground truth {r['load_gt_s']:.3f} s, "
            f"results {r['load_results_s']:.3f} s)"
        )
    else:
        print(f"(a) skipped: {args.gt} not found")

    r = anet_case(args.repeats, rng)
    print(
        f"(b) synthetic: {r['videos']} videos, {r['classes']} classes, {r['instances']} "
        f"instances, {r['detections']} detections, {r['thresholds']} thresholds: "
        f"{r['seconds']:.3f} s; average mAP {r['average_mAP']:.4f}"
    )


if __name__ == "__main__":
    main()

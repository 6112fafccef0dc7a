"""``logo-tal-score``: detection mAP of an ActivityNet result file against ground truth.

Usage::

    logo-tal-score GT.json PRED.json [--subset S] [--tiou T ...] [--json]
                   [--per-class] [--recall] [--histogram]

Semantics are those of docs/decisions.md D56-D62 (ActivityNet / ActionFormer). With ``--json`` the
standard output carries exactly one object ``{"tiou_thresholds", "mAP", "average_mAP"}``
(fractions) and every other table goes to standard error, so the output can be piped into other
tools. Bad input exits with status 2 and one line on standard error naming the file and entry.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import TextIO

from logo_tal.core.errors import (
    EXIT_BAD_INPUT,
    OneLineArgumentParser,
    parse_arguments,
    run_reporting,
)
from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.evaluation.ap import DetectionReport, evaluate_detections
from logo_tal.evaluation.io import load_ground_truth, load_predictions

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1]: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (exposed for documentation and tests)."""
    parser = OneLineArgumentParser(
        prog="logo-tal-score",
        description="Detection mAP over tIoU thresholds (ActivityNet semantics).",
    )
    parser.add_argument("ground_truth", help="ActivityNet-style ground truth JSON ('database')")
    parser.add_argument("predictions", help="ActivityNet result JSON ('results')")
    parser.add_argument(
        "--subset", default=None, help="evaluate only videos of this subset (exact match)"
    )
    parser.add_argument(
        "--tiou",
        nargs="+",
        type=_threshold,
        default=list(THUMOS_TIOU),
        metavar="T",
        help="tIoU thresholds, in output order (default: 0.3 0.4 0.5 0.6 0.7, THUMOS14)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (fractions) on stdout; everything else on stderr",
    )
    parser.add_argument("--per-class", action="store_true", help="also print AP per class")
    parser.add_argument(
        "--recall",
        action="store_true",
        help="also print recall with the top 1x / 5x #GT detections of each video",
    )
    parser.add_argument(
        "--histogram", action="store_true", help="also print the range and histogram of scores"
    )
    return parser


def _pct(x: float) -> str:
    return f"{100.0 * x:6.2f}"


def _mAP_table(report: DetectionReport) -> str:
    lines = [f"{'tIoU':>6}  {'mAP (%)':>7}"]
    lines += [
        f"{t:>6g}  {_pct(m):>7}" for t, m in zip(report.tiou_thresholds, report.mAP, strict=True)
    ]
    lines.append(f"{'avg':>6}  {_pct(report.average_mAP):>7}")
    return "\n".join(lines)


def _per_class_table(report: DetectionReport) -> str:
    width = max([len("class")] + [len(n) for n in report.class_names])
    head = "  ".join(f"{t:>6g}" for t in report.tiou_thresholds)
    lines = [f"{'class':<{width}}  {'#GT':>5}  {head}  {'avg':>6}   (AP %)"]
    for name, ap, npos, ok in zip(
        report.class_names, report.ap, report.num_positives, report.evaluated, strict=True
    ):
        if not ok:
            continue
        cells = "  ".join(_pct(x) for x in ap)
        lines.append(f"{name:<{width}}  {npos:>5d}  {cells}  {_pct(float(ap.mean()))}")
    return "\n".join(lines)


def _recall_table(report: DetectionReport) -> str:
    head = "  ".join(f"{t:>6g}" for t in report.tiou_thresholds)
    lines = [f"{'recall':<8}  {head}   (% of GT, top k x #GT detections per video)"]
    for multiple, values in sorted(report.recall.items()):
        lines.append(f"{f'R@{multiple}x':<8}  " + "  ".join(_pct(x) for x in values))
    return "\n".join(lines)


def _histogram(report: DetectionReport) -> str:
    if report.score_histogram is None or report.score_range is None:
        return "scores: no detections"
    counts, edges = report.score_histogram
    low, high = report.score_range
    lines = [f"scores: {report.counts.predictions} detections, min {low:.6g}, max {high:.6g}"]
    peak = max(int(counts.max()), 1)
    for count, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        bar = "#" * round(40 * int(count) / peak)
        lines.append(f"  [{a:>10.4g}, {b:>10.4g})  {int(count):>8d}  {bar}")
    return "\n".join(lines)


def _summary(report: DetectionReport, num_other: int, unknown: Sequence[str]) -> str:
    c = report.counts
    lines = [
        f"ground truth: {c.videos} videos ({c.videos_with_ground_truth} with annotations, "
        f"{num_other} left out by --subset), {c.gt_total} instances: {c.gt_kept} kept, "
        f"{c.gt_too_short} dropped as shorter than 1 ms, {c.gt_duplicate} as duplicates; "
        f"{c.classes} classes",
        f"predictions: {c.predictions} total, {c.predictions_scored} scored, "
        f"{c.predictions_unknown_label} ignored (label not a class), "
        f"{c.predictions_unknown_video} on videos missing from the ground truth, "
        f"{c.predictions_video_without_gt} on videos without annotations (both false positives)",
    ]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        lines.append(f"result videos not in the ground truth: {shown}{more}")
    if c.classes == 0:
        lines.append("warning: the ground truth has no usable annotation; every mAP is 0")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scorer; returns the exit status (0 ok, 2 bad input or arguments)."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args

    return run_reporting("logo-tal-score", lambda: _score(args))


def _score(args: argparse.Namespace) -> int:
    ground_truth = load_ground_truth(args.ground_truth, subset=args.subset)
    predictions = load_predictions(args.predictions, ground_truth)
    report = evaluate_detections(ground_truth, predictions, args.tiou)

    tables: TextIO = sys.stderr if args.json else sys.stdout
    print(
        _summary(report, ground_truth.num_videos_other_subsets, predictions.unknown_videos),
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(report.as_dict()), file=sys.stdout)
    else:
        print(_mAP_table(report), file=sys.stdout)
    if args.per_class:
        print(_per_class_table(report), file=tables)
    if args.recall:
        print(_recall_table(report), file=tables)
    if args.histogram:
        print(_histogram(report), file=tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())

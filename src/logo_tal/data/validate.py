"""``logo-tal-validate``: check a dataset (annotations + features) against config values.

Reports per subset: videos, instances, annotation repairs/drops, missing feature files, wrong
feature dimension, unreadable files, and feature lengths that differ from the length the
seconds<->grid settings predict (``FeatureGrid.expected_length`` of ``round(duration * fps)``
frames) by more than a tolerance (docs/decisions.md D79, D80).

Exit codes: 0 clean, 1 problems found, 2 unreadable input (annotation file or feature path).

Example::

    logo-tal-validate --annotations data/thumos/annotations/thumos14.json \\
        --features data/thumos/i3d_features --feat-stride 4 --num-frames 16 --input-dim 2048
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np

from logo_tal.data.annotations import AnnotationError, load_annotations
from logo_tal.data.feature_store import FeatureFileError, open_feature_store
from logo_tal.errors import EXIT_BAD_INPUT, OneLineArgumentParser, parse_arguments, run_reporting
from logo_tal.errors import report as report_error
from logo_tal.grid import FeatureGrid


def _parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="logo-tal-validate",
        description="Check an ActivityNet-style annotation file and its feature files.",
    )
    p.add_argument("--annotations", required=True, help="annotation JSON")
    p.add_argument("--features", default=None, help="npy directory or HDF5 file (optional)")
    p.add_argument("--format", default="auto", choices=["auto", "npy", "h5"])
    p.add_argument("--prefix", default="", help="feature file/key prefix (ANet: v_)")
    p.add_argument("--ext", default=".npy")
    p.add_argument("--fps", type=float, default=None, help="override every video's fps")
    p.add_argument("--feat-stride", type=float, default=4.0)
    p.add_argument("--num-frames", type=float, default=16.0)
    p.add_argument("--input-dim", type=int, default=None)
    p.add_argument("--num-classes", type=int, default=None, help="expected number of classes")
    p.add_argument("--class-agnostic", action="store_true")
    p.add_argument("--subsets", nargs="*", default=None, help="only these subsets")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="allowed relative length mismatch (at least 2 steps are always allowed)",
    )
    p.add_argument("--check-values", action="store_true", help="read every file (NaN/Inf)")
    p.add_argument("--max-list", type=int, default=5, help="video ids shown per problem")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def validate(args: argparse.Namespace) -> tuple[int, dict]:
    """Run the checks. Returns: (exit code, report dict)."""
    report: dict = {"annotations": args.annotations, "features": args.features}
    try:
        db = load_annotations(
            args.annotations,
            class_agnostic=args.class_agnostic,
            fps=args.fps,
            log_problems=False,
        )
    except AnnotationError as exc:
        report["error"] = str(exc)
        return 2, report
    problems: list[str] = list(db.report(args.max_list))
    report["num_classes"] = db.num_classes
    report["class_names"] = db.class_names
    if args.num_classes is not None and args.num_classes != db.num_classes:
        problems.append(f"{db.num_classes} classes in the file, expected {args.num_classes}")
    subsets = [s.lower() for s in args.subsets] if args.subsets else sorted(db.subset_counts())
    counts = db.subset_counts()
    report["subsets"] = {}
    for s in subsets:
        if s not in counts:
            problems.append(f"subset {s!r} not in the file (has {sorted(counts)})")
            continue
        instances_train = sum(len(r.labels) for r in db.subset(s))
        report["subsets"][s] = {
            "videos": counts[s][0],
            "instances": counts[s][1],
            "training_instances": instances_train,
            "problems": {k: list(v) for k, v in db.problem_counts(s).items()},
        }

    if args.features is not None:
        try:
            store = open_feature_store(
                args.features, args.format, args.prefix, args.ext, args.input_dim
            )
        except (FileNotFoundError, FeatureFileError, ValueError) as exc:
            report["error"] = str(exc)
            report["problems"] = problems
            return 2, report
        try:
            store.video_ids()  # opens an HDF5 file: a corrupt one is unreadable input
        except (FeatureFileError, OSError) as exc:
            report["error"] = str(exc)
            report["problems"] = problems
            return 2, report
        missing: dict[str, list[str]] = {}
        bad: list[str] = []
        length_issues: list[str] = []
        length_ratio: list[float] = []
        for s in subsets:
            for rec in db.subset(s):
                if rec.video_id not in store:
                    missing.setdefault(s, []).append(rec.video_id)
                    continue
                try:
                    if args.check_values:
                        t = store.load(rec.video_id).shape[0]
                    else:
                        t, c = store.shape(rec.video_id)
                        if args.input_dim is not None and c != args.input_dim:
                            raise FeatureFileError(
                                f"{store.describe(rec.video_id)}: feature dimension {c} != "
                                f"input_dim {args.input_dim}"
                            )
                except FeatureFileError as exc:
                    bad.append(str(exc))
                    continue
                grid = FeatureGrid(rec.fps, args.feat_stride, args.num_frames)
                expected = grid.expected_length(grid.duration_to_frames(rec.duration))
                length_ratio.append(t / max(expected, 1))
                if abs(t - expected) > max(2, args.tolerance * expected):
                    length_issues.append(f"{rec.video_id}: {t} steps, expected {expected}")
        for s, ids in missing.items():
            more = f" ... (+{len(ids) - args.max_list})" if len(ids) > args.max_list else ""
            problems.append(
                f"{len(ids)} video(s) of subset {s!r} have no features: "
                f"{', '.join(ids[: args.max_list])}{more}"
            )
        if bad:
            problems.append(
                f"{len(bad)} unusable feature file(s): " + "; ".join(bad[: args.max_list])
            )
        if length_issues:
            problems.append(
                f"{len(length_issues)} video(s) whose feature length differs from "
                f"duration*fps -> grid by more than {args.tolerance:.0%} (check fps / "
                "feat_stride / num_frames): " + "; ".join(length_issues[: args.max_list])
            )
        if length_ratio:
            report["feature_length_ratio"] = {
                "median": float(np.median(length_ratio)),
                "min": float(np.min(length_ratio)),
                "max": float(np.max(length_ratio)),
            }
    report["problems"] = problems
    return (1 if problems else 0), report


def _print(report: dict, code: int) -> None:
    print(f"annotations: {report['annotations']}")
    if "num_classes" in report:
        names = report["class_names"]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        print(f"classes: {report['num_classes']} ({shown})")
    for s, c in report.get("subsets", {}).items():
        fixes = Counter({k: v[0] for k, v in c["problems"].items()})
        extra = f"; repairs/drops: {dict(fixes)}" if fixes else ""
        print(
            f"subset {s}: {c['videos']} videos, {c['instances']} instances "
            f"({c['training_instances']} usable for training){extra}"
        )
    if "feature_length_ratio" in report:
        r = report["feature_length_ratio"]
        print(
            f"feature length / expected: median {r['median']:.3f} "
            f"(min {r['min']:.3f}, max {r['max']:.3f})"
        )
    for line in report.get("problems", []):
        print(f"PROBLEM: {line}")
    if "error" in report:
        print(f"ERROR: {report['error']}")
    print({0: "OK", 1: "problems found", 2: "unreadable input"}[code])


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 clean, 1 problems found, 2 unreadable input (also one line on stderr)."""
    args = parse_arguments(_parser(), argv)
    if isinstance(args, int):
        return args
    return run_reporting("logo-tal-validate", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    code, report = validate(args)
    if args.json:
        report.pop("class_names", None)
        print(json.dumps({"exit_code": code, **report}))
    else:
        _print(report, code)
    if code == EXIT_BAD_INPUT:
        report_error("logo-tal-validate", report["error"])
    return code


if __name__ == "__main__":
    sys.exit(main())

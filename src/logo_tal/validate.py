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
from dataclasses import dataclass, field

import numpy as np

from logo_tal.core.errors import (
    EXIT_BAD_INPUT,
    OneLineArgumentParser,
    parse_arguments,
    run_reporting,
)
from logo_tal.core.errors import report as report_error
from logo_tal.core.grid import FeatureGrid
from logo_tal.data.annotations import AnnotationDatabase, AnnotationError, load_annotations
from logo_tal.data.feature_store import FeatureFileError, FeatureStore, open_feature_store


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
    problems, subsets = _check_annotations(db, args, report)
    if args.features is not None:
        store, error = _open_store(args)
        if store is None:
            report["error"] = error
            report["problems"] = problems
            return 2, report
        scan = _scan_features(store, db, subsets, args)
        problems += scan.problems(args.tolerance, args.max_list)
        if scan.length_ratio:
            report["feature_length_ratio"] = scan.ratio_summary()
    report["problems"] = problems
    return (1 if problems else 0), report


def _check_annotations(
    db: AnnotationDatabase, args: argparse.Namespace, report: dict
) -> tuple[list[str], list[str]]:
    """Annotation problems and the subsets to check; fills the class and subset report."""
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
    return problems, subsets


def _open_store(args: argparse.Namespace) -> tuple[FeatureStore | None, str]:
    """``(store, "")``, or ``(None, reason)`` when the features are unreadable input."""
    try:
        store = open_feature_store(
            args.features, args.format, args.prefix, args.ext, args.input_dim
        )
    except (FileNotFoundError, FeatureFileError, ValueError) as exc:
        return None, str(exc)
    try:
        store.video_ids()  # opens an HDF5 file: a corrupt one is unreadable input
    except (FeatureFileError, OSError) as exc:
        return None, str(exc)
    return store, ""


@dataclass
class _FeatureScan:
    """What the feature check found, before it is worded as problems."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    length_issues: list[str] = field(default_factory=list)
    length_ratio: list[float] = field(default_factory=list)

    def problems(self, tolerance: float, max_list: int) -> list[str]:
        """One line per kind of problem, listing at most ``max_list`` examples."""
        problems = []
        for s, ids in self.missing.items():
            more = f" ... (+{len(ids) - max_list})" if len(ids) > max_list else ""
            problems.append(
                f"{len(ids)} video(s) of subset {s!r} have no features: "
                f"{', '.join(ids[:max_list])}{more}"
            )
        if self.bad:
            problems.append(
                f"{len(self.bad)} unusable feature file(s): " + "; ".join(self.bad[:max_list])
            )
        if self.length_issues:
            problems.append(
                f"{len(self.length_issues)} video(s) whose feature length differs from "
                f"duration*fps -> grid by more than {tolerance:.0%} (check fps / "
                "feat_stride / num_frames): " + "; ".join(self.length_issues[:max_list])
            )
        return problems

    def ratio_summary(self) -> dict[str, float]:
        """Median, min and max of feature length / expected length."""
        return {
            "median": float(np.median(self.length_ratio)),
            "min": float(np.min(self.length_ratio)),
            "max": float(np.max(self.length_ratio)),
        }


def _scan_features(
    store: FeatureStore, db: AnnotationDatabase, subsets: list[str], args: argparse.Namespace
) -> _FeatureScan:
    """Check every video of ``subsets`` for a usable feature file of the predicted length."""
    scan = _FeatureScan()
    for s in subsets:
        for rec in db.subset(s):
            if rec.video_id not in store:
                scan.missing.setdefault(s, []).append(rec.video_id)
                continue
            try:
                t = _feature_length(store, rec.video_id, args)
            except FeatureFileError as exc:
                scan.bad.append(str(exc))
                continue
            grid = FeatureGrid(rec.fps, args.feat_stride, args.num_frames)
            expected = grid.expected_length(grid.duration_to_frames(rec.duration))
            scan.length_ratio.append(t / max(expected, 1))
            if abs(t - expected) > max(2, args.tolerance * expected):
                scan.length_issues.append(f"{rec.video_id}: {t} steps, expected {expected}")
    return scan


def _feature_length(store: FeatureStore, video_id: str, args: argparse.Namespace) -> int:
    """Time steps of ``video_id``'s features; FeatureFileError if unusable.

    Reads the whole file only with ``--check-values`` (so NaN/Inf are caught); otherwise the
    header's shape is enough.
    """
    if args.check_values:
        return store.load(video_id).shape[0]
    t, c = store.shape(video_id)
    if args.input_dim is not None and c != args.input_dim:
        raise FeatureFileError(
            f"{store.describe(video_id)}: feature dimension {c} != input_dim {args.input_dim}"
        )
    return t


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

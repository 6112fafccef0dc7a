"""Summarise (again) the jobs of a multirun: mean ± std per configuration, the paper beside it.

    python scripts/summarize_runs.py logs/ablate_encoder/multiruns/2025-01-01_12-00-00
    python scripts/summarize_runs.py logs --pool seed data.prepare.seed --json
    python scripts/summarize_runs.py logs/paper/multiruns/2025-01-01_12-00-00 --compare avg 0.7

Writes ``summary.md``, ``summary.csv`` and ``summary.png`` into DIR, as every multirun does at
its end (logo_tal.sweeps.summary, the same code), and prints the Markdown table. DIR may be one
sweep directory or any directory above several: every job directory below it is read, and jobs
without metrics.json are listed as missing. ``--compare`` adds ``comparisons.md``: every pair
of rows, the difference against the seed spread and Welch's t-test (logo_tal.sweeps.compare).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from logo_tal.sweeps.compare import metric_name, write_comparisons
from logo_tal.sweeps.summary import POOLED, collect, summarize, write_summary


def _rows_json(root: Path, pooled: tuple[str, ...]) -> str:
    summary = summarize(collect(root), root, pooled)
    rows = [
        {
            "configuration": row.label,
            "n": len(row.done),
            "missing": {j.name: j.problem for j in row.missing},
            "dataset": row.dataset,
            "model": dataclasses.asdict(row.model) if row.model else None,
            "stats": {k: {"mean": m, "std": s, "n": n} for k, (m, s, n) in row.stats.items()},
            "paper": [{"source": r.source, "average": r.average} for r in row.paper],
            "beyond_paper": row.beyond_paper,
        }
        for row in summary.rows
    ]
    return json.dumps({"common": list(summary.common), "rows": rows}, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="sweep directory (searched recursively)")
    parser.add_argument(
        "--pool", nargs="*", default=list(POOLED), help="override keys pooled into one row"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--compare",
        nargs="*",
        metavar="METRIC",
        help="also compare every pair of rows on these metrics (avg, 0.7, ...; none given: "
        "avg and the highest tIoU threshold) into comparisons.md",
    )
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"not a directory: {args.root}", file=sys.stderr)
        return 2
    try:
        metrics = None if args.compare is None else [metric_name(m) for m in args.compare]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    paths = write_summary(args.root, tuple(args.pool))
    if metrics is not None:
        paths["comparisons"] = write_comparisons(args.root, tuple(args.pool), metrics)
    if args.json:
        print(_rows_json(args.root, tuple(args.pool)))
    else:
        print(paths["md"].read_text())
        if "comparisons" in paths:
            print(paths["comparisons"].read_text())
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

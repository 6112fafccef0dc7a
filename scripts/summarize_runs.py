"""Mean and spread of metrics.json over the jobs of a multirun (seeds, ablations).

    python scripts/summarize_runs.py logs/seeds/multiruns/2025-01-01_12-00-00
    python scripts/summarize_runs.py DIR --group-by model/encoder --json

Jobs are grouped by their overrides minus ``seed`` (from ``.hydra/overrides.yaml``), so one table
row is one configuration and its seeds; values are percent (mAP per tIoU threshold and average).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return [job.name]
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line[2:].strip() for line in lines if line.startswith("- ")]


def collect(root: Path, ignore: tuple[str, ...] = ("seed",)) -> dict[str, list[dict]]:
    """Configuration (overrides without ``ignore`` keys) -> list of its jobs' metrics.json."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for metrics_file in sorted(root.rglob("metrics.json")):
        job = metrics_file.parent
        keep = [o for o in _overrides(job) if o.split("=", 1)[0].lstrip("+~") not in ignore]
        key = ",".join(keep) or "(defaults)"
        data = json.loads(metrics_file.read_text())
        data["_job"] = str(job)
        groups[key].append(data)
    return dict(groups)


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(groups: dict[str, list[dict]]) -> list[dict]:
    """One row per configuration: n, per-threshold and average mAP as (mean, std) in percent."""
    rows = []
    for key, runs in groups.items():
        thresholds = runs[0].get("tiou_thresholds", [])
        row = {"config": key, "n": len(runs), "tiou_thresholds": thresholds}
        for i, t in enumerate(thresholds):
            row[f"mAP@{t:g}"] = _mean_std([100 * r["mAP"][i] for r in runs if len(r["mAP"]) > i])
        row["mAP_avg"] = _mean_std([100 * r["average_mAP"] for r in runs])
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        print("no metrics.json found", file=sys.stderr)
        return
    thresholds = rows[0]["tiou_thresholds"]
    table = Table(title="mAP (%) mean ± std over runs")
    table.add_column("config")
    table.add_column("n", justify="right")
    for t in thresholds:
        table.add_column(f"{t:g}", justify="right")
    table.add_column("avg", justify="right", style="bold")
    for row in rows:
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in (row[f"mAP@{t:g}"] for t in thresholds)]
        m, s = row["mAP_avg"]
        table.add_row(row["config"], str(row["n"]), *cells, f"{m:.2f} ± {s:.2f}")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="multirun directory (searched recursively)")
    parser.add_argument("--ignore", nargs="*", default=["seed"], help="override keys to pool")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"not a directory: {args.root}", file=sys.stderr)
        return 2
    rows = summarize(collect(args.root, tuple(args.ignore)))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

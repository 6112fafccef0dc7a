"""Files and tables every evaluated run leaves behind (metrics.json, detections, per-class AP)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from logo_tal.core.protocol import map_key, threshold_key

METRICS_FILE = "metrics.json"
DETECTIONS_FILE = "detections.json"
PER_CLASS_FILE = "per_class_ap.csv"
# Report fields with one entry per class: they go to the per-class table, not metrics.json.
PER_CLASS_FIELDS = ("ap", "class_names", "evaluated", "num_positives")
# Called by ResultsWriter.write after the files are written: (report, detections, files), where
# files maps "metrics", "detections", "per_class" to the paths written.
ResultSink = Callable[[Any, Mapping[str, Sequence[Mapping[str, Any]]], dict[str, Path]], None]


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays -> JSON-friendly Python values."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def report_to_dict(report: Any) -> dict[str, Any]:
    """Flatten a ``DetectionReport`` (or a dict with the same fields) into JSON values.

    Per-threshold mAP are also given as ``mAP@t`` keys; everything is a fraction in [0, 1].
    The per-class AP matrix is left out (it goes into the per-class table).
    """
    fields = dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(report)
    fields = {k: _plain(v) for k, v in fields.items()}
    thresholds = [float(t) for t in fields.get("tiou_thresholds", [])]
    mAP = fields.get("mAP", [])
    out: dict[str, Any] = {
        "tiou_thresholds": thresholds,
        "mAP": mAP,
        "average_mAP": fields.get("average_mAP"),
    }
    for t, v in zip(thresholds, mAP, strict=False):
        out[map_key(t)] = v
    for key, value in fields.items():
        if key in out or key in PER_CLASS_FIELDS or key == "score_histogram":
            continue
        out[key] = value
    return out


def write_metrics(
    output_dir: str | Path, report: Any, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``metrics.json``: the report's mAP values and counts plus ``extra`` (split, step...).

    Args:
        output_dir: the run directory.
        report: a ``DetectionReport``.
        extra: more keys to record.

    Returns:
        The path written.
    """
    data = report_to_dict(report)
    if extra:
        data.update(_plain(dict(extra)))
    path = Path(output_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
    return path


def write_detections(
    output_dir: str | Path,
    detections: Mapping[str, Sequence[Mapping[str, Any]]],
    name: str = DETECTIONS_FILE,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write detections in the ActivityNet result format.

    Args:
        output_dir: the run directory.
        detections: video id -> list of ``{"segment": [s, e], "label": name, "score": x}``.
        name: file name.
        extra: extra top-level keys (the format's ``version`` / ``external_data``).

    Returns:
        The path written.
    """
    payload: dict[str, Any] = {"version": "logo-tal", "results": _plain(dict(detections))}
    if extra:
        payload.update(_plain(dict(extra)))
    path = Path(output_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def per_class_rows(report: Any) -> tuple[list[str], list[list[Any]]]:
    """Header and rows (class, AP@t..., AP avg) of the per-class AP table."""
    thresholds = [float(t) for t in _plain(report.tiou_thresholds)]
    ap = np.asarray(_plain(report.ap), dtype=np.float64).reshape(-1, len(thresholds))
    names = list(getattr(report, "class_names", None) or [str(i) for i in range(ap.shape[0])])
    positives = getattr(report, "num_positives", None)
    positives = [None] * len(names) if positives is None else _plain(positives)
    header = ["class", "num_gt", *[f"AP@{threshold_key(t)}" for t in thresholds], "AP_avg"]
    rows = [
        [name, n, *[float(v) for v in row], float(np.mean(row)) if row.size else math.nan]
        for name, n, row in zip(names, positives, ap, strict=False)
    ]
    return header, rows


def write_per_class(output_dir: str | Path, report: Any) -> Path:
    """Write ``per_class_ap.csv`` (fractions, one row per class)."""
    header, rows = per_class_rows(report)
    lines = [",".join(header)]
    for row in rows:
        name = str(row[0]).replace('"', '""')
        count = "" if row[1] is None else str(row[1])
        lines.append(",".join([f'"{name}"', count, *[f"{v:.6f}" for v in row[2:]]]))
    path = Path(output_dir) / PER_CLASS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _percent(value: float) -> str:
    # NaN marks a vocabulary class that is not part of the evaluation (no ground truth).
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


def print_map_table(report: Any, title: str = "mAP (%)", per_class: bool = False) -> None:
    """Print the mAP of each tIoU threshold and their average with rich (percent, 2 decimals).

    Args:
        report: a ``DetectionReport``.
        title: table title.
        per_class: also print the per-class AP table.
    """
    from rich.console import Console
    from rich.table import Table

    data = report_to_dict(report)
    table = Table(title=title)
    for t in data["tiou_thresholds"]:
        table.add_column(f"{threshold_key(t)}", justify="right")
    table.add_column("avg", justify="right", style="bold")
    table.add_row(*[f"{100 * v:.2f}" for v in data["mAP"]], f"{100 * data['average_mAP']:.2f}")
    console = Console()
    console.print(table)
    counts = data.get("counts")
    if isinstance(counts, Mapping):
        console.print(", ".join(f"{k}={v}" for k, v in counts.items()))
    if per_class:
        header, rows = per_class_rows(report)
        classes = Table(title="per-class AP (%)")
        for name in header:
            classes.add_column(name, justify="left" if name == "class" else "right")
        for row in rows:
            count = "" if row[1] is None else str(row[1])
            classes.add_row(str(row[0]), count, *[_percent(v) for v in row[2:]])
        console.print(classes)


class ResultsWriter:
    """Writes what an evaluated split leaves behind: ``metrics.json``, the detections JSON and
    ``per_class_ap.csv``, and prints the mAP table.

    The LightningModule hands it the results of a test epoch explicitly (on global rank zero,
    after the metric gathered every rank's detections), so it works the same in one process and
    under DDP-spawn, where the launching process never sees the worker's module.

    Args:
        output_dir: the run directory.
        split: name recorded in metrics.json (the data split that was tested).
        extra: more keys for metrics.json (e.g. the checkpoint evaluated).
        print_table: print the mAP table with rich.
        detections_file: file name of the detections JSON.
        sinks: more consumers of the results, called after the files are written (e.g. the W&B
            dashboard callback registers one: docs/decisions.md D117); more can be appended to
            ``sinks`` later.
    """

    def __init__(
        self,
        output_dir: str | Path,
        split: str = "test",
        extra: Mapping[str, Any] | None = None,
        print_table: bool = True,
        detections_file: str = DETECTIONS_FILE,
        sinks: Sequence[ResultSink] = (),
    ) -> None:
        self.output_dir = Path(output_dir)
        self.split = split
        self.extra = dict(extra or {})
        self.print_table = print_table
        self.detections_file = detections_file
        self.written: list[Path] = []
        self.sinks: list[ResultSink] = list(sinks)

    def write(
        self,
        report: Any,
        detections: Mapping[str, Sequence[Mapping[str, Any]]],
        extra: Mapping[str, Any] | None = None,
    ) -> list[Path]:
        """Write the three files and return their paths.

        Args:
            report: the metric's ``DetectionReport``.
            detections: video id -> ActivityNet result entries.
            extra: per-call keys for metrics.json (epoch, global step, fusion).
        """
        info = {"split": self.split, **dict(extra or {}), **self.extra}
        self.written = [
            write_metrics(self.output_dir, report, info),
            write_detections(
                self.output_dir,
                detections,
                name=self.detections_file,
                extra={"external_data": {"fusion": info.get("fusion", "none")}},
            ),
            write_per_class(self.output_dir, report),
        ]
        if self.print_table:
            print_map_table(report, title=f"{self.split} mAP (%)")
        files = dict(zip(("metrics", "detections", "per_class"), self.written, strict=True))
        for sink in self.sinks:
            sink(report, detections, files)
        return self.written

"""Timeline plots of detections (and optional ground truth), one video per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: predict runs on servers without a display

import matplotlib.pyplot as plt  # noqa: E402


def plot_timeline(
    path: str | Path,
    video_id: str,
    duration: float,
    detections: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]] | None = None,
    top_k: int = 10,
) -> Path:
    """Draw the top-``k`` detections of one video as bars on a time axis, GT on its own row.

    Args:
        path: PNG to write.
        video_id: used in the title.
        duration: video length in seconds (x-axis range).
        detections: ``[{"segment": [s, e], "label": name, "score": x}]`` sorted by score.
        ground_truth: same shape without scores; drawn in black on the top row.
        top_k: how many detections to draw (one row each, best on top).

    Returns:
        The path written.
    """
    shown = list(detections)[:top_k]
    gt = list(ground_truth or [])
    rows = len(shown) + (1 if gt else 0)
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.35 * max(rows, 1)))
    labels: list[str] = []
    y = 0
    if gt:
        for seg in gt:
            s, e = seg["segment"]
            ax.barh(y, e - s, left=s, height=0.6, color="black")
        labels.append("ground truth")
        y += 1
    cmap = plt.get_cmap("tab10")
    names = sorted({str(d["label"]) for d in shown})
    colour = {name: cmap(i % 10) for i, name in enumerate(names)}
    for det in shown:
        s, e = det["segment"]
        ax.barh(y, e - s, left=s, height=0.6, color=colour[str(det["label"])], alpha=0.85)
        labels.append(f"{det['label']} {det['score']:.2f}")
        y += 1
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(duration), 1e-6))
    ax.set_xlabel("time (s)")
    ax.set_title(f"{video_id}: top {len(shown)} detections")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_timelines(
    out_dir: Path,
    detections: Mapping[str, Sequence[Mapping[str, Any]]],
    records: Mapping[str, Any],
    top_k: int,
    videos: Sequence[str] | None = None,
) -> list[tuple[str, Path]]:
    """``<out_dir>/<video>.png`` for each of ``videos`` (None: every video of ``detections``):
    its top ``top_k`` detections, and its ground truth when ``records`` (video id -> record with
    ``duration`` and ``gt_segments``) knows the video. Returns ``[(video, path)]``."""
    plotted = []
    for video in detections if videos is None else videos:
        dets = list(detections[video])
        record = records.get(video)
        if record is not None:
            duration = float(record.duration)
            truth = [{"segment": [s, e]} for s, e in record.gt_segments.tolist()] or None
        else:
            duration = max((float(d["segment"][1]) for d in dets), default=1.0)
            truth = None
        path = plot_timeline(out_dir / f"{video}.png", video, duration, dets, truth, int(top_k))
        plotted.append((video, path))
    return plotted

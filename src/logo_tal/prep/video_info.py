"""Per-video duration, fps and subset for the annotation converters (``logo-tal-convert``).

Sources, all read into ``{video_id: VideoInfo}``:

* a CSV with a header: ``video`` and ``duration`` (or ``num_frames`` with ``fps``), optional
  ``fps``, ``num_frames``, ``subset`` (``shared/data/thumos14/video_info.csv`` is one);
* a JSON object ``{video: {"duration"?, "fps"?, "num_frames"|"num_frame"?, "subset"?}}``
  (THUMOS ``TH14_video_info.json``), an ActivityNet-style file (its ``database``), or an
  ``extraction.json`` written by ``logo-tal-extract`` (source fps, frames and duration);
* the videos themselves (:func:`probe_videos`, PyAV).

Errors are :class:`~logo_tal.prep.convert.ConversionError`-compatible ValueErrors with one line
naming the file and row or video.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path


class VideoInfoError(ValueError):
    """A video-info source that cannot be used (the message names the file and row)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the converters need about one video.

    Attributes:
        duration: seconds.
        fps: frame rate, or None when the source does not say.
        num_frames: frame count, or None.
        subset: subset name from the source, or None.
    """

    duration: float
    fps: float | None = None
    num_frames: int | None = None
    subset: str | None = None


def _number(value, where: str, name: str, required: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise VideoInfoError(f"{where}: no {name}")
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise VideoInfoError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(out) or out <= 0:
        raise VideoInfoError(f"{where}: {name} must be positive, got {value!r}")
    return out


def _info(raw: dict, where: str) -> VideoInfo:
    fps = _number(raw.get("fps"), where, "fps")
    frames_raw = raw.get("num_frames", raw.get("num_frame", raw.get("frames")))
    frames = _number(frames_raw, where, "num_frames")
    duration = _number(raw.get("duration"), where, "duration")
    if duration is None and frames is not None and fps is not None:
        duration = frames / fps
    if duration is None:
        raise VideoInfoError(f"{where}: no duration (give duration, or num_frames and fps)")
    subset = raw.get("subset")
    subset = str(subset).strip() if subset not in (None, "") else None
    return VideoInfo(duration, fps, int(frames) if frames is not None else None, subset)


def _read_csv(path: Path) -> dict[str, VideoInfo]:
    out: dict[str, VideoInfo] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        key = next((h for h in ("video", "video_id", "name") if h in header), None)
        if key is None:
            raise VideoInfoError(f"{path}: no 'video' column in the header {header}")
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            vid = (row.get(key) or "").strip()
            if not vid:
                raise VideoInfoError(f"{path}:{line}: empty video id")
            out[vid] = _info(row, f"{path}:{line} ({vid})")
    return out


def _read_json(path: Path) -> dict[str, VideoInfo]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VideoInfoError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise VideoInfoError(f"{path}: expected a JSON object of videos")
    if "extractor" in data and isinstance(data.get("videos"), dict):  # logo-tal-extract record
        return {
            vid: _info(
                {
                    "duration": e.get("duration"),
                    "fps": e.get("source_fps"),
                    "num_frames": e.get("source_frames"),
                },
                f"{path} ({vid})",
            )
            for vid, e in data["videos"].items()
        }
    if isinstance(data.get("database"), dict):
        data = data["database"]
    out = {}
    for vid, raw in data.items():
        if not isinstance(raw, dict):
            raise VideoInfoError(f"{path}: entry {vid!r} is not an object")
        out[vid] = _info(raw, f"{path} ({vid})")
    return out


def read_video_info(path: str | os.PathLike) -> dict[str, VideoInfo]:
    """``{video_id: VideoInfo}`` from a CSV or JSON file (see the module doc).

    Raises:
        VideoInfoError: unreadable file, missing columns, or a row without a usable duration.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoInfoError(f"{path}: video info file not found")
    try:
        if path.suffix.lower() == ".json":
            return _read_json(path)
        return _read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VideoInfoError(f"{path}: cannot read video info ({exc})") from None


def probe_videos(paths: str | os.PathLike) -> dict[str, VideoInfo]:
    """``{video_id: VideoInfo}`` from the video files of a directory (PyAV; id = file stem).

    Raises:
        VideoInfoError: a video that cannot be read or has no frames (named), or no videos.
    """
    from logo_tal.prep.video_decode import VideoDecodeError, find_videos, probe_video

    try:
        files = find_videos(paths)
    except (FileNotFoundError, ValueError) as exc:
        raise VideoInfoError(str(exc)) from None
    out = {}
    for p in files:
        try:
            probe = probe_video(p)
        except VideoDecodeError as exc:
            raise VideoInfoError(str(exc)) from None
        out[p.stem] = VideoInfo(probe.duration, probe.fps, probe.num_frames)
    return out

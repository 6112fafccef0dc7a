"""``extraction.json``: how a feature directory was made, and the check that a config matches.

``logo-tal-extract`` writes the record next to the features (``FEATURES_DIR/extraction.json``,
also for ``--format h5``, whose file ``features.h5`` lies in the same directory). It holds the
settings every reader of the features must agree with (extractor, weights, fps, feat_stride,
num_frames, feature_dim) and one entry per video (source frame count, fps and duration, frames
after resampling, number of feature vectors T). Example::

    {"version": 1, "extractor": "r2plus1d_18", "weights": "KINETICS400_V1", "fps": 15.0,
     "feat_stride": 4, "num_frames": 16, "feature_dim": 512, "format": "npy",
     "implementation": "builtin", ...,
     "videos": {"cam1": {"source": "videos/cam1.mp4", "source_fps": 30.0,
                         "source_frames": 300, "duration": 10.0, "frames": 150,
                         "num_features": 34}}}

This module imports only the standard library: the datamodule and the config resolvers read
records without torch, torchvision or PyAV.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RECORD_NAME = "extraction.json"
RECORD_VERSION = 1
H5_NAME = "features.h5"
FEATURE_FILE_SUFFIXES = (".h5", ".hdf5", ".npy")

# Settings that make two extractions interchangeable; resuming into a directory whose record
# differs in any of them would mix features of two extractors.
SETTING_FIELDS = (
    "extractor",
    "weights",
    "fps",
    "feat_stride",
    "num_frames",
    "feature_dim",
    "format",
    # Not "implementation": the built-in R(2+1)D-18 and torchvision's compute bit-identical
    # features (scripts/check_builtin_r2plus1d.py; docs/decisions.md D118), so features of
    # either may sit in one directory and serve one model. It is still recorded.
    "resize_size",
    "crop_size",
)


@dataclass
class VideoEntry:
    """One extracted video.

    Attributes:
        source: the video file the features were computed from.
        source_fps: its average frame rate.
        source_frames: frames decoded from it.
        duration: seconds, ``source_frames / source_fps``.
        frames: frames after resampling to the record's fps (the clip grid runs over these).
        num_features: feature vectors T, ``(frames - num_frames) // feat_stride + 1``.
    """

    source: str
    source_fps: float
    source_frames: int
    duration: float
    frames: int
    num_features: int


@dataclass
class ExtractionRecord:
    """Settings of one feature directory plus its per-video entries.

    Attributes:
        extractor: backbone name (``r2plus1d_18``, ``s3d``, ``mvit_v2_s``, ``swin3d_t``).
        weights: ``KINETICS400_V1`` (torchvision's), ``none`` (random init) or a weights file.
        fps: frame rate the videos were resampled to: the features' time base.
        feat_stride: frames between consecutive clips.
        num_frames: frames per clip.
        feature_dim: C of the ``(T, C)`` arrays.
        format: ``npy`` (one ``<video>.npy`` each) or ``h5`` (one ``features.h5``).
        implementation: the code that ran the backbone: ``torchvision`` or ``builtin``
            (:mod:`logo_tal.prep.extract.r2plus1d`); ``torchvision`` for records that lack it.
        resize_size, crop_size, mean, std: the backbone's preprocessing as applied.
        videos: ``{video_id: VideoEntry}``.
        versions: library versions used (torch, av, and torchvision when it ran).
        version: record schema version.
        path: where the record was read from or written to (not stored).
    """

    extractor: str
    weights: str
    fps: float
    feat_stride: int
    num_frames: int
    feature_dim: int
    format: str = "npy"
    # Records written before the built-in backbone existed (issue 12) were all torchvision's.
    implementation: str = "torchvision"
    resize_size: list[int] = field(default_factory=list)
    crop_size: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    videos: dict[str, VideoEntry] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    version: int = RECORD_VERSION
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return out

    def settings(self) -> dict[str, Any]:
        """The fields that must match for two extractions to be interchangeable."""
        return {name: getattr(self, name) for name in SETTING_FIELDS}

    def setting_differences(self, other: ExtractionRecord) -> list[str]:
        """``"field: mine != other's"`` for every setting that differs (empty when equal)."""
        out = []
        for name, mine in self.settings().items():
            theirs = getattr(other, name)
            if isinstance(mine, float) or isinstance(theirs, float):
                same = math.isclose(float(mine), float(theirs), rel_tol=1e-9, abs_tol=1e-9)
            else:
                same = list(mine) == list(theirs) if isinstance(mine, list) else mine == theirs
            if not same:
                out.append(f"{name} {mine!r} != {theirs!r}")
        return out

    @property
    def features_dir(self) -> Path | None:
        return None if self.path is None else self.path.parent

    def feature_path(self, video_id: str) -> Path:
        """The ``.npy`` file (or, for ``h5``, the HDF5 file) holding ``video_id``'s features."""
        if self.features_dir is None:
            raise ValueError("record has no location: read or write it first")
        if self.format == "h5":
            return self.features_dir / H5_NAME
        return self.features_dir / f"{video_id}.npy"


def record_path(features: str | os.PathLike) -> Path:
    """Where the record of a feature location lies.

    ``features`` may be the feature directory, the record itself, or an HDF5 / ``.npy`` file in
    that directory (the record is then its sibling).
    """
    path = Path(features)
    if path.name == RECORD_NAME:
        return path
    if path.suffix.lower() in FEATURE_FILE_SUFFIXES and not path.is_dir():
        return path.parent / RECORD_NAME
    return path / RECORD_NAME


def _entry(path: Path, video_id: str, raw: Any) -> VideoEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: videos.{video_id} is not an object")
    try:
        return VideoEntry(**{f.name: raw[f.name] for f in fields(VideoEntry)})
    except KeyError as exc:
        raise ValueError(f"{path}: videos.{video_id} lacks field {exc.args[0]!r}") from None


def parse_record(data: Any, path: Path) -> ExtractionRecord:
    """An :class:`ExtractionRecord` from the decoded JSON (one-line ValueError if malformed)."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an extraction record (top level is not an object)")
    required = ("extractor", "weights", "fps", "feat_stride", "num_frames", "feature_dim")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"{path}: not an extraction record (no {', '.join(missing)})")
    known = {f.name for f in fields(ExtractionRecord)} - {"path", "videos"}
    kwargs = {k: v for k, v in data.items() if k in known}
    videos = data.get("videos") or {}
    if not isinstance(videos, dict):
        raise ValueError(f"{path}: 'videos' is not an object")
    record = ExtractionRecord(
        **kwargs, videos={v: _entry(path, v, e) for v, e in videos.items()}, path=path
    )
    for name in ("fps", "feat_stride", "num_frames", "feature_dim"):
        value = getattr(record, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{path}: {name} must be a positive number, got {value!r}")
    return record


def read_extraction_record(features_dir: str | os.PathLike) -> ExtractionRecord | None:
    """The record of a feature directory (or of the HDF5 file in it), None when there is none.

    Raises:
        ValueError: the record exists but is unreadable or malformed (the message names it).
    """
    path = record_path(features_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read extraction record ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: extraction record is not valid JSON ({exc})") from None
    return parse_record(data, path)


def write_extraction_record(record: ExtractionRecord, features_dir: str | os.PathLike) -> Path:
    """Write ``FEATURES_DIR/extraction.json`` atomically (temporary file, then rename)."""
    path = record_path(features_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    record.path = path
    return path


def check_extraction_record(
    record: ExtractionRecord,
    fps: float | None = None,
    feat_stride: float | None = None,
    num_frames: float | None = None,
    input_dim: int | None = None,
) -> None:
    """Check config values against the record; None skips a value.

    Raises:
        ValueError: one line naming the record file and every mismatching field, e.g.
            ``features/extraction.json: fps 15 (extraction) != 30 (config); ...``.
    """
    wanted = {
        "fps": fps,
        "feat_stride": feat_stride,
        "num_frames": num_frames,
        "feature_dim": input_dim,
    }
    bad = []
    for name, value in wanted.items():
        if value is None:
            continue
        stored = float(getattr(record, name))
        if not math.isclose(stored, float(value), rel_tol=1e-6, abs_tol=1e-9):
            key = "input_dim" if name == "feature_dim" else name
            bad.append(f"{name} {stored:g} (extraction) != {float(value):g} (config {key})")
    if bad:
        where = record.path if record.path is not None else RECORD_NAME
        raise ValueError(
            f"{where}: the features were extracted with other settings: {'; '.join(bad)} "
            f"(use the record's values, or re-extract)"
        )


def check_features_record(
    features: str | os.PathLike,
    fps: float | None = None,
    feat_stride: float | None = None,
    num_frames: float | None = None,
    input_dim: int | None = None,
) -> ExtractionRecord | None:
    """Read the record of ``features`` (if any) and check it; returns it, or None if absent."""
    record = read_extraction_record(features)
    if record is not None:
        check_extraction_record(record, fps, feat_stride, num_frames, input_dim)
    return record

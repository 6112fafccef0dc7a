"""Videos -> ``(T, C)`` feature files + ``extraction.json``: :func:`extract_videos`.

What ``logo-tal-extract`` runs, and what ``predict`` calls to featurise new videos with the
settings of the training features::

    from logo_tal.prep.extract import extract_videos, read_extraction_record

    record = read_extraction_record("data/custom/features")      # the training features
    result = extract_videos("new_videos/", "run_dir/features", record, device="cpu")
    # result.record.fps / feat_stride / num_frames: the grid of the new features
    # result.failed: {video_path: one-line reason}, result.written / result.skipped: ids

Resumable: a video whose output exists with the shape its record entry states is skipped, so
an interrupted run continues where it stopped. Each video's features are written to a
temporary name and renamed, and the record is rewritten after each video.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from logo_tal.data.extraction_record import (
    H5_NAME,
    ExtractionRecord,
    VideoEntry,
    read_extraction_record,
    write_extraction_record,
)
from logo_tal.prep.extract import clips as clip_ops
from logo_tal.prep.extract.backbones import (
    AUTO,
    BACKBONES,
    IMPLEMENTATIONS,
    KINETICS,
    NO_WEIGHTS,
    Backbone,
    BackboneError,
    build_backbone,
    check_clip_settings,
)
from logo_tal.prep.video_decode import (
    VIDEO_EXTENSIONS,
    DecodeStats,
    VideoDecodeError,
    find_videos,
    iter_frames,
    probe_video,
)


@dataclass
class ExtractionSettings:
    """What to extract (stored in the record) and how to run it (not stored).

    Attributes:
        backbone: a :data:`~logo_tal.prep.extract.backbones.BACKBONES` name.
        weights: ``kinetics400`` (torchvision's Kinetics-400 weights), ``none`` or a file.
        fps: frame rate the videos are resampled to.
        feat_stride: frames between clips.
        num_frames: frames per clip.
        format: ``npy`` (a file per video) or ``h5`` (one ``features.h5``).
        resize_size, crop_size: override the backbone's preprocessing sizes, or None.
        implementation: ``auto``, ``torchvision`` or ``builtin``
            (:mod:`~logo_tal.prep.extract.backbones`); the one used is recorded.
        batch_size: clips per forward pass.
        device: ``cpu`` or ``cuda[:i]``.
    """

    backbone: str = "r2plus1d_18"
    weights: str = KINETICS
    fps: float = 15.0
    feat_stride: int = 4
    num_frames: int = 16
    format: str = "npy"
    resize_size: list[int] | None = None
    crop_size: list[int] | None = None
    implementation: str = AUTO
    batch_size: int = 8
    device: str = "cpu"

    @classmethod
    def from_record(cls, record: ExtractionRecord, **run: object) -> ExtractionSettings:
        """Settings that reproduce ``record``'s features; ``run`` sets batch_size / device."""
        return cls(
            backbone=record.extractor,
            weights=record.weights,
            fps=float(record.fps),
            feat_stride=int(record.feat_stride),
            num_frames=int(record.num_frames),
            format=record.format,
            resize_size=list(record.resize_size) or None,
            crop_size=list(record.crop_size) or None,
            # Either implementation reproduces the features (docs/decisions.md D118): use the
            # one that runs here.
            implementation=AUTO,
            **run,  # type: ignore[arg-type]
        )

    def check(self) -> None:
        """Raise ValueError (one line) for settings that cannot work."""
        if self.backbone not in BACKBONES:
            raise BackboneError(
                f"unknown backbone {self.backbone!r}: choose one of {', '.join(BACKBONES)}"
            )
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        for name in ("feat_stride", "num_frames", "batch_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.implementation not in IMPLEMENTATIONS:
            raise BackboneError(
                f"unknown implementation {self.implementation!r}: choose one of "
                f"{', '.join(IMPLEMENTATIONS)}"
            )
        if self.format not in ("npy", "h5"):
            raise ValueError(f"format must be npy or h5, got {self.format!r}")
        check_clip_settings(self.backbone, int(self.num_frames), self.crop_size)
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA device")


@dataclass
class ExtractionResult:
    """What :func:`extract_videos` did.

    Attributes:
        record: the record as written (every video extracted so far in that directory).
        written: ids extracted in this call.
        skipped: ids whose features were already there.
        failed: ``{video path: one-line reason}`` (unreadable video, no frames, too short).
    """

    record: ExtractionRecord
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _versions(implementation: str) -> dict[str, str]:
    out = {"torch": torch.__version__}
    # The built-in backbone does not use torchvision: its version would say nothing.
    names = ("torchvision", "av") if implementation == "torchvision" else ("av",)
    for name in names:
        module = __import__(name)
        out[name] = getattr(module, "__version__", "?")
    return out


def _new_record(settings: ExtractionSettings, backbone: Backbone) -> ExtractionRecord:
    return ExtractionRecord(
        extractor=settings.backbone,
        weights=backbone.weights,
        implementation=backbone.implementation,
        fps=float(settings.fps),
        feat_stride=int(settings.feat_stride),
        num_frames=int(settings.num_frames),
        feature_dim=backbone.feature_dim,
        format=settings.format,
        **backbone.preprocessing(),
        versions=_versions(backbone.implementation),
    )


def _stored_shape(record: ExtractionRecord, video_id: str) -> tuple[int, ...] | None:
    """Shape of the features already stored for ``video_id``, None if absent or unreadable."""
    path = record.feature_path(video_id)
    if not path.is_file():
        return None
    try:
        if record.format == "h5":
            import h5py

            with h5py.File(path, "r") as f:
                return tuple(f[video_id].shape) if video_id in f else None
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except Exception:  # a half-written or corrupt file is redone, not trusted
        return None


def _write_features(record: ExtractionRecord, video_id: str, feats: np.ndarray) -> None:
    path = record.feature_path(video_id)
    if record.format == "h5":
        import h5py

        with h5py.File(path, "a") as f:
            if video_id in f:
                del f[video_id]
            f.create_dataset(video_id, data=feats)
        return
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, feats)
    os.replace(tmp, path)


def extract_video(
    path: str | os.PathLike,
    backbone: Backbone,
    fps: float,
    feat_stride: int,
    num_frames: int,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, VideoEntry]:
    """Features ``(T, feature_dim)`` float32 of one video and its record entry.

    Raises:
        VideoDecodeError: unreadable video, no frames, or fewer frames than ``num_frames``
            after resampling (no clip fits).
    """
    stats = DecodeStats()
    frames = iter_frames(path, fps, stats)
    inputs = clip_ops.iter_preprocessed(frames, backbone.preprocess, chunk=max(num_frames, 8))
    outs = []
    for batch in clip_ops.iter_clip_batches(inputs, num_frames, feat_stride, batch_size):
        outs.append(backbone(batch).cpu())
        if on_batch is not None:
            on_batch(batch.shape[0])
    expected = clip_ops.num_clips(stats.frames, num_frames, feat_stride)
    if not outs:
        raise VideoDecodeError(
            f"{path}: {stats.frames} frame(s) at {fps:g} fps ({stats.duration:.2f} s), fewer "
            f"than num_frames {num_frames}: no clip fits, no features"
        )
    feats = torch.cat(outs).numpy().astype(np.float32, copy=False)
    assert feats.shape[0] == expected, (feats.shape, expected)  # the grid module's count
    entry = VideoEntry(
        source=str(path),
        source_fps=stats.source_fps,
        source_frames=stats.source_frames,
        duration=stats.duration,
        frames=stats.frames,
        num_features=int(feats.shape[0]),
    )
    return feats, entry


def extract_videos(
    videos: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: ExtractionSettings | ExtractionRecord | None = None,
    *,
    batch_size: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    backbone: Backbone | None = None,
) -> ExtractionResult:
    """Extract features of every video into ``out_dir`` and write ``out_dir/extraction.json``.

    Args:
        videos: a directory of videos, one video file, or a list of files. Video id = file
            name without extension.
        out_dir: the feature directory (created).
        settings: :class:`ExtractionSettings`, or an :class:`ExtractionRecord` whose settings
            are reproduced (predict passes the training features' record), or None for the
            defaults.
        batch_size, device: override the settings' run options.
        overwrite: re-extract videos that are already done; an existing record with other
            settings is replaced instead of being an error.
        progress: show a progress bar (rich) on stderr.
        backbone: a built backbone to reuse (tests, repeated calls).

    Returns:
        What was written, skipped and failed; a failed video does not stop the others.

    Raises:
        ValueError: bad settings, or ``out_dir`` holds a record with other settings (the
            message names the record and the differing fields).
        FileNotFoundError: ``videos`` does not exist or has no video files.
        ImportError: PyAV or torchvision missing.
    """
    settings = _run_settings(settings, batch_size, device)
    paths = find_videos(videos)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone, record = _start_record(out, settings, backbone, overwrite)
    result = ExtractionResult(record)
    todo = _videos_to_extract(paths, record, overwrite, result)
    _extract_all(todo, out, settings, backbone, result, progress)
    return result


def _run_settings(
    settings: ExtractionSettings | ExtractionRecord | None,
    batch_size: int | None,
    device: str | None,
) -> ExtractionSettings:
    """Checked settings, with the run options given to :func:`extract_videos` applied."""
    if settings is None:
        settings = ExtractionSettings()
    elif isinstance(settings, ExtractionRecord):
        settings = ExtractionSettings.from_record(settings)
    run = {"batch_size": batch_size, "device": device}
    for name, value in run.items():
        if value is not None:
            setattr(settings, name, value)
    settings.check()
    return settings


def _start_record(
    out: Path, settings: ExtractionSettings, backbone: Backbone | None, overwrite: bool
) -> tuple[Backbone, ExtractionRecord]:
    """The backbone and the record of ``out``, written before any video is extracted.

    An existing record with the same settings keeps its videos; one with other settings is an
    error unless ``overwrite``.
    """
    old = read_extraction_record(out)
    if old is not None and settings.implementation == AUTO and old.extractor == settings.backbone:
        settings.implementation = old.implementation  # resuming: keep the directory's code
    if backbone is None:
        backbone = build_backbone(
            settings.backbone,
            settings.weights,
            settings.device,
            settings.resize_size,
            settings.crop_size,
            settings.implementation,
        )
    record = _new_record(settings, backbone)
    if old is not None:
        diff = record.setting_differences(old)
        if diff and not overwrite:
            raise ValueError(
                f"{old.path}: the directory holds features extracted with other settings "
                f"({'; '.join(diff)}): use another --out, or --overwrite to replace them"
            )
        if not diff:
            record.videos = dict(old.videos)
    record.path = None
    write_extraction_record(record, out)
    return backbone, record


def _videos_to_extract(
    paths: Iterable[Path], record: ExtractionRecord, overwrite: bool, result: ExtractionResult
) -> list[Path]:
    """The videos still to extract; the others go to ``result.skipped``.

    A video counts as done only if its stored features have the shape its entry states, so a
    half-written file from an interrupted run is redone.
    """
    todo: list[Path] = []
    for p in paths:
        entry = record.videos.get(p.stem)
        done = (
            entry is not None
            and not overwrite
            and _stored_shape(record, p.stem) == (entry.num_features, record.feature_dim)
        )
        if done:
            result.skipped.append(p.stem)
        else:
            record.videos.pop(p.stem, None)
            todo.append(p)
    return todo


def _extract_all(
    todo: list[Path],
    out: Path,
    settings: ExtractionSettings,
    backbone: Backbone,
    result: ExtractionResult,
    progress: bool,
) -> None:
    """Extract each video of ``todo``, rewriting the record after each so a rerun resumes."""
    record = result.record
    with _Progress(progress, len(todo)) as bar:
        for p in todo:
            try:
                estimate = _estimated_clips(p, settings)
                bar.start_video(p.name, estimate)
                feats, entry = extract_video(
                    p,
                    backbone,
                    settings.fps,
                    int(settings.feat_stride),
                    int(settings.num_frames),
                    int(settings.batch_size),
                    bar.advance,
                )
            except VideoDecodeError as exc:
                # One bad video must not stop the others: it is reported in result.failed.
                result.failed[str(p)] = str(exc)
                bar.end_video()
                continue
            _write_features(record, p.stem, feats)
            record.videos[p.stem] = entry
            write_extraction_record(record, out)
            result.written.append(p.stem)
            bar.end_video()


def _estimated_clips(path: Path, settings: ExtractionSettings) -> int | None:
    """Clips expected from the container header (for the progress bar only)."""
    try:
        info = probe_video(path)
    except VideoDecodeError:
        return None  # extract_video reports the reason
    frames = int(info.duration * settings.fps)
    return clip_ops.num_clips(frames, int(settings.num_frames), int(settings.feat_stride))


class _Progress:
    """A rich progress bar: one bar for the videos, one for the clips of the current video."""

    def __init__(self, enabled: bool, num_videos: int):
        self.enabled = enabled and num_videos > 0
        self.num_videos = num_videos
        self._progress = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._videos = self._progress.add_task("videos", total=self.num_videos, rate="")
            self._clips = None
        return self

    def start_video(self, name: str, clips: int | None) -> None:
        if self._progress is not None:
            self._clips = self._progress.add_task(f"  {name}", total=clips, rate="")

    def advance(self, n: int) -> None:
        if self._progress is not None and self._clips is not None:
            self._progress.advance(self._clips, n)
            task = self._progress.tasks[self._clips]
            speed = task.speed
            if speed:
                self._progress.update(self._clips, rate=f"{speed:.1f} clips/s")

    def end_video(self) -> None:
        if self._progress is not None:
            if self._clips is not None:
                self._progress.remove_task(self._clips)
                self._clips = None
            self._progress.advance(self._videos, 1)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


__all__ = [
    "H5_NAME",
    "NO_WEIGHTS",
    "VIDEO_EXTENSIONS",
    "ExtractionResult",
    "ExtractionSettings",
    "extract_video",
    "extract_videos",
    "find_videos",
]

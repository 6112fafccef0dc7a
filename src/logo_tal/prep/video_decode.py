"""Video decoding with PyAV: probing, and frames resampled to a target frame rate.

Resampling picks, for output frame ``k`` at ``k / fps`` seconds, the decoded frame whose
timestamp is nearest (ties go to the later frame), counting time from the first frame. At the
video's own rate this is the identity; at half the rate it keeps every other frame. The number
of output frames is ``floor(duration * fps)`` with ``duration = source_frames / source_fps``,
so the clip grid of :mod:`logo_tal.core.grid` (``t = (g * stride + window / 2) / fps``) stays
in the video's seconds. PyAV is imported on first use (``pip install 'logo-tal[video]'``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoDecodeError(ValueError):
    """A video that cannot be used: unreadable, no video stream, no frames, no frame rate."""


def import_av():
    """The ``av`` module, or an ImportError that says how to install it."""
    try:
        import av
    except ImportError:
        raise ImportError(
            "PyAV is needed to read videos: pip install av (or pip install 'logo-tal[video]')"
        ) from None
    return av


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about a video (frame count decoded when the header lacks it).

    Attributes:
        path: the file.
        fps: average frame rate.
        num_frames: frames in the video stream.
        duration: seconds, ``num_frames / fps``.
        width, height: frame size.
    """

    path: str
    fps: float
    num_frames: int
    duration: float
    width: int
    height: int


@dataclass
class DecodeStats:
    """Filled while :func:`iter_frames` runs: what was decoded and what was emitted."""

    source_fps: float = 0.0
    source_frames: int = 0
    frames: int = 0

    @property
    def duration(self) -> float:
        return self.source_frames / self.source_fps if self.source_fps > 0 else 0.0


def _open(path: str | os.PathLike):
    av = import_av()
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises its own FFmpegError subclasses, OSError, ValueError
        raise VideoDecodeError(f"{path}: unreadable video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not math.isfinite(fps) or fps <= 0:
        container.close()
        raise VideoDecodeError(f"{path}: the video stream has no frame rate")
    return container, stream, fps


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def probe_video(path: str | os.PathLike, count_frames: bool = False) -> VideoProbe:
    """Frame rate, frame count and duration of a video.

    Args:
        path: the file.
        count_frames: decode the whole stream to count frames even when the header has a count
            (exact for files whose header is wrong; slow for long videos).

    Raises:
        VideoDecodeError: unreadable file, no video stream, no frame rate, or zero frames.
    """
    container, stream, fps = _open(path)
    try:
        n = int(stream.frames or 0)
        if n <= 0 or count_frames:
            n = 0
            try:
                for _ in container.decode(stream):
                    n += 1
            except Exception as exc:
                raise VideoDecodeError(
                    f"{path}: decoding failed after {n} frame(s) ({_reason(exc)})"
                ) from None
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    finally:
        container.close()
    if n <= 0:
        raise VideoDecodeError(f"{path}: no decodable video frames")
    return VideoProbe(str(path), fps, n, n / fps, width, height)


def num_resampled_frames(source_frames: int, source_fps: float, fps: float) -> int:
    """``floor(source_frames / source_fps * fps)``, robust to float error at exact ratios."""
    return int(math.floor(source_frames / source_fps * fps + 1e-6))


def iter_frames(
    path: str | os.PathLike, fps: float, stats: DecodeStats | None = None
) -> Iterator[np.ndarray]:
    """Decoded RGB frames ``(H, W, 3)`` uint8, resampled to ``fps`` (see the module doc).

    Args:
        path: the video file.
        fps: target frame rate.
        stats: filled with the source fps, source frames and emitted frames.

    Raises:
        VideoDecodeError: unreadable file, no video stream or frame rate, a decoding error, or
            no frame at all.
    """
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    stats = stats if stats is not None else DecodeStats()
    container, stream, source_fps = _open(path)
    stats.source_fps = source_fps
    stream.thread_type = "AUTO"  # frame-threaded decoding: same frames, less wall time
    k = 0  # next output frame, due at k / fps seconds
    prev_time, prev = None, None
    t0 = None
    try:
        try:
            for n, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else n / source_fps
                t0 = t if t0 is None else t0
                t -= t0
                image = frame.to_ndarray(format="rgb24")
                stats.source_frames = n + 1
                if prev is not None:
                    middle = 0.5 * (prev_time + t)
                    while k / fps < middle:
                        yield prev
                        k += 1
                prev_time, prev = t, image
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(
                f"{path}: decoding failed after {stats.source_frames} frame(s) ({_reason(exc)})"
            ) from None
    finally:
        container.close()
        stats.frames = k
    if prev is None:
        raise VideoDecodeError(f"{path}: no decodable video frames")
    total = num_resampled_frames(stats.source_frames, source_fps, fps)
    while k < total:
        yield prev
        k += 1
        stats.frames = k


VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".ts",
)


def find_videos(videos: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Video files of a directory (not recursive, sorted), one file, or a list of files.

    Raises:
        FileNotFoundError: a path that does not exist, or a directory without videos.
        ValueError: two videos with the same id (file name without extension).
    """
    if isinstance(videos, (str, os.PathLike)):
        root = Path(videos)
        if root.is_dir():
            paths = sorted(
                p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not paths:
                raise FileNotFoundError(
                    f"{root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in the directory"
                )
        elif root.exists():
            paths = [root]
        else:
            raise FileNotFoundError(f"{root}: no such file or directory")
    else:
        paths = [Path(p) for p in videos]
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such video file")
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"{p}: same video id {p.stem!r} as {seen[p.stem]}")
        seen[p.stem] = p
    return paths

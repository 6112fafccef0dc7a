"""Tiny test videos written with PyAV: a grey background, a coloured square moving during known
segments (the "actions"), nothing moving elsewhere; and skips where PyAV
(``pip install 'logo-tal[video]'``) or, for the torchvision-only backbones, a working torchvision
are missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:  # a torchvision built for another torch raises RuntimeError, not ImportError
        return False
    return True


HAVE_AV = _importable("av")
HAVE_TORCHVISION = _importable("torchvision")
needs_av = pytest.mark.skipif(not HAVE_AV, reason="PyAV not installed (the video extra)")
# Extraction needs PyAV and a usable r2plus1d_18: torchvision's, or the built-in one
# (logo_tal.prep.extract.r2plus1d), which needs only torch and is always there.
needs_extract = needs_av
# The other backbones (s3d, mvit_v2_s, swin3d_t) exist only in torchvision.
needs_torchvision = pytest.mark.skipif(
    not HAVE_TORCHVISION, reason="a torchvision matching torch not installed"
)

# Four 8 s videos at 12 fps, 64x64: a red square crosses the frame during each segment.
VIDEOS = {
    "cam_a": [(1.0, 3.0, "wave"), (5.0, 6.5, "jump")],
    "cam_b": [(2.0, 4.0, "jump")],
    "cam_c": [(0.5, 2.5, "wave"), (4.0, 7.0, "wave")],
    "cam_d": [(3.0, 5.0, "jump")],
}
SECONDS, FPS, SIZE = 8.0, 12, 64
# A small input for CPU tests (the r2plus1d_18 default is 128x171 -> 112x112, 16 frames).
FAST = ["--weights", "none", "--fps", "12", "--num-frames", "8", "--resize", "36", "--crop", "32"]


def frame_at(t: float, size: int, segments: Sequence[tuple[float, float]], color) -> np.ndarray:
    """The RGB frame at ``t`` seconds: background, plus the square while an action runs."""
    img = np.full((size, size, 3), 96, dtype=np.uint8)
    for s, e in segments:
        if s <= t < e:
            side = size // 4
            x = int((t - s) / max(e - s, 1e-6) * (size - side))
            img[size // 3 : size // 3 + side, x : x + side] = color
    return img


def write_video(
    path: Path,
    seconds: float,
    fps: int = 12,
    size: int = 64,
    segments: Sequence[tuple[float, float]] = (),
    color=(220, 40, 40),
) -> Path:
    """Write an H.264 (or MPEG-4) video of ``round(seconds * fps)`` frames; returns ``path``."""
    import av

    n = int(round(seconds * fps))
    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if n == 0:
            container.start_encoding()  # header only: a valid file with zero frames (use .avi)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_at(i / fps, size, segments, color), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

"""The one conversion between seconds and the feature grid.

A feature vector ``i`` summarises the clip of ``num_frames`` frames that starts at frame
``i * feat_stride``; it is placed at the clip centre (ActionFormer FAQ, docs/decisions.md D12).
Hence, with ``fps`` frames per second::

    g = (t * fps - num_frames / 2) / feat_stride        (seconds -> grid)
    t = (g * feat_stride + num_frames / 2) / fps        (grid -> seconds)

Grid units are those of pyramid level 0. This module imports nothing from the package so that
both ``logo_tal.data`` and ``logo_tal.models.postprocess`` can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureGrid:
    """Timing of one video's feature sequence.

    Args:
        fps: frames per second of the video the features were extracted from.
        feat_stride: frames between consecutive feature vectors (THUMOS I3D: 4, ANet TSP: 16).
        num_frames: frames seen by one feature vector (the clip window, 16 for both).
    """

    fps: float
    feat_stride: float
    num_frames: float

    def __post_init__(self) -> None:
        for name in ("fps", "feat_stride", "num_frames"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"FeatureGrid.{name} must be a positive number, got {value!r}")

    @property
    def offset(self) -> float:
        """Grid position of time 0 is ``-offset`` (THUMOS: 16 / (2 * 4) = 2 steps)."""
        return self.num_frames / (2.0 * self.feat_stride)

    @property
    def seconds_per_step(self) -> float:
        return self.feat_stride / self.fps

    def to_grid(self, seconds):
        """Seconds (scalar or array) -> grid units (float, may be negative near t = 0)."""
        return (np.asarray(seconds, dtype=np.float64) * self.fps - self.num_frames / 2.0) / (
            self.feat_stride
        )

    def to_seconds(self, grid, duration: float | None = None):
        """Grid units -> seconds, clamped to ``[0, duration]`` when a duration is given."""
        frames = np.asarray(grid, dtype=np.float64) * self.feat_stride + self.num_frames / 2.0
        t = frames / self.fps
        if duration is not None:
            t = np.clip(t, 0.0, duration)
        return t

    def expected_length(self, num_video_frames: int) -> int:
        """Feature vectors a sliding window of ``num_frames`` at ``feat_stride`` yields.

        Example: THUMOS video of 5094 frames, window 16, stride 4 -> (5094 - 16) // 4 + 1 = 1270.
        """
        if num_video_frames < self.num_frames:
            return 0
        return int((num_video_frames - self.num_frames) // self.feat_stride) + 1

    def duration_to_frames(self, duration: float) -> int:
        return int(round(duration * self.fps))

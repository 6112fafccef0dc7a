"""The clip window of :mod:`logo_tal.core.grid`: feature ``i`` sees frames
``[i * feat_stride, i * feat_stride + num_frames)``, so a video of ``n`` frames has
``FeatureGrid.expected_length(n) = (n - num_frames) // feat_stride + 1`` clips (none when
``n < num_frames``) and the frames after the last full clip are not seen.

Frames are preprocessed once each (a frame belongs to ``num_frames / feat_stride`` clips) and
then windowed; clips are stacked into batches ``(B, C, num_frames, H, W)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

from logo_tal.core.grid import FeatureGrid

T = TypeVar("T")


def num_clips(frames: int, num_frames: int, feat_stride: int) -> int:
    """Clips (= feature vectors) of a video of ``frames`` frames; the grid module's count."""
    return FeatureGrid(1.0, feat_stride, num_frames).expected_length(frames)


def clip_starts(frames: int, num_frames: int, feat_stride: int) -> np.ndarray:
    """First frame of every clip: ``i * feat_stride`` for ``i < num_clips(...)``."""
    return np.arange(num_clips(frames, num_frames, feat_stride), dtype=np.int64) * feat_stride


def iter_windows(items: Iterable[T], num_frames: int, feat_stride: int) -> Iterator[list[T]]:
    """Sliding windows of ``num_frames`` items every ``feat_stride`` items, streamed.

    Holds at most ``max(num_frames, feat_stride)`` items, so a long video is never in memory.
    """
    if num_frames < 1 or feat_stride < 1:
        raise ValueError(
            f"num_frames and feat_stride must be >= 1, got {num_frames}, {feat_stride}"
        )
    window: deque[T] = deque()
    skip = 0  # items still to drop before the next window starts (stride > window)
    for item in items:
        if skip:
            skip -= 1
            continue
        window.append(item)
        if len(window) == num_frames:
            yield list(window)
            for _ in range(min(feat_stride, num_frames)):
                window.popleft()
            skip = max(feat_stride - num_frames, 0)


def iter_preprocessed(
    frames: Iterable[np.ndarray],
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    chunk: int = 16,
) -> Iterator[torch.Tensor]:
    """Per-frame model inputs ``(C, H, W)`` from RGB frames ``(H, W, 3)`` uint8.

    Args:
        frames: decoded frames.
        preprocess: maps a uint8 batch ``(N, H, W, 3)`` to ``(C, N, h, w)`` floats (the
            backbone's resize / crop / normalise; every frame independently).
        chunk: frames preprocessed together (vectorised resize).
    """
    buffer: list[np.ndarray] = []

    def flush() -> Iterator[torch.Tensor]:
        out = preprocess(torch.from_numpy(np.stack(buffer)))
        buffer.clear()
        yield from out.unbind(dim=1)

    for frame in frames:
        buffer.append(frame)
        if len(buffer) == chunk:
            yield from flush()
    if buffer:
        yield from flush()


def iter_clip_batches(
    frames: Iterable[torch.Tensor], num_frames: int, feat_stride: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """Batches ``(B, C, num_frames, H, W)`` of clips, in clip order (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[torch.Tensor] = []
    for window in iter_windows(frames, num_frames, feat_stride):
        batch.append(torch.stack(window, dim=1))
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)

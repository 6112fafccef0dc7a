"""Per-video transforms: linear resize, training crop/truncation, grid targets.

All functions work on one video with features ``(T, C)`` (time first, as stored) and segments
in level-0 grid units ``(N, 2)``; randomness comes only from the ``rng`` argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from logo_tal.core.grid import FeatureGrid

# Trials before giving up on a crop that keeps an action (ActionFormer/TriDet data_utils.py).
MAX_CROP_TRIALS = 200


def resize_features(
    feats: np.ndarray, length: int, grid: FeatureGrid
) -> tuple[np.ndarray, FeatureGrid]:
    """Linearly resize a sequence to ``length`` steps and return the matching grid.

    ActionFormer's ANet setting (docs/decisions.md D12): ``F.interpolate`` mode linear,
    ``align_corners=False``; the effective stride is ``s' = ((T - 1) * stride + num_frames) /
    length`` frames and ``num_frames`` becomes ``s'`` too, so time 0 sits half a step before
    the first feature.

    Args:
        feats: (T, C) features.
        length: target number of steps.
        grid: the grid of the original features.

    Returns:
        (length, C) float32 features and the effective grid.
    """
    t = feats.shape[0]
    stride = ((t - 1) * grid.feat_stride + grid.num_frames) / length
    new_grid = FeatureGrid(grid.fps, stride, stride)
    if t == length:
        return feats, new_grid
    x = torch.from_numpy(np.ascontiguousarray(feats.T))[None]
    y = F.interpolate(x, size=length, mode="linear", align_corners=False)
    return y[0].T.contiguous().numpy(), new_grid


def fit_to_sequence(
    segments: np.ndarray,
    labels: np.ndarray,
    length: int,
    offset: float,
    trunc_thresh: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep training targets inside the span the features cover.

    The features cover grid positions ``[-offset, length + offset]`` (a clip reaches half a
    window either side of its centre). Targets starting after that span are dropped, targets
    with less than ``trunc_thresh`` of their length inside are dropped, the others are clipped
    (ActionFormer's ANet fix, docs/decisions.md D12, applied to every dataset: it only acts
    when the feature file is shorter than the annotated duration).

    Args:
        segments: (N, 2) grid units.
        labels: (N,) int64.
        length: T.
        offset: ``grid.offset``.
        trunc_thresh: minimum inside fraction.

    Returns:
        kept segments (N', 2) float32, labels (N',), and N - N'.
    """
    if len(segments) == 0:
        return segments.astype(np.float32).reshape(0, 2), labels, 0
    lo, hi = -offset, length + offset
    s, e = segments[:, 0], segments[:, 1]
    inside = np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None)
    frac = inside / np.maximum(e - s, 1e-6)
    keep = (s < hi) & (e > lo) & (frac >= trunc_thresh)
    out = np.stack([np.maximum(s, lo), np.minimum(e, hi)], axis=1)[keep]
    return out.astype(np.float32), labels[keep], int((~keep).sum())


def random_truncate(
    feats: np.ndarray,
    segments: np.ndarray,
    labels: np.ndarray,
    max_seq_len: int,
    rng: np.random.Generator,
    trunc_thresh: float = 0.5,
    crop_ratio: Sequence[float] | None = (0.9, 1.0),
    offset: float = 0.0,
    max_trials: int = MAX_CROP_TRIALS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Training crop: a random window of the sequence that keeps at least one action.

    ActionFormer/TriDet ``truncate_feats`` (docs/decisions.md D8): if ``T <= max_seq_len``
    the window length is drawn from ``crop_ratio * T`` (unchanged input when the draw is ``T``
    or ``crop_ratio`` is None); otherwise it is ``max_seq_len``. Up to ``max_trials`` random
    starts are tried; the first window in which some target has at least ``trunc_thresh`` of its
    length inside is taken (else the last one). Kept targets are clipped to the window and
    shifted. ``offset=0`` is TriDet's variant; ActionFormer widens the window by ``grid.offset``
    on both sides for the overlap test and the clipping.

    Args:
        feats: (T, C).
        segments: (N, 2) float32 grid units.
        labels: (N,) int64.
        max_seq_len: longest window.
        rng: the random source.
        trunc_thresh: minimum inside fraction of a kept target.
        crop_ratio: ``(lo, hi)`` fraction of T, or None.
        offset: window widening in grid units.
        max_trials: number of start positions tried.

    Returns:
        feats (L, C), segments (N', 2) float32, labels (N',), and the window start.
    """
    t = feats.shape[0]
    if t <= max_seq_len:
        if crop_ratio is None:
            return feats, segments, labels, 0
        lo = max(int(round(crop_ratio[0] * t)), 1)
        hi = min(int(round(crop_ratio[1] * t)), t)
        win = int(rng.integers(lo, hi + 1)) if hi > lo else hi
        if win == t:
            return feats, segments, labels, 0
    else:
        win = max_seq_len

    segs = np.asarray(segments, dtype=np.float32).reshape(-1, 2)
    lengths = np.maximum(segs[:, 1] - segs[:, 0], 1e-6)
    trials = max_trials if len(segs) else 1
    for _ in range(trials):
        st = int(rng.integers(0, t - win + 1))
        lo_w, hi_w = st - offset, st + win + offset
        inter = np.clip(np.minimum(segs[:, 1], hi_w) - np.maximum(segs[:, 0], lo_w), 0.0, None)
        keep = inter / lengths >= trunc_thresh
        if keep.any():
            break
    clipped = np.stack([np.maximum(segs[:, 0], lo_w), np.minimum(segs[:, 1], hi_w)], axis=1)
    out = (clipped[keep] - st).astype(np.float32)
    return feats[st : st + win], out, labels[keep], st

"""Padding and masks: samples -> :class:`~logo_tal.data.batch.Batch`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from logo_tal.data.batch import Batch
from logo_tal.data.dataset import Sample


def padded_length(lengths: Sequence[int], divisor: int, max_seq_len: int, training: bool) -> int:
    """Length every sample of a batch is padded to.

    Training pads to ``max_seq_len`` (fixed shapes; the crop guarantees ``T <= max_seq_len``).
    Evaluation pads only to the next multiple of ``divisor`` above the longest video, never to
    ``max_seq_len`` (ActionFormer issue #109: padding further only costs time), and keeps
    videos longer than ``max_seq_len`` whole.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    longest = max(lengths)
    if training:
        # max_seq_len % divisor was checked once, by PyramidSpec.check_length at start-up.
        if longest > max_seq_len:
            raise ValueError(
                f"training sample of {longest} steps exceeds max_seq_len {max_seq_len} "
                "(training samples must be cropped first)"
            )
        return max_seq_len
    return max(-(-longest // divisor) * divisor, divisor)


def collate(samples: Sequence[Sample], divisor: int, max_seq_len: int, training: bool) -> Batch:
    """Pad a list of samples with zeros and build the masks.

    Args:
        samples: from :class:`~logo_tal.data.dataset.TALDataset`, feats (C, T_i).
        divisor: ``2**(num_levels - 1)``, the detector's largest stride.
        max_seq_len: training length.
        training: pad to ``max_seq_len`` (True) or to the next multiple of ``divisor``.

    Returns:
        Batch with feats (B, C, T) and masks (B, T), True on the first T_i steps.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    lengths = [int(s.feats.shape[1]) for s in samples]
    dims = {int(s.feats.shape[0]) for s in samples}
    if len(dims) != 1:
        raise ValueError(f"samples have different feature dimensions {sorted(dims)}")
    length = padded_length(lengths, divisor, max_seq_len, training)
    feats = torch.zeros(len(samples), dims.pop(), length, dtype=torch.float32)
    masks = torch.zeros(len(samples), length, dtype=torch.bool)
    for i, (s, t) in enumerate(zip(samples, lengths, strict=True)):
        feats[i, :, :t] = s.feats
        masks[i, :t] = True

    return Batch(
        feats=feats,
        masks=masks,
        segments=[s.segments for s in samples],
        labels=[s.labels for s in samples],
        video_ids=[s.video_id for s in samples],
        video_index=torch.tensor([s.video_index for s in samples], dtype=torch.int64),
        durations=torch.tensor([s.duration for s in samples], dtype=torch.float64),
        grids=[s.grid for s in samples],
        gt_segments=[s.gt_segments for s in samples],
        gt_labels=[s.gt_labels for s in samples],
    )


class Collate:
    """Picklable :func:`collate` with its settings bound (for DataLoader workers).

    Args:
        divisor: ``2**(num_levels - 1)``.
        max_seq_len: training length.
        training: see :func:`collate`.
    """

    def __init__(self, divisor: int, max_seq_len: int, training: bool):
        self.divisor = divisor
        self.max_seq_len = max_seq_len
        self.training = training

    def __call__(self, samples: Sequence[Sample]) -> Batch:
        return collate(samples, self.divisor, self.max_seq_len, self.training)

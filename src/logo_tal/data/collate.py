"""Padding and masks: samples -> :class:`~logo_tal.data.batch.Batch`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from logo_tal.data.batch import Batch
from logo_tal.data.dataset import Sample

# data.train_padding: "batch" pads each training batch to its longest video (the detector is
# padding-invariant, so only the time changes); "max_seq_len" keeps the ancestors' fixed shapes
# (docs/decisions.md D122).
TRAIN_PADDINGS = ("batch", "max_seq_len")


def round_up(length: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``length`` (and >= ``multiple``)."""
    return max(-(-length // multiple) * multiple, multiple)


def padded_length(
    lengths: Sequence[int],
    divisor: int,
    max_seq_len: int,
    training: bool,
    train_padding: str = "batch",
) -> int:
    """Length every sample of a batch is padded to.

    Training pads to the next multiple of ``divisor`` above the batch's longest sample
    (``train_padding="batch"``) or to ``max_seq_len`` (``"max_seq_len"``, ActionFormer's and
    TriDet's fixed shapes); the crop guarantees ``T <= max_seq_len`` either way. Evaluation pads
    only to the next multiple of ``divisor`` above the longest video, never to ``max_seq_len``
    (ActionFormer issue #109: padding further only costs time), and keeps videos longer than
    ``max_seq_len`` whole.

    Args:
        lengths: the samples' lengths.
        divisor: a multiple of the pyramid's divisor (coarser for a compiled detector in
            training, so that few distinct shapes reach it).
        max_seq_len: training window, itself a multiple of the pyramid's divisor.
        training: the training rules apply.
        train_padding: one of :data:`TRAIN_PADDINGS`.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    if train_padding not in TRAIN_PADDINGS:
        raise ValueError(f"train_padding must be one of {TRAIN_PADDINGS}, got {train_padding!r}")
    longest = max(lengths)
    if not training:
        return round_up(longest, divisor)
    # max_seq_len % divisor was checked once, by PyramidSpec.check_length at start-up.
    if longest > max_seq_len:
        raise ValueError(
            f"training sample of {longest} steps exceeds max_seq_len {max_seq_len} "
            "(training samples must be cropped first)"
        )
    if train_padding == "max_seq_len":
        return max_seq_len
    return min(round_up(longest, divisor), max_seq_len)


def collate(
    samples: Sequence[Sample],
    divisor: int,
    max_seq_len: int,
    training: bool,
    train_padding: str = "batch",
) -> Batch:
    """Pad a list of samples with zeros and build the masks.

    Args:
        samples: from :class:`~logo_tal.data.dataset.TALDataset`, feats (C, T_i).
        divisor: ``2**(num_levels - 1)``, the detector's largest stride (or a multiple of it).
        max_seq_len: training length.
        training: the training padding rules (:func:`padded_length`).
        train_padding: ``"batch"`` or ``"max_seq_len"``.

    Returns:
        Batch with feats (B, C, T) and masks (B, T), True on the first T_i steps.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    lengths = [int(s.feats.shape[1]) for s in samples]
    dims = {int(s.feats.shape[0]) for s in samples}
    if len(dims) != 1:
        raise ValueError(f"samples have different feature dimensions {sorted(dims)}")
    length = padded_length(lengths, divisor, max_seq_len, training, train_padding)
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
        divisor: ``2**(num_levels - 1)`` or a multiple of it.
        max_seq_len: training length.
        training: see :func:`collate`.
        train_padding: see :func:`collate`.
    """

    def __init__(
        self, divisor: int, max_seq_len: int, training: bool, train_padding: str = "batch"
    ):
        if train_padding not in TRAIN_PADDINGS:
            raise ValueError(
                f"train_padding must be one of {TRAIN_PADDINGS}, got {train_padding!r}"
            )
        self.divisor = divisor
        self.max_seq_len = max_seq_len
        self.training = training
        self.train_padding = train_padding

    def __call__(self, samples: Sequence[Sample]) -> Batch:
        return collate(samples, self.divisor, self.max_seq_len, self.training, self.train_padding)

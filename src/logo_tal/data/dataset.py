"""Datasets: annotated videos (train / eval) and bare feature files (predict)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from logo_tal.core.grid import FeatureGrid
from logo_tal.data.annotations import VideoRecord
from logo_tal.data.feature_store import FeatureStore, MissingFeaturesError
from logo_tal.data.transforms import fit_to_sequence, random_truncate, resize_features

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One video, ready for :func:`logo_tal.data.collate.collate`.

    Attributes:
        feats: (C, T) float32.
        segments: (N, 2) float32 training targets, grid units of this sample's window.
        labels: (N,) int64.
        video_id: id in the annotation file.
        video_index: position of the video in its split.
        duration: seconds.
        grid: the (effective) feature grid of the video.
        gt_segments: (M, 2) float64 seconds, as annotated.
        gt_labels: (M,) int64.
    """

    feats: torch.Tensor
    segments: torch.Tensor
    labels: torch.Tensor
    video_id: str
    video_index: int
    duration: float
    grid: FeatureGrid
    gt_segments: torch.Tensor
    gt_labels: torch.Tensor


class TALDataset(Dataset):
    """Videos of one split with their features.

    Training items are randomly cropped (:func:`random_truncate`); evaluation items are whole
    videos, however long (the collate pads them to the detector's divisor).

    Randomness: the crop of video ``index`` in epoch ``epoch`` draws from a generator seeded
    with ``(seed, epoch, index)`` (:meth:`crop_rng`); the training samplers hand out
    ``(epoch, index)`` keys. Crops are therefore the same with any number of DataLoader
    workers, persistent or not, and after a resume.

    Args:
        records: the split's videos (order defines ``video_index``).
        store: feature store.
        feat_stride: frames between feature vectors.
        num_frames: frames per feature clip.
        max_seq_len: longest training window (steps).
        training: crop and shuffle-time randomness on/off.
        trunc_thresh: minimum inside fraction for a cropped target.
        crop_ratio: ``(lo, hi)`` window length fraction for short videos, or None.
        widen_crop: ActionFormer's crop (window widened by the grid offset) instead of
            TriDet's (not widened).
        resize_to: resize every video to this many steps (ActionFormer ANet: 192), or None.
        seed: seed of the main-process generator.
        skip_missing: drop videos without features with a counted warning instead of raising.
        split: split name, for messages.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        store: FeatureStore,
        feat_stride: float,
        num_frames: float,
        max_seq_len: int,
        training: bool = False,
        trunc_thresh: float = 0.5,
        crop_ratio: Sequence[float] | None = (0.9, 1.0),
        widen_crop: bool = False,
        resize_to: int | None = None,
        seed: int = 0,
        skip_missing: bool = False,
        split: str = "",
    ):
        missing = [r.video_id for r in records if r.video_id not in store]
        if missing:
            if not skip_missing:
                raise MissingFeaturesError(repr(store), missing, split)
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            log.warning(
                "split '%s': skipping %d of %d video(s) without features in %r (%s)",
                split,
                len(missing),
                len(records),
                store,
                shown,
            )
            gone = set(missing)
            records = [r for r in records if r.video_id not in gone]
        self.records = list(records)
        self.store = store
        self.feat_stride = float(feat_stride)
        self.num_frames = float(num_frames)
        self.max_seq_len = int(max_seq_len)
        self.training = training
        self.trunc_thresh = trunc_thresh
        self.crop_ratio = tuple(crop_ratio) if crop_ratio is not None else None
        self.widen_crop = widen_crop
        self.resize_to = resize_to
        self.seed = seed
        self.split = split
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def video_ids(self) -> list[str]:
        return [r.video_id for r in self.records]

    def crop_rng(self, epoch: int, index: int) -> np.random.Generator:
        """The generator of one video's crop in one epoch: a function of ``(seed, epoch,
        index)`` alone, so crops do not depend on which process draws them, in which order,
        or whether the run was resumed (docs/decisions.md D101)."""
        return np.random.default_rng([self.seed, epoch, index])

    def training_lengths(self) -> list[int]:
        """Each video's length as training sees it before the random crop: ``resize_to``, or
        the feature length capped at ``max_seq_len`` (the crop shortens a video by at most
        ``1 - crop_ratio[0]`` more). Read from the files' headers, not their data."""
        if self.resize_to is not None:
            return [int(self.resize_to)] * len(self.records)
        return [min(self.store.length(r.video_id), self.max_seq_len) for r in self.records]

    def grid(self, index: int, length: int | None = None) -> FeatureGrid:
        """Effective grid of a video (``length`` = its T, needed only in resize mode)."""
        rec = self.records[index]
        grid = FeatureGrid(rec.fps, self.feat_stride, self.num_frames)
        if self.resize_to is None:
            return grid
        if length is None:
            length = self.store.length(rec.video_id)
        stride = ((length - 1) * grid.feat_stride + grid.num_frames) / self.resize_to
        return FeatureGrid(rec.fps, stride, stride)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        """One video by ``index`` or by ``(epoch, index)``, the keys the training samplers
        give (:mod:`logo_tal.data.sampler`); a bare index crops as epoch 0."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rec = self.records[index]
        feats = self.store.load(rec.video_id)
        grid = FeatureGrid(rec.fps, self.feat_stride, self.num_frames)
        if self.resize_to is not None:
            feats, grid = resize_features(feats, self.resize_to, grid)
        segs = grid.to_grid(rec.segments).astype(np.float32).reshape(-1, 2)
        segs, labels, dropped = fit_to_sequence(
            segs, rec.labels, feats.shape[0], grid.offset, self.trunc_thresh
        )
        if dropped and rec.video_id not in self._warned:
            self._warned.add(rec.video_id)
            log.warning(
                "%s: %d training target(s) dropped: outside the %d feature steps of %s "
                "(features shorter than the annotated duration %.2f s?)",
                rec.video_id,
                dropped,
                feats.shape[0],
                self.store.describe(rec.video_id),
                rec.duration,
            )
        if self.training:
            feats, segs, labels, _ = random_truncate(
                feats,
                segs,
                labels,
                self.max_seq_len,
                self.crop_rng(epoch, index),
                trunc_thresh=self.trunc_thresh,
                crop_ratio=self.crop_ratio,
                offset=grid.offset if self.widen_crop else 0.0,
            )
        return Sample(
            feats=torch.from_numpy(np.ascontiguousarray(feats.T)),
            segments=torch.from_numpy(np.ascontiguousarray(segs, dtype=np.float32)),
            labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            video_id=rec.video_id,
            video_index=index,
            duration=rec.duration,
            grid=grid,
            gt_segments=torch.from_numpy(rec.gt_segments.astype(np.float64)),
            gt_labels=torch.from_numpy(rec.gt_labels.astype(np.int64)),
        )

"""New videos for ``logo_tal.predict``: bare ``(T, C)`` feature files -> a DataLoader of Batches.

Apart from the datamodule: a prediction needs no annotation file, no splits and no training
crop, only the training features' time grid (a :class:`~logo_tal.data.sources.FeatureSource`)
and the detector's padding divisor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from logo_tal.core.errors import UserInputError
from logo_tal.data.annotations import VideoRecord, load_annotations
from logo_tal.data.collate import Collate
from logo_tal.data.dataset import TALDataset
from logo_tal.data.feature_store import FeatureStore, NpyFeatureStore, open_feature_store
from logo_tal.data.sources import FeatureSource


def feature_records(
    store: FeatureStore, video_ids: Sequence[str], features: FeatureSource, fps: float
) -> list[VideoRecord]:
    """Records without ground truth for bare feature files.

    The duration is the span the clips cover, ``((T - 1) * feat_stride + num_frames) / fps``.
    """
    empty_segs = np.zeros((0, 2), dtype=np.float64)
    empty_labels = np.zeros((0,), dtype=np.int64)
    out = []
    for vid in video_ids:
        t = store.length(vid)
        out.append(
            VideoRecord(
                video_id=vid,
                subset="predict",
                duration=((t - 1) * features.feat_stride + features.num_frames) / fps,
                fps=float(fps),
                gt_segments=empty_segs,
                gt_labels=empty_labels,
                segments=empty_segs,
                labels=empty_labels,
            )
        )
    return out


def _open(path: Path, features: FeatureSource) -> tuple[FeatureStore, list[str]]:
    """The store holding ``path`` (one ``.npy`` file or a directory / HDF5 file) and its ids."""
    if path.is_file() and path.suffix == features.ext:
        store = NpyFeatureStore(
            path.parent, prefix="", ext=features.ext, input_dim=features.input_dim
        )
        return store, [path.name[: -len(features.ext)]]
    if not path.exists():
        raise FileNotFoundError(f"features={path} does not exist")
    store = open_feature_store(path, prefix="", ext=features.ext, input_dim=features.input_dim)
    ids = store.video_ids()
    if not ids:
        raise FileNotFoundError(f"no {features.ext} feature files in {path}")
    return store, ids


def predict_dataset(
    path: str | Path,
    features: FeatureSource,
    max_seq_len: int,
    annotations: str | None = None,
    duration: float | None = None,
) -> TALDataset:
    """The videos under ``path`` as an evaluation-mode dataset.

    Args:
        path: a ``.npy`` file, a directory of them, or an HDF5 file.
        features: the training features' grid (``fps``, stride, window, width, resize).
        max_seq_len: the training window (only read by a resize).
        annotations: optional ActivityNet-style JSON: the videos it lists take their fps,
            duration and ground truth from it (the plots draw the ground truth).
        duration: duration in seconds of a single video (None: the span its features cover).

    Raises:
        FileNotFoundError: no such path, or no feature file in it.
        UserInputError: no fps known for a video.
    """
    store, ids = _open(Path(path), features)
    # Only timing and segments are used: no class map needed.
    known = load_annotations(annotations, fps=features.fps).videos if annotations else {}
    if features.fps is None and not all(v in known for v in ids):
        raise UserInputError("predict needs the features' fps: set fps=")
    records = []
    for record in feature_records(store, ids, features, features.fps or 1.0):
        record = known.get(record.video_id, record)
        if duration is not None and len(ids) == 1:
            record = dataclasses.replace(record, duration=float(duration))
        records.append(record)
    return TALDataset(
        records,
        store,
        features.feat_stride,
        features.num_frames,
        max_seq_len,
        training=False,
        resize_to=features.resize_to,
        split="predict",
    )


def predict_loader(dataset: TALDataset, divisor: int) -> DataLoader:
    """One video per batch, in the dataset's order, padded to the detector's ``divisor``."""
    collate = Collate(divisor, dataset.max_seq_len, training=False)
    return DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=collate)

"""New videos for predict: bare feature files -> records and padded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logo_tal.core.errors import UserInputError
from logo_tal.data.annotations import load_annotations
from logo_tal.data.predict_inputs import predict_dataset, predict_loader
from logo_tal.data.sources import FeatureSource


def _source(root, fps=30.0, **kw):
    return FeatureSource(
        str(root / "features"), input_dim=32, feat_stride=4, num_frames=16, fps=fps, **kw
    )


def test_a_directory_gives_every_video_without_ground_truth(tiny_npy):
    dataset = predict_dataset(tiny_npy / "features", _source(tiny_npy), 128)
    assert len(dataset.video_ids) == 10
    batch = next(iter(predict_loader(dataset, divisor=8)))
    assert len(batch) == 1 and batch.feats.shape[-1] % 8 == 0
    assert all(len(g) == 0 for g in batch.gt_segments)
    assert all(len(s) == 0 for s in batch.segments)
    t = batch.masks.sum(1).double()
    # The span the clips cover: ((T - 1) * stride + window) / fps.
    torch.testing.assert_close(batch.durations, ((t - 1) * 4 + 16) / 30)


def test_one_file_is_one_video(tiny_npy):
    path = tiny_npy / "features" / "synth_training_00001.npy"
    dataset = predict_dataset(path, _source(tiny_npy), 128)
    assert dataset.video_ids == ["synth_training_00001"]
    assert predict_dataset(path, _source(tiny_npy), 128, duration=12.5).records[0].duration == 12.5


def test_annotations_give_timing_and_ground_truth(tiny_npy):
    path = tiny_npy / "features" / "synth_testing_00006.npy"
    ann = tiny_npy / "annotations.json"
    (record,) = predict_dataset(
        path, _source(tiny_npy, fps=None), 128, annotations=str(ann)
    ).records
    annotated = load_annotations(ann).videos["synth_testing_00006"]
    assert record.duration == annotated.duration and record.fps == annotated.fps
    np.testing.assert_array_equal(record.gt_segments, annotated.gt_segments)


def test_bad_inputs_fail_in_one_line(tiny_npy, tmp_path):
    with pytest.raises(FileNotFoundError, match="features=.*nowhere does not exist"):
        predict_dataset(tmp_path / "nowhere", _source(tiny_npy), 128)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .npy feature files in"):
        predict_dataset(tmp_path / "empty", _source(tiny_npy), 128)
    with pytest.raises(UserInputError, match="predict needs the features' fps: set fps="):
        predict_dataset(tiny_npy / "features", _source(tiny_npy, fps=None), 128)


def test_resized_like_the_training_features(tiny_npy):
    dataset = predict_dataset(tiny_npy / "features", _source(tiny_npy, resize_to=64), 64)
    batch = next(iter(predict_loader(dataset, divisor=8)))
    assert batch.feats.shape[-1] == 64 and batch.masks.all()

"""Collate: zero padding, masks, divisor rules."""

from __future__ import annotations

import pytest
import torch

from logo_tal.core.grid import FeatureGrid
from logo_tal.data.batch import Batch
from logo_tal.data.collate import Collate, collate, padded_length
from logo_tal.data.dataset import Sample


def _sample(t, c=4, index=0):
    return Sample(
        feats=torch.rand(c, t) + 0.1,
        segments=torch.tensor([[1.0, 3.0]]),
        labels=torch.tensor([2]),
        video_id=f"v{index}",
        video_index=index,
        duration=t * 0.1,
        grid=FeatureGrid(30, 4, 16),
        gt_segments=torch.tensor([[0.5, 1.0]], dtype=torch.float64),
        gt_labels=torch.tensor([2]),
    )


def test_training_pads_to_max_seq_len_when_asked():
    samples = [_sample(40, index=0), _sample(64, index=1)]
    b = collate(samples, divisor=32, max_seq_len=128, training=True, train_padding="max_seq_len")
    assert isinstance(b, Batch) and len(b) == 2
    assert b.feats.shape == (2, 4, 128) and b.masks.shape == (2, 128)
    assert b.masks.dtype == torch.bool
    assert b.masks.sum(1).tolist() == [40, 64]
    assert torch.equal(b.feats[0, :, :40], samples[0].feats)
    assert (b.feats[0, :, 40:] == 0).all() and (b.feats[1, :, 64:] == 0).all()
    assert b.video_index.tolist() == [0, 1] and b.video_ids == ["v0", "v1"]
    assert [g.feat_stride for g in b.grids] == [4.0, 4.0] and b.grids[0] == samples[0].grid
    assert b.gt_segments[1].dtype == torch.float64


def test_training_pads_to_the_batch_by_default():
    samples = [_sample(40, index=0), _sample(65, index=1)]
    b = collate(samples, divisor=32, max_seq_len=128, training=True)
    assert b.feats.shape == (2, 4, 96)
    assert b.masks.sum(1).tolist() == [40, 65]
    assert torch.equal(b.feats[1, :, :65], samples[1].feats) and (b.feats[1, :, 65:] == 0).all()
    # Never past the window, also with a multiple that does not divide it (compiled detector).
    assert padded_length([100], 96, 128, True) == 128
    assert padded_length([10], 96, 128, True) == 96
    assert padded_length([128], 32, 128, True) == 128
    same = collate(samples, 32, 128, True, "max_seq_len")
    assert torch.equal(same.feats[:, :, :96], b.feats) and not same.masks[:, 96:].any()


def test_eval_pads_to_next_multiple_of_divisor_only():
    b = collate([_sample(40), _sample(70)], divisor=32, max_seq_len=2304, training=False)
    assert b.feats.shape[-1] == 96
    # Videos longer than max_seq_len stay whole at test time.
    b = collate([_sample(300)], divisor=32, max_seq_len=128, training=False)
    assert b.feats.shape[-1] == 320 and b.masks.all(1).tolist() == [False]
    assert b.masks.sum().item() == 300
    assert padded_length([64], 32, 128, False) == 64


def test_collate_errors():
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        collate([_sample(200)], divisor=32, max_seq_len=128, training=True)
    with pytest.raises(ValueError, match="feature dimensions"):
        collate([_sample(10, c=4), _sample(10, c=5)], 32, 128, True)
    with pytest.raises(ValueError, match="train_padding must be one of"):
        collate([_sample(10)], 32, 128, True, "longest")
    with pytest.raises(ValueError, match="train_padding must be one of"):
        Collate(32, 128, True, "fixed")


def test_collate_class_is_picklable():
    import pickle

    fn = pickle.loads(pickle.dumps(Collate(16, 64, True, "max_seq_len")))
    assert fn([_sample(10)]).feats.shape == (1, 4, 64)
    assert pickle.loads(pickle.dumps(Collate(16, 64, True)))([_sample(10)]).feats.shape[-1] == 16

"""Dataset + datamodule end to end on the tiny synthetic set; missing features; resuming."""

from __future__ import annotations

import logging
import shutil
import signal

import numpy as np
import pytest
import torch

from logo_tal.core.grid import FeatureGrid
from logo_tal.core.pyramid import PyramidSpec
from logo_tal.data.batch import Batch
from logo_tal.data.datamodule import TALDataModule, init_worker
from logo_tal.data.feature_store import MissingFeaturesError
from logo_tal.data.sources import AnnotationSource, FeatureSource
from logo_tal.evaluation.protocol import EvaluationProtocol
from logo_tal.prep.synthetic.prepare import SyntheticBenchmark


def _dm(root, features=None, num_classes=3, val_split="testing", **kw):
    """The tiny synthetic set's datamodule; ``features_*`` keys go to the FeatureSource."""
    source = {k[len("features_") :]: kw.pop(k) for k in list(kw) if k.startswith("features_")}
    args = dict(
        annotations=AnnotationSource(
            str(root / "annotations.json"),
            num_classes=num_classes,
            train_split="training",
            val_split=val_split,
            test_split="testing",
        ),
        features=FeatureSource(
            str(features or root / "features"),
            input_dim=32,
            feat_stride=4,
            num_frames=16,
            **source,
        ),
        max_seq_len=128,
        pyramid=PyramidSpec(4),
        batch_size=2,
    )
    args.update(kw)
    return TALDataModule(**args)


def test_end_to_end_batches(tiny_npy):
    dm = _dm(tiny_npy)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 3 and dm.input_dim == 32
    assert dm.class_names == ["class_00", "class_01", "class_02"]
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch)
    # Padded to the batch's longest video (train_padding=batch), rounded up to the divisor 8.
    length = -(-int(batch.masks.sum(1).max()) // 8) * 8
    assert batch.feats.shape == (2, 32, length) and batch.masks.shape == (2, length)
    assert batch.masks[:, -8:].any()
    for segs, labels, t in zip(batch.segments, batch.labels, batch.masks.sum(1), strict=True):
        assert segs.dtype == torch.float32 and labels.dtype == torch.int64
        assert len(segs) == len(labels)
        assert (segs[:, 1] <= t + 1e-4).all() and (labels < 3).all()
    val_ids = dm.videos("val")
    seen = []
    for batch in dm.val_dataloader():
        assert batch.feats.shape[-1] % 8 == 0 and batch.feats.shape[-1] <= 128
        seen += [val_ids[i] for i in batch.video_index.tolist()]
        assert seen[-len(batch) :] == batch.video_ids
    assert seen == val_ids


def test_eval_targets_match_annotations(tiny_npy):
    dm = _dm(tiny_npy)
    ds = dm.dataset("test")
    rec = ds.records[0]
    sample = ds[0]
    np.testing.assert_array_equal(sample.gt_segments.numpy(), rec.gt_segments)
    grid = FeatureGrid(rec.fps, 4, 16)
    np.testing.assert_allclose(
        grid.to_seconds(sample.segments.numpy().astype(np.float64)), rec.segments, atol=1e-4
    )
    # Features hold exactly the steps the grid predicts for the annotated duration.
    frames = grid.duration_to_frames(rec.duration)
    assert sample.feats.shape[1] == grid.expected_length(frames)


def _epochs(dm, epochs):
    """The (videos, cropped lengths) of each batch of ``epochs``, as Lightning iterates: it
    calls the sampler's set_epoch before every epoch."""
    loader = dm.train_dataloader()
    seen = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        seen += [(tuple(b.video_ids), tuple(b.masks.sum(1).tolist())) for b in loader]
    return seen


def test_training_crops_are_deterministic(tiny_npy):
    first = _epochs(_dm(tiny_npy, seed=0), [0, 1])
    assert first == _epochs(_dm(tiny_npy, seed=0), [0, 1])
    assert first != _epochs(_dm(tiny_npy, seed=1), [0, 1])
    half = len(first) // 2
    assert first[:half] != first[half:]  # a new epoch draws new crops / order


@pytest.mark.parametrize("bucket", [False, True])
def test_batches_and_crops_do_not_depend_on_workers_or_where_a_run_starts(tiny_npy, bucket):
    """Order and crops of epoch e are functions of (seed, e): two persistent workers give the
    main process's batches, and a loader that starts at epoch 2 (a resumed run) gives epoch 2's
    batches of an uninterrupted one (docs/decisions.md D101)."""
    inline = _epochs(_dm(tiny_npy, bucket_by_length=bucket), [0, 1, 2])
    workers = _epochs(_dm(tiny_npy, bucket_by_length=bucket, num_workers=2), [0, 1, 2])
    assert workers == inline
    resumed = _epochs(_dm(tiny_npy, bucket_by_length=bucket, num_workers=2), [2])
    assert resumed == inline[-len(resumed) :]


def test_h5_store_with_a_worker(tiny_h5, tiny_npy):
    dm_h5 = _dm(tiny_h5, features=tiny_h5 / "features.h5", num_workers=1)
    dm_npy = _dm(tiny_npy)
    b1 = next(iter(dm_h5.test_dataloader()))  # read in a forked worker
    b2 = next(iter(dm_npy.test_dataloader()))
    assert b1.video_ids == b2.video_ids
    assert torch.equal(b1.feats, b2.feats)


def test_missing_features_error_lists_videos(tiny_npy, tmp_path):
    feats = tmp_path / "features"
    shutil.copytree(tiny_npy / "features", feats)
    for vid in ("synth_testing_00006", "synth_testing_00008"):
        (feats / f"{vid}.npy").unlink()
    dm = _dm(tiny_npy, features=feats)
    with pytest.raises(MissingFeaturesError) as err:
        dm.setup("test")
    msg = str(err.value)
    assert "2 video(s)" in msg and "synth_testing_00006" in msg and "synth_testing_00008" in msg
    assert "skip_missing" in msg


def test_skip_missing_warns_with_count(tiny_npy, tmp_path, caplog):
    feats = tmp_path / "features"
    shutil.copytree(tiny_npy / "features", feats)
    (feats / "synth_testing_00006.npy").unlink()
    dm = _dm(tiny_npy, features=feats, features_skip_missing=True)
    with caplog.at_level(logging.WARNING):
        assert len(dm.videos("test")) == 3
    assert "skipping 1 of 4" in caplog.text and "synth_testing_00006" in caplog.text


def test_config_errors(tiny_npy):
    with pytest.raises(ValueError, match="data.max_seq_len=100 is not a multiple of 8"):
        _dm(tiny_npy, max_seq_len=100)
    with pytest.raises(ValueError, match="pass pyramid=detector.spec"):
        _dm(tiny_npy, pyramid=None).train_dataloader()
    with pytest.raises(ValueError, match="protocol.fusion must be null or"):
        EvaluationProtocol(fusion={"file": "x.json"})
    with pytest.raises(ValueError, match="num_classes=5"):
        _ = _dm(tiny_npy, num_classes=5).class_names
    with pytest.raises(ValueError, match="no videos in subset 'validation'"):
        _dm(tiny_npy, val_split="validation").setup("validate")
    with pytest.raises(ValueError, match="data.train_padding must be one of batch, max_seq_len"):
        _dm(tiny_npy, train_padding="longest")
    with pytest.raises(ValueError, match="train_pad_multiple=12 is not a multiple of .* 8"):
        _dm(tiny_npy, train_pad_multiple=12).train_dataloader()


def test_resize_mode(tiny_npy):
    dm = _dm(tiny_npy, features_resize_to=64, max_seq_len=64)
    b = next(iter(dm.test_dataloader()))
    assert b.feats.shape[-1] == 64 and b.masks.all()
    t = dm.store.length(b.video_ids[0])
    assert b.grids[0].feat_stride == pytest.approx(((t - 1) * 4 + 16) / 64)
    assert b.grids[0].num_frames == b.grids[0].feat_stride


def test_generates_synthetic_when_missing(tmp_path):
    root = tmp_path / "synthetic"
    dm = _dm(root, prepare=SyntheticBenchmark("tiny"))
    dm.prepare_data()
    assert (root / "annotations.json").is_file()
    assert len(dm.videos("train")) == 6


def test_evaluated_videos_need_video_scores(tiny_npy, tmp_path):
    from logo_tal.data.video_scores import MissingScoresError
    from logo_tal.prep.synthetic.layouts import write_synthetic_scores

    dm = _dm(tiny_npy)
    names = dm.class_names
    videos = {v: [names[0]] for v in dm.videos("test")[1:]}
    path = write_synthetic_scores(tmp_path / "s.json", videos, names)
    protocol = EvaluationProtocol(fusion={"scores_file": str(path)})
    fused = _dm(tiny_npy, eval_real_classes=protocol.scores_real_classes)
    assert fused.eval_class_names == names and protocol.fusion.topk == 2
    with pytest.raises(MissingScoresError, match="no video-level scores for 1 of 4"):
        protocol.fusion_step(names, {"test": fused.videos("test")})


def test_drop_last_drops_only_the_last_partial_training_batch(tiny_npy):
    """6 training videos in batches of 4: 4 + 2 by default, 4 with drop_last (AF/TD's loader);
    the evaluation loaders keep every video (docs/decisions.md D98)."""
    seen = {}
    for drop_last in (False, True):
        dm = _dm(tiny_npy, batch_size=4, eval_batch_size=3, drop_last=drop_last)
        dm.prepare_data()
        dm.setup("fit")
        assert len(dm.videos("train")) == 6
        train = [batch.video_ids for batch in dm.train_dataloader()]
        val = [vid for batch in dm.val_dataloader() for vid in batch.video_ids]
        assert val == dm.videos("val")  # never dropped
        seen[drop_last] = train
    assert [len(ids) for ids in seen[False]] == [4, 2]
    assert [len(ids) for ids in seen[True]] == [4]
    assert seen[True][0] == seen[False][0]  # same shuffle, only the remainder goes
    assert _dm(tiny_npy).drop_last is False


def test_train_padding_setting_and_pad_multiple(tiny_npy):
    fixed = _dm(tiny_npy, train_padding="max_seq_len")
    fixed.setup("fit")
    assert {b.feats.shape[-1] for b in fixed.train_dataloader()} == {128}
    coarse = _dm(tiny_npy, train_pad_multiple=32)
    coarse.setup("fit")
    assert {b.feats.shape[-1] for b in coarse.train_dataloader()} <= {32, 64, 96, 128}
    # Evaluation batches keep the pyramid's divisor whatever training uses.
    assert any(b.feats.shape[-1] % 32 for b in coarse.val_dataloader())


def test_bucket_by_length_groups_the_training_batches(tiny_npy):
    """The loader draws from the length-grouping sampler (same videos, once each per epoch,
    neighbours in length together), and its epoch travels in the datamodule's state."""
    dm = _dm(tiny_npy, batch_size=2, bucket_by_length=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    sampler = dm.train_sampler()
    assert loader.sampler is sampler
    lengths = dm.dataset("train").training_lengths()
    assert len(lengths) == 6 and all(64 <= n <= 128 for n in lengths)
    batches = [b.video_ids for b in loader]
    ids = dm.videos("train")
    assert sorted(v for b in batches for v in b) == sorted(ids)
    order = sorted(range(6), key=lambda i: lengths[i])
    expected = {frozenset(ids[i] for i in order[k : k + 2]) for k in (0, 2, 4)}
    assert {frozenset(b) for b in batches} == expected  # one pool: sorted pairs
    sampler.set_epoch(4)
    state = dm.state_dict()
    assert state["sampler"]["epoch"] == 4
    resumed = _dm(tiny_npy, batch_size=2, bucket_by_length=True)
    resumed.load_state_dict(state)
    resumed.setup("fit")
    assert resumed.train_sampler().batches() == sampler.batches()


class _IgnoresSigterm(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_workers_leave_sigterm_to_the_main_process():
    """A requeued SLURM job gets SIGTERM in every process; workers that died of it would fail
    the job instead of letting it be requeued (tests/test_slurm.py has the real requeue)."""
    loader = torch.utils.data.DataLoader(
        _IgnoresSigterm(), num_workers=1, worker_init_fn=init_worker, collate_fn=list
    )
    assert [flag for batch in loader for flag in batch] == [True, True]
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN  # the main process is untouched

"""Training crop / truncation (property-style over many seeds), resize, fit to sequence."""

from __future__ import annotations

import numpy as np
import pytest

from logo_tal.core.grid import FeatureGrid
from logo_tal.data.transforms import fit_to_sequence, random_truncate, resize_features


def _video(rng, t):
    n = int(rng.integers(1, 6))
    starts = rng.uniform(-2, t - 1, n)
    lengths = rng.uniform(0.5, t / 3, n)
    segs = np.stack([starts, starts + lengths], 1).astype(np.float32)
    feats = np.arange(t, dtype=np.float32)[:, None].repeat(3, 1)  # feats[i] == i
    return feats, segs, rng.integers(0, 5, n)


@pytest.mark.parametrize("offset", [0.0, 2.0])
def test_truncation_keeps_valid_segments(offset):
    for seed in range(300):
        rng = np.random.default_rng(seed)
        t = int(rng.integers(20, 400))
        max_len = 128
        feats, segs, labels = _video(rng, t)
        out_f, out_s, out_l, st = random_truncate(
            feats, segs, labels, max_len, rng, 0.5, (0.9, 1.0), offset=offset
        )
        win = out_f.shape[0]
        if out_f is feats:  # crop drew the full length: input returned unchanged
            assert t <= max_len and out_s is segs and st == 0
            continue
        assert win <= max_len if t > max_len else round(0.9 * t) <= win < t
        # The window is a contiguous slice starting at st.
        np.testing.assert_array_equal(out_f[:, 0], np.arange(st, st + win))
        assert len(out_s) == len(out_l)
        if len(out_s):
            assert (out_s[:, 0] >= -offset - 1e-5).all() and (
                out_s[:, 1] <= win + offset + 1e-5
            ).all()
            assert (out_s[:, 1] > out_s[:, 0]).all()
        # Every kept target had >= 0.5 of its length inside the (widened) window, and every
        # such target was kept.
        lo, hi = st - offset, st + win + offset
        inter = np.clip(np.minimum(segs[:, 1], hi) - np.maximum(segs[:, 0], lo), 0, None)
        frac = inter / (segs[:, 1] - segs[:, 0])
        assert len(out_s) == int((frac >= 0.5).sum())
        np.testing.assert_array_equal(out_l, labels[frac >= 0.5])


def test_truncation_prefers_windows_with_actions():
    rng = np.random.default_rng(0)
    feats = np.zeros((2000, 2), np.float32)
    segs = np.array([[1500.0, 1510.0]], np.float32)
    hits = 0
    for _ in range(50):
        _, out, _, _ = random_truncate(feats, segs, np.array([3]), 256, rng)
        hits += len(out) == 1
    assert hits == 50


def test_truncation_is_deterministic_given_the_generator():
    feats, segs, labels = _video(np.random.default_rng(1), 300)
    a = random_truncate(feats, segs, labels, 100, np.random.default_rng(7))
    b = random_truncate(feats, segs, labels, 100, np.random.default_rng(7))
    assert a[3] == b[3]
    np.testing.assert_array_equal(a[1], b[1])


def test_short_video_without_crop_ratio_is_unchanged():
    feats, segs, labels = _video(np.random.default_rng(2), 50)
    out = random_truncate(feats, segs, labels, 128, np.random.default_rng(0), crop_ratio=None)
    assert out[0] is feats and out[3] == 0


def test_resize_effective_grid():
    grid = FeatureGrid(15, 16, 16)
    feats = np.random.default_rng(0).random((100, 4)).astype(np.float32)
    out, g = resize_features(feats, 192, grid)
    assert out.shape == (192, 4)
    stride = (99 * 16 + 16) / 192
    assert g.feat_stride == pytest.approx(stride) and g.num_frames == pytest.approx(stride)
    assert g.offset == pytest.approx(0.5)
    # The resized sequence spans the same time: first and last clip edges map to 0 and the end.
    assert g.to_seconds(-0.5) == pytest.approx(0.0)
    assert g.to_seconds(191.5) == pytest.approx((99 * 16 + 16) / 15)
    same, g2 = resize_features(feats, 100, grid)
    np.testing.assert_allclose(same, feats)


def test_fit_to_sequence_drops_and_clips():
    segs = np.array([[-5, 3], [10, 20], [48, 55], [53, 70], [55, 56]], np.float32)
    out, labels, dropped = fit_to_sequence(segs, np.arange(5), 50, 2.0, 0.5)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    np.testing.assert_allclose(out, [[-2, 3], [10, 20], [48, 52]])
    assert dropped == 2

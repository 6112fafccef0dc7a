"""The clip window matches logo_tal.core.grid: count, starts and centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logo_tal.core.grid import FeatureGrid
from logo_tal.prep.extract.clips import clip_starts, iter_clip_batches, iter_windows, num_clips


@pytest.mark.parametrize("frames", [0, 7, 16, 17, 19, 20, 100, 5094])
@pytest.mark.parametrize(("window", "stride"), [(16, 4), (8, 4), (16, 16), (4, 6), (1, 1)])
def test_windows_are_the_grid(frames, window, stride):
    windows = list(iter_windows(range(frames), window, stride))
    assert len(windows) == num_clips(frames, window, stride)
    assert len(windows) == FeatureGrid(30.0, stride, window).expected_length(frames)
    starts = clip_starts(frames, window, stride)
    assert [w[0] for w in windows] == starts.tolist()
    for w, s in zip(windows, starts, strict=True):
        assert w == list(range(s, s + window))  # feature i sees [i*stride, i*stride+window)


def test_clip_centre_is_the_grid_point():
    # THUMOS I3D example of grid.py: step 0 sits at 0.267 s (frame 8 of 16 at 30 fps).
    grid = FeatureGrid(30.0, 4, 16)
    starts = clip_starts(100, 16, 4)
    centres_s = (starts + 16 / 2) / 30.0
    np.testing.assert_allclose(grid.to_grid(centres_s), np.arange(len(starts)), atol=1e-9)


def test_thumos_length_example():
    assert num_clips(5094, 16, 4) == 1270


def test_clip_batches_shape_and_order():
    frames = [torch.full((3, 2, 2), float(i)) for i in range(20)]
    batches = list(iter_clip_batches(frames, 8, 4, batch_size=3))
    assert [b.shape for b in batches] == [(3, 3, 8, 2, 2), (1, 3, 8, 2, 2)]  # 4 clips
    clips = torch.cat(batches)
    assert clips[:, 0, :, 0, 0].tolist() == [list(range(s, s + 8)) for s in (0, 4, 8, 12)]

"""PyramidSpec: strides, regression ranges (docs/decisions.md D19) and the padding divisor."""

from __future__ import annotations

import pytest

from logo_tal.core.pyramid import PyramidSpec


def test_six_levels_match_actionformer():
    spec = PyramidSpec(6)
    assert spec.strides == [1, 2, 4, 8, 16, 32]
    assert spec.regression_ranges == [
        (0.0, 4.0),
        (4.0, 8.0),
        (8.0, 16.0),
        (16.0, 32.0),
        (32.0, 64.0),
        (64.0, 10000.0),
    ]
    assert spec.divisor == 32


@pytest.mark.parametrize("num_levels", [3, 4, 5, 6, 7])
def test_ranges_tile_the_axis(num_levels):
    spec = PyramidSpec(num_levels)
    ranges = spec.regression_ranges
    assert len(ranges) == len(spec.strides) == num_levels
    assert ranges[0][0] == 0.0 and ranges[-1][1] == 10000.0
    for (_, hi), (lo, _) in zip(ranges[:-1], ranges[1:], strict=True):
        assert hi == lo
    if num_levels == 7:
        assert ranges[-2:] == [(64.0, 128.0), (128.0, 10000.0)]


def test_bad_lengths_and_levels():
    spec = PyramidSpec(3)
    spec.check_length(8)
    with pytest.raises(ValueError, match="multiple of 4"):
        spec.check_length(10)
    with pytest.raises(ValueError):
        PyramidSpec(0)


def test_check_length_names_the_key_and_the_nearest_valid_lengths():
    spec = PyramidSpec(4)
    spec.check_length(128, "data.max_seq_len")
    with pytest.raises(
        ValueError, match=r"data.max_seq_len=100 is not a multiple of 8 .* 96 or 104"
    ):
        spec.check_length(100, "data.max_seq_len")
    with pytest.raises(ValueError, match="use 8$"):
        spec.check_length(5)

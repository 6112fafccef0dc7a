"""Worked examples of the seconds <-> grid conversion (docs/decisions.md D12, D13)."""

from __future__ import annotations

import numpy as np
import pytest

from logo_tal.core.grid import FeatureGrid

THUMOS = FeatureGrid(fps=30.0, feat_stride=4, num_frames=16)
ANET = FeatureGrid(fps=15.0, feat_stride=16, num_frames=16)


def test_thumos_worked_example():
    # Feature 0 covers frames 0..15, centred at frame 8 = 0.2667 s; time 0 is 2 steps earlier.
    assert THUMOS.offset == 2.0
    assert float(THUMOS.to_grid(0.0)) == pytest.approx(-2.0)
    assert float(THUMOS.to_seconds(0.0)) == pytest.approx(8 / 30)
    assert float(THUMOS.to_seconds(0.0)) == pytest.approx(0.2667, abs=1e-4)
    assert float(THUMOS.to_grid(10.0)) == pytest.approx((300 - 8) / 4)  # 73.0
    assert THUMOS.seconds_per_step == pytest.approx(4 / 30)


def test_anet_worked_example():
    # TSP: 16-frame non-overlapping clips at 15 fps; clip i centred at (16 i + 8) / 15 s.
    assert ANET.offset == 0.5
    assert float(ANET.to_grid(0.0)) == pytest.approx(-0.5)
    assert float(ANET.to_seconds(0.0)) == pytest.approx(8 / 15)
    assert float(ANET.to_seconds(10.0)) == pytest.approx(168 / 15)
    assert ANET.seconds_per_step == pytest.approx(16 / 15)


def test_expected_length():
    # ActionFormer issue #5: 5094 frames, window 16, stride 4 -> (5094 - 16) // 4 + 1.
    assert THUMOS.expected_length(5094) == 1270
    assert THUMOS.expected_length(16) == 1
    assert THUMOS.expected_length(15) == 0
    assert ANET.expected_length(15 * 120) == (1800 - 16) // 16 + 1
    assert THUMOS.duration_to_frames(169.8) == 5094


@pytest.mark.parametrize("grid", [THUMOS, ANET, FeatureGrid(29.97, 4, 16), FeatureGrid(25, 8, 8)])
def test_round_trip(grid):
    t = np.linspace(0.0, 500.0, 1001)
    np.testing.assert_allclose(grid.to_seconds(grid.to_grid(t)), t, atol=1e-9)
    g = np.linspace(-3.0, 900.0, 777)
    np.testing.assert_allclose(grid.to_grid(grid.to_seconds(g)), g, atol=1e-9)


def test_clamp_to_duration():
    g = np.array([-5.0, -2.0, 0.0, 73.0, 1e6])
    t = THUMOS.to_seconds(g, duration=100.0)
    assert t[0] == 0.0 and t[1] == 0.0
    assert t[2] == pytest.approx(8 / 30)
    assert t[3] == pytest.approx(10.0)
    assert t[4] == 100.0
    unclamped = THUMOS.to_seconds(g)
    assert unclamped[0] < 0 and unclamped[-1] > 100.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_rejects_bad_settings(bad):
    with pytest.raises(ValueError, match="fps"):
        FeatureGrid(bad, 4, 16)

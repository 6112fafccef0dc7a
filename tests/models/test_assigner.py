"""PointAssigner against hand-made cases (docs/decisions.md D36)."""

from __future__ import annotations

import pytest
import torch

from logo_tal.models.assigner import PointAssigner
from logo_tal.models.outputs import DetectorOutput


def make_flat(length: int, num_levels: int, num_classes: int, valid: int | None = None):
    """Two-level-style flat output of one video; only shapes, points and masks matter."""
    strides = [2**level for level in range(num_levels)]
    logits, offsets, masks = [], [], []
    for s in strides:
        t_l = length // s
        logits.append(torch.zeros(1, t_l, num_classes))
        offsets.append(torch.zeros(1, t_l, 1, 2))
        mask = torch.ones(1, t_l, dtype=torch.bool)
        if valid is not None:
            mask[:, (valid + s - 1) // s :] = False
        masks.append(mask)
    return DetectorOutput(logits, offsets, masks, strides).flat()


def assign(flat, segs, labels, num_levels=2, num_classes=3):
    assigner = PointAssigner(num_levels=num_levels, num_classes=num_classes)
    return assigner(
        flat, [torch.tensor(segs, dtype=torch.float32)], [torch.tensor(labels, dtype=torch.long)]
    )


def positives(targets, flat):
    idx = targets.pos[0].nonzero().squeeze(1)
    return [(int(flat.point_strides[i]), float(flat.points[i])) for i in idx]


def test_multi_hot_tie_identical_bounds():
    # Two instances with identical bounds and different labels (THUMOS CliffDiving + Diving).
    flat = make_flat(8, 2, 3)
    targets = assign(flat, [[2.0, 5.0], [2.0, 5.0]], [0, 1])
    # Centre region [max(3.5-1.5, 2), min(3.5+1.5, 5)] = [2, 5], strict: t = 3, 4 on level 0;
    # level 1 (t = 4: max distance 2) fails its range [4, 10000].
    assert positives(targets, flat) == [(1, 3.0), (1, 4.0)]
    for i in (3, 4):
        assert targets.cls[0, i].tolist() == [1.0, 1.0, 0.0]
    assert targets.reg[0, 3].tolist() == [1.0, 2.0]
    assert targets.reg[0, 4].tolist() == [2.0, 1.0]
    assert targets.cls.shape == (1, 12, 3) and targets.reg.shape == (1, 12, 2)


def test_shortest_gt_wins_and_near_equal_lengths_share():
    flat = make_flat(8, 2, 3)
    targets = assign(flat, [[0.0, 6.0], [2.0, 5.0]], [0, 1])
    # t = 3 is inside both; [2, 5] is shorter -> label 1 only, regression to it.
    assert targets.cls[0, 3].tolist() == [0.0, 1.0, 0.0]
    assert targets.reg[0, 3].tolist() == [1.0, 2.0]
    # t = 2 only matches [0, 6].
    assert targets.cls[0, 2].tolist() == [1.0, 0.0, 0.0]
    assert targets.reg[0, 2].tolist() == [2.0, 4.0]
    # Lengths within 1e-3 count as a tie (multi-hot); the first GT gives the regression target.
    targets = assign(flat, [[2.0, 5.0], [1.9995, 5.0]], [2, 0])
    assert targets.cls[0, 3].tolist() == [1.0, 0.0, 1.0]
    assert targets.reg[0, 3].tolist() == pytest.approx([1.0, 2.0])


def test_range_filter_moves_long_gt_to_coarser_level():
    flat = make_flat(16, 2, 3)
    targets = assign(flat, [[0.0, 12.0]], [2])
    # Level 0 region (4.5, 7.5): max distance >= 5 > 4 -> rejected. Level 1 (stride 2) region
    # (3, 9): t = 4, 6, 8 with max distance 8, 6, 8 in [4, 10000].
    assert positives(targets, flat) == [(2, 4.0), (2, 6.0), (2, 8.0)]
    i = 16 + 2  # level-1 point t = 4
    assert targets.reg[0, i].tolist() == [2.0, 4.0]  # (4, 8) / stride 2
    assert targets.cls[0, i].tolist() == [0.0, 0.0, 1.0]


def test_range_bounds_inclusive():
    flat = make_flat(16, 2, 3)
    # GT [0, 6]: level-0 point t = 4 has distances (4, 2), max 4 = level 0's inclusive upper
    # bound; level-1 point t = 2 has (2, 4), max 4 = level 1's inclusive lower bound.
    targets = assign(flat, [[0.0, 6.0]], [0])
    pos = positives(targets, flat)
    assert pos == [(1, 2.0), (1, 3.0), (1, 4.0), (2, 2.0), (2, 4.0)]


def test_centre_region_is_strict():
    flat = make_flat(8, 2, 3)
    # Region [max(2.5-1.5, 1), min(2.5+1.5, 4)] = [1, 4]; the points on its ends are outside.
    targets = assign(flat, [[1.0, 4.0]], [0])
    assert positives(targets, flat) == [(1, 2.0), (1, 3.0)]
    # Radius-limited region: GT [0, 8] level 0 region (2.5, 5.5) -> t = 3, 4, 5 would be
    # inside, but max distance >= 4 fails except... t = 4 has (4, 4) -> inclusive bound.
    targets = assign(flat, [[0.0, 8.0]], [0])
    assert [p for p in positives(targets, flat) if p[0] == 1] == [(1, 4.0)]


def test_padded_points_never_positive():
    flat = make_flat(16, 2, 3, valid=6)
    targets = assign(flat, [[2.0, 5.0], [6.0, 9.0]], [0, 1])
    assert not targets.pos[~flat.masks].any()
    assert targets.cls[~flat.masks].abs().sum() == 0
    assert targets.reg[~flat.masks].abs().sum() == 0
    assert positives(targets, flat) == [(1, 3.0), (1, 4.0)]


def test_zero_gt_video_and_batch():
    flat = make_flat(8, 2, 3)
    flat.masks = flat.masks.expand(2, -1)
    flat.cls_logits = flat.cls_logits.expand(2, -1, -1)
    assigner = PointAssigner(num_levels=2, num_classes=3)
    targets = assigner(
        flat,
        [torch.zeros(0, 2), torch.tensor([[2.0, 5.0]])],
        [torch.zeros(0, dtype=torch.long), torch.tensor([1])],
    )
    assert targets.cls.shape == (2, 12, 3)
    assert not targets.pos[0].any() and targets.cls[0].sum() == 0
    assert targets.pos[1].sum() == 2


def test_bad_inputs():
    flat = make_flat(8, 2, 3)
    with pytest.raises(ValueError, match="out of range"):
        assign(flat, [[2.0, 5.0]], [3])
    with pytest.raises(ValueError, match="levels"):
        PointAssigner(3, 3)(flat, [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    with pytest.raises(ValueError, match="batch"):
        PointAssigner(2, 3)(flat, [], [])


def test_six_level_defaults_vectorised_matches_loop():
    # Random GT on the default pyramid: compare with a per-point Python transcription of 3.1.
    torch.manual_seed(0)
    flat = make_flat(256, 6, 4)
    starts = torch.rand(7) * 200
    segs = torch.stack((starts, starts + torch.rand(7) * 60 + 0.5), 1)
    labels = torch.randint(0, 4, (7,))
    targets = PointAssigner(6, 4)(flat, [segs], [labels])
    ranges = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]
    level_of = torch.repeat_interleave(torch.arange(6), torch.tensor(flat.level_sizes))
    for i in range(flat.points.shape[0]):
        t, s = float(flat.points[i]), float(flat.point_strides[i])
        lo, hi = ranges[int(level_of[i])]
        cands = []
        for j, (a, b) in enumerate(segs.tolist()):
            c = (a + b) / 2
            r0, r1 = max(c - 1.5 * s, a), min(c + 1.5 * s, b)
            reach = max(t - a, b - t)
            if t - r0 > 0 and r1 - t > 0 and lo <= reach <= hi:
                cands.append((b - a, j))
        if not cands:
            assert not targets.pos[0, i]
            continue
        best = min(cands)[0]
        first = min(j for ln, j in cands if ln == best)
        want = torch.zeros(4)
        for ln, j in cands:
            if ln <= best + 1e-3:
                want[labels[j]] = 1
        assert targets.cls[0, i].tolist() == want.tolist()
        a, b = segs[first].tolist()
        assert targets.reg[0, i].tolist() == pytest.approx([(t - a) / s, (b - t) / s], rel=1e-5)

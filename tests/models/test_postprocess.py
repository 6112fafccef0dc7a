"""Post-processing: Soft-NMS vs a brute force written from the reference's prose, decoding,
grid -> seconds, multiclass vs class-agnostic, voting, fusion, caps (docs/decisions.md D48-D52)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from logo_tal.core.detections import Detections
from logo_tal.core.grid import FeatureGrid
from logo_tal.models.outputs import DetectorOutput
from logo_tal.models.postprocess import PostProcessor, nms, soft_nms


def brute_soft_nms(segs, scores, sigma, min_score, max_num, swap_with_last=True):
    """One selection at a time, float32 arithmetic, as nms_cpu.cpp is described (4.3): argmax
    over positions i..n-1 (first position wins), swap it to i, decay every later position by
    exp(-IoU^2 / sigma) with lengths x2 - x1 + 1e-6, remove a decayed-below-min_score
    candidate by swapping in the last one and shrinking n. With swap_with_last=False, ties are
    broken by input index instead (what soft_nms documents)."""
    f = np.float32
    x1, x2 = [f(v) for v in segs[:, 0]], [f(v) for v in segs[:, 1]]
    sc, idx = [f(v) for v in scores], list(range(len(scores)))
    n, keep, kept = len(sc), [], []
    i = 0
    while i < n:
        m = i
        for p in range(i + 1, n):
            if sc[p] > sc[m] or (not swap_with_last and sc[p] == sc[m] and idx[p] < idx[m]):
                m = p
        for arr in (x1, x2, sc, idx):
            arr[i], arr[m] = arr[m], arr[i]
        keep.append(idx[i])
        kept.append(float(sc[i]))
        area = x2[i] - x1[i] + f(1e-6)
        p = i + 1
        while p < n:
            inter = max(f(0), min(x2[i], x2[p]) - max(x1[i], x1[p]))
            iou = inter / (area + (x2[p] - x1[p] + f(1e-6)) - inter)
            sc[p] = sc[p] * f(np.exp(-iou * iou / sigma))
            if sc[p] < min_score:
                if swap_with_last:
                    for arr in (x1, x2, sc, idx):
                        arr[p] = arr[n - 1]
                else:
                    for arr in (x1, x2, sc, idx):
                        del arr[p]
                n -= 1
                continue
            p += 1
        i += 1
    return keep[:max_num], kept[:max_num]


def brute_nms(segs, scores, thr, max_num):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        ok = True
        for j in keep:
            inter = max(0.0, min(segs[i, 1], segs[j, 1]) - max(segs[i, 0], segs[j, 0]))
            union = (segs[i, 1] - segs[i, 0] + 1e-6) + (segs[j, 1] - segs[j, 0] + 1e-6) - inter
            if inter / union >= thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep[:max_num]


def random_segments(rng, n, span=100.0):
    start = rng.uniform(0, span, n)
    segs = np.stack([start, start + rng.exponential(span / 20, n)], 1).astype(np.float32)
    return segs, rng.uniform(5e-4, 1.0, n).astype(np.float32)


@pytest.mark.parametrize("block", [2, 5, 32])
def test_soft_nms_matches_brute_force(block):
    rng = np.random.default_rng(block)
    for trial in range(12):
        n = int(rng.integers(1, 160))
        segs, scores = random_segments(rng, n)
        sigma = [0.5, 0.7, 0.3][trial % 3]
        max_num = [2000, 20, 5][trial % 3]
        min_score = [1e-3, 0.05][trial % 2]
        keep, new = soft_nms(
            torch.from_numpy(segs),
            torch.from_numpy(scores),
            sigma=sigma,
            min_score=min_score,
            max_num=max_num,
            block=block,
        )
        want_keep, want_scores = brute_soft_nms(segs, scores, sigma, min_score, max_num)
        assert keep.tolist() == want_keep
        np.testing.assert_allclose(new.numpy(), want_scores, atol=1e-6, rtol=0)


def test_soft_nms_ties_first_index_wins():
    rng = np.random.default_rng(1)
    for _ in range(10):
        n = int(rng.integers(2, 60))
        segs, _ = random_segments(rng, n, span=30.0)
        scores = rng.choice(np.float32([0.2, 0.5, 0.9]), n)
        segs[: n // 3] = segs[0]  # duplicated segments with tied scores
        for block in (1, 4, 32):
            keep, new = soft_nms(
                torch.from_numpy(segs), torch.from_numpy(scores), 0.5, 0.1, 2000, block=block
            )
            want_keep, want_scores = brute_soft_nms(segs, scores, 0.5, 0.1, 2000, False)
            assert keep.tolist() == want_keep
            np.testing.assert_allclose(new.numpy(), want_scores, atol=1e-6, rtol=0)


def test_soft_nms_edge_cases():
    keep, new = soft_nms(torch.zeros(0, 2), torch.zeros(0))
    assert keep.numel() == 0 and new.numel() == 0
    # A lone sub-threshold candidate is still the first selection (as in the reference).
    keep, new = soft_nms(torch.tensor([[0.0, 1.0]]), torch.tensor([1e-4]))
    assert keep.tolist() == [0]
    # Identical segments: the second decays by exp(-1 / sigma) (IoU 1).
    keep, new = soft_nms(torch.tensor([[0.0, 2.0], [0.0, 2.0]]), torch.tensor([0.9, 0.8]))
    assert keep.tolist() == [0, 1]
    assert new.tolist() == pytest.approx([0.9, 0.8 * math.exp(-2.0)], rel=1e-5)


def test_hard_nms_matches_brute_force():
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(1, 150))
        segs, scores = random_segments(rng, n)
        thr = [0.1, 0.5, 0.7][trial % 3]
        keep, kept_scores = nms(
            torch.from_numpy(segs), torch.from_numpy(scores), thr, 30, block=[1, 8, 32][trial % 3]
        )
        assert keep.tolist() == brute_nms(segs, scores, thr, 30)
        assert kept_scores.tolist() == scores[keep.numpy()].tolist()


def detector_output(levels, class_aware=True):
    """levels: list of (stride, logits (T_l, C), offsets (T_l, K, 2), mask (T_l,))."""
    return DetectorOutput(
        cls_logits=[lv[1][None] for lv in levels],
        offsets=[lv[2][None] for lv in levels],
        masks=[lv[3][None] for lv in levels],
        strides=[lv[0] for lv in levels],
    )


NEG = -20.0  # sigmoid ~ 2e-9: below pre_nms_thresh
GRID = FeatureGrid(fps=10.0, feat_stride=2.0, num_frames=4.0)  # t = (2 g + 2) / 10


def two_level_output():
    c = 2
    l0 = torch.full((8, c), NEG)
    o0 = torch.zeros(8, c, 2)
    l0[3, 1] = 2.0  # point t = 3, class 1
    o0[3, 1] = torch.tensor([1.0, 2.0])  # class-1 offsets: segment [2, 5]
    o0[3, 0] = torch.tensor([3.0, 3.0])  # other class's offsets must be ignored
    l0[7, 0] = 5.0  # padded point: must never appear
    m0 = torch.ones(8, dtype=torch.bool)
    m0[7] = False
    l1 = torch.full((4, c), NEG)
    o1 = torch.zeros(4, c, 2)
    l1[0, 0] = 0.0  # point t = 0 (stride 2), offsets (1.5, 2) -> [-3, 4] -> clamp at 0 s
    o1[0, 0] = torch.tensor([1.5, 2.0])
    l1[3, 0] = 1.0  # point t = 6, offsets (0.01, 0.01) -> length 0.04 <= 0.05: dropped
    o1[3, 0] = torch.tensor([0.01, 0.01])
    m1 = torch.ones(4, dtype=torch.bool)
    m1[3] = True
    return detector_output([(1, l0, o0, m0), (2, l1, o1, m1)])


def test_decode_hand_case_to_seconds():
    out = two_level_output()
    dets = PostProcessor(nms="none")(out, [GRID], [1.0])[0]
    assert isinstance(dets, Detections)
    # Sorted by score: sigmoid(2) [class 1, grid [2, 5]], sigmoid(0) [class 0, grid [-3, 4]].
    assert dets.labels.tolist() == [1, 0]
    assert dets.scores.tolist() == pytest.approx([1 / (1 + math.exp(-2)), 0.5], rel=1e-6)
    # grid 2 -> 0.6 s, 5 -> 1.2 s clamped to the 1.0 s duration; -3 -> -0.4 -> 0; 4 -> 1.0.
    np.testing.assert_allclose(dets.segments.numpy(), [[0.6, 1.0], [0.0, 1.0]], atol=1e-6)
    # Without the clamp (long duration): the raw conversion.
    dets = PostProcessor(nms="none")(out, [GRID], [100.0])[0]
    np.testing.assert_allclose(dets.segments.numpy(), [[0.6, 1.2], [0.0, 1.0]], atol=1e-6)


def test_decode_class_agnostic_offsets_and_batch():
    out = two_level_output()
    out.offsets = [o[:, :, :1] for o in out.offsets]  # K = 1: every class shares channel 0
    out2 = DetectorOutput(
        cls_logits=[torch.cat([x, x]) for x in out.cls_logits],
        offsets=[torch.cat([x, x]) for x in out.offsets],
        masks=[torch.cat([x, x]) for x in out.masks],
        strides=out.strides,
    )
    res = PostProcessor(nms="none")(out2, [GRID, GRID], [100.0, 0.9])
    assert len(res) == 2
    # point t = 3 now uses channel 0's (3, 3): grid [0, 6] -> [0.2, 1.4] s
    assert res[0].segments[0].tolist() == pytest.approx([0.2, 1.4], abs=1e-6)
    assert res[1].segments[0].tolist() == pytest.approx([0.2, 0.9], abs=1e-6)
    with pytest.raises(ValueError, match="grids"):
        PostProcessor()(out2, [GRID], [1.0])


def single_level(segments_scores_labels, num_classes, length=16):
    """Exact candidates: one point per candidate at level 0 with stride 1."""
    logits = torch.full((length, num_classes), NEG)
    offsets = torch.zeros(length, num_classes, 2)
    for t, (left, right, score, label) in enumerate(segments_scores_labels):
        logits[t, label] = math.log(score / (1 - score))
        offsets[t, label] = torch.tensor([left, right])
    return detector_output([(1, logits, offsets, torch.ones(length, dtype=torch.bool))])


UNIT = FeatureGrid(fps=1.0, feat_stride=1.0, num_frames=1e-9)  # seconds == grid (+ ~0)


def test_multiclass_vs_class_agnostic():
    # Points 0 and 1 predict the same segment [0, 4] in different classes.
    out = single_level([(0.0, 4.0, 0.9, 0), (1.0, 3.0, 0.8, 1)], num_classes=2)
    multi = PostProcessor(multiclass=True)(out, [UNIT], [100.0])[0]
    assert multi.scores.tolist() == pytest.approx([0.9, 0.8], rel=1e-5)
    agn = PostProcessor(multiclass=False)(out, [UNIT], [100.0])[0]
    # IoU = 4 / 4 (lengths + 1e-6) -> decay exp(-1 / 0.5)
    assert agn.scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-2.0)], rel=1e-4)
    assert agn.labels.tolist() == [0, 1]
    hard = PostProcessor(nms="hard", multiclass=False, iou_threshold=0.5)(out, [UNIT], [100.0])
    assert hard[0].scores.tolist() == pytest.approx([0.9], rel=1e-5)


def test_multiclass_matches_per_class_brute_force_and_cap():
    rng = np.random.default_rng(7)
    c, t = 3, 64
    logits = torch.from_numpy(rng.normal(-2.0, 2.0, (t, c)).astype(np.float32))
    offsets = torch.from_numpy(rng.uniform(0.2, 6.0, (t, c, 2)).astype(np.float32))
    out = detector_output([(1, logits, offsets, torch.ones(t, dtype=torch.bool))])
    for cap in (2000, 25):
        post = PostProcessor(max_seg_num=cap, duration_thresh=0.0)
        dets = post(out, [UNIT], [1e6])[0]
        segs, scores, labels = post.candidates(out, 0)
        want = []
        for k in range(c):
            idx = (labels == k).nonzero().squeeze(1)
            keep, new = brute_soft_nms(segs[idx].numpy(), scores[idx].numpy(), 0.5, 1e-3, cap)
            want += [(s, k) for s in new]
        want.sort(key=lambda x: -x[0])
        want = want[:cap]
        assert len(dets) == len(want) <= cap
        np.testing.assert_allclose(dets.scores.numpy(), [w[0] for w in want], atol=1e-6)
        assert sorted(dets.labels.tolist()) == sorted(w[1] for w in want)


def test_voting_uses_score_weights():
    # Kept: [0, 4] (0.9). Neighbours with IoU >= 0.5: [0, 3] (0.6, IoU 0.75).
    # [10, 12] is far away and kept on its own.
    out = single_level([(0.0, 4.0, 0.9, 0), (1.0, 2.0, 0.6, 0), (0.0, 2.0, 0.5, 0)], num_classes=1)
    # points: t=0 -> [0, 4]; t=1 -> [0, 3]; t=2 -> [2, 4] (IoU with [0, 4] = 0.5)
    post = PostProcessor(multiclass=False, voting_thresh=0.5, sigma=0.5)
    dets = post(out, [UNIT], [100.0])[0]
    top = dets.segments[0].tolist()
    w = torch.tensor([0.9, 0.6, 0.5])
    segs = torch.tensor([[0.0, 4.0], [0.0, 3.0], [2.0, 4.0]])
    want = ((w[:, None] * segs).sum(0) / w.sum()).tolist()
    assert top == pytest.approx(want, abs=1e-4)
    assert dets.scores[0].item() == pytest.approx(0.9, rel=1e-5)  # voting keeps scores
    plain = PostProcessor(multiclass=False)(out, [UNIT], [100.0])[0]
    assert plain.segments[0].tolist() == pytest.approx([0.0, 4.0], abs=1e-4)


def test_max_seg_num_and_sorting():
    rng = np.random.default_rng(11)
    t = 128
    logits = torch.from_numpy(rng.normal(0.0, 2.0, (t, 1)).astype(np.float32))
    offsets = torch.from_numpy(rng.uniform(0.2, 1.0, (t, 1, 2)).astype(np.float32))
    out = detector_output([(1, logits, offsets, torch.ones(t, dtype=torch.bool))])
    for nms_kind in ("soft", "hard", "none"):
        dets = PostProcessor(nms=nms_kind, max_seg_num=10, multiclass=False)(out, [UNIT], [1e6])
        assert len(dets[0]) == 10
        assert (dets[0].scores[:-1] >= dets[0].scores[1:]).all()
    # pre_nms_topk applies per level
    post = PostProcessor(nms="none", pre_nms_topk=7, max_seg_num=100)
    assert post.candidates(out, 0)[1].numel() == 7
    with pytest.raises(ValueError):
        PostProcessor(nms="linear")


def test_equal_scores_tie_goes_to_the_first_in_level_time_class_order():
    # Tie rule (issue 9): candidates are stably sorted by score before NMS (AF/TD sort their
    # candidate list; torch.sort(stable=True)), so between equal scores the one that comes first
    # in the decoder's (level, time, class) order is selected first and keeps its score; the
    # other is decayed by it. Same segment [2, 6] three times, all with score 0.7:
    # level 1 / t = 2 (stride 2, offsets 1) and level 0 / t = 4, classes 0 and 1.
    c = 2
    l0, o0 = torch.full((8, c), NEG), torch.zeros(8, c, 2)
    l1, o1 = torch.full((4, c), NEG), torch.zeros(4, c, 2)
    logit = math.log(0.7 / 0.3)
    l0[4, 1] = l0[4, 0] = logit
    o0[4, 1] = o0[4, 0] = torch.tensor([2.0, 2.0])
    l1[2, 0] = logit
    o1[2, 0] = torch.tensor([1.0, 1.0])
    ones = torch.ones
    out = detector_output(
        [(1, l0, o0, ones(8, dtype=torch.bool)), (2, l1, o1, ones(4, dtype=torch.bool))]
    )
    segs, scores, labels = PostProcessor().candidates(out, 0)
    assert scores[0] == scores[1] == scores[2]
    assert labels.tolist() == [0, 1, 0]  # level 0 (t = 4: class 0, class 1), then level 1
    np.testing.assert_allclose(segs.numpy(), [[2, 6], [2, 6], [2, 6]])
    decay = math.exp(-1 / 0.5)  # IoU 1
    # Class-agnostic: the level-0 class-0 candidate wins, the other two decay in order.
    dets = PostProcessor(multiclass=False)(out, [UNIT], [100.0])[0]
    assert dets.labels.tolist() == [0, 1, 0]
    assert dets.scores.tolist() == pytest.approx([0.7, 0.7 * decay, 0.7 * decay**2], rel=1e-5)
    # Per class: class 0's level-0 candidate beats its level-1 twin; class 1 is alone.
    dets = PostProcessor(multiclass=True)(out, [UNIT], [100.0])[0]
    assert dets.scores.tolist() == pytest.approx([0.7, 0.7, 0.7 * decay], rel=1e-5)
    assert dets.labels.tolist() == [0, 1, 0]
    # The truncation tie: with room for one, the first in (level, time, class) order stays.
    for nms_kind in ("soft", "hard", "none"):
        one = PostProcessor(nms=nms_kind, max_seg_num=1)(out, [UNIT], [100.0])[0]
        assert one.labels.tolist() == [0] and one.scores.tolist() == pytest.approx([0.7])
    # Same score at different times in one class, not overlapping: earlier time first.
    out = single_level([(0.0, 1.0, 0.6, 0), (0.0, 1.0, 0.6, 0)], num_classes=1)
    one = PostProcessor(max_seg_num=1)(out, [UNIT], [100.0])[0]
    np.testing.assert_allclose(one.segments.numpy(), [[0.0, 1.0]], atol=1e-6)


def test_per_level_topk_ties_keep_the_earliest_and_index_order():
    # 6 equal scores and pre_nms_topk 4: the first four (time, class) indices stay, in order.
    t, c = 3, 2
    logits = torch.zeros(t, c)
    offsets = torch.ones(t, c, 2)
    out = detector_output([(1, logits, offsets, torch.ones(t, dtype=torch.bool))])
    segs, scores, labels = PostProcessor(pre_nms_topk=4).candidates(out, 0)
    assert labels.tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(segs[:, 0].numpy(), [-1, -1, 0, 0])


def test_truncation_by_max_seg_num_keeps_the_top_scored():
    rng = np.random.default_rng(5)
    t, c = 200, 5
    logits = torch.from_numpy(rng.normal(-1.0, 2.0, (t, c)).astype(np.float32))
    offsets = torch.from_numpy(rng.uniform(0.2, 8.0, (t, c, 2)).astype(np.float32))
    out = detector_output([(1, logits, offsets, torch.ones(t, dtype=torch.bool))])
    for multiclass in (True, False):
        for nms_kind in ("soft", "hard", "none"):
            full = PostProcessor(nms=nms_kind, multiclass=multiclass)(out, [UNIT], [1e6])[0]
            assert len(full) > 30
            for cap in (1, 7, 30):
                post = PostProcessor(nms=nms_kind, multiclass=multiclass, max_seg_num=cap)
                dets = post(out, [UNIT], [1e6])[0]
                assert len(dets) == cap
                # The cap keeps exactly the cap best of the uncapped result, in order.
                assert torch.equal(dets.scores, full.scores[:cap])
                assert torch.equal(dets.labels, full.labels[:cap])
                assert torch.equal(dets.segments, full.segments[:cap])

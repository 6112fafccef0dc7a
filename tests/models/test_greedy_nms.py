"""The numpy round engine behind Soft-NMS vs a one-selection-at-a-time greedy, over many groups,
with ties, caps and hard NMS; and the torch thread-count guard of post-processing (issue 10)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from logo_tal.models.greedy_nms import greedy_nms, order_key
from logo_tal.models.postprocess import PostProcessor, intra_op_threads


def greedy_one_at_a_time(x1, x2, scores, groups, sigma, min_score, max_num, hard_thr=None):
    """Per group: select the highest current score (first input index on ties), decay the rest
    by exp(-IoU^2 / sigma) in float32 (hard: drop IoU >= thr), drop those below min_score after
    the first selection. Returns {input index: score at selection}."""
    f = np.float32
    out = {}
    for g in np.unique(groups):
        idx = [int(i) for i in np.flatnonzero(groups == g)]
        sc = {i: f(scores[i]) for i in idx}
        alive = list(idx)
        kept = 0
        while alive and kept < max_num:
            best = max(alive, key=lambda i: (sc[i], -i))
            out[best] = float(sc[best])
            kept += 1
            alive.remove(best)
            for p in list(alive):
                inter = max(f(0), min(f(x2[best]), f(x2[p])) - max(f(x1[best]), f(x1[p])))
                la = f(x2[best]) - f(x1[best]) + f(1e-6)
                lb = f(x2[p]) - f(x1[p]) + f(1e-6)
                iou = inter / (la + lb - inter)
                if hard_thr is not None:
                    if iou >= hard_thr:
                        alive.remove(p)
                        continue
                else:
                    sc[p] = sc[p] * f(np.exp(-iou * iou / sigma))
                if sc[p] < min_score:
                    alive.remove(p)
    return out


def random_case(rng, n, num_groups, ties=False):
    start = rng.uniform(0, 60, n)
    length = rng.exponential(4.0, n) * rng.choice([0.1, 1.0, 10.0], n)
    x1 = start.astype(np.float32)
    x2 = (start + length).astype(np.float32)
    if ties:
        scores = rng.choice(np.float32([0.1, 0.3, 0.6, 0.9]), n)
        dup = rng.integers(0, n, n // 4)
        x1[dup], x2[dup] = x1[0], x2[0]
    else:
        scores = rng.uniform(5e-4, 1.0, n).astype(np.float32)
    groups = rng.integers(0, num_groups, n)
    return x1, x2, scores, groups


def check(picked, want):
    got = {int(i): float(picked[i]) for i in np.flatnonzero(picked > -np.inf)}
    assert sorted(got) == sorted(want)
    for i, s in want.items():
        assert got[i] == pytest.approx(s, abs=1e-6)


@pytest.mark.parametrize("block", [1, 3, 16, 128])
@pytest.mark.parametrize("ties", [False, True])
def test_groups_match_one_at_a_time(block, ties):
    rng = np.random.default_rng(block + 100 * ties)
    for trial in range(8):
        n = int(rng.integers(1, 250))
        x1, x2, scores, groups = random_case(rng, n, int(rng.integers(1, 6)), ties)
        sigma, min_score, max_num = [(0.5, 1e-3, 2000), (0.7, 0.05, 7), (0.3, 1e-3, 1)][trial % 3]
        picked = greedy_nms(
            x1, x2, scores, groups, sigma=sigma, min_score=min_score, max_num=max_num, block=block
        )
        check(picked, greedy_one_at_a_time(x1, x2, scores, groups, sigma, min_score, max_num))


@pytest.mark.parametrize("block", [1, 5, 64])
def test_hard_nms_groups_match_one_at_a_time(block):
    rng = np.random.default_rng(block)
    for trial in range(8):
        n = int(rng.integers(1, 200))
        x1, x2, scores, groups = random_case(rng, n, 3, ties=bool(trial % 2))
        thr = [0.1, 0.5, 0.0][trial % 3]
        picked = greedy_nms(
            x1, x2, scores, groups, sigma=1.0, min_score=0.0, max_num=15, iou_threshold=thr,
            block=block,
        )  # fmt: skip
        check(picked, greedy_one_at_a_time(x1, x2, scores, groups, 1.0, 0.0, 15, hard_thr=thr))


@pytest.mark.parametrize("total_max", [1, 10, 50])
def test_total_max_keeps_the_best_selections_of_all_groups(total_max):
    rng = np.random.default_rng(total_max)
    for _ in range(6):
        x1, x2, scores, groups = random_case(rng, 300, 4)
        want = greedy_one_at_a_time(x1, x2, scores, groups, 0.5, 1e-3, 2000)
        picked = greedy_nms(
            x1, x2, scores, groups, sigma=0.5, min_score=1e-3, max_num=2000, total_max=total_max
        )
        # Rank (score desc, index asc) and compare the top total_max; extra ones may exist.
        rank = sorted(want, key=lambda i: (-want[i], i))[:total_max]
        got = np.flatnonzero(picked > -np.inf)
        got = sorted(got.tolist(), key=lambda i: (-picked[i], i))[:total_max]
        assert got == rank
        np.testing.assert_allclose(picked[got], [want[i] for i in rank], atol=1e-6)


def test_lone_sub_threshold_groups_and_empty_input():
    x1 = np.float32([0, 0, 5, 5])
    x2 = np.float32([2, 2, 6, 6])
    scores = np.float32([1e-4, 5e-5, 0.5, -np.inf])
    picked = greedy_nms(x1, x2, scores, np.array([0, 0, 1, 2]), sigma=0.5, min_score=1e-3,
                        max_num=10)  # fmt: skip
    # group 0: its best is selected although below min_score, the other is not; group 2 has no
    # finite score.
    assert picked.tolist() == pytest.approx([1e-4, -np.inf, 0.5, -np.inf])
    assert greedy_nms(x1[:0], x2[:0], scores[:0], sigma=0.5, min_score=0, max_num=5).size == 0


def test_order_key_is_score_then_first_position():
    scores = np.float32([0.5, -1.0, 0.5, np.inf, -np.inf, 0.0, -0.5, 2.0])
    key = order_key(scores, np.arange(scores.size))
    want = sorted(range(scores.size), key=lambda i: (-scores[i], i))
    assert np.argsort(-key).tolist() == want


def test_intra_op_threads_restores_on_exit_and_on_error():
    before = torch.get_num_threads()
    with intra_op_threads(1):
        inside = torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with intra_op_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with intra_op_threads(None):
        assert torch.get_num_threads() == before
    if "OpenMP" in torch.__config__.parallel_info():
        assert inside == 1


def test_postprocessor_leaves_torch_threads_alone_from_several_threads():
    rng = np.random.default_rng(0)
    t, c = 256, 4
    from logo_tal.core.grid import FeatureGrid
    from logo_tal.models.outputs import DetectorOutput

    out = DetectorOutput(
        cls_logits=[torch.from_numpy(rng.normal(-2, 2, (1, t, c)).astype(np.float32))],
        offsets=[torch.from_numpy(rng.uniform(0.2, 5, (1, t, c, 2)).astype(np.float32))],
        masks=[torch.ones(1, t, dtype=torch.bool)],
        strides=[1],
    )
    grid = FeatureGrid(fps=1.0, feat_stride=1.0, num_frames=1e-9)
    post = PostProcessor()
    want = post(out, [grid], [1e6])[0]
    results, errors = [], []

    def work():
        try:
            threads = torch.get_num_threads()
            for _ in range(5):
                results.append(post(out, [grid], [1e6])[0])
            assert torch.get_num_threads() == threads
        except Exception as exc:
            errors.append(exc)

    before = torch.get_num_threads()
    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert torch.get_num_threads() == before
    for r in results:
        assert torch.equal(r.scores, want.scores) and torch.equal(r.labels, want.labels)

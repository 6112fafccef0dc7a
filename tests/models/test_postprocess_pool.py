"""PostprocessPool: the inline values in submission order, clear errors, no leftover processes."""

from __future__ import annotations

import copy
import multiprocessing
import pickle

import pytest
import torch

from helpers.failing_postprocess import DyingPostProcessor, FailingPostProcessor
from logo_tal.core.grid import FeatureGrid
from logo_tal.models.outputs import DetectorOutput
from logo_tal.models.postprocess import PostProcessor
from logo_tal.models.postprocess_pool import (
    InlinePostprocess,
    PostprocessPool,
    pack_output,
    postprocessing,
    unpack_output,
)

GRID = FeatureGrid(30.0, 4.0, 16.0)


def _output(seed: int, batch: int = 2, length: int = 64, classes: int = 3) -> DetectorOutput:
    """Random outputs laid out as the heads return them: (B, C, T) transposed to (B, T, C)."""
    gen = torch.Generator().manual_seed(seed)
    strides = [1, 2, 4]
    logits = [
        (torch.randn(batch, classes, length // s, generator=gen) - 2).transpose(1, 2)
        for s in strides
    ]
    offsets = [
        (torch.rand(batch, classes, 2, length // s, generator=gen) * 3).permute(0, 3, 1, 2)
        for s in strides
    ]
    masks = [torch.ones(batch, length // s, dtype=torch.bool) for s in strides]
    masks[0][1, 40:] = False
    return DetectorOutput(cls_logits=logits, offsets=offsets, masks=masks, strides=strides)


def _same(a, b) -> bool:
    return all(
        torch.equal(x.segments, y.segments)
        and torch.equal(x.scores, y.scores)
        and torch.equal(x.labels, y.labels)
        for x, y in zip(a, b, strict=True)
    )


def test_pack_round_trip_keeps_values_and_layouts_and_turns_bfloat16_into_float32():
    out = _output(0)
    back = unpack_output(pickle.loads(pickle.dumps(pack_output(out))))
    assert back.strides == out.strides
    for name in ("cls_logits", "offsets", "masks"):
        for a, b in zip(getattr(out, name), getattr(back, name), strict=True):
            assert torch.equal(a, b) and a.stride() == b.stride() and a.dtype == b.dtype
    out.cls_logits = [t.bfloat16() for t in out.cls_logits]
    back = unpack_output(pack_output(out))
    assert back.cls_logits[0].dtype == torch.float32
    assert torch.equal(back.cls_logits[0], out.cls_logits[0].float())


@pytest.mark.slow
def test_pool_gives_the_inline_detections_in_order_and_leaves_no_process():
    post = PostProcessor(pre_nms_topk=100, max_seg_num=50)
    pool = PostprocessPool(post, workers=2, max_pending=1)
    assert not pool.started and not pool.processes  # lazy
    outputs = [_output(seed) for seed in range(5)]
    durations = [[8.0, 6.0]] * 5
    for i, out in enumerate(outputs):
        pool.submit(out, [GRID, GRID], durations[i], meta=i)
    assert pool.started and 1 <= len(pool.processes) <= 2
    processes = pool.processes
    results = pool.collect()
    assert [meta for meta, _ in results] == list(range(5))
    for (_, dets), out, dur in zip(results, outputs, durations, strict=True):
        assert len(dets) == 2 and _same(dets, post(out, [GRID, GRID], dur))
    assert pool.collect() == [] and pool.worker_seconds > 0
    # A deep copy (Lightning's EMA copies the module) is an unstarted pool.
    clone = copy.deepcopy(pool)
    assert not clone.started and clone.workers == 2 and clone.postprocess is not post
    pool.close()
    pool.close()  # idempotent
    assert not pool.started and not any(p.is_alive() for p in processes)
    assert not multiprocessing.active_children()


@pytest.mark.slow
@pytest.mark.parametrize(
    "post, message",
    [
        (FailingPostProcessor(), "ValueError: deliberate failure in post-processing"),
        (DyingPostProcessor(), "worker process died"),
    ],
)
def test_a_failing_worker_is_a_clear_error_and_closes_the_pool(post, message):
    pool = PostprocessPool(post, workers=1)
    with pytest.raises(RuntimeError, match=message) as info:
        pool.submit(_output(0), [GRID, GRID], [8.0, 6.0], meta=0)
        pool.collect()
    assert "batch 0 of this epoch" in str(info.value)
    assert not pool.started and not multiprocessing.active_children()


def test_an_unpicklable_postprocess_is_refused_before_any_process_starts():
    pool = PostprocessPool(lambda out, grids, durations: [], workers=1)
    with pytest.raises(TypeError, match="picklable"):
        pool.submit(_output(0), [GRID, GRID], [8.0, 6.0])
    assert not pool.started and not multiprocessing.active_children()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="workers >= 1"):
        PostprocessPool(PostProcessor(), workers=0)
    with pytest.raises(ValueError, match="spawn"):
        PostprocessPool(PostProcessor(), workers=1, context="fork")


def test_inline_post_processing_answers_the_same_calls():
    post = PostProcessor(pre_nms_topk=100, max_seg_num=50)
    inline = postprocessing(post, 0)
    assert isinstance(inline, InlinePostprocess) and not inline.started
    assert isinstance(postprocessing(post, 2), PostprocessPool)
    outputs = [_output(seed) for seed in range(3)]
    for i, out in enumerate(outputs):
        inline.submit(out, [GRID, GRID], [8.0, 6.0], meta=("batch", i))
    results = inline.collect()
    assert [meta for meta, _ in results] == [("batch", 0), ("batch", 1), ("batch", 2)]
    for (_, dets), out in zip(results, outputs, strict=True):
        assert _same(dets, post(out, [GRID, GRID], [8.0, 6.0]))
    assert inline.collect() == []
    inline.submit(outputs[0], [GRID, GRID], [8.0, 6.0])
    inline.close()  # drops what was not collected, like the pool's close
    assert inline.collect() == []
    with pytest.raises(ValueError, match="postprocess_workers must be >= 0"):
        postprocessing(post, -1)

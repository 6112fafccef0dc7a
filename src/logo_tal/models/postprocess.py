"""Inference: decode per-level outputs into segments, Soft-NMS, grid -> seconds.

Follows docs/decisions.md D48-D52 (ActionFormer / TriDet ``inference_single_video`` and
``batched_nms``) without their compiled extension.

Soft-NMS is exact greedy Soft-NMS computed in rounds by ``logo_tal.models.greedy_nms`` (numpy;
see its docstring), tested against a one-at-a-time brute force in tests/models/test_postprocess.

Candidate order (issue 9): the decoder emits candidates in (level, time, class) order, and
``PostProcessor.suppress`` stably sorts them by descending score before NMS, as AF/TD sort their
candidate list. Every tie (equal scores in the NMS, in the per-class cap and in the final
``max_seg_num`` truncation) therefore goes to the candidate that comes first in that sorted
order: higher score, then lower level, earlier time, lower class index.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

import numpy as np
import torch

from logo_tal.core.detections import Detections
from logo_tal.core.grid import FeatureGrid
from logo_tal.models.greedy_nms import DEFAULT_BLOCK, greedy_nms
from logo_tal.models.outputs import DetectorOutput

_THREADS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _openmp_backend() -> bool:
    """torch's intra-op pool is OpenMP (the Linux/Windows wheels); with the native pool
    ``torch.set_num_threads`` after the first parallel op only warns, so it is left alone."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


@contextlib.contextmanager
def intra_op_threads(num: int | None) -> Iterator[None]:
    """Run the body with ``num`` torch intra-op threads, then restore the previous count.

    Post-processing is many small ops; with 2+ threads each one over ~32k elements starts an
    OpenMP region, and when another process holds a core the region waits for its descheduled
    worker (issue 10: 5 ms decode became 20-230 ms). Exception-safe (``finally``). Thread-safe:
    with the OpenMP backend torch's count is per calling thread (new threads start from the last
    value set), so each caller saves and restores its own; the lock keeps a save/set pair of one
    thread from interleaving with another's. ``num=None`` or a non-OpenMP build: no change.
    """
    if num is None or not _openmp_backend():
        yield
        return
    with _THREADS_LOCK:
        previous = torch.get_num_threads()
        if previous != num:
            torch.set_num_threads(num)
    try:
        yield
    finally:
        if previous != num:
            with _THREADS_LOCK:
                torch.set_num_threads(previous)


def _greedy_nms_single(
    segments: torch.Tensor, scores: torch.Tensor, **options
) -> tuple[torch.Tensor, torch.Tensor]:
    """One candidate set through the greedy NMS (options as ``greedy_nms``)."""
    segs = torch.as_tensor(segments).detach().cpu().to(torch.float32).reshape(-1, 2).numpy()
    sc = torch.as_tensor(scores).detach().cpu().to(torch.float32).reshape(-1).numpy()
    picked = greedy_nms(segs[:, 0], segs[:, 1], sc, **options)
    # Selection order = descending score, ties by input index (stable sort over input order).
    order = np.argsort(-picked, kind="stable")[: int(np.count_nonzero(picked > -np.inf))]
    return torch.from_numpy(order.astype(np.int64)), torch.from_numpy(picked[order])


def soft_nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    sigma: float = 0.5,
    min_score: float = 1e-3,
    max_num: int = 2000,
    block: int = DEFAULT_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian Soft-NMS (Bodla et al. 2017) as in the AF/TD C++ extension.

    Greedy: select the highest current score (first index wins ties), decay every other
    candidate by ``exp(-IoU^2 / sigma)`` (IoU with lengths ``x2 - x1 + 1e-6``), drop those
    below ``min_score``; repeat. Computed exactly in rounds (module docstring). Unlike the C++
    code, ties are broken by input index rather than by its swap-permuted array position.

    Args:
        segments: (N, 2) (start, end).
        scores: (N,).
        sigma: Gaussian parameter (THUMOS 0.5, TD ANet 0.7).
        min_score: removal threshold (1e-3).
        max_num: maximum selections returned.
        block: candidates examined per round (speed only).

    Returns:
        keep (M,) int64 indices into the input in selection order, and their (M,) decayed
        scores.
    """
    return _greedy_nms_single(
        segments, scores, sigma=sigma, min_score=min_score, max_num=max_num, block=block
    )


def nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float = 0.1,
    max_num: int = 2000,
    block: int = DEFAULT_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard NMS: in descending score order keep a segment unless it has IoU >= ``iou_threshold``
    with an already kept one (ties: lower index first).

    Args:
        segments: (N, 2); scores: (N,); iou_threshold: suppression IoU; max_num: cap.

    Returns:
        keep (M,) int64 indices in descending score order, and their (unchanged) scores.
    """
    return _greedy_nms_single(
        segments,
        scores,
        sigma=1.0,
        min_score=0.0,
        max_num=max_num,
        iou_threshold=iou_threshold,
        block=block,
    )


def _segment_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, 2) x (B, 2) -> (A, B) plain IoU."""
    inter = torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    inter = inter.clamp(min=0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return inter / union.clamp(min=1e-8)


def segment_voting(
    kept: torch.Tensor, candidates: torch.Tensor, scores: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Replace each kept segment by the score-weighted mean of the candidates overlapping it.

    TriDet's variant: weights = original candidate score (AF/TM also multiply by IoU).

    Args:
        kept: (K, 2) segments after NMS; candidates: (M, 2) all pre-NMS segments, which include
            the kept ones (so every row has a neighbour); scores: (M,) original scores;
            threshold: IoU >= threshold counts as a neighbour.

    Returns:
        (K, 2) refined segments.
    """
    if kept.shape[0] == 0:
        return kept
    weights = (_segment_iou(kept, candidates) >= threshold).to(scores.dtype) * scores[None, :]
    total = weights.sum(1, keepdim=True)
    refined = (weights @ candidates) / total.clamp(min=1e-12)
    return torch.where(total > 0, refined, kept)


class PostProcessor:
    """Detector output -> per-video detections in seconds (docs/decisions.md D48, D49).

    Args:
        pre_nms_thresh: keep candidates with sigmoid score above it (1e-3).
        pre_nms_topk: per level and video, keep at most this many candidates (2000).
        duration_thresh: drop segments not longer than this, in grid units (TD: THUMOS 0.05,
            ANet 0.1).
        nms: ``"soft"`` (Gaussian Soft-NMS), ``"hard"`` or ``"none"``.
        multiclass: NMS per class (THUMOS) or over all candidates (ANet).
        sigma: Soft-NMS sigma (THUMOS 0.5, TD ANet 0.7).
        iou_threshold: hard-NMS IoU (unused by Soft-NMS, as in AF/TD).
        min_score: Soft-NMS removal threshold.
        max_seg_num: detections per video after NMS (and per class inside multiclass NMS).
        voting_thresh: > 0 enables segment voting after class-agnostic NMS (TD ANet 0.95).
        block: Soft-NMS round size (speed only).
        num_threads: torch intra-op threads while post-processing (restored afterwards); 1 is
            fastest for its many small ops, on an idle and on a busy machine (issue 10,
            docs/benchmarks.md). None: leave torch's setting.
    """

    def __init__(
        self,
        pre_nms_thresh: float = 1e-3,
        pre_nms_topk: int = 2000,
        duration_thresh: float = 0.05,
        nms: str = "soft",
        multiclass: bool = True,
        sigma: float = 0.5,
        iou_threshold: float = 0.1,
        min_score: float = 1e-3,
        max_seg_num: int = 2000,
        voting_thresh: float = 0.0,
        block: int = DEFAULT_BLOCK,
        num_threads: int | None = 1,
    ) -> None:
        if nms not in ("soft", "hard", "none"):
            raise ValueError(f"nms must be 'soft', 'hard' or 'none', got {nms!r}")
        self.pre_nms_thresh = float(pre_nms_thresh)
        self.pre_nms_topk = int(pre_nms_topk)
        self.duration_thresh = float(duration_thresh)
        self.nms = nms
        self.multiclass = bool(multiclass)
        self.sigma = float(sigma)
        self.iou_threshold = float(iou_threshold)
        self.min_score = float(min_score)
        self.max_seg_num = int(max_seg_num)
        self.voting_thresh = float(voting_thresh)
        self.block = int(block)
        self.num_threads = None if num_threads is None else int(num_threads)

    @torch.no_grad()
    def __call__(
        self, out: DetectorOutput, grids: list[FeatureGrid], durations: list[float]
    ) -> list[Detections]:
        """Decode a batch.

        Args:
            out: detector output (any device; candidates move to CPU for NMS, as in AF/TD).
            grids: list[B] of each video's FeatureGrid.
            durations: list[B] of video durations in seconds (segments are clamped to them).

        Returns:
            list[B] of Detections in seconds, sorted by descending score.
        """
        batch = out.cls_logits[0].shape[0]
        if len(grids) != batch or len(durations) != batch:
            raise ValueError(
                f"got {len(grids)} grids and {len(durations)} durations for a batch of {batch}"
            )
        results = []
        with intra_op_threads(self.num_threads):
            for b in range(batch):
                segs, scores, labels = self.candidates(out, b)
                segs, scores, labels = self.suppress(segs, scores, labels)
                seconds = grids[b].to_seconds(segs.double().numpy(), duration=float(durations[b]))
                results.append(
                    Detections(
                        segments=torch.from_numpy(seconds).float().reshape(-1, 2),
                        scores=scores.float(),
                        labels=labels.long(),
                    )
                )
        return results

    def candidates(
        self, out: DetectorOutput, b: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-level thresholding and top-k of video ``b``.

        Returns:
            CPU float32 segments (M, 2) in grid units, scores (M,), int64 labels (M,).
        """
        all_segs, all_scores, all_labels = [], [], []
        for logits, offsets, mask, stride in zip(
            out.cls_logits, out.offsets, out.masks, out.strides, strict=True
        ):
            num_classes = logits.shape[-1]
            prob = (torch.sigmoid(logits[b].float()) * mask[b, :, None]).flatten()
            keep = torch.nonzero(prob > self.pre_nms_thresh).squeeze(1)
            kept = prob[keep]
            if kept.numel() > self.pre_nms_topk:
                top = _topk_in_index_order(kept, self.pre_nms_topk)
                keep, kept = keep[top], kept[top]
            point = keep // num_classes
            label = keep % num_classes
            off = offsets[b].float()
            dist = off[point, label] if off.shape[1] > 1 else off[point, 0]
            t = point.to(dist.dtype) * stride
            seg = torch.stack((t - dist[:, 0] * stride, t + dist[:, 1] * stride), dim=-1)
            long_enough = (seg[:, 1] - seg[:, 0]) > self.duration_thresh
            all_segs.append(seg[long_enough])
            all_scores.append(kept[long_enough])
            all_labels.append(label[long_enough])
        return (
            torch.cat(all_segs).cpu(),
            torch.cat(all_scores).cpu(),
            torch.cat(all_labels).cpu(),
        )

    def suppress(
        self, segs: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """NMS (+ voting), sort by score, cap at ``max_seg_num``. Shapes (M, 2), (M,), (M,).

        The candidates are first sorted by descending score with a stable sort (AF/TD sort the
        candidate list before NMS), so every tie below, in the NMS, in its per-class cap and
        in the final truncation, goes to the candidate that came first in the decoder's
        (level, time, class) order, like ``torch.sort(stable=True)``.
        """
        order = torch.argsort(scores, descending=True, stable=True)
        segs, scores, labels = segs[order], scores[order], labels[order]
        if self.nms != "none" and scores.numel() > 0:
            seg_np = segs.detach().cpu().to(torch.float32).numpy()
            picked = greedy_nms(
                seg_np[:, 0],
                seg_np[:, 1],
                scores.detach().cpu().to(torch.float32).numpy(),
                labels.cpu().numpy() if self.multiclass else None,
                sigma=self.sigma,
                min_score=self.min_score,
                max_num=self.max_seg_num,
                iou_threshold=self.iou_threshold if self.nms == "hard" else None,
                total_max=self.max_seg_num,
                block=self.block,
            )
            chosen = torch.from_numpy(picked > -np.inf)
            new_segs = segs[chosen]
            new_scores = torch.from_numpy(picked[chosen.numpy()]).to(scores.dtype)
            if self.voting_thresh > 0 and not self.multiclass:
                new_segs = segment_voting(new_segs, segs, scores, self.voting_thresh)
            segs, scores, labels = new_segs, new_scores, labels[chosen]
            order = torch.argsort(scores, descending=True, stable=True)
            segs, scores, labels = segs[order], scores[order], labels[order]
        keep = slice(0, self.max_seg_num)
        return segs[keep], scores[keep], labels[keep]


def _topk_in_index_order(values: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest values, in increasing index order; ties at the cut go to
    the lower index (as a stable descending sort followed by ``[:k]`` would choose)."""
    kth = values.topk(k).values[-1]
    above = values > kth
    tied = values == kth
    need = k - int(above.sum())
    take = above | (tied & (torch.cumsum(tied, 0) <= need))
    return torch.nonzero(take).squeeze(1)


__all__ = [
    "PostProcessor",
    "intra_op_threads",
    "nms",
    "segment_voting",
    "soft_nms",
]

"""Inference: decode per-level outputs into segments, Soft-NMS, grid -> seconds.

Follows docs/decisions.md D48-D52 (ActionFormer / TriDet ``inference_single_video`` and
``batched_nms``) without their compiled extension.

Soft-NMS here is exact greedy Soft-NMS computed in *rounds* instead of one selection at a time.
Two facts make that possible:

* A candidate's score changes only when a candidate that overlaps it (intersection > 0, hence
  weight != 1) is selected, and scores only decrease.
* So a candidate ranked above every alive candidate that overlaps it is selected by the greedy
  with its current score, whatever else is selected before it.

Each round takes the top ``block`` alive candidates of every group (class), selects every member
that no higher-ranked member overlaps (the top member always qualifies), and applies all their
decays at once. Because greedy selections come out with non-increasing scores, sorting the
selections by score (ties: lower input index first) restores the greedy's selection order. The
rounds run for all classes at once on a padded (G, N) problem, so Python iterates over rounds,
never over detections. Tested against a one-at-a-time brute force in tests/models/test_postprocess.
"""

from __future__ import annotations

import torch

from logo_tal.detections import Detections
from logo_tal.grid import FeatureGrid
from logo_tal.models.outputs import DetectorOutput

# Added to segment lengths in the IoU of the AF/TD C++ NMS (nms_cpu.cpp); kept for identical
# decays on zero-length segments.
LENGTH_EPS = 1e-6
# Candidates per group examined per round; 32 measured fastest for THUMOS- and ANet-sized inputs
# (scripts/bench_postprocess.py).
DEFAULT_BLOCK = 32
# Pair-matrix elements per chunk in the decay step (64k float32 = 256 KB, cache-sized).
CHUNK_ELEMENTS = 1 << 16


def _pairwise_iou(a1, a2, alen, b1, b2, blen) -> torch.Tensor:
    """IoU with the reference's lengths (x2 - x1 + 1e-6) and intersection clamped at 0."""
    inter = (torch.minimum(a2, b2) - torch.maximum(a1, b1)).clamp_(min=0)
    return inter.div_(alen + blen - inter)


def _greedy_nms_batched(
    segments: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    *,
    sigma: float,
    min_score: float,
    max_num: int,
    iou_threshold: float | None = None,
    total_max: int | None = None,
    block: int = DEFAULT_BLOCK,
) -> torch.Tensor:
    """Greedy (Soft-)NMS of G independent groups in rounds.

    Args:
        segments: (G, N, 2) (start, end); scores: (G, N); valid: (G, N) bool (padding False).
        sigma: Gaussian decay ``exp(-IoU^2 / sigma)`` (AF/TD ``method=2``: divided by sigma).
        min_score: candidates decayed below it are dropped (the top of the first round is
            always selected, as in the reference).
        max_num: selections kept per group.
        iou_threshold: if given, hard NMS: weight 0 for IoU >= threshold, else 1; ``sigma`` and
            ``min_score`` are then unused.
        total_max: if given, only selections that can rank among the ``total_max`` best of all
            groups together are guaranteed (the rest may be skipped): exact for a caller that
            sorts all groups' selections and keeps ``total_max`` (multiclass post-processing).
        block: candidates examined per group and round.

    Returns:
        (G, N) score at selection time for selected candidates (at most ``max_num`` per group, the
        greedy's first ones), -inf elsewhere.
    """
    num_groups, n0 = scores.shape
    dtype = scores.dtype
    neg_inf = float("-inf")
    picked = torch.full((num_groups, n0), neg_inf, dtype=dtype)
    if n0 == 0 or num_groups == 0:
        return picked
    hard = iou_threshold is not None
    floor = 0.0 if hard else min_score

    x1 = segments[..., 0].contiguous()
    x2 = segments[..., 1].contiguous()
    length = x2 - x1 + LENGTH_EPS
    cur = torch.where(valid, scores, torch.full_like(scores, neg_inf))
    orig = torch.arange(n0).expand(num_groups, n0)  # column -> input index (after compaction)
    count = torch.zeros(num_groups, dtype=torch.long)
    first_round = True
    kept_scores: list[torch.Tensor] = []
    earlier = torch.ones(0, 0, dtype=torch.bool)

    while True:
        alive = cur > neg_inf
        num_alive = alive.sum(1)
        widest = int(num_alive.max())
        if widest == 0:
            break
        n = cur.shape[1]
        if 4 * widest <= 3 * n and n > 2 * block:
            # Drop dead columns (stable, so input order among alive columns is kept).
            order = torch.argsort((~alive).to(torch.int8), dim=1, stable=True)[:, :widest]
            x1, x2, length, cur, orig = (t.gather(1, order) for t in (x1, x2, length, cur, orig))
            n = widest

        k = min(block, n)
        if k < n:
            top_s, top_i = cur.topk(k + 1, dim=1)
            bound = top_s[:, k : k + 1]
            top_s, top_i = top_s[:, :k], top_i[:, :k]
            ok = (top_s > bound) & (top_s > neg_inf)
        else:
            top_s, top_i = cur.topk(k, dim=1)
            ok = top_s > neg_inf
        ties = ((top_s[:, 1:] == top_s[:, :-1]) & ok[:, 1:]).any()
        if k < n:
            # A top member tied with the (k+1)-th leaves no member strictly above it.
            ties = ties | ((top_s[:, :1] == bound) & (bound > neg_inf)).any()
        key = torch.where(ok, top_s, torch.full_like(top_s, neg_inf))
        if bool(ties):
            # Exact ties (rare with sigmoid scores) need the greedy's rule, lower input index
            # first. Members tied with the (k+1)-th are left out (an outsider might outrank
            # them on index), except the group's true top, argmax (first index among ties),
            # which replaces the last slot if topk left it out.
            best = cur.argmax(1, keepdim=True)
            is_best = top_i == best
            missing = ~is_best.any(1) & (cur.gather(1, best)[:, 0] > neg_inf)
            top_i[missing, -1] = best[missing, 0]
            top_s[missing, -1] = cur.gather(1, best)[missing, 0]
            is_best[missing, -1] = True
            ok = ok | (is_best & (top_s > neg_inf))
            key = torch.where(ok, top_s, torch.full_like(top_s, neg_inf))
            by_index = torch.argsort(orig.gather(1, top_i), dim=1)
            top_i, key, ok = (t.gather(1, by_index) for t in (top_i, key, ok))
            by_score = torch.argsort(key, dim=1, descending=True, stable=True)
            top_i, key, ok = (t.gather(1, by_score) for t in (top_i, key, ok))

        bx1, bx2 = x1.gather(1, top_i), x2.gather(1, top_i)
        inter = torch.minimum(bx2[:, :, None], bx2[:, None, :]) - torch.maximum(
            bx1[:, :, None], bx1[:, None, :]
        )
        if earlier.shape[0] != k:
            earlier = torch.ones(k, k, dtype=torch.bool).triu(1)  # [a, b]: a ranked before b
        blocked = ((inter > 0) & earlier & ok[:, :, None]).any(1)
        sel = ok & ~blocked
        if first_round:
            # The reference drops sub-threshold candidates right after its first selection.
            sel[:, 1:] &= key[:, 1:] >= floor
            first_round = False

        num_sel = sel.sum(1)
        if not bool(num_sel.any()):  # cannot happen: each alive group selects its top
            raise RuntimeError("Soft-NMS made no progress; please report this input")
        g, m = sel.nonzero(as_tuple=True)
        cols = top_i[g, m]
        new_scores = key[g, m]
        picked[g, orig[g, cols]] = new_scores
        count += num_sel
        if total_max is not None:
            kept_scores.append(new_scores)

        # Decay of every group by its own selections, on (S, n) pairs. Chunks of rows keep the
        # temporaries cache-sized (one 3 MB pass per op measured ~2x slower than chunks).
        flat_sel = g * n + cols
        rows = max(1, CHUNK_ELEMENTS // n)
        acc = torch.zeros(num_groups, n, dtype=dtype)
        geom = torch.stack((x1, x2, length))  # (3, G, n): one gather per chunk for all three
        chosen = geom.view(3, -1).index_select(1, flat_sel)[:, :, None]  # (3, S, 1)
        for lo in range(0, g.numel(), rows):
            gc = g[lo : lo + rows]
            a = geom.index_select(1, gc)  # (3, s, n)
            b = chosen[:, lo : lo + rows]
            iou = _pairwise_iou(a[0], a[1], a[2], b[0], b[1], b[2])
            # hard: count IoU >= threshold hits; soft: sum IoU^2 (log of the Gaussian weight)
            acc.index_add_(0, gc, (iou >= iou_threshold).to(dtype) if hard else iou * iou)
        if hard:
            cur = torch.where(acc > 0, torch.full_like(cur, neg_inf), cur)
        else:
            cur = cur * torch.exp(acc * (-1.0 / sigma))
        cur[g, cols] = neg_inf
        cur = torch.where(cur < floor, torch.full_like(cur, neg_inf), cur)

        # Raise the removal floor once enough is kept: later selections score at most their
        # current score, so a candidate already below the max_num-th best kept score of its
        # group (or the total_max-th best overall) can never enter the output, and neither can
        # anything it would decay (those score even lower when it is selected).
        full = count >= max_num
        if bool(full.any()):
            kth = torch.full((num_groups, 1), neg_inf, dtype=dtype)
            kth[full] = picked[full].topk(max_num, dim=1).values[:, -1:]
            cur = torch.where(cur < kth, torch.full_like(cur, neg_inf), cur)
        if total_max is not None and int(count.sum()) >= total_max:
            kept_scores = [torch.cat(kept_scores)]
            kth_all = kept_scores[0].topk(total_max).values[-1]
            cur = torch.where(cur < kth_all, torch.full_like(cur, neg_inf), cur)

    # Selection order = descending score, ties by input index (stable sort over input order).
    if int(count.max()) > max_num:
        order = torch.argsort(picked, dim=1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n0).expand(num_groups, n0).contiguous())
        picked = torch.where(rank < max_num, picked, torch.full_like(picked, neg_inf))
    return picked


def _selection_order(picked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) picked scores (-inf = not kept) -> (indices, scores) in selection order."""
    order = torch.argsort(picked, descending=True, stable=True)
    num = int((picked > float("-inf")).sum())
    order = order[:num]
    return order, picked[order]


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


def _greedy_nms_single(
    segments: torch.Tensor, scores: torch.Tensor, **options
) -> tuple[torch.Tensor, torch.Tensor]:
    """One candidate set through the batched greedy NMS (options as ``_greedy_nms_batched``)."""
    segments = torch.as_tensor(segments).detach().cpu()
    scores = torch.as_tensor(scores).detach().cpu()
    valid = torch.ones(1, scores.shape[0], dtype=torch.bool)
    picked = _greedy_nms_batched(segments[None], scores[None], valid, **options)[0]
    return _selection_order(picked)


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
                kept, top = kept.topk(self.pre_nms_topk)
                keep = keep[top]
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
        """NMS (+ voting), sort by score, cap at ``max_seg_num``. Shapes (M, 2), (M,), (M,)."""
        if self.nms != "none" and scores.numel() > 0:
            if self.multiclass:
                groups, inverse = torch.unique(labels, return_inverse=True)
            else:
                groups, inverse = torch.zeros(1, dtype=torch.long), torch.zeros_like(labels)
            # Padded (G, N_max) layout: column = rank of a candidate within its group.
            counts = torch.bincount(inverse, minlength=groups.numel())
            order = torch.argsort(inverse, stable=True)
            starts = torch.cumsum(counts, 0) - counts
            col = torch.empty_like(order)
            col[order] = torch.arange(order.numel()) - starts[inverse[order]]
            shape = (groups.numel(), int(counts.max()))
            pad_segs = segs.new_zeros(*shape, 2)
            pad_scores = scores.new_zeros(shape)
            valid = torch.zeros(shape, dtype=torch.bool)
            pad_segs[inverse, col] = segs
            pad_scores[inverse, col] = scores
            valid[inverse, col] = True
            picked = _greedy_nms_batched(
                pad_segs,
                pad_scores,
                valid,
                sigma=self.sigma,
                min_score=self.min_score,
                max_num=self.max_seg_num,
                iou_threshold=self.iou_threshold if self.nms == "hard" else None,
                total_max=self.max_seg_num,
                block=self.block,
            )[inverse, col]
            chosen = picked > float("-inf")
            new_segs, new_scores = segs[chosen], picked[chosen]
            if self.voting_thresh > 0 and not self.multiclass:
                new_segs = segment_voting(new_segs, segs, scores, self.voting_thresh)
            segs, scores, labels = new_segs, new_scores, labels[chosen]
        order = torch.argsort(scores, descending=True, stable=True)[: self.max_seg_num]
        return segs[order], scores[order], labels[order]


__all__ = [
    "PostProcessor",
    "nms",
    "segment_voting",
    "soft_nms",
]

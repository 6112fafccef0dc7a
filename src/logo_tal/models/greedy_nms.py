"""Exact greedy (Soft-)NMS of many independent groups, in numpy, computed in rounds.

Reference semantics (ActionFormer / TriDet ``nms_cpu.cpp``, notes/ancestors.md 4.2): per group,
repeatedly select the candidate with the highest *current* score, decay every other candidate of
the group by ``exp(-IoU^2 / sigma)`` (hard NMS: remove those with IoU >= threshold), and drop
candidates that fall below ``min_score``. Exact ties go to the candidate that comes first in the
input (callers sort by score first, so that is the ancestors' sorted order).

Why rounds are exact:

* A candidate's score changes only when a candidate of its group that overlaps it (intersection
  > 0, the only case with weight != 1) is selected, and scores only decrease.
* So a candidate ranked above every alive candidate of its group that overlaps it is selected by
  the greedy with its current score, whatever else is selected first.

Each round takes the ``block`` best alive candidates of *all groups together* (a strict total
order: current score, then input position), selects every member that no higher-ranked member
of the same group overlaps (the best member always qualifies), and applies their decays at once.

What keeps a round cheap:

* Rows are kept in order of their original (score, position) key. A row's current key is at most
  its original one, so the members are searched in a window at the front, which only grows when
  the rows past it could still compete.
* Once a group has ``max_num`` selections (or all groups together ``total_max``), candidates
  ranked below the k-th selection are cut: they can only be selected lower still, and so can
  anything they would decay. With the rows in key order the cut is a tail index.
* A selection decays only the candidates that can overlap it: per group, candidates are binned
  by length (``OCTAVES_PER_CELL`` octaves per bin) and sorted by start, and a segment of length
  at most L can overlap [s, e] only if it starts in (s - L, e): one binary search per bin.

Everything here is numpy on small arrays: numpy never starts threads for elementwise work, so the
result and its speed do not depend on torch's intra-op thread count (many tiny multi-threaded
torch ops were the cause of issue 10).
"""

from __future__ import annotations

import numpy as np

# Added to segment lengths in the IoU of the AF/TD C++ NMS (nms_cpu.cpp); kept for identical
# decays on zero-length segments.
LENGTH_EPS = np.float32(1e-6)
# Candidates examined per round (all groups together); measured with
# scripts/bench_postprocess.py on THUMOS- and ANet-sized inputs.
DEFAULT_BLOCK = 128
# Decay-window cells per group: segment lengths are binned by OCTAVES_PER_CELL octaves, at
# most NUM_OCTAVES bins (more cells: fewer wasted pairs, more binary searches per selection).
NUM_OCTAVES = 12
OCTAVES_PER_CELL = 3
_LOW31 = np.int64(0x7FFFFFFF)


def order_key(scores: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Strict total order as int64: higher score first, then lower position (float32 scores).

    The float32 bit pattern is made monotonic (negative floats have their magnitude bits
    flipped), shifted up 32 bits, and the low 32 bits hold ``2^32 - 1 - position``.
    """
    bits = scores.astype(np.float32, copy=False).view(np.int32).astype(np.int64)
    mono = np.where(bits < 0, bits ^ _LOW31, bits)
    return (mono << 32) | (np.int64(0xFFFFFFFF) - position)


def greedy_nms(
    x1: np.ndarray,
    x2: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    sigma: float,
    min_score: float,
    max_num: int,
    iou_threshold: float | None = None,
    total_max: int | None = None,
    block: int = DEFAULT_BLOCK,
) -> np.ndarray:
    """Greedy (Soft-)NMS of every group; returns each candidate's score at selection.

    Args:
        x1, x2: (N,) segment starts and ends (float32 arithmetic, as the reference).
        scores: (N,) scores; ``-inf``/NaN candidates are never selected.
        groups: (N,) int group ids (classes), or None for a single group.
        sigma: Gaussian decay ``exp(-IoU^2 / sigma)`` (AF/TD ``method=2``: divided by sigma).
        min_score: candidates decayed below it are dropped; a group's best candidate is always
            its first selection, even below ``min_score`` (as in the reference).
        max_num: selections kept per group (the greedy's first ones).
        iou_threshold: if given, hard NMS: IoU >= threshold removes, else no change; ``sigma``
            is then unused and candidates below ``min_score`` are still dropped.
        total_max: if given, only selections that can rank among the ``total_max`` best of all
            groups together (by score, ties: lower position) are guaranteed; the rest may be
            missing. Exact for a caller that keeps the ``total_max`` best.
        block: candidates examined per round (speed only; 1 = one selection per round).

    Returns:
        (N,) float32: the score at selection time for selected candidates, -inf elsewhere.
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    n = scores.shape[0]
    picked = np.full(n, -np.inf, dtype=np.float32)
    if n == 0:
        return picked
    if groups is None:
        group_ids = np.zeros(n, dtype=np.int64)
    else:
        group_ids = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)[1]
        group_ids = group_ids.reshape(-1).astype(np.int64, copy=False)
    num_groups = int(group_ids.max()) + 1
    block = max(1, int(block))
    hard = iou_threshold is not None
    floor = np.float32(min_score)
    neg_inf = np.float32(-np.inf)
    int_min = np.iinfo(np.int64).min

    # Rank layout: rows sorted by the initial order key (score, then input position).
    cur = np.where(np.isnan(scores), neg_inf, scores)
    okey = order_key(cur, np.arange(n, dtype=np.int64))
    pos = np.argsort(-okey)  # row -> input position
    if not (pos[1:] > pos[:-1]).all():
        okey, cur = okey[pos], cur[pos]
    else:
        pos = np.arange(n, dtype=np.int64)
    x1 = np.asarray(x1, dtype=np.float32).reshape(-1)[pos]
    x2 = np.asarray(x2, dtype=np.float32).reshape(-1)[pos]
    grp = group_ids[pos]
    length = x2 - x1 + LENGTH_EPS

    # First selection of every group: its first row (its best candidate), with its own score.
    _, top = np.unique(grp, return_index=True)
    top = top[cur[top] > neg_inf]
    picked[pos[top]] = cur[top]
    count = np.bincount(grp[top], minlength=num_groups)
    # A group whose best is below min_score ends there (everything else is lower still). In the
    # other groups, candidates below min_score go before anything decays (the reference removes
    # them at its first selection); the best's decay is applied in the loop like any selection.
    low = np.zeros(num_groups, dtype=bool)
    low[grp[top]] = cur[top] < floor
    first = top[~low[grp[top]]]
    cur = np.where((cur >= floor) & ~low[grp], cur, neg_inf)
    cur[top] = neg_inf
    if (hard and iou_threshold <= 0) or max_num <= 1:
        cur[:] = neg_inf  # one selection per group: every pair has IoU >= threshold / cap 1
        first = first[:0]

    # Decay windows: a candidate of length <= L can overlap [s, e] only if its start lies in
    # (s - L, e). Rows are listed by (group, length octave, start) in ``by_start``, one "cell"
    # per (group, octave) with its own longest length L, so a selection's decay visits one
    # start-sorted range per cell. ``sort_key`` puts each cell in its own float64 range.
    seg_len = np.maximum(x2.astype(np.float64) - x1, 0.0)
    octave = np.floor(np.log2(np.maximum(seg_len, 1e-30)) / OCTAVES_PER_CELL)
    octave = np.clip(octave, octave.max() - (NUM_OCTAVES - 1), None).astype(np.int64)
    octave -= octave.min()
    num_oct = int(octave.max()) + 1
    cell = grp * num_oct + octave
    by_start = np.lexsort((x1, cell))
    bx1, bx2, blen, bcell = x1[by_start], x2[by_start], length[by_start], cell[by_start]
    longest = np.zeros(num_groups * num_oct, dtype=np.float64)
    cstart = np.searchsorted(bcell, np.arange(longest.size))
    filled = cstart < np.append(cstart[1:], bcell.size)
    longest[filled] = np.maximum.reduceat(seg_len[by_start], cstart[filled])
    base = float(bx1.min())
    span = max(float(bx2.max()) - base, 0.0)
    margin = 4.0 * float(np.spacing(np.float32(max(abs(base), abs(float(bx2.max()))))))
    stride = span + float(longest.max()) + 4.0 * margin + 1.0
    sort_key = bcell * stride + (bx1.astype(np.float64) - base)
    cells = np.arange(num_oct)
    lo_shift = (longest + margin + base).reshape(num_groups, num_oct)
    hi_shift = base - margin

    # Rows >= tail can no longer matter (below min_score, or below the total_max-th selection).
    tail = int(np.count_nonzero(cur > neg_inf)) and int(np.flatnonzero(cur > neg_inf)[-1]) + 1
    head = 0
    window = 4 * block
    group_bar = np.full(num_groups, int_min, dtype=np.int64)
    per_group_bar = num_groups > 1 and (total_max is None or total_max > max_num)
    picked_rows = [top]
    earlier = np.zeros((0, 0), dtype=bool)
    sel = first
    while True:
        if sel.size:
            # Decay by the selections just made, of the rows in their windows.
            sx1, sx2, slen, sgrp = x1[sel], x2[sel], length[sel], grp[sel]
            scell = (sgrp[:, None] * num_oct + cells) * stride  # (S, octaves)
            lo = np.searchsorted(sort_key, scell + (sx1[:, None] - lo_shift[sgrp]), "right")
            hi = np.searchsorted(sort_key, scell + (sx2[:, None] - hi_shift), "left")
            sizes = (hi - lo).reshape(-1)
            lo = lo.reshape(-1)
            src_of = np.repeat(np.arange(sel.size), num_oct)
            total = int(sizes.sum())
            if total:
                src = np.repeat(src_of, sizes)
                tgt = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes - lo, sizes)
                inter = np.minimum(bx2[tgt], sx2[src])
                inter -= np.maximum(bx1[tgt], sx1[src])
                np.maximum(inter, 0, out=inter)
                iou = inter / (blen[tgt] + slen[src] - inter)
                if hard:
                    cur[by_start[tgt[iou >= iou_threshold]]] = neg_inf
                else:
                    acc = np.bincount(tgt, weights=iou * iou, minlength=n)
                    hit = np.flatnonzero(acc > 0)
                    rows = by_start[hit]
                    new = cur[rows] * np.exp((acc[hit] * (-1.0 / sigma)).astype(np.float32))
                    cur[rows] = np.where(new < floor, neg_inf, new)

        # Raise the bar once enough is kept: a candidate ranked below the max_num-th selection
        # of its group (or the total_max-th of all) can only be selected lower still, and so
        # can anything it would decay (selected after it, so lower too).
        bar = int_min
        done = int(count.sum())
        if total_max is not None and done >= total_max:
            rows = np.concatenate(picked_rows)
            keys = order_key(picked[pos[rows]], pos[rows])
            bar = int(np.partition(keys, keys.size - total_max)[keys.size - total_max])
        if (count >= max_num).any():
            if num_groups == 1:
                rows = np.concatenate(picked_rows)
                keys = order_key(picked[pos[rows]], pos[rows])
                bar = max(bar, int(np.partition(keys, keys.size - max_num)[keys.size - max_num]))
            elif per_group_bar:
                group_bar = _kth_key_per_group(picked, group_ids, max_num)
        if bar > int_min:
            tail = min(tail, int(np.count_nonzero(okey >= bar)))

        # Members: the `block` best alive rows. Rows past the window rank at most their
        # original key, so members must beat the first row past the window.
        members = None
        while head < tail:
            end = min(head + window, tail)
            cw = cur[head:end]
            kw = order_key(cw, pos[head:end])
            dead = cw == neg_inf
            if bar > int_min or per_group_bar:
                dead |= kw < np.maximum(bar, group_bar[grp[head:end]])
            kw[dead] = int_min
            first_alive = int(np.argmin(dead)) if not dead.all() else end - head
            if first_alive:
                cur[head : head + first_alive][dead[:first_alive]] = neg_inf
                head += first_alive
                if head >= end:
                    continue
                cw, kw = cw[first_alive:], kw[first_alive:]
            live = kw > int_min
            num_live = int(np.count_nonzero(live))
            if num_live > block:
                cand = np.argpartition(kw, kw.size - block)[kw.size - block :]
            else:
                cand = np.flatnonzero(live)
            if end < tail:
                cand = cand[kw[cand] > okey[end]]
                if cand.size < max(1, block // 2) and window < tail - head:
                    window *= 2
                    continue
            members = head + cand[np.argsort(-kw[cand])]  # best first
            break
        if members is None or members.size == 0:
            break

        if members.size > 1:
            mx1, mx2, mgrp = x1[members], x2[members], grp[members]
            overlap = mx1[:, None] < mx2[None, :]
            overlap &= mx1[None, :] < mx2[:, None]
            if num_groups > 1:
                overlap &= mgrp[:, None] == mgrp[None, :]
            if earlier.shape[0] < members.size:
                earlier = np.triu(np.ones((members.size, members.size), dtype=bool), 1)
            overlap &= earlier[: members.size, : members.size]  # [i, j]: i ranked before j
            blocked = overlap.any(0)
            sel = members[~blocked]
        else:
            sel = members
        picked[pos[sel]] = cur[sel]
        picked_rows.append(sel)
        count += np.bincount(grp[sel], minlength=num_groups)
        cur[sel] = neg_inf

    # Keep the first max_num selections of each group (a round may overshoot).
    if int(count.max()) > max_num:
        idx = np.flatnonzero(picked > -np.inf)
        order = np.lexsort((idx, -picked[idx], group_ids[idx]))
        idx = idx[order]
        g = group_ids[idx]
        rank = np.arange(idx.size) - np.searchsorted(g, g)
        picked[idx[rank >= max_num]] = -np.inf
    return picked


def _kth_key_per_group(picked: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Order key of each group's k-th best selection (int64 minimum where fewer than k)."""
    num_groups = int(groups.max()) + 1
    out = np.full(num_groups, np.iinfo(np.int64).min, dtype=np.int64)
    idx = np.flatnonzero(picked > -np.inf)
    key = order_key(picked[idx], idx)
    g = groups[idx]
    order = np.lexsort((-key, g))
    g, key = g[order], key[order]
    rank = np.arange(g.size) - np.searchsorted(g, g)
    out[g[rank == k - 1]] = key[rank == k - 1]
    return out

"""Exact greedy (Soft-)NMS of many independent groups, in numpy, computed in rounds.

Reference semantics (ActionFormer / TriDet ``nms_cpu.cpp``, docs/decisions.md D48-D52): per group,
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

from dataclasses import dataclass, replace

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
_NEG_INF = np.float32(-np.inf)
_INT_MIN = np.iinfo(np.int64).min


def order_key(scores: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Strict total order as int64: higher score first, then lower position (float32 scores).

    The float32 bit pattern is made monotonic (negative floats have their magnitude bits
    flipped), shifted up 32 bits, and the low 32 bits hold ``2^32 - 1 - position``.
    """
    bits = scores.astype(np.float32, copy=False).view(np.int32).astype(np.int64)
    mono = np.where(bits < 0, bits ^ _LOW31, bits)
    return (mono << 32) | (np.int64(0xFFFFFFFF) - position)


@dataclass(frozen=True)
class _Options:
    """The settings of one call (see ``greedy_nms``)."""

    sigma: float
    floor: np.float32  # min_score
    max_num: int
    iou_threshold: float | None
    total_max: int | None
    block: int
    # Whether each group gets its own bar at its max_num-th selection: with one group the
    # overall bar does it, and a total_max <= max_num cuts deeper anyway.
    per_group_bar: bool


@dataclass(frozen=True)
class _Rows:
    """The candidates of one call as rows in order of their initial (score, position) key.

    The arrays are shared, not copied: ``cur`` and ``picked`` are updated in place.
    """

    pos: np.ndarray  # row -> input position
    okey: np.ndarray  # initial order key, non-increasing
    x1: np.ndarray
    x2: np.ndarray
    length: np.ndarray  # x2 - x1 + LENGTH_EPS, as in the reference IoU
    grp: np.ndarray  # group id of each row, 0..num_groups-1
    cur: np.ndarray  # current score; -inf once selected, dropped or cut
    group_ids: np.ndarray  # group id by input position
    num_groups: int
    picked: np.ndarray  # the result, by input position


@dataclass(frozen=True)
class _Windows:
    """Rows listed by (group, length octave, start) in ``by_start``, one "cell" per (group,
    octave), and what turns a selection into one start-sorted row range per cell."""

    by_start: np.ndarray  # listing -> row
    bx1: np.ndarray
    bx2: np.ndarray
    blen: np.ndarray
    sort_key: np.ndarray  # each cell in its own float64 range, by start within it
    cells: np.ndarray  # arange(num_oct)
    num_oct: int
    stride: float
    lo_shift: np.ndarray  # (groups, octaves)
    hi_shift: float


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
    picked = np.full(scores.shape[0], -np.inf, dtype=np.float32)
    if picked.size == 0:
        return picked
    rows = _rank_rows(x1, x2, scores, groups, picked)
    block = max(1, int(block))
    per_group_bar = rows.num_groups > 1 and (total_max is None or total_max > max_num)
    opts = _Options(
        sigma, np.float32(min_score), max_num, iou_threshold, total_max, block, per_group_bar
    )
    rows, top, sel = _first_selections(rows, opts)
    count = np.bincount(rows.grp[top], minlength=rows.num_groups)
    _greedy_rounds(rows, top, sel, count, picked, opts)
    if int(count.max()) > max_num:  # a round may overshoot
        _keep_first_per_group(picked, rows.group_ids, max_num)
    return picked


def _greedy_rounds(
    rows: _Rows,
    top: np.ndarray,
    sel: np.ndarray,
    count: np.ndarray,
    picked: np.ndarray,
    opts: _Options,
) -> None:
    """Decay by the last selections, then select the next non-overlapping block, until no
    candidate can matter; ``picked`` and ``count`` (selections per group) are filled in place."""
    windows = _decay_windows(rows)
    # Rows >= tail can no longer matter (below min_score, or below the total_max-th selection).
    alive = rows.cur > _NEG_INF
    tail = int(np.count_nonzero(alive)) and int(np.flatnonzero(alive)[-1]) + 1
    head, window = 0, 4 * opts.block
    group_bar = np.full(rows.num_groups, _INT_MIN, dtype=np.int64)
    picked_rows = [top]
    earlier = np.zeros((0, 0), dtype=bool)
    while True:
        if sel.size:
            _decay(rows, windows, sel, opts)
        bar, group_bar = _bar(rows, picked_rows, count, group_bar, opts)
        if bar > _INT_MIN:
            tail = min(tail, int(np.count_nonzero(rows.okey >= bar)))
        members, head, window = _members(rows, head, tail, window, bar, group_bar, opts)
        if members is None or members.size == 0:
            return
        sel, earlier = _non_overlapping(rows, members, earlier)
        picked[rows.pos[sel]] = rows.cur[sel]
        picked_rows.append(sel)
        count += np.bincount(rows.grp[sel], minlength=rows.num_groups)
        rows.cur[sel] = _NEG_INF


def _rank_rows(
    x1: np.ndarray,
    x2: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None,
    picked: np.ndarray,
) -> _Rows:
    """The rows of a call, sorted by the initial order key (score, then input position)."""
    n = scores.shape[0]
    if groups is None:
        group_ids = np.zeros(n, dtype=np.int64)
    else:
        group_ids = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)[1]
        group_ids = group_ids.reshape(-1).astype(np.int64, copy=False)
    cur = np.where(np.isnan(scores), _NEG_INF, scores)
    okey = order_key(cur, np.arange(n, dtype=np.int64))
    pos = np.argsort(-okey)
    # Callers sort by score first: the rows are then the input order, no gather of okey / cur.
    if not (pos[1:] > pos[:-1]).all():
        okey, cur = okey[pos], cur[pos]
    else:
        pos = np.arange(n, dtype=np.int64)
    x1 = np.asarray(x1, dtype=np.float32).reshape(-1)[pos]
    x2 = np.asarray(x2, dtype=np.float32).reshape(-1)[pos]
    return _Rows(
        pos=pos,
        okey=okey,
        x1=x1,
        x2=x2,
        length=x2 - x1 + LENGTH_EPS,
        grp=group_ids[pos],
        cur=cur,
        group_ids=group_ids,
        num_groups=int(group_ids.max()) + 1,
        picked=picked,
    )


def _first_selections(rows: _Rows, opts: _Options) -> tuple[_Rows, np.ndarray, np.ndarray]:
    """Selects each group's first row (its best candidate) with its own score.

    Returns the rows with the candidates that can no longer be selected at -inf, these first
    selections, and those of them whose decay is still to apply.
    """
    cur, grp = rows.cur, rows.grp
    _, top = np.unique(grp, return_index=True)
    top = top[cur[top] > _NEG_INF]
    rows.picked[rows.pos[top]] = cur[top]
    # A group whose best is below min_score ends there (everything else is lower still). In the
    # other groups, candidates below min_score go before anything decays (the reference removes
    # them at its first selection); the best's decay is applied in the loop like any selection.
    low = np.zeros(rows.num_groups, dtype=bool)
    low[grp[top]] = cur[top] < opts.floor
    first = top[~low[grp[top]]]
    cur = np.where((cur >= opts.floor) & ~low[grp], cur, _NEG_INF)
    cur[top] = _NEG_INF
    hard = opts.iou_threshold is not None
    if (hard and opts.iou_threshold <= 0) or opts.max_num <= 1:
        cur[:] = _NEG_INF  # one selection per group: every pair has IoU >= threshold / cap 1
        first = first[:0]
    return replace(rows, cur=cur), top, first


def _decay_windows(rows: _Rows) -> _Windows:
    """The decay windows of the rows.

    A candidate of length <= L can overlap [s, e] only if its start lies in (s - L, e), so with
    the longest length L of each cell, a selection's decay visits one start-sorted range per
    cell; binning lengths by octaves keeps L close to each candidate's own length.
    """
    x1, x2 = rows.x1, rows.x2
    seg_len = np.maximum(x2.astype(np.float64) - x1, 0.0)
    octave = np.floor(np.log2(np.maximum(seg_len, 1e-30)) / OCTAVES_PER_CELL)
    octave = np.clip(octave, octave.max() - (NUM_OCTAVES - 1), None).astype(np.int64)
    octave -= octave.min()
    num_oct = int(octave.max()) + 1
    cell = rows.grp * num_oct + octave
    by_start = np.lexsort((x1, cell))
    bx1, bx2, bcell = x1[by_start], x2[by_start], cell[by_start]
    longest = np.zeros(rows.num_groups * num_oct, dtype=np.float64)
    cstart = np.searchsorted(bcell, np.arange(longest.size))
    filled = cstart < np.append(cstart[1:], bcell.size)
    longest[filled] = np.maximum.reduceat(seg_len[by_start], cstart[filled])
    base = float(bx1.min())
    span = max(float(bx2.max()) - base, 0.0)
    # The float64 bounds are widened by a few float32 ulps so that rounding never loses a row.
    margin = 4.0 * float(np.spacing(np.float32(max(abs(base), abs(float(bx2.max()))))))
    stride = span + float(longest.max()) + 4.0 * margin + 1.0
    return _Windows(
        by_start=by_start,
        bx1=bx1,
        bx2=bx2,
        blen=rows.length[by_start],
        sort_key=bcell * stride + (bx1.astype(np.float64) - base),
        cells=np.arange(num_oct),
        num_oct=num_oct,
        stride=stride,
        lo_shift=(longest + margin + base).reshape(rows.num_groups, num_oct),
        hi_shift=base - margin,
    )


def _window_ious(
    rows: _Rows, win: _Windows, sel: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """IoU of the selections ``sel`` (rows) with every row in their windows.

    Returns (the rows as ``by_start`` indices, the IoUs), or None where the windows are empty.
    """
    sx1, sx2, slen, sgrp = rows.x1[sel], rows.x2[sel], rows.length[sel], rows.grp[sel]
    scell = (sgrp[:, None] * win.num_oct + win.cells) * win.stride  # (S, octaves)
    lo = np.searchsorted(win.sort_key, scell + (sx1[:, None] - win.lo_shift[sgrp]), "right")
    hi = np.searchsorted(win.sort_key, scell + (sx2[:, None] - win.hi_shift), "left")
    sizes = (hi - lo).reshape(-1)
    total = int(sizes.sum())
    if not total:
        return None
    lo = lo.reshape(-1)
    src = np.repeat(np.repeat(np.arange(sel.size), win.num_oct), sizes)
    tgt = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes - lo, sizes)
    inter = np.minimum(win.bx2[tgt], sx2[src])
    inter -= np.maximum(win.bx1[tgt], sx1[src])
    np.maximum(inter, 0, out=inter)
    return tgt, inter / (win.blen[tgt] + slen[src] - inter)


def _decay(rows: _Rows, win: _Windows, sel: np.ndarray, opts: _Options) -> None:
    """Applies the decay (hard NMS: the removal) by the selections ``sel`` (rows) at once."""
    pairs = _window_ious(rows, win, sel)
    if pairs is None:
        return
    tgt, iou = pairs
    cur = rows.cur
    if opts.iou_threshold is not None:
        cur[win.by_start[tgt[iou >= opts.iou_threshold]]] = _NEG_INF
        return
    # Decays multiply: one exp of the summed IoU^2 applies all of a round's to a row.
    acc = np.bincount(tgt, weights=iou * iou, minlength=cur.size)
    hit = np.flatnonzero(acc > 0)
    hit_rows = win.by_start[hit]
    new = cur[hit_rows] * np.exp((acc[hit] * (-1.0 / opts.sigma)).astype(np.float32))
    cur[hit_rows] = np.where(new < opts.floor, _NEG_INF, new)


def _bar(
    rows: _Rows,
    picked_rows: list[np.ndarray],
    count: np.ndarray,
    group_bar: np.ndarray,
    opts: _Options,
) -> tuple[int, np.ndarray]:
    """Order keys a row must reach to still matter: overall, and per group.

    A candidate ranked below the max_num-th selection of its group (or the total_max-th of all)
    can only be selected lower still, and so can anything it would decay (selected after it, so
    lower too). The int64 minimum means no cut yet.
    """
    bar = _INT_MIN
    if opts.total_max is not None and int(count.sum()) >= opts.total_max:
        bar = _kth_selection_key(rows, picked_rows, opts.total_max)
    if (count >= opts.max_num).any():
        if rows.num_groups == 1:
            bar = max(bar, _kth_selection_key(rows, picked_rows, opts.max_num))
        elif opts.per_group_bar:
            group_bar = _kth_key_per_group(rows.picked, rows.group_ids, opts.max_num)
    return bar, group_bar


def _kth_selection_key(rows: _Rows, picked_rows: list[np.ndarray], k: int) -> int:
    """Order key of the k-th best selection so far, all groups together."""
    sel = np.concatenate(picked_rows)
    keys = order_key(rows.picked[rows.pos[sel]], rows.pos[sel])
    return int(np.partition(keys, keys.size - k)[keys.size - k])


def _members(
    rows: _Rows,
    head: int,
    tail: int,
    window: int,
    bar: int,
    group_bar: np.ndarray,
    opts: _Options,
) -> tuple[np.ndarray | None, int, int]:
    """The round's members: the ``block`` best alive rows, best first (None or empty: done).

    Also returns the new head (rows before it are dead) and window size. Rows past the window
    rank at most their original key, so members must beat the first row past the window.
    """
    cur, block = rows.cur, opts.block
    cut = bar > _INT_MIN or opts.per_group_bar
    while head < tail:
        end = min(head + window, tail)
        cw = cur[head:end]
        kw = order_key(cw, rows.pos[head:end])
        dead = cw == _NEG_INF
        if cut:
            dead |= kw < np.maximum(bar, group_bar[rows.grp[head:end]])
        kw[dead] = _INT_MIN
        first_alive = int(np.argmin(dead)) if not dead.all() else end - head
        if first_alive:
            # Bars only rise: rows cut now stay cut, so the head can pass them for good.
            cur[head : head + first_alive][dead[:first_alive]] = _NEG_INF
            head += first_alive
            if head >= end:
                continue
            kw = kw[first_alive:]
        live = kw > _INT_MIN
        if int(np.count_nonzero(live)) > block:
            cand = np.argpartition(kw, kw.size - block)[kw.size - block :]
        else:
            cand = np.flatnonzero(live)
        if end < tail:
            cand = cand[kw[cand] > rows.okey[end]]
            if cand.size < max(1, block // 2) and window < tail - head:
                window *= 2
                continue
        return head + cand[np.argsort(-kw[cand])], head, window
    return None, head, window


def _non_overlapping(
    rows: _Rows, members: np.ndarray, earlier: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The members (best first) that no higher-ranked member of their group overlaps.

    ``earlier`` is the strict upper triangle ([i, j]: i ranked before j), cached across rounds
    and returned grown to at least the member count.
    """
    if members.size < 2:
        return members, earlier
    mx1, mx2 = rows.x1[members], rows.x2[members]
    overlap = mx1[:, None] < mx2[None, :]
    overlap &= mx1[None, :] < mx2[:, None]
    if rows.num_groups > 1:
        mgrp = rows.grp[members]
        overlap &= mgrp[:, None] == mgrp[None, :]
    if earlier.shape[0] < members.size:
        earlier = np.triu(np.ones((members.size, members.size), dtype=bool), 1)
    overlap &= earlier[: members.size, : members.size]
    return members[~overlap.any(0)], earlier


def _keep_first_per_group(picked: np.ndarray, groups: np.ndarray, max_num: int) -> None:
    """Drops, in place, every selection after the max_num-th of its group (by score, ties:
    lower position)."""
    idx = np.flatnonzero(picked > -np.inf)
    order = np.lexsort((idx, -picked[idx], groups[idx]))
    idx = idx[order]
    g = groups[idx]
    rank = np.arange(idx.size) - np.searchsorted(g, g)
    picked[idx[rank >= max_num]] = -np.inf


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

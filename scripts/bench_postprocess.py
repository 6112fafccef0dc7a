"""Time decode + NMS of one video on fake detector outputs (docs/decisions.md D71: < 30 ms THUMOS).

THUMOS-sized: 6 levels, T = 2304, 20 classes, class-aware offsets, per-class Gaussian Soft-NMS
(sigma 0.5, max 2000). ANet-sized: 6 levels, T = 768, 1 class, class-agnostic Soft-NMS
(sigma 0.7, max 200), voting 0.95, top-2 fusion with 200 external classes.

Logits mimic a trained focal-loss detector: background ~ N(bg_mean, 1.5) (bg_mean -9: few
candidates pass 1e-3; -6: every level saturates the 2000 top-k, a worst case) plus a handful of
action instances of two classes with high scores across all levels.

Usage: python scripts/bench_postprocess.py [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from logo_tal.grid import FeatureGrid
from logo_tal.models.outputs import DetectorOutput
from logo_tal.models.postprocess import PostProcessor
from logo_tal.models.score_fusion import fuse_external_scores


def fake_output(
    length: int,
    num_classes: int,
    class_aware: bool,
    bg_mean: float,
    num_levels: int = 6,
    num_actions: int = 12,
    seed: int = 0,
) -> DetectorOutput:
    gen = torch.Generator().manual_seed(seed)
    strides = [2**level for level in range(num_levels)]
    starts = torch.randint(0, length - 100, (num_actions,), generator=gen).float()
    ends = starts + torch.randint(5, 100, (num_actions,), generator=gen).float()
    act_cls = torch.randint(0, min(2, num_classes), (num_actions,), generator=gen)
    logits, offsets, masks = [], [], []
    for stride in strides:
        t_l = length // stride
        pts = torch.arange(t_l).float() * stride
        lg = bg_mean + 1.5 * torch.randn(1, t_l, num_classes, generator=gen)
        inside = (pts[:, None] >= starts) & (pts[:, None] <= ends)  # (T_l, A)
        for a in range(num_actions):
            rows = inside[:, a].nonzero().squeeze(1)
            lg[0, rows, act_cls[a]] = torch.randn(rows.numel(), generator=gen) * 2.0
        k = num_classes if class_aware else 1
        off = torch.rand(1, t_l, k, 2, generator=gen) * 4.0 + 0.2
        logits.append(lg)
        offsets.append(off)
        masks.append(torch.ones(1, t_l, dtype=torch.bool))
    return DetectorOutput(cls_logits=logits, offsets=offsets, masks=masks, strides=strides)


def bench(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process-CPU milliseconds per call.

    CPU time is reported too because the development machines are shared: wall time then
    includes time spent descheduled.
    """
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return sorted(wall)[len(wall) // 2], sorted(cpu)[len(cpu) // 2]


THUMOS_BG = (-9.0, -7.5, -6.0)
ANET_BG = (-6.0, -3.0)


def thumos_case(bg_mean: float, repeats: int, **extra) -> dict[str, float]:
    """Decode + per-class Soft-NMS of one THUMOS-sized video: counts and median wall/CPU ms."""
    grid = FeatureGrid(fps=30.0, feat_stride=4, num_frames=16)
    post = PostProcessor(sigma=0.5, max_seg_num=2000, multiclass=True, **extra)
    out = fake_output(2304, 20, class_aware=True, bg_mean=bg_mean)
    segs, _, _ = post.candidates(out, 0)
    dets = post(out, [grid], [300.0])[0]
    wall, cpu = bench(lambda: post(out, [grid], [300.0]), repeats)
    return {"candidates": segs.shape[0], "detections": len(dets), "wall_ms": wall, "cpu_ms": cpu}


def anet_case(bg_mean: float, repeats: int, **extra) -> dict[str, float]:
    """Decode + class-agnostic Soft-NMS + voting + top-2 fusion of one ANet-sized video."""
    grid = FeatureGrid(fps=15.0, feat_stride=16, num_frames=16)
    post = PostProcessor(
        sigma=0.7,
        max_seg_num=200,
        multiclass=False,
        voting_thresh=0.95,
        duration_thresh=0.1,
        **extra,
    )
    ext = torch.rand(200, generator=torch.Generator().manual_seed(0)).softmax(0)
    out = fake_output(768, 1, class_aware=False, bg_mean=bg_mean)
    segs, _, _ = post.candidates(out, 0)

    def run():
        return fuse_external_scores(post(out, [grid], [400.0])[0], ext, 2, 200)

    wall, cpu = bench(run, repeats)
    return {"candidates": segs.shape[0], "detections": len(run()), "wall_ms": wall, "cpu_ms": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--block", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = {} if args.block is None else {"block": args.block}

    for bg in THUMOS_BG:
        r = thumos_case(bg, args.repeats, **extra)
        print(
            f"THUMOS bg_mean={bg:5.1f}: {r['candidates']:5d} candidates -> "
            f"{r['detections']:4d} dets, decode+SoftNMS {r['wall_ms']:6.1f} ms/video wall, "
            f"{r['cpu_ms']:6.1f} ms CPU (medians)"
        )
    for bg in ANET_BG:
        r = anet_case(bg, args.repeats, **extra)
        print(
            f"ANet   bg_mean={bg:5.1f}: {r['candidates']:5d} candidates -> "
            f"{r['detections']:4d} dets, decode+SoftNMS+voting+fusion {r['wall_ms']:6.1f} "
            f"ms/video wall, {r['cpu_ms']:6.1f} ms CPU"
        )


if __name__ == "__main__":
    main()

"""Time decode + NMS of one video on fake detector outputs (docs/decisions.md D71: < 30 ms THUMOS).

THUMOS-sized: 6 levels, T = 2304, 20 classes, class-aware offsets, per-class Gaussian Soft-NMS
(sigma 0.5, max 2000). ANet-sized: 6 levels, T = 768, 1 class, class-agnostic Soft-NMS
(sigma 0.7, max 200), voting 0.95, top-2 fusion with 200 external classes.

Logits mimic a trained focal-loss detector: background ~ N(bg_mean, 1.5) (bg_mean -9: few
candidates pass 1e-3; -6: every level saturates the 2000 top-k, a worst case) plus a handful of
action instances of two classes with high scores across all levels.

Settings (issue 10): "default" is ``PostProcessor()`` as users get it, in a process with torch's
default thread count (it runs its torch ops at one thread, ``num_threads=1``); "threads=1" and
"threads=2" force that many torch threads inside post-processing (``num_threads``). Each row
prints the best and the median wall time and the median CPU time per video. ``--busy N`` runs N
competing busy-loop processes during the measurement (a shared machine), killed afterwards.
Timings are only comparable on an otherwise idle machine: a 1-minute load average above half
the core count prints a warning.

Usage: python scripts/bench_postprocess.py [--repeats 20] [--settings default 1 2] [--busy 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import torch

from logo_tal.core.grid import FeatureGrid
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


def bench(fn, repeats: int) -> tuple[float, float, float]:
    """Best wall, median wall and median process-CPU milliseconds per call.

    CPU time is reported too because the development machines are shared: wall time then
    includes time spent descheduled. The best wall time is the least disturbed one.
    """
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    wall.sort()
    cpu.sort()
    return wall[0], wall[len(wall) // 2], cpu[len(cpu) // 2]


def load_warning() -> str | None:
    """A warning when the 1-minute load average exceeds half the cores, else None."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > 0.5 * cores:
        return (
            f"WARNING: 1-minute load average {load:.2f} > 0.5 x {cores} cores: other processes "
            "share the CPU, timings are not comparable with an idle machine"
        )
    return None


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Run ``count`` busy-loop Python processes (a shared machine) and kill them afterwards."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, count))
    ]
    try:
        if procs:
            time.sleep(0.5)  # let them reach the CPU
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def setting_options(setting: str) -> dict[str, int]:
    """'default' -> PostProcessor defaults; '1', '2', ... -> num_threads=that."""
    return {} if setting == "default" else {"num_threads": int(setting)}


THUMOS_BG = (-9.0, -7.5, -6.0)
ANET_BG = (-6.0, -3.0)


def thumos_case(bg_mean: float, repeats: int, **extra) -> dict[str, float]:
    """Decode + per-class Soft-NMS of one THUMOS-sized video: counts and median wall/CPU ms."""
    grid = FeatureGrid(fps=30.0, feat_stride=4, num_frames=16)
    post = PostProcessor(sigma=0.5, max_seg_num=2000, multiclass=True, **extra)
    out = fake_output(2304, 20, class_aware=True, bg_mean=bg_mean)
    segs, _, _ = post.candidates(out, 0)
    dets = post(out, [grid], [300.0])[0]
    best, wall, cpu = bench(lambda: post(out, [grid], [300.0]), repeats)
    return {
        "candidates": segs.shape[0],
        "detections": len(dets),
        "best_ms": best,
        "wall_ms": wall,
        "cpu_ms": cpu,
    }


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

    best, wall, cpu = bench(run, repeats)
    return {
        "candidates": segs.shape[0],
        "detections": len(run()),
        "best_ms": best,
        "wall_ms": wall,
        "cpu_ms": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--settings",
        nargs="*",
        default=["default", "1", "2"],
        help="'default' (PostProcessor as shipped) and/or torch thread counts for num_threads",
    )
    parser.add_argument("--threads", type=int, default=None, help="process torch threads")
    parser.add_argument("--block", type=int, default=None)
    parser.add_argument("--busy", type=int, default=0, help="competing busy-loop processes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, process threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} cores, busy processes {args.busy}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    warning = load_warning()
    if warning and not args.busy:
        print(warning, file=sys.stderr)
    with busy_processes(args.busy):
        for setting in args.settings:
            extra = setting_options(setting)
            if args.block is not None:
                extra["block"] = args.block
            for bg in THUMOS_BG:
                r = thumos_case(bg, args.repeats, **extra)
                print(
                    f"[{setting:>7}] THUMOS bg={bg:5.1f}: {r['candidates']:5d} cand. -> "
                    f"{r['detections']:4d} dets, decode+SoftNMS best {r['best_ms']:6.1f} / "
                    f"median {r['wall_ms']:6.1f} ms wall, {r['cpu_ms']:6.1f} ms CPU"
                )
            for bg in ANET_BG:
                r = anet_case(bg, args.repeats, **extra)
                print(
                    f"[{setting:>7}] ANet   bg={bg:5.1f}: {r['candidates']:5d} cand. -> "
                    f"{r['detections']:4d} dets, +voting+fusion  best {r['best_ms']:6.1f} / "
                    f"median {r['wall_ms']:6.1f} ms wall, {r['cpu_ms']:6.1f} ms CPU"
                )
    print(f"load at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Benchmark every encoder x head at THUMOS dimensions against the machine's conv1d rate.

docs/decisions.md D71: the detector is dense 1-D convolutions, so its floor is its conv FLOPs
divided by the machine's sustained conv1d rate. This script measures that rate (a big dense
conv1d), counts the model's conv FLOPs with forward hooks, times inference (eval, no_grad)
and a training step (forward + sum-loss backward), and prints the achieved fraction.

    python scripts/bench_model.py                       # all combinations, batch 1 and 2
    python scripts/bench_model.py --encoders logo --heads clff --batches 1 --repeats 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

CONF = Path(__file__).resolve().parents[1] / "conf"
INPUT_DIM, NUM_CLASSES, LENGTH = 2048, 20, 2304  # THUMOS14 I3D, max_seq_len (ActionFormer)


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``fn`` in seconds (timeit's rule: on a shared machine the minimum is
    the least disturbed run)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def conv_rate(repeats: int) -> float:
    """Sustained dense conv1d rate in GFLOP/s: (2, 512, 2304) * (512, 512, 3), the model's
    dominant shape."""
    x = torch.randn(2, 512, LENGTH)
    w = torch.randn(512, 512, 3)
    flops = 2 * 2 * 512 * 512 * 3 * LENGTH
    seconds = timed(lambda: F.conv1d(x, w, padding=1), max(repeats, 5), warmup=1)
    return flops / seconds / 1e9


def count_conv_flops(det: nn.Module, feats: torch.Tensor, mask: torch.Tensor) -> tuple[int, int]:
    """Forward and backward multiply-add FLOPs (x2) of every Conv1d, via forward hooks.

    Backward: weight gradient always, input gradient only where the input requires it (the
    first projection conv and the boundary heads on detached features have none).
    """
    fwd, bwd = [0], [0]

    def hook(module: nn.Conv1d, args, out) -> None:
        x = args[0]
        out = out[0] if isinstance(out, tuple) else out  # MaskedConv1d returns (x, mask)
        flops = 2 * out.numel() * (module.in_channels // module.groups) * module.kernel_size[0]
        fwd[0] += flops
        bwd[0] += flops * (1 + int(x.requires_grad))

    handles = [m.register_forward_hook(hook) for m in det.modules() if isinstance(m, nn.Conv1d)]
    try:
        out = det(feats, mask)
        loss_of(out).backward()
    finally:
        for handle in handles:
            handle.remove()
    det.zero_grad(set_to_none=True)
    return fwd[0], bwd[0]


def loss_of(out) -> torch.Tensor:
    return sum(x.sum() for x in out.cls_logits) + sum(x.sum() for x in out.offsets)


def build(encoder: str, head: str) -> nn.Module:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name=None,
            overrides=[
                "+model=default",
                f"+data.features.input_dim={INPUT_DIM}",
                f"+data.annotations.num_classes={NUM_CLASSES}",
                f"model/encoder={encoder}",
                f"model/head={head}",
            ],
        )
    torch.manual_seed(0)
    return instantiate(cfg.model.detector)


def make_inputs(batch: int, length: int = LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Random THUMOS-width features and a mask; batch-mates after the first are a third shorter,
    as in real padded batches."""
    torch.manual_seed(1)
    feats = torch.randn(batch, INPUT_DIM, length)
    mask = torch.ones(batch, length, dtype=torch.bool)
    if batch > 1:
        mask[1:, length * 2 // 3 :] = False
    return feats, mask


def step_fns(
    det: nn.Module, feats: torch.Tensor, mask: torch.Tensor
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(inference, training step) closures; the caller sets eval/train mode."""

    def infer() -> None:
        with torch.no_grad():
            det(feats, mask)

    def train_step() -> None:
        loss_of(det(feats, mask)).backward()
        det.zero_grad(set_to_none=True)

    return infer, train_step


def measure(
    det: nn.Module, batch: int, repeats: int, length: int = LENGTH, train: bool = True
) -> dict[str, float]:
    """Time one model at one batch size against the conv1d rate measured just before it.

    Returns seconds, conv GFLOP and the achieved percentage of the rate for inference and
    (if ``train``) a training step; ``rate_gflops`` is the reference rate.
    """
    feats, mask = make_inputs(batch, length)
    det.train()
    fwd_flops, bwd_flops = count_conv_flops(det, feats, mask)
    infer, train_step = step_fns(det, feats, mask)
    rate = conv_rate(repeats)
    det.eval()
    t_fwd = timed(infer, repeats)
    out = {
        "params_M": sum(p.numel() for p in det.parameters()) / 1e6,
        "rate_gflops": rate,
        "fwd_gflop": fwd_flops / 1e9,
        "fwd_s": t_fwd,
        "fwd_pct": 100 * fwd_flops / t_fwd / 1e9 / rate,
    }
    if train:
        det.train()
        t_train = timed(train_step, repeats)
        train_flops = fwd_flops + bwd_flops
        out.update(
            train_gflop=train_flops / 1e9,
            train_s=t_train,
            train_pct=100 * train_flops / t_train / 1e9 / rate,
        )
    return out


def all_encoders() -> list[str]:
    return sorted(p.stem for p in (CONF / "model/encoder").glob("*.yaml"))


def all_heads() -> list[str]:
    return sorted(p.stem for p in (CONF / "model/head").glob("*.yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="*", default=None, help="default: all in conf")
    parser.add_argument("--heads", nargs="*", default=None, help="default: all in conf")
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    encoders = args.encoders or all_encoders()
    heads = args.heads or all_heads()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; % = achieved conv "
        f"GFLOP/s over the dense conv1d rate (2x512x{LENGTH}, 512->512 k3) measured just "
        "before each row, so load from other processes affects both alike"
    )
    header = (
        f"{'encoder':<12}{'head':<13}{'B':>2}{'params M':>10}{'rate GF/s':>10}{'conv GF':>9}"
        f"{'fwd s':>8}{'fwd %':>7}{'train GF':>10}{'train s':>9}{'train %':>8}"
    )
    print(header)
    print("-" * len(header))
    for encoder in encoders:
        for head in heads:
            det = build(encoder, head)
            for batch in args.batches:
                r = measure(det, batch, args.repeats)
                print(
                    f"{encoder:<12}{head:<13}{batch:>2}{r['params_M']:>10.2f}"
                    f"{r['rate_gflops']:>10.1f}{r['fwd_gflop']:>9.1f}"
                    f"{r['fwd_s']:>8.3f}{r['fwd_pct']:>6.0f}%"
                    f"{r['train_gflop']:>10.1f}{r['train_s']:>9.3f}{r['train_pct']:>7.0f}%",
                    flush=True,
                )


if __name__ == "__main__":
    main()

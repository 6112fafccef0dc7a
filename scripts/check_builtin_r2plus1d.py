"""Compare the built-in R(2+1)D-18 (logo_tal.prep.extract.r2plus1d) with torchvision's, value
by value.

torchvision does not import beside the project's torch, so run this with a separate
environment that has a matching torch + torchvision pair and the project's ``src`` on the path:

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    PYTHONPATH=src /tmp/tvenv/bin/python scripts/check_builtin_r2plus1d.py

Checks (no download: torchvision's model is randomly initialised, weights=None):

1. network: ``torchvision.models.video.r2plus1d_18`` with random BatchNorm statistics and
   affine parameters, its state dict loaded into ``R2Plus1D18`` with ``strict=True``; the 512-d
   pooled embedding (avgpool output) and the 400 logits of both on random clips
   ``(N, 3, 16, 112, 112)`` float32 in eval mode, allclose(rtol=1e-4, atol=1e-5).
2. preprocessing: random uint8 videos through ``VideoPreset`` and through
   ``Backbone.preprocess`` of ``build_backbone(implementation="builtin")`` against
   ``R2Plus1D_18_Weights.KINETICS400_V1.transforms()`` (input ``(T, C, H, W)`` uint8, output
   ``(C, T, 112, 112)`` float32), allclose(rtol=0, atol=1e-5).

Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from logo_tal.prep.extract import r2plus1d
from logo_tal.prep.extract.backbones import build_backbone


def perturb_batchnorm(model: nn.Module, gen: torch.Generator) -> int:
    """Random running stats and affine parameters in every BatchNorm3d; returns how many."""
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                count += 1
    return count


def diffs(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max abs diff, max relative diff |a - b| / max(|b|, 1e-12))."""
    d = (a.double() - b.double()).abs()
    rel = d / b.double().abs().clamp_min(1e-12)
    return d.max().item(), rel.max().item()


def pooled_output(model: nn.Module, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(embedding (N, 512) captured at ``avgpool``, logits (N, 400)) of one forward pass."""
    captured = {}
    hook = model.avgpool.register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("emb", out.flatten(1).clone())
    )
    try:
        with torch.inference_mode():
            logits = model(clips)
    finally:
        hook.remove()
    return captured["emb"], logits


def check_network(args, torchvision) -> bool:
    torch.manual_seed(args.seed)
    reference = torchvision.models.video.r2plus1d_18(weights=None)
    n_bn = perturb_batchnorm(reference, torch.Generator().manual_seed(args.seed + 1))
    reference.eval()
    builtin = r2plus1d.R2Plus1D18()
    state = reference.state_dict()
    result = builtin.load_state_dict(state, strict=True)
    builtin.eval()
    n_params = sum(p.numel() for p in builtin.parameters())
    print(
        f"[network] state dict: {len(state)} entries, {n_params} parameters, "
        f"{n_bn} BatchNorm3d perturbed, strict load: {result}"
    )

    clips = torch.randn(args.clips, 3, 16, 112, 112, generator=torch.Generator().manual_seed(7))
    emb_ref, logits_ref = pooled_output(reference, clips)
    emb_new, logits_new = pooled_output(builtin, clips)
    ok = True
    for name, new, ref in (("embedding", emb_new, emb_ref), ("logits", logits_new, logits_ref)):
        abs_d, rel_d = diffs(new, ref)
        good = torch.allclose(new, ref, rtol=1e-4, atol=1e-5)
        ok &= good
        print(
            f"[network] {name} {tuple(new.shape)}: |ref| max {ref.abs().max().item():.4g}, "
            f"max abs diff {abs_d:.3g}, max rel diff {rel_d:.3g}, "
            f"bit-identical {torch.equal(new, ref)} -> {'PASS' if good else 'FAIL'}"
        )
    return ok


def check_preprocessing(args, torchvision) -> bool:
    reference = torchvision.models.video.R2Plus1D_18_Weights.KINETICS400_V1.transforms()
    preset = r2plus1d.VideoPreset()
    backbone = build_backbone("r2plus1d_18", weights="none", implementation="builtin")
    print(f"[preprocess] torchvision: {reference}".replace("\n", " "))
    gen = torch.Generator().manual_seed(args.seed + 2)
    ok = True
    for height, width in args.sizes:
        frames = torch.randint(0, 256, (16, height, width, 3), dtype=torch.uint8, generator=gen)
        video = frames.permute(0, 3, 1, 2).contiguous()  # (T, C, H, W), torchvision's layout
        ref = reference(video)  # (C, T, 112, 112)
        outputs = (
            ("VideoPreset", preset(video.unsqueeze(0)).squeeze(0)),
            ("Backbone.preprocess", backbone.preprocess(frames)),
        )
        for name, new in outputs:
            shape_ok = new.shape == ref.shape and new.dtype == ref.dtype
            abs_d = (new - ref).abs().max().item() if shape_ok else float("nan")
            good = shape_ok and torch.allclose(new, ref, rtol=0.0, atol=1e-5)
            ok &= good
            print(
                f"[preprocess] {height}x{width} {name}: out {tuple(new.shape)} {new.dtype} "
                f"(ref {tuple(ref.shape)} {ref.dtype}), max abs diff {abs_d:.3g}, "
                f"bit-identical {shape_ok and torch.equal(new, ref)} -> "
                f"{'PASS' if good else 'FAIL'}"
            )
            if shape_ok and not good:
                explain(video, new, ref)
    return ok


def explain(video: torch.Tensor, new: torch.Tensor, ref: torch.Tensor) -> None:
    """Where a preprocessing mismatch comes from: diffs in uint8 steps, and the crop offset."""
    std = torch.tensor(r2plus1d.KINETICS_STD).view(-1, 1, 1, 1)
    steps = ((new - ref) * std * 255).round()
    print(
        f"  differing values: {(steps != 0).sum().item()} of {steps.numel()}, "
        f"in uint8 steps from {steps.min().item():.0f} to {steps.max().item():.0f}"
    )
    resized = nn.functional.interpolate(
        video.float(), size=r2plus1d.KINETICS_RESIZE, mode="bilinear", align_corners=False
    )
    resized = resized.round().clamp(0, 255).permute(1, 0, 2, 3)  # (C, T, h, w)
    mean = torch.tensor(r2plus1d.KINETICS_MEAN).view(-1, 1, 1, 1)
    ref_pixels = (ref * std + mean) * 255
    h, w = resized.shape[-2:]
    for top in range(h - 112 + 1):
        for left in range(w - 112 + 1):
            window = resized[..., top : top + 112, left : left + 112]
            if (window - ref_pixels).abs().max() < 1e-2:
                print(f"  torchvision's output is the rounded resize cropped at ({top}, {left})")
                return
    print("  torchvision's output is no crop of the rounded float resize")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=2, help="clips in the network batch")
    parser.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x) for x in s.split("x")),
        nargs="+",
        default=[(240, 320), (360, 480)],
        help="frame sizes HxW for the preprocessing check",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-network", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    results = {"preprocessing": check_preprocessing(args, torchvision)}
    if not args.skip_network:
        results["network"] = check_network(args, torchvision)
    for name, ok in results.items():
        print(f"{name}: {'PASS' if ok else 'FAIL'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

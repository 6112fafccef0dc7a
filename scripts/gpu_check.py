"""One-shot accelerator check: the CUDA and mixed-precision paths of the detector and losses.

Builds the THUMOS14 configuration (2048-d I3D input, T = 2304, 6 levels) for every encoder x
regression head from the Hydra configs, and on the GPU:

* runs fp32 and bf16-autocast forward + assignment + eq. 7 loss + backward, checking that the
  loss and every gradient are finite and that bf16 logits stay close to fp32;
* times inference (eval, no_grad) and one optimiser step per batch size;
* times decode + Soft-NMS of the GPU outputs (post-processing runs on the CPU by design).

Usage: python scripts/gpu_check.py [--out results.json] [--iters 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from logo_tal.core.grid import FeatureGrid
from logo_tal.models.optim import param_groups

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
ENCODERS = ["logo", "transformer", "conv", "maxer"]
HEADS = ["clff", "trident", "actionformer"]


def build(encoder: str, head: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "experiment=thumos",
                f"model/encoder={encoder}",
                f"model/head={head}",
                "paths.output_dir=/tmp/gpu_check",
            ],
            return_hydra_config=False,
        )
    detector = instantiate(cfg.model.detector)
    assigner = instantiate(cfg.module.assigner)
    criterion = instantiate(cfg.module.criterion)
    post = instantiate(cfg.module.postprocess)
    return cfg, detector, assigner, criterion, post


def fake_batch(batch: int, length: int, dim: int, num_classes: int, device):
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(batch, dim, length, generator=gen).to(device)
    lengths = [length - 37 * i for i in range(batch)]
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
        feats[i, :, n:] = 0
    segments, labels = [], []
    for n in lengths:
        starts = torch.rand(12, generator=gen) * (n - 200)
        widths = 4 + torch.rand(12, generator=gen) * 150
        segments.append(torch.stack([starts, starts + widths], 1).to(device))
        labels.append(torch.randint(0, num_classes, (12,), generator=gen).to(device))
    return feats, mask.to(device), segments, labels


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, iters: int) -> float:
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters


def check_pair(encoder: str, head: str, device, iters: int) -> dict:
    cfg, detector, assigner, criterion, post = build(encoder, head)
    detector.to(device)
    criterion.to(device)
    num_classes = cfg.model.num_classes
    feats, mask, segments, labels = fake_batch(2, 2304, 2048, num_classes, device)
    row: dict = {"encoder": encoder, "head": head}
    row["params_M"] = sum(p.numel() for p in detector.parameters()) / 1e6

    def loss_of(dtype):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = detector(feats, mask)
        flat = out.flat()
        targets = assigner(flat, segments, labels)
        return out, criterion(flat, targets)["loss"]

    detector.train()
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        detector.zero_grad(set_to_none=True)
        out, loss = loss_of(dtype)
        loss.backward()
        grads_ok = all(
            p.grad is None or bool(torch.isfinite(p.grad).all()) for p in detector.parameters()
        )
        row[f"{name}_loss"] = float(loss.detach())
        row[f"{name}_finite"] = bool(torch.isfinite(loss)) and grads_ok
    detector.eval()
    with torch.no_grad():
        ref = torch.cat([x.float() for x in detector(feats, mask).cls_logits], 1)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = torch.cat([x.float() for x in detector(feats, mask).cls_logits], 1)
    row["bf16_logit_max_abs_err"] = float((ref - low).abs().max())

    for batch in (1, 2):
        f, m = feats[:batch], mask[:batch]
        with torch.no_grad():
            row[f"infer_ms_b{batch}"] = 1e3 * timed(lambda f=f, m=m: detector(f, m), iters)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                row[f"infer_bf16_ms_b{batch}"] = 1e3 * timed(
                    lambda f=f, m=m: detector(f, m), iters
                )
    detector.train()
    opt = torch.optim.AdamW(param_groups(detector, 0.025), lr=1e-4)

    def step(dtype=torch.float32):
        opt.zero_grad(set_to_none=True)
        _, loss = loss_of(dtype)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(detector.parameters(), 1.0)
        opt.step()

    row["train_step_ms_b2"] = 1e3 * timed(step, iters)
    row["train_step_bf16_ms_b2"] = 1e3 * timed(lambda: step(torch.bfloat16), iters)
    detector.eval()
    with torch.no_grad():
        out = detector(feats[:1], mask[:1])
    grid = FeatureGrid(30.0, 4, 16)
    start = time.perf_counter()
    dets = post(out, [grid], [300.0])
    row["postprocess_ms"] = 1e3 * (time.perf_counter() - start)
    row["num_dets"] = len(dets[0])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--pairs", default="all", help="'all' or enc:head,enc:head")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"torch {torch.__version__} on {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    )
    if args.pairs == "all":
        pairs = [(e, h) for e in ENCODERS for h in HEADS]
    else:
        pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    rows = []
    for encoder, head in pairs:
        try:
            row = check_pair(encoder, head, device, args.iters)
        except Exception as exc:  # report every pair, even when one breaks
            row = {"encoder": encoder, "head": head, "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"device": str(device), "rows": rows}, indent=1))
    if any("error" in r or not (r["fp32_finite"] and r["bf16_finite"]) for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

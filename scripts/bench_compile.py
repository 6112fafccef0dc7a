"""Eager vs ``torch.compile``d detector: compile time, step times, equality, and the payback.

What ``model.compile=true`` does to a run (logo_tal.models.compile): the detector at THUMOS
dimensions (LoGo + CLFF, 2048-d input, 20 classes, 6 levels) is timed eager and compiled with
the same weights: a training step (forward + backward of a sum loss, batch 2 padded to
T = 2304 as THUMOS training batches are) and inference (batch 1). The first compiled call of
each mode pays the compilation; its wall time minus a steady call is the compile time. Outputs
and gradients are compared with the eager model's (same drop-path draws). The payback line
projects a full THUMOS run (40 epochs x 100 steps of batch 2, conf/trainer/default.yaml,
conf/data/thumos.yaml) with and without compilation, evaluation not included.

    python scripts/bench_compile.py                         # inductor, THUMOS size (minutes)
    python scripts/bench_compile.py --backend aot_eager --length 288 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_model  # noqa: E402

from logo_tal.models.compile import compile_detector, compile_seconds  # noqa: E402

THUMOS_STEPS = 40 * 100  # 40 epochs x (200 validation videos / batch 2, drop_last)


def _outputs(out) -> list[torch.Tensor]:
    return [*out.cls_logits, *out.offsets]


def _train_diff(eager, compiled, feats, mask) -> dict[str, float]:
    """Largest output and gradient differences of one training step, same RNG draws."""
    grads, outs = [], []
    for det in (eager, compiled):
        det.train()
        det.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        out = det(feats, mask)
        bench_model.loss_of(out).backward()
        outs.append(_outputs(out))
        grads.append([p.grad for p in det.parameters()])
    out_diff = max((a - b).abs().max().item() for a, b in zip(*outs, strict=True))
    rel = max(
        ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        for a, b in zip(*grads, strict=True)
    )
    return {"train_out_max_abs_diff": out_diff, "grad_max_rel_diff": rel}


def _infer_diff(eager, compiled, feats, mask) -> float:
    eager.eval()
    compiled.eval()
    with torch.no_grad():
        pairs = zip(_outputs(eager(feats, mask)), _outputs(compiled(feats, mask)), strict=True)
        return max((a - b).abs().max().item() for a, b in pairs)


def _interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall seconds of each function, timed in turn so that a load change on a shared
    machine hits eager and compiled alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _mode_fns(det, mode: str, train_in, infer_in) -> Callable[[], object]:
    """The training step (train mode, batch 2) or inference (eval mode, batch 1) of ``det``."""
    infer, train_step = bench_model.step_fns(det, *(train_in if mode == "train" else infer_in))

    def run() -> None:
        det.train(mode == "train")
        (train_step if mode == "train" else infer)()

    return run


def measure(backend: str, length: int, repeats: int, mode: str | None) -> dict[str, Any]:
    """Every number of the module docstring for one backend."""
    eager = bench_model.build("logo", "clff")
    compiled = compile_detector(copy.deepcopy(eager), backend=backend, mode=mode)
    train_in = bench_model.make_inputs(2, length)
    infer_in = bench_model.make_inputs(1, length)
    fns = {
        f"{name}_{step}": _mode_fns(det, step, train_in, infer_in)
        for name, det in (("eager", eager), ("compiled", compiled))
        for step in ("train", "infer")
    }
    row: dict[str, Any] = {"backend": backend, "mode": mode, "length": length}
    before = compile_seconds()
    for step in ("train", "infer"):  # the compiled model's first calls pay the compilation
        start = time.perf_counter()
        fns[f"compiled_{step}"]()
        row[f"compiled_{step}_first_s"] = time.perf_counter() - start
    row["dynamo_s"] = compile_seconds() - before
    best = _interleaved(fns, repeats)
    row.update({f"{name}_s": seconds for name, seconds in best.items()})
    row["compile_train_s"] = row["compiled_train_first_s"] - row["compiled_train_s"]
    row["compile_infer_s"] = row["compiled_infer_first_s"] - row["compiled_infer_s"]
    row.update(_train_diff(eager, compiled, *train_in))
    row["infer_max_abs_diff"] = _infer_diff(eager, compiled, *infer_in)
    return row | payback(row)


def payback(row: dict[str, Any], steps: int = THUMOS_STEPS) -> dict[str, Any]:
    """Training steps until compilation pays for itself, and a full THUMOS run's train time."""
    saved = row["eager_train_s"] - row["compiled_train_s"]
    compile_s = row["compile_train_s"] + row["compile_infer_s"]
    return {
        "break_even_steps": compile_s / saved if saved > 0 else None,
        "thumos_train_eager_h": steps * row["eager_train_s"] / 3600,
        "thumos_train_compiled_h": (steps * row["compiled_train_s"] + compile_s) / 3600,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--mode", default=None, help="torch.compile mode, e.g. max-autotune")
    parser.add_argument("--length", type=int, default=bench_model.LENGTH)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    row = measure(args.backend, args.length, args.repeats, args.mode)
    print(json.dumps(row, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(row, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What padding costs in training: one epoch at ``data.train_padding=max_seq_len``, ``batch`` and
``batch`` + ``data.bucket_by_length`` (issue 18; docs/decisions.md D122).

    python scripts/bench_padding.py                        # THUMOS14, ActivityNet, own data
    python scripts/bench_padding.py --cases thumos --width paper --accelerator gpu
    python scripts/bench_padding.py --quick                # seconds: a few videos of each
    python scripts/bench_padding.py --compile-graphs       # + graphs of a compiled THUMOS epoch

Fake features (ReLU'd Gaussian noise, a few annotated instances per video) whose lengths follow
the real training videos of ``scripts/data/training_durations.json`` (THUMOS14: its 200
validation videos, I3D grid of 30 fps / stride 4 / window 16; ActivityNet-1.3: a seeded sample
of its 9,649 training videos, TSP grid of 15 fps / stride 16; own data: the README's 8-s clips
at 15 fps / stride 4, 27 steps each), written once per case in the layout of
``conf/data/{thumos,anet}.yaml``, then one training epoch of the case's experiment config through
``Trainer.fit`` (the real datamodule, collate, sampler and LightningModule; no validation, no
checkpoint, ``data.num_workers=0``), each setting in its own process so that its peak memory
(``ru_maxrss``, or CUDA's peak allocation on a GPU) is its own.

Per setting: epoch seconds (first to last training batch), padded fraction of the steps the
detector ran on, peak memory, and the speed-up over ``max_seq_len``. ``--width small`` (default,
for a CPU) runs the synthetic benchmark's model width (embed 128, MLP 256) at the datasets' own
lengths, batch sizes and pyramid depths; ``--width paper`` the experiment configs' models.
Timings depend on the machine's load: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DURATIONS = Path(__file__).resolve().parent / "data" / "training_durations.json"
SETTINGS = {
    "max_seq_len": ["data.train_padding=max_seq_len"],
    "batch": ["data.train_padding=batch"],
    "bucketed": ["data.train_padding=batch", "data.bucket_by_length=true"],
}
# Per case: experiment, layout root, subset, grid (fps, stride, window), feature width, classes.
CASES: dict[str, dict[str, Any]] = {
    "thumos": dict(experiment="thumos", fps=None, stride=4, window=16, dim=2048, classes=20),
    "anet": dict(experiment="anet", fps=15.0, stride=16, window=16, dim=512, classes=200),
    "own": dict(experiment="thumos", fps=15.0, stride=4, window=16, dim=512, classes=5),
}
SMALL = ["model.embed_dim=128", "model.head_dim=128", "model.mlp_hidden=256"]
OWN_CLIP_SECONDS = 8.0


def case_lengths(case: str, videos: int | None, seed: int = 0) -> list[tuple[int, float, float]]:
    """``(feature steps, duration s, fps)`` per training video of ``case``, from the real
    durations (ActivityNet: a seeded sample of ``videos`` of them; None keeps all)."""
    facts = json.loads(DURATIONS.read_text())
    spec = CASES[case]
    if case == "thumos":
        info = facts["thumos14_validation"]
        rows = [(n, n / f, f) for n, f in zip(info["num_frames"], info["fps"], strict=True)]
    elif case == "anet":
        seconds = np.asarray(facts["activitynet13_training"]["seconds"])
        if videos is not None and videos < len(seconds):
            seconds = np.random.default_rng(seed).choice(seconds, videos, replace=False)
        rows = [(int(s * spec["fps"]), float(s), spec["fps"]) for s in seconds]
    else:
        count = videos or 32
        rows = [(int(OWN_CLIP_SECONDS * spec["fps"]), OWN_CLIP_SECONDS, spec["fps"])] * count
    if videos is not None:
        rows = rows[:videos]
    out = []
    for frames, duration, fps in rows:
        steps = max((frames - spec["window"]) // spec["stride"] + 1, 1)
        out.append((steps, duration, fps))
    return out


def write_case(root: Path, case: str, videos: int | None, width: str) -> dict[str, Any]:
    """Fake features and annotations of ``case`` under ``root`` in its config's layout."""
    from logo_tal.prep.synthetic.layouts import LAYOUTS

    spec = CASES[case]
    layout = LAYOUTS["anet" if case == "anet" else "thumos"]
    base = root / layout.root
    (base / Path(layout.annotation_file).parent).mkdir(parents=True, exist_ok=True)
    (base / layout.feature_dir).mkdir(parents=True, exist_ok=True)
    dim = spec["dim"] if width == "paper" else min(spec["dim"], 512)
    rng = np.random.default_rng(0)
    names = [f"class_{c:03d}" for c in range(spec["classes"])]
    database, steps = {}, []
    for i, (length, duration, fps) in enumerate(case_lengths(case, videos)):
        video = f"video_{i:05d}"
        feats = np.maximum(rng.standard_normal((length, dim), dtype=np.float32), 0) * 0.3
        np.save(base / layout.feature_dir / f"{layout.prefix}{video}.npy", feats)
        count = 1 if case == "anet" else 3
        span = duration * (0.3 if case == "anet" else 0.05)
        starts = np.sort(rng.uniform(0, max(duration - span, 0.1), count))
        database[video] = {
            "subset": layout.train_subset,
            "duration": duration,
            "fps": fps,
            "annotations": [
                {
                    "segment": [round(float(s), 2), round(float(s + span), 2)],
                    "label": names[int(c)],
                    "label_id": int(c),
                }
                for s, c in zip(starts, rng.integers(0, len(names), count), strict=True)
            ],
        }
        steps.append(length)
    doc = {"version": f"bench_padding {case}", "database": database}
    (base / layout.annotation_file).write_text(json.dumps(doc))
    return {
        "videos": len(steps),
        "steps": int(np.sum(steps)),
        "median_steps": float(np.median(steps)),
        "dim": dim,
    }


def overrides(case: str, data_dir: Path, width: str, dim: int) -> list[str]:
    spec = CASES[case]
    out = [
        f"experiment={spec['experiment']}",
        f"paths.data_dir={data_dir}",
        f"data.features.input_dim={dim}",
        "data.num_workers=0",
        "data.annotations.val_split=${data.annotations.train_split}",
        "data.annotations.test_split=${data.annotations.train_split}",
        "protocol.fusion=null",
    ]
    if case != "anet":
        out.append(f"data.annotations.num_classes={spec['classes']}")
    if case == "own":
        out.append(f"data.features.fps={spec['fps']}")
    return out + (SMALL if width == "small" else [])


def run_epoch(
    cfg_overrides: list[str], accelerator: str, compile_backend: str | None
) -> dict[str, Any]:
    """One training epoch of the composed config in this process; what it cost."""
    import lightning.pytorch as pl
    import torch
    from hydra import compose, initialize_config_dir
    from lightning.pytorch.callbacks import Callback

    from logo_tal.app.build import build_datamodule, build_detector, build_module, build_protocol
    from logo_tal.app.cli import CONF_DIR
    from logo_tal.models.compile import compiled_graphs

    if compile_backend:
        cfg_overrides = [
            *cfg_overrides,
            "model.compile=true",
            f"model.compile_options.backend={compile_backend}",
        ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=cfg_overrides)
    pl.seed_everything(0, workers=True)
    protocol = build_protocol(cfg)
    detector = build_detector(cfg)
    datamodule = build_datamodule(cfg, detector, protocol)
    module = build_module(cfg, detector, None, protocol.tiou_thresholds)

    class Meter(Callback):
        def __init__(self) -> None:
            self.start = self.end = 0.0
            self.padded = self.total = 0
            self.lengths: set[int] = set()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.padded += int((~batch.masks).sum())
            self.total += batch.masks.numel()
            self.lengths.add(int(batch.masks.shape[1]))

        def on_train_epoch_end(self, trainer, pl_module):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.end = time.perf_counter()

    meter = Meter()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[meter],
    )
    trainer.fit(module, datamodule=datamodule)
    if torch.cuda.is_available() and accelerator != "cpu":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "epoch_s": meter.end - meter.start,
        "batches": trainer.global_step,
        "pad_fraction": meter.padded / max(meter.total, 1),
        "padded_steps": meter.total,
        "distinct_lengths": len(meter.lengths),
        "peak_mb": peak_mb,
        "graphs": compiled_graphs() if compile_backend else None,
    }


def run_setting(case, setting, data_dir, width, dim, accelerator, compile_backend=None):
    """:func:`run_epoch` in a fresh process (its own peak memory); returns its result."""
    args = [
        sys.executable, __file__, "--child", json.dumps(
            {"overrides": overrides(case, data_dir, width, dim) + SETTINGS[setting],
             "accelerator": accelerator, "compile_backend": compile_backend}
        ),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{case}/{setting} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(cases, width, accelerator, videos, anet_videos, compile_graphs, work) -> dict[str, Any]:
    results: dict[str, Any] = {"load_start": os.getloadavg(), "width": width, "cases": {}}
    for case in cases:
        data_dir = Path(work) / case
        count = anet_videos if case == "anet" else videos
        info = write_case(data_dir, case, count, width)
        rows = {}
        for setting in SETTINGS:
            rows[setting] = run_setting(case, setting, data_dir, width, info["dim"], accelerator)
            base = rows["max_seq_len"]["epoch_s"]
            rows[setting]["speedup"] = base / rows[setting]["epoch_s"]
            print(f"{case:7s} {setting:12s} {json.dumps(rows[setting])}", flush=True)
        if compile_graphs and case == "thumos":
            rows["batch_compiled"] = run_setting(
                case, "batch", data_dir, width, info["dim"], accelerator, compile_graphs
            )
            print(f"{case:7s} compiled     {json.dumps(rows['batch_compiled'])}", flush=True)
        results["cases"][case] = {"data": info, "settings": rows}
    results["load_end"] = os.getloadavg()
    return results


# Issue 18's targets for the epoch time over max_seq_len padding (benchmarks, not timed tests).
TARGETS = {
    ("thumos", "batch"): 1.3,
    ("thumos", "bucketed"): 1.6,
    ("anet", "batch"): 2.5,
    ("anet", "bucketed"): 4.0,
    ("own", "batch"): 10.0,
}


def measure(
    cases=tuple(CASES),
    width="small",
    accelerator="cpu",
    videos=None,
    anet_videos=1600,
    compile_graphs=None,
) -> dict[str, Any]:
    """:func:`run` in a temporary directory (what ``make bench``'s padding section calls)."""
    with tempfile.TemporaryDirectory(prefix="bench_padding_") as work:
        return run(list(cases), width, accelerator, videos, anet_videos, compile_graphs, work)


def table(results: dict[str, Any]) -> str:
    head = ["case", "videos", "setting", "epoch s", "speed-up", "pad fraction", "lengths"]
    lines = [
        "| " + " | ".join([*head, "graphs", "peak MB"]) + " |",
        "|" + "---|" * (len(head) + 2),
    ]
    for case, entry in results["cases"].items():
        for setting, row in entry["settings"].items():
            lines.append(
                f"| {case} | {entry['data']['videos']} | {setting} | {row['epoch_s']:.1f} | "
                f"{row.get('speedup', float('nan')):.2f}x | {row['pad_fraction']:.3f} | "
                f"{row['distinct_lengths']} | {'-' if row['graphs'] is None else row['graphs']} "
                f"| {row['peak_mb']:.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--width", choices=["small", "paper"], default="small")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--videos", type=int, default=None, help="THUMOS/own videos (all)")
    parser.add_argument("--anet-videos", type=int, default=1600, help="sampled of 9,649")
    parser.add_argument(
        "--compile-graphs",
        nargs="?",
        const="aot_eager",
        default=None,
        help="also a compiled THUMOS epoch (backend, default aot_eager)",
    )
    parser.add_argument("--quick", action="store_true", help="8 videos per case (smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        spec = json.loads(args.child)
        print(
            json.dumps(run_epoch(spec["overrides"], spec["accelerator"], spec["compile_backend"]))
        )
        return 0
    videos, anet_videos = (8, 32) if args.quick else (args.videos, args.anet_videos)
    with tempfile.TemporaryDirectory(prefix="bench_padding_") as work:
        results = run(
            args.cases,
            args.width,
            args.accelerator,
            videos,
            anet_videos,
            args.compile_graphs,
            work,
        )
    print(table(results))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

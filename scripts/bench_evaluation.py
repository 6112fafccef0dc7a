"""Time the evaluation of a whole fake THUMOS14 test split, end to end (issue 10).

    python scripts/bench_evaluation.py --videos 212 --workers 0 2      # the full split
    python scripts/bench_evaluation.py --videos 4 --max-steps 576      # a smoke run
    python scripts/benchmark.py [--quick]              # one section of make bench

Writes ``--videos`` fake test videos in the THUMOS14 layout of conf/data/thumos.yaml (I3D grid:
30 fps, stride 4, 16-frame window; 2048-d features, 20 classes; ``T`` uniform in
``[--min-steps, --max-steps]`` feature steps, THUMOS14's test videos span about 300 to beyond
the 2304 of ``max_seq_len``) as .npy files plus an ActivityNet-style annotation JSON (3 ground
truth instances per video) in a temporary directory, then runs the real evaluation path,
``Trainer.test`` of the ``experiment=thumos`` run config's module (randomly initialised LoGo +
CLFF at THUMOS size, built with ``logo_tal.app.build``), once per ``module.postprocess_workers``
setting. Post-processing uses the THUMOS settings of conf/module/default.yaml (top-k 2000 per
level, Soft-NMS, max 2000 per video): an untrained detector scores everything alike, so every
level fills its top-k, the heavy end of what a trained THUMOS model asks of the NMS.

Per setting: total wall seconds of ``Trainer.test`` (worker start-up included), detector seconds
(forward hooks), post-processing seconds (inline: the calls in the main process; workers: time
measured inside the workers, and the time the main process waited for them), per video, and
whether mAP and detections match the first setting exactly. Timings depend on the machine's
load: the load average is printed and recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra import compose, initialize_config_dir

from logo_tal.app.build import (
    build_datamodule,
    build_detector,
    build_evaluating_module,
    build_protocol,
)
from logo_tal.app.cli import CONF_DIR
from logo_tal.evaluation.report import ResultsWriter

FPS, STRIDE, WINDOW = 30.0, 4, 16  # conf/data/thumos.yaml
INPUT_DIM, NUM_CLASSES = 2048, 20


def write_fake_split(
    data_dir: Path, videos: int, min_steps: int = 300, max_steps: int = 2304, seed: int = 0
) -> dict[str, Any]:
    """``videos`` THUMOS-like test videos under ``data_dir/thumos`` (the layout of
    conf/data/thumos.yaml); returns their count and total feature steps."""
    rng = np.random.default_rng(seed)
    root = data_dir / "thumos"
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "i3d_features").mkdir(parents=True, exist_ok=True)
    names = [f"class_{c:02d}" for c in range(NUM_CLASSES)]
    database, steps = {}, 0
    for i in range(videos):
        length = int(rng.integers(min_steps, max_steps + 1))
        frames = (length - 1) * STRIDE + WINDOW
        duration = frames / FPS
        feats = rng.standard_normal((length, INPUT_DIM), dtype=np.float32)
        np.save(root / "i3d_features" / f"video_test_{i:07d}.npy", np.maximum(feats, 0) * 0.3)
        starts = np.sort(rng.uniform(0, duration - 10, 3))
        database[f"video_test_{i:07d}"] = {
            "subset": "Test",
            "duration": duration,
            "fps": FPS,
            "num_frames": frames,
            "annotations": [
                {
                    "segment": [round(float(s), 2), round(float(s) + 4.0, 2)],
                    "label": names[c],
                    "label_id": int(c),
                }
                for s, c in zip(starts, rng.integers(0, NUM_CLASSES, 3), strict=True)
            ],
        }
        steps += length
    annotation = {"version": "bench_evaluation", "classes": names, "database": database}
    (root / "annotations" / "thumos14.json").write_text(json.dumps(annotation))
    return {"videos": videos, "feature_steps": steps}


def run_config(data_dir: Path, out_dir: Path, workers: int, loader_workers: int):
    """The ``experiment=thumos`` run config on the fake split, evaluation only."""
    overrides = [
        "experiment=thumos",
        f"paths.root_dir={out_dir}",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={out_dir / 'logs'}",
        f"paths.output_dir={out_dir}",
        f"data.num_workers={loader_workers}",
        f"module.postprocess_workers={workers}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=overrides)


class _Timer:
    """Seconds spent inside ``fn`` calls (the inline post-processor)."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _detector_clock(detector: torch.nn.Module, cuda: bool) -> dict[str, float]:
    """Forward hooks that add each forward's wall seconds to the returned dict."""
    clock = {"seconds": 0.0, "start": 0.0}

    def before(*_):
        if cuda:
            torch.cuda.synchronize()
        clock["start"] = time.perf_counter()

    def after(*_):
        if cuda:
            torch.cuda.synchronize()
        clock["seconds"] += time.perf_counter() - clock["start"]

    detector.register_forward_pre_hook(before)
    detector.register_forward_hook(after)
    return clock


def evaluate_split(
    data_dir: Path, out_dir: Path, workers: int, loader_workers: int = 0, seed: int = 0
) -> dict[str, Any]:
    """One ``Trainer.test`` over the fake split: timings and results."""
    cfg = run_config(data_dir, out_dir, workers, loader_workers)
    pl.seed_everything(seed, verbose=False)  # the same random weights for every setting
    detector = build_detector(cfg).eval()
    protocol = build_protocol(cfg)
    datamodule = build_datamodule(cfg, detector, protocol)
    writer = ResultsWriter(out_dir, split="test", print_table=False)
    module = build_evaluating_module(cfg, detector, datamodule, protocol, ["test"], writer=writer)
    cuda = torch.cuda.is_available()
    clock = _detector_clock(detector, cuda)
    if workers == 0:  # inline: time the calls the module's post-processing makes
        module.postprocessing.postprocess = _Timer(module.postprocessing.postprocess)
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.test(module, datamodule=datamodule, verbose=False)
    total = time.perf_counter() - start
    videos = len(json.loads((out_dir / "detections.json").read_text())["results"])
    row = {
        "workers": workers,
        "videos": videos,
        "device": "cuda" if cuda else "cpu",
        "total_s": total,
        "detector_s": clock["seconds"],
        "map_avg": float(trainer.callback_metrics["test/mAP_avg"]),
    }
    if workers == 0:
        seconds = module.postprocessing.postprocess.seconds
        row.update(postprocess_s=seconds, wait_s=seconds)
    else:
        pool = module.postprocessing
        row.update(postprocess_s=pool.worker_seconds, wait_s=pool.wait_seconds)
    for key in ("total_s", "detector_s", "postprocess_s", "wait_s"):
        row[key.replace("_s", "_ms_per_video")] = 1e3 * row[key] / max(videos, 1)
    return row


def run(
    videos: int,
    workers: list[int],
    min_steps: int = 300,
    max_steps: int = 2304,
    loader_workers: int = 0,
) -> dict[str, Any]:
    """Write the split to a temporary directory, evaluate it per setting, compare, clean up."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_evaluation_"))
    try:
        start = time.perf_counter()
        split = write_fake_split(tmp / "data", videos, min_steps, max_steps)
        split["write_s"] = time.perf_counter() - start
        rows, reference = [], None
        for n in workers:
            out = tmp / f"workers_{n}"
            row = evaluate_split(tmp / "data", out, n, loader_workers)
            files = [(out / name).read_bytes() for name in ("metrics.json", "detections.json")]
            reference = reference or files
            row["identical_to_first"] = files == reference
            row["load_avg"] = list(os.getloadavg())
            rows.append(row)
            print(format_row(row), file=sys.stderr, flush=True)
        return {"split": split, "rows": rows}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_row(r: dict[str, Any]) -> str:
    return (
        f"  evaluation workers={r['workers']} ({r['videos']} videos, {r['device']}): total "
        f"{r['total_s']:.1f} s = {r['total_ms_per_video']:.0f} ms/video; detector "
        f"{r['detector_ms_per_video']:.0f}, post-processing {r['postprocess_ms_per_video']:.0f} "
        f"(main process waited {r['wait_ms_per_video']:.0f}) ms/video; identical "
        f"{r['identical_to_first']}; load {r['load_avg'][0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=212)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--min-steps", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=2304)
    parser.add_argument("--loader-workers", type=int, default=0, help="data.num_workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the main process (default 1: on a shared machine a second "
        "OpenMP thread mostly waits; measured 7 s instead of 0.4 s per video); 0: torch's",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load {' '.join(f'{x:.2f}' for x in load)}",
        file=sys.stderr,
    )
    result = run(args.videos, args.workers, args.min_steps, args.max_steps, args.loader_workers)
    result.update(load_avg_start=list(load), load_avg_end=list(os.getloadavg()))
    result["torch_threads"] = torch.get_num_threads()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m logo_tal.predict ckpt_path=CKPT features=FILE_OR_DIR``: detect actions.

Reads ``(T, C)`` ``.npy`` feature files (one per video), runs the checkpoint's detector and
post-processing, and writes, in the run directory, ``predictions.json`` (ActivityNet result
format, class names as labels) and one timeline plot per video (``plots/<video>.png``).

The features must come from the same extractor with the same settings (fps, stride, window) as
the training features: a model trained on I3D features at stride 4 gives meaningless output on
anything else (TriDet issue #42).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from logo_tal.data.collate import Collate
from logo_tal.data.dataset import TALDataset, feature_records
from logo_tal.data.feature_store import NpyFeatureStore
from logo_tal.utils import resolvers  # noqa: F401  (registers ${safe_name:...})
from logo_tal.utils.checkpoint import build_module, load_checkpoint, stored_config
from logo_tal.utils.fusion import ExternalScores
from logo_tal.utils.plot import plot_timeline
from logo_tal.utils.report import write_detections
from logo_tal.utils.run import get_logger, task_wrapper

log = get_logger(__name__)


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _feature_files(path: Path) -> tuple[Path, list[str]]:
    if path.is_file():
        if path.suffix != ".npy":
            raise ValueError(f"features={path}: expected a .npy file (T x C) or a directory")
        return path.parent, [path.stem]
    if path.is_dir():
        ids = sorted(p.stem for p in path.glob("*.npy"))
        if not ids:
            raise FileNotFoundError(f"features={path}: no .npy files in the directory")
        return path, ids
    raise FileNotFoundError(f"features={path} does not exist")


def _ground_truth(path: str | None) -> dict[str, dict[str, Any]]:
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    database = data.get("database", data)
    if not isinstance(database, dict):
        raise ValueError(f"gt={path}: expected an ActivityNet-style {{'database': {{...}}}} file")
    return database


@task_wrapper
def predict(cfg: DictConfig) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Detections for every feature file under ``cfg.features``.

    Args:
        cfg: the composed ``predict.yaml`` config.

    Returns:
        (detections, objects): video id -> ActivityNet result entries, and ``module``,
        ``run_cfg``, ``files`` (paths written).
    """
    checkpoint = load_checkpoint(cfg.ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    run_cfg = stored_config(checkpoint, output_dir=output_dir)
    # Fusion needs video-level scores of the new videos: only with predict's own fusion_file.
    module = build_module(run_cfg, checkpoint, fusion="none")
    module.to(torch.device(cfg.get("device") or "cpu"))
    class_names = module.class_names
    data = run_cfg.data

    fps = _first(cfg.get("fps"), OmegaConf.select(data, "predict_fps"), data.get("fps"))
    feat_stride = float(_first(cfg.get("feat_stride"), data.feat_stride))
    num_frames = float(_first(cfg.get("num_frames"), data.num_frames))
    root, video_ids = _feature_files(Path(cfg.features))
    store = NpyFeatureStore(root, prefix="", ext=".npy", input_dim=int(data.input_dim))
    gt = _ground_truth(cfg.get("gt"))
    if fps is None and not all(v in gt and gt[v].get("fps") for v in video_ids):
        raise ValueError("the features' fps is unknown: pass fps=... (frames per second)")
    records = []
    for record in feature_records(store, video_ids, float(fps or 1.0), feat_stride, num_frames):
        entry = gt.get(record.video_id, {})
        changes = {}
        if entry.get("fps") and cfg.get("fps") is None:
            changes["fps"] = float(entry["fps"])
        if cfg.get("duration") is not None and len(video_ids) == 1:
            changes["duration"] = float(cfg.duration)
        elif entry.get("duration"):
            changes["duration"] = float(entry["duration"])
        records.append(dataclasses.replace(record, **changes) if changes else record)

    dataset = TALDataset(
        records,
        store,
        feat_stride,
        num_frames,
        int(data.max_seq_len),
        training=False,
        resize_to=OmegaConf.select(data, "resize_to"),
        split="predict",
    )
    loader = DataLoader(
        dataset,
        batch_size=1,
        collate_fn=Collate(int(module.detector.spec.divisor), int(data.max_seq_len), False),
    )
    external = ExternalScores(cfg.fusion_file, class_names) if cfg.get("fusion_file") else None
    if external is not None:
        module.fusion, module._external = "external", external

    detections: dict[str, list[dict[str, Any]]] = {}
    with torch.inference_mode():
        for batch in loader:
            batch.feats = batch.feats.to(module.device)
            batch.masks = batch.masks.to(module.device)
            detections.update(module.to_records(batch.video_ids, module.detect(batch)))

    files = [
        write_detections(
            output_dir,
            detections,
            name=str(cfg.get("output_name", "predictions.json")),
            extra={"external_data": {"checkpoint": str(cfg.ckpt_path), "fusion": module.fusion}},
        )
    ]
    durations = {r.video_id: r.duration for r in records}
    if cfg.get("plot", True):
        for video, dets in detections.items():
            files.append(
                plot_timeline(
                    output_dir / "plots" / f"{video}.png",
                    video,
                    durations[video],
                    dets,
                    gt.get(video, {}).get("annotations"),
                    top_k=int(cfg.get("plot_top_k", 10)),
                )
            )
    _print_summary(detections, durations)
    log.info(f"wrote {files[0]} and {len(files) - 1} plot(s)")
    return detections, {"module": module, "run_cfg": run_cfg, "files": files}


def _print_summary(
    detections: dict[str, list[dict[str, Any]]], durations: dict[str, float]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="top detection per video")
    for name in ("video", "duration (s)", "detections", "label", "segment (s)", "score"):
        table.add_column(name)
    for video, dets in detections.items():
        if dets:
            top = dets[0]
            s, e = top["segment"]
            row = [str(top["label"]), f"{s:.2f}-{e:.2f}", f"{top['score']:.3f}"]
        else:
            row = ["-", "-", "-"]
        table.add_row(video, f"{durations[video]:.1f}", str(len(dets)), *row)
    Console().print(table)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (``python -m logo_tal.predict`` / ``logo-tal-predict``)."""
    predict(cfg)


if __name__ == "__main__":
    main()

"""``python -m logo_tal.predict ckpt_path=CKPT features=FILE_OR_DIR | videos=FILE_OR_DIR``.

Reads ``(T, C)`` ``.npy`` feature files (one per video, :mod:`logo_tal.data.predict_inputs`),
runs the checkpoint's detector and post-processing with ``Trainer.predict``, and writes, in the
run directory, ``predictions.json`` (ActivityNet result format, class names as labels) and one
timeline plot per video (``plots/<video>.png``).

The features must come from the same extractor with the same settings (fps, stride, window) as
the training features: a model trained on I3D features at stride 4 gives meaningless output on
anything else. ``videos=`` makes sure of it: it reads ``extraction.json`` of the training
features (the checkpoint's ``data.features.path``), extracts the videos with exactly that record's
settings (:func:`logo_tal.prep.extract.extract_videos`) into ``features_out`` (default
``<run dir>/features``), and predicts on those features.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from logo_tal.app.build import build_detector, build_module
from logo_tal.app.cli import CONF_DIR, capture_errors, hydra_command
from logo_tal.core.errors import UserInputError, expected_error
from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.data.predict_inputs import predict_dataset, predict_loader
from logo_tal.data.sources import FeatureSource
from logo_tal.engine.checkpoints.runs import (
    load_checkpoint,
    load_weights,
    stored_class_names,
    stored_config,
)
from logo_tal.evaluation.plot import plot_timelines
from logo_tal.evaluation.protocol import EvaluationProtocol
from logo_tal.evaluation.records import Records
from logo_tal.evaluation.report import write_detections
from logo_tal.utils.run import get_logger, task_wrapper

log = get_logger(__name__)


def _feature_source(cfg: DictConfig, run_cfg: DictConfig) -> FeatureSource:
    """The training features' grid, with predict's own timing overrides (``fps``,
    ``feat_stride``, ``num_frames``)."""
    changes = {k: float(cfg[k]) for k in ("fps", "feat_stride", "num_frames") if cfg.get(k)}
    return hydra.utils.instantiate(run_cfg.data.features, **changes)


def _protocol(cfg: DictConfig, run_cfg: DictConfig) -> EvaluationProtocol:
    """The run's protocol, fusing ``fusion_file`` when given: the video-level scores of new
    videos come only from there (the stored top-k and detection cap are kept)."""
    stored = run_cfg.get("protocol") or {}
    fusion = None
    if cfg.get("fusion_file"):
        fusion = {**(stored.get("fusion") or {}), "scores_file": str(cfg.fusion_file)}
    thresholds = stored.get("tiou_thresholds") or list(THUMOS_TIOU)
    return EvaluationProtocol(thresholds, fusion)


def _check_inputs(cfg: DictConfig) -> None:
    """Exactly one of ``features`` / ``videos``; no timing overrides next to ``videos``."""
    given = [key for key in ("features", "videos") if cfg.get(key) is not None]
    if len(given) != 1:
        what = "both were given" if given else "neither was given"
        raise UserInputError(f"predict takes exactly one of features= or videos= ({what})")
    timing = [k for k in ("fps", "feat_stride", "num_frames") if cfg.get(k) is not None]
    if given == ["videos"] and timing:
        raise UserInputError(
            f"{'/'.join(timing)}= cannot be set with videos=: the videos are extracted with the "
            "training features' settings (their extraction.json)"
        )


def _training_record(run_cfg: DictConfig):
    """The ``extraction.json`` of the checkpoint's training features, or a one-line error."""
    from logo_tal.data.extraction_record import record_path
    from logo_tal.prep.extract import read_extraction_record

    source = OmegaConf.select(run_cfg, "data.features.path")
    record = read_extraction_record(source) if source else None
    if record is None:
        where = record_path(source) if source else "data.features.path (not set in the checkpoint)"
        raise UserInputError(
            f"videos= needs the extraction record of the training features, looked for {where} "
            "(the checkpoint's data.features.path): not found; extract the videos with the "
            "training settings yourself and pass features=DIR instead"
        )
    return record


def _extract(cfg: DictConfig, run_cfg: DictConfig, output_dir: Path) -> str:
    """Extract ``cfg.videos`` as the training features were; returns the predict input."""
    from logo_tal.prep.extract import extract_videos
    from logo_tal.prep.video_decode import find_videos

    paths = find_videos(str(cfg.videos))  # a missing path or an empty directory: one line
    record = _training_record(run_cfg)
    if record.weights == "none":
        log.warning(
            f"{record.path}: the training features came from random weights (weights none); "
            "the new videos get other random weights, so their detections mean nothing"
        )
    out = Path(cfg.get("features_out") or output_dir / "features")
    try:
        result = extract_videos(
            paths, out, record, device=str(cfg.get("device") or "cpu"), progress=False
        )
    except (ValueError, ImportError) as exc:  # settings clash in `out`, torchvision missing
        raise UserInputError(str(exc)) from exc
    if result.failed:
        reason = next(iter(result.failed.values()))
        raise UserInputError(f"{reason} ({len(result.failed)} of {len(paths)} video(s) failed)")
    log.info(
        f"extracted {len(result.written)} video(s) ({len(result.skipped)} already there) into "
        f"{out} with the settings of {record.path}"
    )
    if len(paths) == 1 and record.format == "npy":
        return str(result.record.feature_path(paths[0].stem))
    return str(out)


@task_wrapper(expected=expected_error)
def predict(cfg: DictConfig) -> tuple[Records, dict[str, Any]]:
    """Detections for every feature file under ``cfg.features`` (or video under ``cfg.videos``).

    Args:
        cfg: the composed ``predict.yaml`` config.

    Returns:
        (detections, objects): video id -> ActivityNet result entries, and ``module``,
        ``run_cfg``, ``files`` (paths written).
    """
    _check_inputs(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    run_cfg = stored_config(checkpoint, output_dir=output_dir)
    class_names = stored_class_names(checkpoint)
    features = _extract(cfg, run_cfg, output_dir) if cfg.get("videos") else str(cfg.features)
    detector = build_detector(run_cfg)
    dataset = predict_dataset(
        features,
        _feature_source(cfg, run_cfg),
        int(run_cfg.data.max_seq_len),
        annotations=cfg.get("gt"),
        duration=cfg.get("duration"),
    )
    protocol = _protocol(cfg, run_cfg)
    if protocol.fusion is not None and class_names is None:
        raise UserInputError("fusion_file maps classes by name, but the checkpoint stores none")
    module = build_module(
        run_cfg,
        detector,
        class_names=class_names,
        tiou_thresholds=protocol.tiou_thresholds,
        fusion=protocol.fusion_step(class_names or []),
    )
    load_weights(module, checkpoint)
    loader = predict_loader(dataset, detector.spec.divisor)
    detections = _run(module, loader, str(cfg.get("device") or "cpu"))
    files = _write_outputs(cfg, output_dir, detections, dataset, fused=protocol.fusion is not None)
    return detections, {"module": module, "run_cfg": run_cfg, "files": files}


def _run(module: pl.LightningModule, loader, device: str) -> Records:
    """``Trainer.predict`` on one device, without logging or checkpoints."""
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else device,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    detections: Records = {}
    for part in trainer.predict(module, dataloaders=loader):
        detections.update(part)
    return detections


def _write_outputs(cfg: DictConfig, output_dir: Path, detections: Records, dataset, fused: bool):
    """The detections JSON, one timeline plot per video, and a summary table; the paths."""
    fusion_name = "external" if fused else "none"
    files = [
        write_detections(
            output_dir,
            detections,
            name=str(cfg.get("output_name", "predictions.json")),
            extra={"external_data": {"checkpoint": str(cfg.ckpt_path), "fusion": fusion_name}},
        )
    ]
    records = {r.video_id: r for r in dataset.records}
    if cfg.get("plot", True):
        plotted = plot_timelines(output_dir / "plots", detections, records, cfg.plot_top_k)
        files += [path for _, path in plotted]
    _print_summary(detections, {v: r.duration for v, r in records.items()})
    log.info(f"wrote {files[0]} and {len(files) - 1} plot(s)")
    return files


def _print_summary(detections: Records, durations: dict[str, float]) -> None:
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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
@capture_errors
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task of ``python -m logo_tal.predict`` / ``logo-tal-predict``."""
    predict(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m logo_tal.predict`` / ``logo-tal-predict``: exit status 0, or 2 with one line on
    standard error for bad input (docs/bad_inputs.md)."""
    return hydra_command("logo-tal-predict", hydra_main, argv)


if __name__ == "__main__":
    sys.exit(main())

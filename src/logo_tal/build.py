"""Build a run's parts from its config, in the one order every entry point uses.

detector -> datamodule (padded for the detector's pyramid) -> LightningModule (given the
dataset's evaluation vocabulary, tIoU thresholds and score-fusion step). ``train``,
``evaluate`` and ``predict`` call these; nothing reaches back through attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hydra
from omegaconf import DictConfig

from logo_tal.data.datamodule import TALDataModule
from logo_tal.evaluation.report import ResultsWriter
from logo_tal.lit_module import TALLitModule
from logo_tal.models.compile import compile_detector, compile_options, training_pad_multiple
from logo_tal.models.detector import Detector
from logo_tal.models.score_fusion import ScoreFusion
from logo_tal.utils.run import get_logger

log = get_logger(__name__)


def build_detector(cfg: DictConfig) -> Detector:
    """The pure-PyTorch detector of ``cfg.model.detector``, compiled when ``model.compile``."""
    detector = hydra.utils.instantiate(cfg.model.detector)
    options = compile_options(cfg.model)
    if options is not None:
        compile_detector(detector, **options)
        log.info(f"model.compile: torch.compile({options}) of the detector, on first use")
    return detector


def build_datamodule(cfg: DictConfig, detector: Detector, **overrides: Any) -> TALDataModule:
    """The datamodule of ``cfg.data``, padding batches for ``detector``'s pyramid (to few
    distinct training lengths when the detector is compiled)."""
    if compile_options(cfg.model) is not None and "train_pad_multiple" not in overrides:
        overrides["train_pad_multiple"] = training_pad_multiple(
            int(cfg.data.max_seq_len), detector.spec.divisor
        )
    # Through a partial: Hydra would turn the PyramidSpec dataclass into a config node.
    make = hydra.utils.instantiate(cfg.data, _partial_=True, **overrides)
    return make(pyramid=detector.spec)


def fusion_step(datamodule: TALDataModule) -> ScoreFusion | None:
    """The score-fusion post-processing step the dataset's protocol asks for, or None."""
    if datamodule.fusion is None:
        return None
    return ScoreFusion(
        datamodule.video_scores,
        topk=datamodule.fusion["topk"],
        max_dets=datamodule.fusion["max_dets"],
    )


def build_module(
    cfg: DictConfig,
    detector: Detector,
    class_names: Sequence[str] | None,
    tiou_thresholds: Sequence[float],
    fusion: ScoreFusion | None = None,
    writer: ResultsWriter | None = None,
    run_record: dict[str, Any] | None = None,
) -> TALLitModule:
    """The LightningModule of ``cfg.module`` around ``detector``, with the evaluation protocol
    and the record its checkpoints carry passed in explicitly."""
    make = hydra.utils.instantiate(
        cfg.module,
        _partial_=True,
        detector=detector,
        class_names=list(class_names) if class_names else None,
        tiou_thresholds=list(tiou_thresholds),
        fusion=fusion,
        writer=writer,
    )
    # At call time: Hydra would turn the record's dicts into config nodes, which a
    # weights_only checkpoint cannot hold.
    return make(run_record=run_record)


def build_evaluating_module(
    cfg: DictConfig,
    detector: Detector,
    datamodule: TALDataModule,
    writer: ResultsWriter | None = None,
    run_record: dict[str, Any] | None = None,
) -> TALLitModule:
    """The module with the dataset's whole evaluation protocol: its vocabulary, tIoU thresholds
    and score-fusion step (what ``train`` and ``evaluate`` both need)."""
    return build_module(
        cfg,
        detector,
        class_names=datamodule.eval_class_names,
        tiou_thresholds=datamodule.tiou_thresholds,
        fusion=fusion_step(datamodule),
        writer=writer,
        run_record=run_record,
    )

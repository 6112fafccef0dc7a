"""Build a run's parts from its config, in the one order every entry point uses.

evaluation protocol, detector -> datamodule (padded for the detector's pyramid, labelled as the
protocol scores) -> LightningModule (given the protocol's vocabulary, tIoU thresholds and
score-fusion step). ``train``, ``evaluate`` and ``predict`` call these; nothing reaches back
through attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import hydra
from omegaconf import DictConfig

from logo_tal.data.datamodule import TALDataModule
from logo_tal.engine.lit_module import TALLitModule
from logo_tal.evaluation.protocol import EvaluationProtocol
from logo_tal.evaluation.report import ResultsWriter
from logo_tal.models.compile import compile_detector, compile_options, training_pad_multiple
from logo_tal.models.detector import Detector
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


def build_protocol(cfg: DictConfig) -> EvaluationProtocol:
    """The evaluation protocol of ``cfg.protocol`` (THUMOS14's when the config has none)."""
    node = cfg.get("protocol")
    return hydra.utils.instantiate(node) if node is not None else EvaluationProtocol()


def build_datamodule(
    cfg: DictConfig,
    detector: Detector,
    protocol: EvaluationProtocol | None = None,
    **overrides: Any,
) -> TALDataModule:
    """The datamodule of ``cfg.data``, padding batches for ``detector``'s pyramid (to few
    distinct training lengths when the detector is compiled), its evaluation batches labelled
    with the classes ``protocol`` (None: ``cfg.protocol``) scores."""
    protocol = protocol or build_protocol(cfg)
    if compile_options(cfg.model) is not None and "train_pad_multiple" not in overrides:
        overrides["train_pad_multiple"] = training_pad_multiple(
            int(cfg.data.max_seq_len), detector.spec.divisor
        )
    overrides.setdefault("eval_real_classes", protocol.scores_real_classes)
    # Through a partial: Hydra would turn the PyramidSpec dataclass into a config node.
    make = hydra.utils.instantiate(cfg.data, _partial_=True, **overrides)
    return make(pyramid=detector.spec)


def build_module(
    cfg: DictConfig,
    detector: Detector,
    class_names: Sequence[str] | None,
    tiou_thresholds: Sequence[float],
    fusion: Callable | None = None,
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
    protocol: EvaluationProtocol,
    splits: Sequence[str],
    writer: ResultsWriter | None = None,
    run_record: dict[str, Any] | None = None,
) -> TALLitModule:
    """The module with the dataset's whole evaluation protocol: its vocabulary, tIoU thresholds
    and score-fusion step (what ``train`` and ``evaluate`` both need). Every video of the
    evaluated ``splits`` must have video-level scores when the protocol fuses them: checked now,
    before any training step."""
    class_names = datamodule.eval_class_names
    evaluated = {s: datamodule.videos(s) for s in splits} if protocol.fusion else {}
    return build_module(
        cfg,
        detector,
        class_names=class_names,
        tiou_thresholds=protocol.tiou_thresholds,
        fusion=protocol.fusion_step(class_names, evaluated),
        writer=writer,
        run_record=run_record,
    )

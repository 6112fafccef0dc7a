"""``python -m logo_tal.train experiment=...``: fit, test the last (EMA) weights, write results.

The Hydra entry point is a thin wrapper around :func:`train`, which tests call with a composed
config. Outputs in the run directory (``paths.output_dir``): ``config.yaml`` and
``run_info.json`` (resolved config, seed, git revision, library versions), ``checkpoints/``
(``last.ckpt`` carries the config, see :mod:`logo_tal.utils.checkpoint`), ``metrics.json``,
``detections.json`` (ActivityNet result format) and ``per_class_ap.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from omegaconf import DictConfig, OmegaConf

from logo_tal.callbacks import TestResultsWriter
from logo_tal.utils import resolvers  # noqa: F401  (registers ${safe_name:...})
from logo_tal.utils.instantiate import instantiate_callbacks, instantiate_loggers
from logo_tal.utils.report import write_metrics
from logo_tal.utils.run import (
    config_to_dict,
    get_logger,
    log_run_to_loggers,
    run_info,
    task_wrapper,
    write_run_record,
)
from logo_tal.utils.validate import validate_config, validate_features

log = get_logger(__name__)


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def run_record(cfg: DictConfig, info: dict[str, Any]) -> dict[str, Any]:
    """What every checkpoint carries: raw and resolved config, resolved paths, run info."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    raw.pop("hydra", None)
    resolved = config_to_dict(cfg)
    return {
        "config_raw": raw,
        "config": resolved,
        "paths": resolved.get("paths"),
        "run_info": info,
    }


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (unless ``train=false``), then test (unless ``test=false``) and write the results.

    Args:
        cfg: the composed ``train.yaml`` config.

    Returns:
        (metrics, objects): every logged metric as float (``train/*``, ``val/*``, ``test/*``),
        and the built ``cfg``, ``datamodule``, ``module``, ``trainer``, ``callbacks``.
    """
    for warning in validate_config(cfg):
        log.warning(warning)
    seed = cfg.get("seed")
    if seed is not None:
        pl.seed_everything(int(seed), workers=True)
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    output_dir = Path(cfg.paths.output_dir)
    info = run_info(cfg, seed)
    write_run_record(cfg, output_dir, info)

    log.info(f"datamodule <{cfg.data._target_}>")
    datamodule = hydra.utils.instantiate(cfg.data)
    # Generates the synthetic benchmark on first use; then one feature file is read so that a
    # wrong input_dim fails now, not inside the first forward pass.
    datamodule.prepare_data()
    validate_features(datamodule, int(cfg.data.input_dim), "train" if cfg.get("train") else "test")

    log.info(f"detector <{cfg.model._target_}>")
    detector = hydra.utils.instantiate(cfg.model)
    module = hydra.utils.instantiate(cfg.module, detector=detector)
    module.run_record = run_record(cfg, info)

    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):
        # trainer.enable_progress_bar=false alone should be enough to silence the bar.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    writer = TestResultsWriter(output_dir, split="test")
    callbacks.append(writer)
    loggers = instantiate_loggers(cfg.get("logger"))
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; train/lr is logged anyway.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False
    )
    log_run_to_loggers(trainer, cfg, info, module)

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(_float_metrics(trainer.callback_metrics))
    if cfg.get("test", True):
        # After fit the module holds the EMA weights (EMAWeightAveraging copies them in at the
        # end of training): the last epoch is tested, never a "best" one (users.md row 11).
        test_ckpt = None if cfg.get("train", True) else cfg.get("ckpt_path")
        trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt)
        metrics.update(_float_metrics(trainer.callback_metrics))
    elif trainer.is_global_zero:
        # No test: metrics.json still records the last validation (every run writes one).
        val = {k: v for k, v in metrics.items() if k.startswith("val/mAP")}
        thresholds = [float(t) for t in cfg.module.tiou_thresholds]
        report = {
            "tiou_thresholds": thresholds,
            "mAP": [val.get(f"val/mAP@{t:g}", math.nan) for t in thresholds],
            "average_mAP": val.get("val/mAP_avg", math.nan),
        }
        write_metrics(output_dir, report, {"split": "val", "global_step": trainer.global_step})

    checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or None
    if checkpoint:
        log.info(f"last checkpoint: {checkpoint}")
    log.info(f"outputs in {output_dir}")
    objects = {
        "cfg": cfg,
        "datamodule": datamodule,
        "module": module,
        "trainer": trainer,
        "callbacks": callbacks,
        "writer": writer,
    }
    return metrics, objects


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value Hydra sweepers optimise (``optimized_metric``), with a test/ fallback.

    Args:
        metrics: from :func:`train`.
        name: e.g. ``val/mAP_avg``; None returns None.

    Returns:
        The metric value, or None (with a warning) when it was not logged.
    """
    if not name:
        return None
    if name in metrics:
        return metrics[name]
    fallback = name.replace("val/", "test/", 1)
    if fallback in metrics:
        return metrics[fallback]
    log.warning(f"optimized_metric {name!r} was not logged; logged: {sorted(metrics)}")
    return None


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (``python -m logo_tal.train`` / ``logo-tal-train``)."""
    metrics, _ = train(cfg)
    return optimized_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

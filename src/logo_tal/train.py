"""``python -m logo_tal.train experiment=...``: fit, test the last (EMA) weights, write results.

The Hydra entry point is a thin wrapper around :func:`train`, which tests call with a composed
config. Outputs in the run directory (``paths.output_dir``): ``config.yaml`` and
``run_info.json`` (resolved config, seed, git revision, library versions), ``checkpoints/``
(``last.ckpt`` carries the config, see :mod:`logo_tal.engine.checkpoints`), ``metrics.json``,
``detections.json`` (ActivityNet result format) and ``per_class_ap.csv``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from omegaconf import DictConfig, OmegaConf

from logo_tal.app.build import (
    build_datamodule,
    build_detector,
    build_evaluating_module,
    build_protocol,
)
from logo_tal.app.cli import CONF_DIR, capture_errors, hydra_command
from logo_tal.app.config_checks import validate_config
from logo_tal.core.errors import expected_error
from logo_tal.core.protocol import MAP_AVG, map_key
from logo_tal.engine.callbacks import PaddingMonitor
from logo_tal.engine.checkpoints.files import AtomicCheckpointIO
from logo_tal.engine.checkpoints.random_state import RNGState
from logo_tal.engine.checkpoints.runs import check_resume, resume_path
from logo_tal.engine.lit_module import TALLitModule
from logo_tal.evaluation.report import ResultsWriter, write_metrics
from logo_tal.models.compile import compile_options, compile_seconds, compiled_graphs
from logo_tal.utils.instantiate import instantiate_callbacks, instantiate_loggers
from logo_tal.utils.run import (
    config_to_dict,
    get_logger,
    log_run_to_loggers,
    run_info,
    task_wrapper,
    write_run_record,
)

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


def _build_trainer(cfg: DictConfig) -> pl.Trainer:
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):
        # trainer.enable_progress_bar=false alone should be enough to silence the bar.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = instantiate_loggers(cfg.get("logger"))
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; train/lr is logged anyway.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    # Always on: what an exact resume needs (docs/decisions.md D101), and what padding costs
    # (train/pad_fraction, docs/decisions.md D122).
    callbacks += [RNGState(), PaddingMonitor()]
    return hydra.utils.instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO(), *_requeue_plugins()],
    )


def _requeue_plugins() -> list:
    """One requeue handler per job. Under submitit (``hydra/launcher=slurm``), submitit
    requeues on SIGUSR2 and the job resumes from ``last.ckpt``; Lightning's own SLURM requeue
    (SIGUSR1, ``hpc_ckpt_*.ckpt``) is turned off, so that a cluster that also sends SIGUSR1
    cannot requeue the job twice (docs/decisions.md D112). Elsewhere Lightning decides."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return []
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)]


def _resume_from(cfg: DictConfig, module: TALLitModule) -> str | None:
    """``ckpt_path`` (``auto``: the run directory's last checkpoint, if any), checked now."""
    directory = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    directory = directory or Path(cfg.paths.output_dir) / "checkpoints"
    path = resume_path(cfg.get("ckpt_path"), directory)
    if path is not None:
        check_resume(module, path)
    return path


def _write_validation_metrics(
    output_dir: Path, metrics: dict[str, float], thresholds: list[float], step: int
) -> None:
    """Without a test, metrics.json records the last validation (every run writes one)."""
    report = {
        "tiou_thresholds": thresholds,
        "mAP": [metrics.get(f"val/{map_key(t)}", math.nan) for t in thresholds],
        "average_mAP": metrics.get(f"val/{MAP_AVG}", math.nan),
    }
    write_metrics(output_dir, report, {"split": "val", "global_step": step})


@task_wrapper(expected=expected_error)
def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (unless ``train=false``), then test (unless ``test=false``) and write the results.

    Args:
        cfg: the composed ``train.yaml`` config.

    Returns:
        (metrics, objects): every logged metric as float (``train/*``, ``val/*``, ``test/*``),
        and the built ``cfg``, ``datamodule``, ``module``, ``trainer``.
    """
    info = _start_run(cfg)
    output_dir = Path(cfg.paths.output_dir)

    protocol = build_protocol(cfg)
    detector = build_detector(cfg)
    datamodule = build_datamodule(cfg, detector, protocol)
    # Runs data.prepare (the synthetic benchmark is generated on first use); then one feature
    # file is read so that a wrong input_dim fails now, not inside the first forward pass.
    datamodule.prepare_data()
    datamodule.check_features("train" if cfg.get("train") else "test")
    writer = ResultsWriter(output_dir, split="test")
    record = run_record(cfg, info)
    evaluated = [s for s, on in (("val", cfg.get("train")), ("test", cfg.get("test"))) if on]
    module = build_evaluating_module(
        cfg, detector, datamodule, protocol, evaluated, writer, run_record=record
    )
    ckpt_path = _resume_from(cfg, module)
    trainer = _build_trainer(cfg)
    log_run_to_loggers(trainer, cfg, info, module)

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(_float_metrics(trainer.callback_metrics))
    if cfg.get("test", True):
        # After fit the module holds the EMA weights (EMAWeightAveraging copies them in at the
        # end of training): the last epoch is tested, never a "best" one.
        test_ckpt = None if cfg.get("train", True) else ckpt_path
        trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt)
        metrics.update(_float_metrics(trainer.callback_metrics))
    elif trainer.is_global_zero:
        _write_validation_metrics(
            output_dir, metrics, protocol.tiou_thresholds, trainer.global_step
        )

    if compile_options(cfg.model) is not None:
        metrics.update(_compile_report())
    _log_outputs(trainer, output_dir)
    objects = {"cfg": cfg, "datamodule": datamodule, "module": module, "trainer": trainer}
    return metrics, objects


def _start_run(cfg: DictConfig) -> dict[str, Any]:
    """Config warnings, the seed, the thread count and the run record on disk; returns the
    run's environment (:func:`run_info`)."""
    for warning in validate_config(cfg):
        log.warning(warning)
    seed = cfg.get("seed")
    if seed is not None:
        # Logged here, not by Lightning: its handler writes to stderr, kept for errors.
        pl.seed_everything(int(seed), workers=True, verbose=False)
        log.info(f"seed: {seed}")
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    info = run_info(cfg, seed)
    write_run_record(cfg, Path(cfg.paths.output_dir), info)
    return info


def _log_outputs(trainer: pl.Trainer, output_dir: Path) -> None:
    callback = trainer.checkpoint_callback
    # last.ckpt is the top-1 file of conf/callbacks/default.yaml (save_last adds its own).
    checkpoint = getattr(callback, "last_model_path", "") or getattr(
        callback, "best_model_path", ""
    )
    if checkpoint:
        log.info(f"last checkpoint: {checkpoint}")
    log.info(f"outputs in {output_dir}")


def _compile_report() -> dict[str, float]:
    """What ``model.compile`` cost this run: compile seconds and graphs, logged and returned."""
    seconds, graphs = compile_seconds(), compiled_graphs()
    log.info(f"model.compile: {seconds:.1f} s compiling {graphs} graph(s)")
    return {"compile/seconds": seconds, "compile/graphs": float(graphs)}


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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
@capture_errors
def hydra_main(cfg: DictConfig) -> float | None:
    """The Hydra task of ``python -m logo_tal.train`` / ``logo-tal-train``."""
    metrics, _ = train(cfg)
    return optimized_value(metrics, cfg.get("optimized_metric"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m logo_tal.train`` / ``logo-tal-train``: exit status 0, or 2 with one line on
    standard error for bad input (docs/bad_inputs.md)."""
    return hydra_command("logo-tal-train", hydra_main, argv)


if __name__ == "__main__":
    sys.exit(main())

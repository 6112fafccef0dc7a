"""``python -m logo_tal.evaluate ckpt_path=...``: test a checkpoint on its run's test split.

Data, detector and module are rebuilt from the config stored in the checkpoint (so a checkpoint
is enough, whatever the current defaults are), the stored (EMA) weights are loaded, and the same
files as a training run are written: ``metrics.json``, ``detections.json``, ``per_class_ap.csv``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from logo_tal.app.build import (
    build_datamodule,
    build_detector,
    build_evaluating_module,
    build_protocol,
)
from logo_tal.app.cli import CONF_DIR, capture_errors, hydra_command
from logo_tal.core.errors import expected_error
from logo_tal.engine.checkpoints.runs import load_checkpoint, load_weights, stored_config
from logo_tal.evaluation.report import ResultsWriter
from logo_tal.utils.run import get_logger, run_info, task_wrapper, write_run_record

log = get_logger(__name__)


@task_wrapper(expected=expected_error)
def evaluate(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Evaluate ``cfg.ckpt_path`` on the test split of the run that wrote it.

    Args:
        cfg: the composed ``eval.yaml`` config (``ckpt_path``, ``data_dir``, ``overrides``,
            ``trainer``, ``paths``).

    Returns:
        (metrics, objects): ``test/*`` metrics as floats, and the rebuilt ``run_cfg``,
        ``datamodule``, ``module``, ``trainer``.
    """
    checkpoint = load_checkpoint(cfg.ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    run_cfg = stored_config(
        checkpoint,
        output_dir=output_dir,
        data_dir=cfg.get("data_dir"),
        overrides=list(cfg.get("overrides") or []),
    )
    seed = run_cfg.get("seed", cfg.get("seed"))
    if seed is not None:
        # Logged here, not by Lightning: its handler writes to stderr, kept for errors.
        pl.seed_everything(int(seed), workers=True, verbose=False)
        log.info(f"seed: {seed}")
    write_run_record(run_cfg, output_dir, run_info(run_cfg, seed))

    protocol = build_protocol(run_cfg)
    detector = build_detector(run_cfg)
    datamodule = build_datamodule(run_cfg, detector, protocol)
    datamodule.prepare_data()
    writer = ResultsWriter(
        output_dir,
        split="test",
        extra={"checkpoint": str(Path(cfg.ckpt_path).resolve())},
    )
    module = build_evaluating_module(
        run_cfg, detector, datamodule, protocol, ["test"], writer=writer
    )
    load_weights(module, checkpoint)
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer)
    trainer.test(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info(f"outputs in {output_dir}")
    return metrics, {
        "run_cfg": run_cfg,
        "datamodule": datamodule,
        "module": module,
        "trainer": trainer,
        "writer": writer,
    }


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@capture_errors
def hydra_main(cfg: DictConfig) -> float | None:
    """The Hydra task of ``python -m logo_tal.evaluate`` / ``logo-tal-evaluate``."""
    metrics, _ = evaluate(cfg)
    return metrics.get("test/mAP_avg")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m logo_tal.evaluate`` / ``logo-tal-evaluate``: exit status 0, or 2 with one
    line on standard error for bad input (docs/bad_inputs.md)."""
    return hydra_command("logo-tal-evaluate", hydra_main, argv)


if __name__ == "__main__":
    sys.exit(main())

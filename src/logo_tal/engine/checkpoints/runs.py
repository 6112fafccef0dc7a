"""Rebuild a run from a checkpoint alone (the resolved config travels inside it); find and check
the checkpoint a training run resumes from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from logo_tal.core.errors import CheckpointError
from logo_tal.engine.checkpoints.files import read_checkpoint

log = logging.getLogger(__name__)
# ckpt_path=auto: resume from the run directory's last checkpoint when there is one.
AUTO = "auto"
# Key of the run record inside Lightning checkpoints (TALLitModule.on_save_checkpoint writes it).
CHECKPOINT_KEY = "logo_tal"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by ``logo_tal.train`` onto the CPU.

    Args:
        path: the ``.ckpt`` file.

    Returns:
        The checkpoint dict (``state_dict``, ``logo_tal`` and Lightning's own keys).

    Raises:
        CheckpointError: no such file, an unreadable one, or one not written by logo_tal.train
            (no stored config).
    """
    path = Path(path)
    # Our own checkpoints hold plain containers and tensors only: weights_only=True
    # (docs/decisions.md D101).
    checkpoint = read_checkpoint(path)
    stored = checkpoint.get(CHECKPOINT_KEY)
    if not stored or not stored.get("config_raw"):
        raise CheckpointError(
            f"{path}: no run config stored under {CHECKPOINT_KEY!r}; it was not written by "
            "logo_tal.train (TALLitModule.on_save_checkpoint stores it)"
        )
    return checkpoint


def stored_config(
    checkpoint: dict[str, Any],
    output_dir: str | Path,
    data_dir: str | Path | None = None,
    overrides: list[str] | None = None,
) -> DictConfig:
    """The run config of a checkpoint, re-pointed at this machine and resolved.

    The checkpoint keeps the unresolved config (so that data paths follow ``paths.data_dir``)
    and the resolved ``paths`` of the run that wrote it. ``paths.output_dir`` becomes this
    run's directory; ``paths.data_dir`` is replaced when given.

    Args:
        checkpoint: from :func:`load_checkpoint`.
        output_dir: this run's directory.
        data_dir: data root on this machine (None: the stored one).
        overrides: dotted ``key=value`` strings applied last (``data.batch_size=1``).

    Returns:
        The resolved config (without Hydra's node).
    """
    stored = checkpoint[CHECKPOINT_KEY]
    cfg = OmegaConf.create(stored["config_raw"])
    paths = dict(stored.get("paths") or {})
    paths["output_dir"] = str(output_dir)
    if data_dir is not None:
        paths["data_dir"] = str(data_dir)
    cfg.paths = OmegaConf.create(paths)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    OmegaConf.resolve(cfg)
    assert isinstance(cfg, DictConfig)
    return cfg


def stored_class_names(checkpoint: dict[str, Any]) -> list[str] | None:
    """The evaluation vocabulary the checkpoint's run used (detection labels)."""
    names = checkpoint[CHECKPOINT_KEY].get("class_names")
    return list(names) if names else None


def load_weights(module: pl.LightningModule, checkpoint: dict[str, Any]) -> pl.LightningModule:
    """Load the checkpoint's weights and run record into ``module``; return it in eval mode.

    The checkpoint's ``state_dict`` holds the EMA weights when EMA was on (Lightning's
    ``EMAWeightAveraging`` stores the average there), i.e. the weights that were tested.
    """
    check_fits(module, checkpoint["state_dict"], "the checkpoint")
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module.eval()


def check_fits(module: torch.nn.Module, state_dict: dict[str, Any], where: str) -> None:
    """Raise one line when ``state_dict`` was not written by a model of ``module``'s config.

    Raises:
        CheckpointError: missing or unexpected weights, or weights of another shape.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and torch.is_tensor(v) and tuple(state_dict[k].shape) != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    problems = [
        f"{len(items)} {kind} (first: {items[0]})"
        for kind, items in (
            ("weight(s) of another shape, stored vs this config", shapes),
            ("weight(s) this config needs but the checkpoint lacks", missing),
            ("weight(s) this config does not have", unexpected),
        )
        if items
    ]
    raise CheckpointError(
        f"{where} does not fit this configuration: {'; '.join(problems)}; it was written by a "
        "run with another model (model.*, data.features.input_dim or "
        "data.annotations.num_classes): use that run's settings, or start fresh without ckpt_path"
    )


def resume_path(ckpt_path: str | None, checkpoint_dir: str | Path) -> str | None:
    """The checkpoint a training run resumes from.

    Args:
        ckpt_path: a file, None (start fresh), or ``auto``: ``checkpoint_dir/last.ckpt`` when
            it exists (a requeued job), the newest ``*.ckpt`` there when ``last.ckpt`` is
            missing or a dangling link, else None.
        checkpoint_dir: the run's checkpoint directory.

    Returns:
        A path, or None to start fresh.
    """
    if ckpt_path is None or str(ckpt_path) != AUTO:
        return None if ckpt_path is None else str(ckpt_path)
    directory = Path(checkpoint_dir)
    last = directory / "last.ckpt"
    if last.is_file():
        log.info("ckpt_path=auto: resuming from %s", last)
        return str(last)
    epochs = sorted(
        (p for p in directory.glob("*.ckpt") if p.is_file() and p.name != "last.ckpt"),
        key=lambda p: p.stat().st_mtime,
    )
    if epochs:
        log.warning("ckpt_path=auto: %s is missing; resuming from %s", last, epochs[-1])
        return str(epochs[-1])
    log.info("ckpt_path=auto: no checkpoint in %s, starting fresh", directory)
    return None


def check_resume(module: torch.nn.Module, ckpt_path: str) -> None:
    """Read the checkpoint to resume from now (one line if it is unreadable or does not fit),
    before the trainer starts."""
    checkpoint = read_checkpoint(ckpt_path)
    state = checkpoint.get("current_model_state") or checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt_path}: no model weights (state_dict) in the checkpoint")
    check_fits(module, state, ckpt_path)

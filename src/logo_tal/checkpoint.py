"""Rebuild a run from a checkpoint alone: the resolved config travels inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logo_tal.lit_module import CHECKPOINT_KEY, TALLitModule


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by ``logo_tal.train`` onto the CPU.

    Args:
        path: the ``.ckpt`` file.

    Returns:
        The checkpoint dict (``state_dict``, ``logo_tal`` and Lightning's own keys).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file was not written by logo_tal.train (no stored config).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    # Our own checkpoints hold plain containers and tensors; weights_only=False also accepts the
    # numpy scalars Lightning callbacks may store. Only load checkpoints you trust.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    stored = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not stored or not stored.get("config_raw"):
        raise ValueError(
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


def load_weights(module: TALLitModule, checkpoint: dict[str, Any]) -> TALLitModule:
    """Load the checkpoint's weights and run record into ``module``; return it in eval mode.

    The checkpoint's ``state_dict`` holds the EMA weights when EMA was on (Lightning's
    ``EMAWeightAveraging`` stores the average there), i.e. the weights that were tested.
    """
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module.eval()

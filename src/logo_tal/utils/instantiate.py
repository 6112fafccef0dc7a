"""Build the Lightning callbacks and loggers named in a config group."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig


def _instantiate_group(group: DictConfig | None, what: str) -> list[Any]:
    """Instantiate every ``_target_`` node directly under ``group`` (``None`` entries are skipped).

    A group is a dict so that experiments can add, replace or null out single entries
    (``callbacks.ema=null``) without repeating the others.
    """
    if not group:
        return []
    if not isinstance(group, DictConfig):
        raise TypeError(f"the {what} config must be a mapping of name -> node, got {type(group)}")
    built = []
    for name, node in group.items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(f"{what}.{name} has no _target_; every entry must name a class")
        built.append(hydra.utils.instantiate(node))
    return built


def instantiate_callbacks(cfg: DictConfig | None) -> list[Any]:
    """Callbacks from the ``callbacks`` group.

    Args:
        cfg: ``cfg.callbacks``, a mapping of name -> ``{_target_: ..., ...}``.

    Returns:
        The instantiated ``lightning.pytorch.Callback`` objects.
    """
    return _instantiate_group(cfg, "callbacks")


def instantiate_loggers(cfg: DictConfig | None) -> list[Any]:
    """Loggers from the ``logger`` group.

    Args:
        cfg: ``cfg.logger``, a mapping of name -> ``{_target_: ..., ...}``.

    Returns:
        The instantiated ``lightning.pytorch.loggers.Logger`` objects.
    """
    return _instantiate_group(cfg, "logger")

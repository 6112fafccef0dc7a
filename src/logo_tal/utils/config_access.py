"""Reading config values where a key may be absent: one helper for composed configs and for the
plain YAML dicts of finished runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def select(cfg: Any, key: str, default: Any = None) -> Any:
    """The value at dotted ``key``, or ``default`` where it is missing.

    A ``DictConfig`` resolves interpolations; one that needs what only a running job has (e.g.
    ``${hydra:runtime.output_dir}`` read after the job) gives ``default``. Plain mappings (a
    run's ``config.yaml`` or ``hydra.yaml`` read with ``yaml``) are walked as they are.
    """
    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
        except Exception:  # an interpolation that cannot be resolved here
            return default
    node = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def is_multirun(hydra_node: Any) -> bool:
    """Whether ``hydra_node`` (``HydraConfig.get()`` or a config's ``hydra`` node) is a multirun
    job's; None (no Hydra) is not."""
    mode = select(hydra_node, "mode") if hydra_node is not None else None
    return str(mode) in ("MULTIRUN", "RunMode.MULTIRUN")

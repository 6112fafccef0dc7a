"""The run's hyper-parameters in the shape each logger shows best.

W&B filters, groups and plots runs by config keys: a nested ``{"cfg": {...}}`` is one entry
there, while flat dotted keys (``module.optimizer.lr``, ``model.num_levels``) are one column
each (docs/decisions.md D114).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONFIG_KEY = "cfg"  # the resolved config inside the hyper-parameters of log_run_to_loggers
RUN_KEY = "run"  # run_info() inside them
RUN_PREFIX = "run_info"  # its prefix among the flat keys (no config key is called run_info)


def flatten(mapping: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested mappings -> one level of ``a.b.c`` keys; lists and scalars stay values.

    Args:
        mapping: e.g. a resolved config as a plain dict.
        prefix: prepended to every key (with ``sep``).
        sep: the separator between levels.

    Returns:
        A flat dict; an empty nested mapping keeps its key with ``{}`` as the value.
    """
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def is_wandb_logger(logger: Any) -> bool:
    """Whether ``logger`` is Lightning's ``WandbLogger`` (without importing wandb)."""
    return any(cls.__name__ == "WandbLogger" for cls in type(logger).__mro__)


def hparams_for(logger: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hparams`` as ``logger`` should receive them: flat dotted keys for W&B, else unchanged.

    Args:
        logger: a Lightning logger.
        hparams: ``{"cfg": resolved config, "run": run info, "params/...": counts}``.

    Returns:
        For W&B: the config's keys at the top level (``model.embed_dim``), the run info under
        ``run_info.`` and the other entries as they are. Otherwise ``hparams`` itself.
    """
    if not is_wandb_logger(logger):
        return dict(hparams)
    flat = flatten(hparams.get(CONFIG_KEY) or {})
    flat.update(flatten(hparams.get(RUN_KEY) or {}, RUN_PREFIX))
    flat.update({k: v for k, v in hparams.items() if k not in (CONFIG_KEY, RUN_KEY)})
    return flat

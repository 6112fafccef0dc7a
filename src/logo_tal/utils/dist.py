"""Small helpers for code that may or may not run under torch.distributed."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group is up with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable) in rank order, on every rank; ``[obj]`` if not distributed.

    Used only for the detections file: the mAP itself is computed by the torchmetrics metric,
    whose states are gathered by torchmetrics.
    """
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered

"""Process entry points for multi-process tests (must be importable by spawned children)."""

from __future__ import annotations

import json
from pathlib import Path

import torch.distributed as dist

from logo_tal.utils.dist import gather_objects


def gather_worker(rank: int, world: int, init: str, out: str) -> None:
    """Join a gloo group, gather one dict per rank, and let rank 0 write the result as JSON."""
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        got = gather_objects({f"video_{rank}": [rank] * (rank + 1)})
        if rank == 0:
            Path(out).write_text(json.dumps(got))
    finally:
        dist.destroy_process_group()

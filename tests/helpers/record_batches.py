"""A callback that writes the training batches each rank saw (video ids) to a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class RecordTrainBatches(Callback):
    """``<out_dir>/rank<r>.json``: ``[[video ids of batch 0], ...]`` of the last epoch."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.batches: list[list[str]] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.batches = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches.append(list(batch.video_ids))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        path = Path(self.out_dir) / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.batches))

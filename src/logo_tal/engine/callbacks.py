"""Lightning callbacks of logo-tal."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging


class EMAUpdate:
    """``ema <- decay * ema + (1 - decay) * current``, as a picklable object.

    Lightning's ``get_ema_avg_fn`` returns a closure, which DDP-spawn cannot pickle.
    """

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)

    def __call__(
        self, ema_param: torch.Tensor, current_param: torch.Tensor, num_averaged: Any = None
    ) -> torch.Tensor:
        return self.decay * ema_param + (1.0 - self.decay) * current_param


class EMA(EMAWeightAveraging):
    """Lightning's ``EMAWeightAveraging`` (ActionFormer/TriDet ``ModelEma``, decay 0.999), usable
    under every strategy including ``ddp_spawn``.

    The averaged weights are swapped in for validation, copied into the model when training
    ends (so the final test uses them) and saved as the checkpoints' ``state_dict`` (the raw
    weights go to ``current_model_state`` for resuming).

    Args:
        decay: EMA decay per optimiser step.
        **kwargs: ``EMAWeightAveraging`` arguments (``use_buffers``, ``update_every_n_steps``...).
    """

    def __init__(self, decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)
        self.decay = float(decay)
        # WeightAveraging forwards _kwargs to torch's AveragedModel; only avg_fn changes.
        self._kwargs["avg_fn"] = EMAUpdate(decay)


class ClosePostprocessing(Callback):
    """Shuts the module's post-processing workers down when fit, test or predict ends, and when a
    run fails (Lightning calls no LightningModule hook on an exception, only the callbacks'
    ``on_exception``). ``TALLitModule.configure_callbacks`` adds it; inline post-processing
    makes closing a no-op. A later evaluation batch starts the workers again."""

    def _close(self, pl_module: Any) -> None:
        pl_module.postprocessing.close()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(pl_module)

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(pl_module)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(pl_module)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close(pl_module)


class PaddingMonitor(Callback):
    """Logs ``train/pad_fraction``: the share of the epoch's training steps (batch x padded
    length) that are padding, summed over every rank, so a user sees what padding costs
    (``data.train_padding``, ``data.bucket_by_length``; docs/decisions.md D122). Always on
    (``logo_tal.train`` adds it), so every logger gets it."""

    def __init__(self) -> None:
        self._counts = torch.zeros(2, dtype=torch.int64)  # padded steps, all steps

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._counts = torch.zeros(2, dtype=torch.int64, device=pl_module.device)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Summed where the masks are: no device synchronisation per batch.
        masks = batch.masks
        self._counts[0] += (~masks).sum().to(self._counts.device)
        self._counts[1] += masks.numel()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        counts = trainer.strategy.reduce(self._counts.to(pl_module.device), reduce_op="sum")
        padded, total = (int(c) for c in counts.cpu())
        if total > 0:
            pl_module.log("train/pad_fraction", padded / total, on_epoch=True, sync_dist=False)

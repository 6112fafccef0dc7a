"""A callback that crashes a training run at the start of an epoch (interrupted-run tests)."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback


class Crash(RuntimeError):
    """The simulated failure."""


class CrashAtEpoch(Callback):
    """Raise :class:`Crash` when epoch ``epoch`` starts (after the previous epoch's checkpoint)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise Crash(f"simulated crash at the start of epoch {self.epoch}")

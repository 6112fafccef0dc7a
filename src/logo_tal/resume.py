"""Checkpoints a run can always resume from, exactly (docs/decisions.md D101).

* :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same directory,
  fsyncs it and renames it over the target (a kill while saving leaves the previous file
  whole), refuses to write non-finite weights, and reads with ``torch.load(weights_only=True)``,
  reporting an unreadable file in one line.
* :class:`ModelCheckpoint` is Lightning's, with ``last.ckpt`` (a link to the newest epoch file
  under ``save_last: link``) replaced atomically and never left pointing at a removed file.
* :class:`RNGState` stores the global random states (torch CPU and CUDA, numpy, random) in the
  checkpoint and restores them on resume; the data order (shuffling generators, crop generator)
  is the datamodule's own state (``TALDataModule.state_dict``).

The model, the EMA weights, the optimiser, the schedule and the loss normaliser (a buffer,
docs/decisions.md D72) are restored by Lightning itself.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint

from logo_tal.errors import CheckpointError, NonFiniteError

# Where a checkpoint keeps weights: the (EMA) weights and, with EMA, the raw ones for resuming.
WEIGHT_KEYS = ("state_dict", "current_model_state")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have given
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def nonfinite_weights(checkpoint: dict[str, Any]) -> list[str]:
    """Names (``key.parameter``) of floating-point weights with a NaN or an infinity."""
    bad = []
    for key in WEIGHT_KEYS:
        for name, value in (checkpoint.get(key) or {}).items():
            if torch.is_tensor(value) and value.is_floating_point():
                if not bool(torch.isfinite(value).all()):
                    bad.append(f"{key}.{name}")
    return bad


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (plain containers and tensors only).

    Raises:
        CheckpointError: missing file (or a link to a removed file), or a file torch cannot
            read (truncated, corrupt, not a checkpoint, or holding arbitrary objects).
    """
    path = Path(path)
    if not path.is_file():
        dangling = " (a link to a file that no longer exists)" if path.is_symlink() else ""
        raise CheckpointError(f"{path}: checkpoint not found{dangling}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several kinds for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if first.startswith("Weights only load failed"):
            raise CheckpointError(
                f"{path}: holds objects other than tensors and plain containers, which "
                "torch.load(weights_only=True) refuses; it was not written by this version of "
                "logo_tal.train. If you trust the file, load it with weights_only=False and "
                "save its plain parts again"
            ) from None
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: {first}); it is truncated, "
            "corrupt or not a logo_tal checkpoint: resume from another one "
            "(ckpt_path=...) or start fresh"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(checkpoint).__name__})")
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, atomic, finite-checked and ``weights_only`` on load."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        bad = nonfinite_weights(checkpoint)
        if bad:
            shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
            raise NonFiniteError(
                f"{path}: not written: non-finite weights in {shown}; the previous checkpoint "
                "is kept. Resume from it with a lower module.optimizer.lr, or set "
                "module.on_nonfinite=skip"
            )
        atomic_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or "cpu")


def _atomic_link(target: str, linkpath: str) -> None:
    """Point ``linkpath`` at ``target`` (relative link) in one rename; copy where links fail."""
    directory = os.path.dirname(linkpath) or "."
    tmp = os.path.join(directory, f".{os.path.basename(linkpath)}.link.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)
    try:
        os.symlink(os.path.relpath(target, directory), tmp)
    except OSError:  # e.g. Windows without the privilege: an atomic copy instead
        atomic_save(torch.load(target, map_location="cpu", weights_only=True), linkpath)
        return
    os.replace(tmp, linkpath)
    _fsync_dir(Path(directory))


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint``; ``last.ckpt`` is switched atomically and the epoch file
    it points at is removed only after it points at the new one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[str] = []

    @staticmethod
    def _link_checkpoint(trainer: pl.Trainer, filepath: str, linkpath: str) -> None:
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            _atomic_link(filepath, linkpath)
        trainer.strategy.barrier()

    def _links_to(self, filepath: str) -> bool:
        last = self.last_model_path
        return (
            bool(last)
            and os.path.islink(last)
            and Path(last).resolve() == Path(filepath).resolve()
        )

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        if self._links_to(filepath):
            self._deferred.append(filepath)  # last.ckpt still points here: after relinking
            return
        super()._remove_checkpoint(trainer, filepath)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        deferred, self._deferred = self._deferred, []
        for filepath in deferred:
            self._remove_checkpoint(trainer, filepath)


def rng_states() -> dict[str, Any]:
    """The global random states, as plain containers and tensors (``weights_only`` loads)."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "random": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    key = numpy_state["key"].numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", key, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(Callback):
    """Saves the global random states in every checkpoint and restores them on resume, so that
    input noise and drop path draw the same numbers as in an uninterrupted run."""

    @property
    def state_key(self) -> str:
        return "RNGState"

    def state_dict(self) -> dict[str, Any]:
        return rng_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_states(state_dict)

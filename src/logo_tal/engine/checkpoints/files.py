"""Checkpoint files: written atomically, never with non-finite weights, read ``weights_only``
(docs/decisions.md D101).

:class:`AtomicCheckpointIO` is Lightning's public ``CheckpointIO`` plugin interface: every
checkpoint Lightning saves (``last.ckpt`` of ``ModelCheckpoint`` included) goes to a temporary
file in the same directory, is fsynced and renamed over the target, so a kill while saving leaves
the previous file whole; a checkpoint with a NaN or an infinity in its weights is refused; every
load is ``torch.load(weights_only=True)`` and an unreadable file is one line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from logo_tal.core.errors import CheckpointError, NonFiniteError

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

"""Feature stores: one ``.npy`` file per video, or one HDF5 file keyed by video.

Both return ``(T, C)`` float32 arrays and check them on every load (shape, dimension, finite
values), raising :class:`FeatureFileError` with a one-line message that names the file. Layout
follows ActionFormer (docs/decisions.md D5): ``<root>/<prefix><video><ext>``, and for HDF5 one
dataset per video named ``<prefix><video>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from logo_tal.core.errors import UserInputError

H5_SUFFIXES = (".h5", ".hdf5")


class FeatureFileError(UserInputError):
    """A feature file or entry that cannot be used (unreadable, corrupt, wrong shape, NaN/Inf)."""


class MissingFeaturesError(UserInputError, FileNotFoundError):
    """Videos of an annotation split have no features (lists the first few and the count)."""

    def __init__(self, store: str, missing: Sequence[str], split: str = "", max_shown: int = 5):
        self.missing = list(missing)
        shown = ", ".join(self.missing[:max_shown])
        more = f", ... (+{len(self.missing) - max_shown} more)" if len(missing) > max_shown else ""
        where = f" of split '{split}'" if split else ""
        super().__init__(
            f"{len(self.missing)} video(s){where} have no features in {store}: {shown}{more} "
            "(set skip_missing: true to train/evaluate without them)"
        )


def check_features(arr: np.ndarray, where: str, input_dim: int | None) -> np.ndarray:
    """Validate a loaded ``(T, C)`` array and return it as contiguous float32.

    Args:
        arr: the loaded array.
        where: file (and key) for the error message.
        input_dim: expected C, or None to accept any.

    Raises:
        FeatureFileError: not 2-D, empty, wrong C (a transposed ``(C, T)`` file is named as
            such), or containing NaN/Inf.
    """
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise FeatureFileError(f"{where}: not a numeric array")
    if arr.ndim != 2:
        raise FeatureFileError(f"{where}: expected a 2-D (T, C) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise FeatureFileError(f"{where}: empty feature array, shape {arr.shape}")
    if input_dim is not None and arr.shape[1] != input_dim:
        hint = " (stored transposed as (C, T)?)" if arr.shape[0] == input_dim else ""
        raise FeatureFileError(
            f"{where}: feature dimension {arr.shape[1]} != input_dim {input_dim}, "
            f"shape {arr.shape}{hint}"
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise FeatureFileError(f"{where}: {bad} NaN/Inf value(s) in shape {arr.shape}")
    return out


def _check_shape(shape: tuple, where: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise FeatureFileError(f"{where}: expected a 2-D (T, C) array, got shape {shape}")
    return int(shape[0]), int(shape[1])


class FeatureStore(Protocol):
    """What datasets need from a store."""

    input_dim: int | None

    def load(self, video_id: str) -> np.ndarray: ...

    def length(self, video_id: str) -> int: ...

    def shape(self, video_id: str) -> tuple[int, int]: ...

    def video_ids(self) -> list[str]: ...

    def __contains__(self, video_id: str) -> bool: ...

    def describe(self, video_id: str) -> str: ...


class NpyFeatureStore:
    """A directory of ``<prefix><video><ext>`` files, each a ``(T, C)`` array.

    Args:
        root: the directory.
        prefix: file-name prefix (ANet TSP: ``"v_"``).
        ext: file extension including the dot.
        input_dim: expected C (checked on load), None to accept any.
    """

    def __init__(
        self, root: str | Path, prefix: str = "", ext: str = ".npy", input_dim: int | None = None
    ):
        self.root = Path(root)
        self.prefix = prefix
        self.ext = ext
        self.input_dim = input_dim
        if not self.root.is_dir():
            raise FileNotFoundError(f"feature directory not found: {self.root}")

    def path(self, video_id: str) -> Path:
        return self.root / f"{self.prefix}{video_id}{self.ext}"

    def describe(self, video_id: str) -> str:
        return str(self.path(video_id))

    def __contains__(self, video_id: str) -> bool:
        return self.path(video_id).is_file()

    def __repr__(self) -> str:
        return f"NpyFeatureStore({str(self.root)!r}, prefix={self.prefix!r}, ext={self.ext!r})"

    def video_ids(self) -> list[str]:
        """Sorted ids of every ``<prefix>*<ext>`` file in the directory."""
        n = len(self.prefix)
        return sorted(
            p.name[n : len(p.name) - len(self.ext)]
            for p in self.root.iterdir()
            if p.name.startswith(self.prefix) and p.name.endswith(self.ext) and p.is_file()
        )

    def _open(self, video_id: str, mmap: bool) -> np.ndarray:
        path = self.path(video_id)
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError:
            raise FeatureFileError(f"{path}: feature file not found") from None
        except Exception as exc:  # numpy raises ValueError/OSError/EOFError/UnpicklingError
            raise FeatureFileError(
                f"{path}: unreadable feature file ({type(exc).__name__}: {exc})"
            ) from None

    def load(self, video_id: str) -> np.ndarray:
        """Returns: ``(T, C)`` float32."""
        return check_features(
            self._open(video_id, False), str(self.path(video_id)), self.input_dim
        )

    def shape(self, video_id: str) -> tuple[int, int]:
        """(T, C) from the file header, without reading the data."""
        return _check_shape(self._open(video_id, True).shape, self.describe(video_id))

    def length(self, video_id: str) -> int:
        return self.shape(video_id)[0]


class H5FeatureStore:
    """One HDF5 file with a ``(T, C)`` dataset per video, named ``<prefix><video>``.

    The file is opened lazily and once per process: h5py handles must not cross a fork, so the
    owning pid is remembered and a DataLoader worker reopens the file on first use.

    Args:
        path: the ``.h5`` / ``.hdf5`` file.
        prefix: key prefix (ANet TSP: ``"v_"``).
        input_dim: expected C (checked on load), None to accept any.
    """

    def __init__(self, path: str | Path, prefix: str = "", input_dim: int | None = None):
        self.file_path = Path(path)
        self.prefix = prefix
        self.input_dim = input_dim
        self._handle = None
        self._pid: int | None = None
        if not self.file_path.is_file():
            raise FileNotFoundError(f"feature file not found: {self.file_path}")

    def __repr__(self) -> str:
        return f"H5FeatureStore({str(self.file_path)!r}, prefix={self.prefix!r})"

    def __getstate__(self) -> dict:
        # Spawned workers get a pickled copy: never ship an open handle.
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_pid"] = None
        return state

    def _file(self):
        import h5py

        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = h5py.File(self.file_path, "r")
            except OSError as exc:
                raise FeatureFileError(f"{self.file_path}: unreadable HDF5 file ({exc})") from None
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._pid = None

    def key(self, video_id: str) -> str:
        return f"{self.prefix}{video_id}"

    def describe(self, video_id: str) -> str:
        return f"{self.file_path}[{self.key(video_id)}]"

    def __contains__(self, video_id: str) -> bool:
        return self.key(video_id) in self._file()

    def video_ids(self) -> list[str]:
        n = len(self.prefix)
        return sorted(k[n:] for k in self._file().keys() if k.startswith(self.prefix))

    def _dataset(self, video_id: str):
        import h5py

        f = self._file()
        key = self.key(video_id)
        if key not in f:
            raise FeatureFileError(f"{self.describe(video_id)}: no such dataset in the file")
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise FeatureFileError(f"{self.describe(video_id)}: not a dataset")
        return ds

    def load(self, video_id: str) -> np.ndarray:
        """Returns: ``(T, C)`` float32."""
        try:
            arr = self._dataset(video_id)[()]
        except FeatureFileError:
            raise
        except Exception as exc:  # h5py raises OSError/KeyError on corrupt chunks
            raise FeatureFileError(
                f"{self.describe(video_id)}: unreadable ({type(exc).__name__}: {exc})"
            ) from None
        return check_features(np.asarray(arr), self.describe(video_id), self.input_dim)

    def shape(self, video_id: str) -> tuple[int, int]:
        """(T, C) of the dataset, without reading the data."""
        return _check_shape(self._dataset(video_id).shape, self.describe(video_id))

    def length(self, video_id: str) -> int:
        return self.shape(video_id)[0]


def open_feature_store(
    path: str | Path,
    format: str = "auto",
    prefix: str = "",
    ext: str = ".npy",
    input_dim: int | None = None,
) -> NpyFeatureStore | H5FeatureStore:
    """Open a store from a path.

    Args:
        path: a directory of ``.npy`` files, an HDF5 file, or (format ``h5``) a directory holding
            exactly one ``.h5``/``.hdf5`` file (ActionFormer's ANet layout).
        format: ``"auto"`` (file -> HDF5, directory -> npy), ``"npy"`` or ``"h5"``.
        prefix, ext, input_dim: see the store classes.
    """
    path = Path(path)
    if format not in ("auto", "npy", "h5"):
        raise ValueError(f"feature format must be auto, npy or h5, got {format!r}")
    if not path.exists():
        raise FileNotFoundError(f"features not found: {path}")
    if format == "auto":
        format = "npy" if path.is_dir() else "h5"
    if format == "npy":
        return NpyFeatureStore(path, prefix=prefix, ext=ext, input_dim=input_dim)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in H5_SUFFIXES)
        if len(files) != 1:
            raise FileNotFoundError(
                f"{path}: expected exactly one .h5/.hdf5 file in the directory, found {len(files)}"
            )
        path = files[0]
    return H5FeatureStore(path, prefix=prefix, input_dim=input_dim)


def convert_npy_to_h5(
    src_dir: str | Path,
    dst: str | Path,
    prefix: str = "",
    ext: str = ".npy",
    video_ids: Iterable[str] | None = None,
    compression: str | None = None,
    dtype: str = "float32",
) -> int:
    """Pack a directory of ``<prefix><video><ext>`` files into one HDF5 file.

    Keys keep the prefix, so ``H5FeatureStore(dst, prefix)`` reads what
    ``NpyFeatureStore(src_dir, prefix, ext)`` reads. Every array is checked first.

    Args:
        src_dir: directory of ``.npy`` files.
        dst: output file (overwritten; written to a temporary name and renamed at the end).
        prefix, ext: file naming of the source.
        video_ids: subset to convert (default: every matching file).
        compression: h5py compression (``"gzip"``, ``"lzf"`` or None).
        dtype: stored dtype.

    Returns:
        Number of videos written.
    """
    import h5py

    src = NpyFeatureStore(src_dir, prefix=prefix, ext=ext)
    ids = list(video_ids) if video_ids is not None else src.video_ids()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for vid in ids:
            f.create_dataset(
                f"{prefix}{vid}", data=src.load(vid).astype(dtype), compression=compression
            )
    os.replace(tmp, dst)
    return len(ids)

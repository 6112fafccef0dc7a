"""What a datamodule reads: the annotation file, the feature files, and the training crop.

Three small value objects, one per ``conf/data`` node (``data.annotations``, ``data.features``,
``data.crop``), so that :class:`~logo_tal.data.datamodule.TALDataModule` takes a handful of
arguments and each fact about a dataset has one name. Hydra hands lists over as ``ListConfig``:
every sequence is normalised to a tuple here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logo_tal.core.errors import UserInputError

FEATURE_FORMATS = ("auto", "npy", "h5")


def _tuple(values: Sequence | None, kind=str) -> tuple | None:
    return None if values is None else tuple(kind(v) for v in values)


@dataclass(frozen=True)
class AnnotationSource:
    """An ActivityNet-style annotation JSON and how to read it.

    Args:
        file: the JSON; its subsets name the splits (compared lower-cased).
        class_names: explicit class order, or None (the file's ``classes``, else ``label_id``,
            else sorted labels).
        num_classes: expected class count (checked against the class map), or None.
        class_agnostic: every training label -> class 0 (ActivityNet's actionness).
        drop_duplicates: drop duplicate instances from training targets (ActivityNet).
        train_split, val_split, test_split: the subsets of each split.
    """

    file: str
    class_names: tuple[str, ...] | None = None
    num_classes: int | None = None
    class_agnostic: bool = False
    drop_duplicates: bool = False
    train_split: str = "training"
    val_split: str = "validation"
    test_split: str = "validation"

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", str(self.file))
        object.__setattr__(self, "class_names", _tuple(self.class_names))

    def subset(self, split: str) -> str:
        """The annotation subset of ``train``, ``val`` or ``test``."""
        return {"train": self.train_split, "val": self.val_split, "test": self.test_split}[split]


@dataclass(frozen=True)
class FeatureSource:
    """Pre-extracted features and their time grid (what ``extraction.json`` records).

    Args:
        path: a directory of ``.npy`` files, an HDF5 file, or a directory with one HDF5 file.
        input_dim: feature width C (checked on every load).
        feat_stride: frames between feature vectors.
        num_frames: frames per feature clip.
        fps: feature fps for every video (ActivityNet TSP: 15); None uses each video's ``fps``
            from the annotation file.
        format: ``auto``, ``npy`` or ``h5``.
        prefix: file/key prefix (ActivityNet: ``v_``).
        ext: npy file extension.
        resize_to: linear resize of every video to this many steps (ActionFormer's ActivityNet
            setting, 192), or None.
        skip_missing: skip videos without features (counted warning) instead of raising.
    """

    path: str
    input_dim: int
    feat_stride: float
    num_frames: float
    fps: float | None = None
    format: str = "auto"
    prefix: str = ""
    ext: str = ".npy"
    resize_to: int | None = None
    skip_missing: bool = False

    def __post_init__(self) -> None:
        if self.format not in FEATURE_FORMATS:
            raise UserInputError(
                f"data.features.format must be one of {', '.join(FEATURE_FORMATS)}, got "
                f"{self.format!r}"
            )
        object.__setattr__(self, "path", str(self.path))
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "feat_stride", float(self.feat_stride))
        object.__setattr__(self, "num_frames", float(self.num_frames))
        if self.fps is not None:
            object.__setattr__(self, "fps", float(self.fps))


@dataclass(frozen=True)
class TrainingCrop:
    """The random training window of ActionFormer/TriDet's ``truncate_feats``
    (docs/decisions.md D8).

    Args:
        trunc_thresh: minimum inside fraction for a cropped action to stay a target.
        ratio: ``(lo, hi)`` window length fraction for videos shorter than the window, or None.
        widen: ActionFormer's crop (window widened by the grid offset) instead of TriDet's.
    """

    trunc_thresh: float = 0.5
    ratio: tuple[float, float] | None = (0.9, 1.0)
    widen: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratio", _tuple(self.ratio, float))

"""LightningDataModule: annotation splits + feature store -> DataLoaders of Batches."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from logo_tal.data.annotations import AnnotationDatabase, load_annotations
from logo_tal.data.collate import Collate
from logo_tal.data.dataset import TALDataset, feature_records
from logo_tal.data.feature_store import NpyFeatureStore, open_feature_store
from logo_tal.extract.record import check_features_record
from logo_tal.grid import FeatureGrid

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "predict")


def seed_worker(worker_id: int) -> None:
    """Seed numpy / random of a DataLoader worker from its torch seed (itself drawn from the
    loader's seeded generator, so it changes every epoch and is reproducible)."""
    info = get_worker_info()
    seed = (info.seed if info is not None else torch.initial_seed()) % 2**32
    np.random.seed(seed)
    random.seed(seed)


class TALDataModule(L.LightningDataModule):
    """Train / val / test / predict data for temporal action localization.

    Splits are annotation subsets (compared lower-cased). THUMOS14 trains on ``validation`` and
    evaluates on ``test``; its val split is the test split (the last epoch is reported, no model
    selection: notes/users.md row 11).

    Args:
        annotation_file: ActivityNet-style JSON.
        features: directory of ``.npy`` files, an HDF5 file, or a directory with one HDF5 file.
        input_dim: feature dimension C (checked on every load).
        feat_stride: frames between feature vectors.
        num_frames: frames per feature clip.
        max_seq_len: training window in steps; must be a multiple of ``2**(num_levels-1)``.
        num_levels: pyramid levels of the detector; the padding divisor is ``2**(num_levels-1)``.
        num_classes: expected number of classes (checked against the class map), or None.
        class_names: explicit class list, or None (file's ``classes``, label_id or sorted labels).
        class_agnostic: every label -> class 0.
        fps: feature fps for every video (ANet TSP: 15); None uses each video's ``fps``.
        feature_format: ``auto``, ``npy`` or ``h5``.
        feature_prefix: file/key prefix (ANet: ``v_``).
        feature_ext: npy file extension.
        train_split, val_split, test_split: annotation subsets.
        trunc_thresh, crop_ratio, widen_crop: training crop (see :class:`TALDataset`).
        resize_to: linear resize of every video to this length (ActionFormer ANet 192), or None.
        drop_duplicates: drop duplicate instances from training targets (ActivityNet).
        skip_missing: skip videos without features (counted warning) instead of raising.
        batch_size: training batch size.
        eval_batch_size: val/test/predict batch size (None: ``batch_size``).
        num_workers, pin_memory: DataLoader settings; workers persist when > 0.
        seed: seed of the crops and the shuffling.
        predict_features: ``.npy`` file or directory of them for the predict path, or None.
        predict_fps: fps of the predict features (None: ``fps``).
        generate_synthetic: create the synthetic benchmark in ``prepare_data`` when the
            annotation file is missing (it is written to the annotation file's directory).
        synthetic_preset, synthetic_seed: generator preset and seed.
    """

    def __init__(
        self,
        annotation_file: str,
        features: str,
        input_dim: int,
        feat_stride: float,
        num_frames: float,
        max_seq_len: int,
        num_levels: int = 6,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        class_agnostic: bool = False,
        fps: float | None = None,
        feature_format: str = "auto",
        feature_prefix: str = "",
        feature_ext: str = ".npy",
        train_split: str = "training",
        val_split: str = "validation",
        test_split: str = "validation",
        trunc_thresh: float = 0.5,
        crop_ratio: Sequence[float] | None = (0.9, 1.0),
        widen_crop: bool = False,
        resize_to: int | None = None,
        drop_duplicates: bool = False,
        skip_missing: bool = False,
        batch_size: int = 2,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        predict_features: str | None = None,
        predict_fps: float | None = None,
        generate_synthetic: bool = False,
        synthetic_preset: str = "default",
        synthetic_seed: int = 0,
    ):
        super().__init__()
        self.annotation_file = str(annotation_file)
        self.features = str(features)
        self.feature_format = feature_format
        self.feature_prefix = feature_prefix
        self.feature_ext = feature_ext
        self._input_dim = int(input_dim)
        self.feat_stride = float(feat_stride)
        self.num_frames = float(num_frames)
        self.max_seq_len = int(max_seq_len)
        self.num_levels = int(num_levels)
        self.divisor = 2 ** (self.num_levels - 1)
        if self.max_seq_len % self.divisor:
            raise ValueError(
                f"max_seq_len {self.max_seq_len} is not a multiple of 2**(num_levels-1) = "
                f"{self.divisor} (num_levels={self.num_levels})"
            )
        if resize_to is not None and resize_to > self.max_seq_len:
            raise ValueError(f"resize_to {resize_to} exceeds max_seq_len {self.max_seq_len}")
        self._num_classes = num_classes
        self._class_names = list(class_names) if class_names is not None else None
        self.class_agnostic = class_agnostic
        self.fps = fps
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.trunc_thresh = trunc_thresh
        self.crop_ratio = tuple(crop_ratio) if crop_ratio is not None else None
        self.widen_crop = widen_crop
        self.resize_to = resize_to
        self.drop_duplicates = drop_duplicates
        self.skip_missing = skip_missing
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.predict_features = predict_features
        self.predict_fps = predict_fps
        self.generate_synthetic = generate_synthetic
        self.synthetic_preset = synthetic_preset
        self.synthetic_seed = synthetic_seed
        self._db: AnnotationDatabase | None = None
        self._eval_db: AnnotationDatabase | None = None
        self._store = None
        self.datasets: dict[str, TALDataset] = {}
        self._generators: dict[str, torch.Generator] = {}

    # ----------------------------------------------------------------- preparation
    def prepare_data(self) -> None:
        """Generate the synthetic benchmark if asked to and it is missing (rank 0 only)."""
        if not self.generate_synthetic or Path(self.annotation_file).exists():
            return
        from logo_tal.data import synthetic

        out = Path(self.annotation_file).parent
        fmt = "h5" if self.feature_format == "h5" else "npy"
        log.warning(
            "synthetic data not found at %s: generating it (%s)", out, self.synthetic_preset
        )
        info = synthetic.generate(out, self.synthetic_preset, self.synthetic_seed, fmt)
        for made, wanted in (
            (info["annotations"], self.annotation_file),
            (info["features"], self.features),
        ):
            if Path(made).resolve() != Path(wanted).resolve():
                raise ValueError(
                    f"synthetic data was written to {made}, but the config reads {wanted}; "
                    f"point annotation_file/features at {out}/{synthetic.ANNOTATION_FILE} and "
                    f"{out}/{synthetic.NPY_DIR if fmt == 'npy' else synthetic.H5_FILE}"
                )

    @property
    def database(self) -> AnnotationDatabase:
        if self._db is None:
            if self.generate_synthetic and not Path(self.annotation_file).exists():
                self.prepare_data()
            self._db = load_annotations(
                self.annotation_file,
                class_names=self._class_names,
                class_agnostic=self.class_agnostic,
                fps=self.fps,
                drop_duplicates=self.drop_duplicates,
            )
            if self._num_classes is not None and self._db.num_classes != self._num_classes:
                raise ValueError(
                    f"{self.annotation_file}: {self._db.num_classes} classes in the annotation "
                    f"file but the config says num_classes={self._num_classes}"
                )
        return self._db

    @property
    def eval_database(self) -> AnnotationDatabase:
        """The annotation file with its real classes, whatever ``class_agnostic`` says.

        Class-agnostic training (ActivityNet) collapses every label to "action", but fused
        evaluation scores the real classes; reading the file here keeps the class map
        (``class_names`` > file ``classes`` > ``label_id`` > sorted labels) in one place.
        """
        if not self.class_agnostic:
            return self.database
        if self._eval_db is None:
            self.database  # noqa: B018  (generates synthetic data and validates the file first)
            self._eval_db = load_annotations(
                self.annotation_file,
                class_names=self._class_names,
                class_agnostic=False,
                fps=self.fps,
                drop_duplicates=self.drop_duplicates,
                log_problems=False,  # the same problems were logged by ``database``
            )
        return self._eval_db

    @property
    def store(self):
        if self._store is None:
            # Features from logo-tal-extract carry their settings: a config that differs fails.
            check_features_record(
                self.features, self.fps, self.feat_stride, self.num_frames, self._input_dim
            )
            self._store = open_feature_store(
                self.features,
                format=self.feature_format,
                prefix=self.feature_prefix,
                ext=self.feature_ext,
                input_dim=self._input_dim,
            )
        return self._store

    def _dataset(self, split: str) -> TALDataset:
        if split == "predict":
            return self._predict_dataset()
        subset = self.splits[split]
        records = self.database.subset(subset)
        if not records:
            counts = self.database.subset_counts()
            raise ValueError(
                f"{self.annotation_file}: no videos in subset {subset!r} for the {split} split "
                f"(subsets: {sorted(counts)})"
            )
        return TALDataset(
            records,
            self.store,
            self.feat_stride,
            self.num_frames,
            self.max_seq_len,
            training=split == "train",
            trunc_thresh=self.trunc_thresh,
            crop_ratio=self.crop_ratio,
            widen_crop=self.widen_crop,
            resize_to=self.resize_to,
            seed=self.seed,
            skip_missing=self.skip_missing,
            split=split,
        )

    def _predict_dataset(self) -> TALDataset:
        if self.predict_features is None:
            raise ValueError("predict_features is not set (a .npy file or a directory of them)")
        fps = self.predict_fps if self.predict_fps is not None else self.fps
        if fps is None:
            raise ValueError("predict needs the features' fps: set predict_fps (or fps)")
        path = Path(self.predict_features)
        if path.is_file() and path.suffix == self.feature_ext:
            store = NpyFeatureStore(
                path.parent, prefix="", ext=self.feature_ext, input_dim=self._input_dim
            )
            ids = [path.name[: -len(self.feature_ext)]]
        else:
            store = open_feature_store(
                path, prefix="", ext=self.feature_ext, input_dim=self._input_dim
            )
            ids = store.video_ids()
            if not ids:
                raise FileNotFoundError(f"no {self.feature_ext} feature files in {path}")
        records = feature_records(store, ids, fps, self.feat_stride, self.num_frames)
        return TALDataset(
            records,
            store,
            self.feat_stride,
            self.num_frames,
            self.max_seq_len,
            training=False,
            resize_to=self.resize_to,
            split="predict",
        )

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("predict",),
            None: ("train", "val", "test"),
        }[stage]
        for split in wanted:
            if split not in self.datasets:
                self.datasets[split] = self._dataset(split)

    # ----------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int:
        if self._db is None and self._num_classes is not None:
            return self._num_classes
        return self.database.num_classes

    @property
    def input_dim(self) -> int:
        return self._input_dim

    @property
    def class_names(self) -> list[str]:
        """Training classes (``["action"]`` when class-agnostic)."""
        return list(self.database.class_names)

    @property
    def eval_class_names(self) -> list[str]:
        """The annotation file's real classes (equal to ``class_names`` unless class-agnostic)."""
        return list(self.eval_database.class_names)

    def eval_ground_truth(
        self, split: str | None = None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Evaluation ground truth with the real classes: ``{video: (segments (M, 2) s,
        labels (M,) indices into eval_class_names)}``, as annotated (never clamped).

        Args:
            split: ``train``/``val``/``test`` for that split's subset; None for every video.
        """
        db = self.eval_database
        if split is None:
            records = list(db.videos.values())
        else:
            records = db.subset(self.splits[split])
        return {
            r.video_id: (
                torch.from_numpy(r.gt_segments.astype(np.float64)).reshape(-1, 2),
                torch.from_numpy(r.gt_labels.astype(np.int64)).reshape(-1),
            )
            for r in records
        }

    def dataset(self, split: str) -> TALDataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self.datasets:
            self.datasets[split] = self._dataset(split)
        return self.datasets[split]

    def videos(self, split: str) -> list[str]:
        """Ordered video ids of a split: ``Batch.video_index`` indexes this list."""
        return self.dataset(split).video_ids

    def grid(self, video_id: str, split: str | None = None) -> FeatureGrid:
        """Effective feature grid of a video (searched in ``split``, or in every built split)."""
        names = [split] if split is not None else [s for s in SPLITS if s in self.datasets]
        if not names:
            names = ["test"]
        for name in names:
            ds = self.dataset(name)
            ids = ds.video_ids
            if video_id in ids:
                return ds.grid(ids.index(video_id))
        raise KeyError(f"video {video_id!r} not found in split(s) {names}")

    # ----------------------------------------------------------------- loaders
    def _loader(self, split: str) -> DataLoader:
        training = split == "train"
        # One generator per split for the module's lifetime: every epoch (and every rebuilt
        # loader) continues its stream, so shuffles and worker seeds differ per epoch but are
        # reproducible from the seed.
        if split not in self._generators:
            self._generators[split] = torch.Generator().manual_seed(self.seed)
        generator = self._generators[split]
        workers = self.num_workers
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size if training else self.eval_batch_size,
            shuffle=training,
            num_workers=workers,
            collate_fn=Collate(self.divisor, self.max_seq_len, training),
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            worker_init_fn=seed_worker if workers > 0 else None,
            generator=generator,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

"""LightningDataModule: annotation splits + feature store -> DataLoaders of Batches."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from logo_tal.data.annotations import AnnotationDatabase, VideoRecord, load_annotations
from logo_tal.data.collate import TRAIN_PADDINGS, Collate
from logo_tal.data.dataset import TALDataset, feature_records
from logo_tal.data.extraction_record import check_features_record
from logo_tal.data.feature_store import NpyFeatureStore, open_feature_store
from logo_tal.data.sampler import LengthGroupedSampler
from logo_tal.data.video_scores import ExternalScores
from logo_tal.errors import DATA_DOCS, DataNotFoundError, UserInputError
from logo_tal.protocol import THUMOS_TIOU
from logo_tal.pyramid import PyramidSpec

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "predict")
# Splits whose videos a stage evaluates. fit includes test so that a video without video-level
# scores fails before training, not after it.
_EVALUATED_SPLITS = {"fit": ("val", "test"), "validate": ("val",), "test": ("test",)}


def _fusion_settings(fusion: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not fusion:
        return None
    unknown = set(fusion) - {"scores_file", "topk", "max_dets"}
    if unknown or not fusion.get("scores_file"):
        raise UserInputError(
            "data.fusion must be null or {scores_file: PATH, topk: 2, max_dets: 200}, got "
            f"{dict(fusion)}"
        )
    return {
        "scores_file": str(fusion["scores_file"]),
        "topk": int(fusion.get("topk", 2)),
        "max_dets": int(fusion.get("max_dets", 200)),
    }


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
    selection: docs/decisions.md D75).

    The dataset's evaluation protocol lives here too: the tIoU thresholds, and for ActivityNet
    the video-level class scores that label class-agnostic detections. With scores, evaluation
    uses the file's real classes (:attr:`eval_class_names`) and the batches' ground truth is in
    that vocabulary; without, the training classes.

    Args:
        annotation_file: ActivityNet-style JSON.
        features: directory of ``.npy`` files, an HDF5 file, or a directory with one HDF5 file.
        input_dim: feature dimension C (checked on every load).
        feat_stride: frames between feature vectors.
        num_frames: frames per feature clip.
        max_seq_len: training window in steps; a multiple of the pyramid's divisor.
        pyramid: the detector's :class:`~logo_tal.pyramid.PyramidSpec` (batches are padded to a
            multiple of its divisor); the entry points pass ``detector.spec``.
        tiou_thresholds: tIoU thresholds of the dataset's mAP.
        fusion: ActivityNet score fusion ``{scores_file, topk, max_dets}``: a JSON of
            video-level class scores (:class:`~logo_tal.data.video_scores.ExternalScores`)
            whose top ``topk`` classes label the best ``max_dets`` class-agnostic detections
            of each video; None evaluates the training classes as they are.
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
        drop_last: drop the last incomplete training batch (AF/TD do; the THUMOS and ANet
            configs set it, docs/decisions.md D98). Evaluation loaders never drop.
        train_padding: ``batch`` pads each training batch to its longest video (rounded up to
            the pyramid's divisor), ``max_seq_len`` to the training window, as the ancestors
            do; the same model either way (docs/decisions.md D122).
        train_pad_multiple: training batches are padded to a multiple of this (None: the
            pyramid's divisor); ``logo_tal.build`` sets it coarser for a compiled detector so
            that an epoch brings few distinct shapes.
        bucket_by_length: batch training videos of similar length together
            (:class:`~logo_tal.data.sampler.LengthGroupedSampler`); changes which videos share
            a batch, hence off by default.
        num_workers, pin_memory: DataLoader settings; workers persist when > 0.
        seed: seed of the crops and the shuffling.
        predict_features: ``.npy`` file or directory of them for the predict split, or None.
        predict_fps: fps of the predict features (None: ``fps``).
        predict_annotations: optional annotation JSON giving the fps, duration and ground truth
            of the predict videos it lists.
        predict_duration: duration in seconds of a single predict video (None: the span its
            features cover).
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
        pyramid: PyramidSpec | None = None,
        tiou_thresholds: Sequence[float] = THUMOS_TIOU,
        fusion: Mapping[str, Any] | None = None,
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
        drop_last: bool = False,
        train_padding: str = "batch",
        train_pad_multiple: int | None = None,
        bucket_by_length: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        predict_features: str | None = None,
        predict_fps: float | None = None,
        predict_annotations: str | None = None,
        predict_duration: float | None = None,
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
        self.pyramid = pyramid
        if pyramid is not None:
            pyramid.check_length(self.max_seq_len, "data.max_seq_len")
        self.tiou_thresholds = [float(t) for t in tiou_thresholds]
        self.fusion = _fusion_settings(fusion)
        self.video_scores_file = None if self.fusion is None else self.fusion["scores_file"]
        if resize_to is not None and resize_to > self.max_seq_len:
            raise UserInputError(f"resize_to {resize_to} exceeds max_seq_len {self.max_seq_len}")
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
        self.drop_last = bool(drop_last)
        if train_padding not in TRAIN_PADDINGS:
            raise UserInputError(
                f"data.train_padding must be one of {', '.join(TRAIN_PADDINGS)}, got "
                f"{train_padding!r}"
            )
        self.train_padding = train_padding
        self.train_pad_multiple = train_pad_multiple
        self.bucket_by_length = bool(bucket_by_length)
        self._sampler: LengthGroupedSampler | None = None
        self._sampler_state: dict | None = None  # from a checkpoint
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.predict_features = predict_features
        self.predict_fps = predict_fps
        self.predict_annotations = predict_annotations
        self.predict_duration = predict_duration
        self.generate_synthetic = generate_synthetic
        self.synthetic_preset = synthetic_preset
        self.synthetic_seed = synthetic_seed
        self._db: AnnotationDatabase | None = None
        self._eval_db: AnnotationDatabase | None = None
        self._store = None
        self._video_scores: ExternalScores | None = None
        self.datasets: dict[str, TALDataset] = {}
        self._generators: dict[str, torch.Generator] = {}
        self._crop_state: dict | None = None  # from a checkpoint, for the train dataset

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
                raise UserInputError(
                    f"synthetic data was written to {made}, but the config reads {wanted}; "
                    f"point annotation_file/features at {out}/{synthetic.ANNOTATION_FILE} and "
                    f"{out}/{synthetic.NPY_DIR if fmt == 'npy' else synthetic.H5_FILE}"
                )

    @property
    def database(self) -> AnnotationDatabase:
        if self._db is None:
            if self.generate_synthetic and not Path(self.annotation_file).exists():
                self.prepare_data()
            self.check_paths()
            self._db = load_annotations(
                self.annotation_file,
                class_names=self._class_names,
                class_agnostic=self.class_agnostic,
                fps=self.fps,
                drop_duplicates=self.drop_duplicates,
            )
            if self._num_classes is not None and self._db.num_classes != self._num_classes:
                raise UserInputError(
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

    def check_paths(self) -> None:
        """Fail in one line when the annotation file or the features are not where the config
        says: which paths were expected, and where the layout is described.

        Raises:
            DataNotFoundError: either path is missing.
        """
        missing = [p for p in (self.annotation_file, self.features) if not Path(p).exists()]
        if missing:
            raise DataNotFoundError(
                f"data not found: no {' and no '.join(missing)}; point paths.data_dir (or "
                "LOGO_TAL_DATA_DIR) at the directory holding the layout described in "
                f"{DATA_DOCS} (or set data.annotation_file and data.features)"
            )

    @property
    def store(self):
        if self._store is None:
            self.check_paths()
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

    @property
    def video_scores(self) -> ExternalScores | None:
        """Video-level class scores in :attr:`eval_class_names` order, or None (no fusion)."""
        if self.video_scores_file is None:
            return None
        if self._video_scores is None:
            self._video_scores = ExternalScores(self.video_scores_file, self.eval_class_names)
        return self._video_scores

    def _records(self, split: str) -> list[VideoRecord]:
        subset = self.splits[split]
        records = self.database.subset(subset)
        if not records:
            counts = self.database.subset_counts()
            raise UserInputError(
                f"{self.annotation_file}: no videos in subset {subset!r} for the {split} split "
                f"(subsets: {sorted(counts)})"
            )
        if split == "train" or self.video_scores_file is None or not self.class_agnostic:
            return records
        # Fused evaluation scores the real classes: the same videos with their real labels.
        real = self.eval_database.videos
        return [
            dataclasses.replace(
                r, gt_segments=real[r.video_id].gt_segments, gt_labels=real[r.video_id].gt_labels
            )
            for r in records
        ]

    def _dataset(self, split: str) -> TALDataset:
        if split == "predict":
            return self._predict_dataset()
        records = self._records(split)
        dataset = TALDataset(
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
        if split == "train" and self._crop_state is not None:
            dataset.set_rng_state(self._crop_state)
        return dataset

    def _predict_dataset(self) -> TALDataset:
        if self.predict_features is None:
            raise UserInputError("data.predict_features is not set (a .npy file or a directory)")
        fps = self.predict_fps if self.predict_fps is not None else self.fps
        path = Path(self.predict_features)
        if path.is_file() and path.suffix == self.feature_ext:
            store = NpyFeatureStore(
                path.parent, prefix="", ext=self.feature_ext, input_dim=self._input_dim
            )
            ids = [path.name[: -len(self.feature_ext)]]
        elif path.exists():
            store = open_feature_store(
                path, prefix="", ext=self.feature_ext, input_dim=self._input_dim
            )
            ids = store.video_ids()
            if not ids:
                raise FileNotFoundError(f"no {self.feature_ext} feature files in {path}")
        else:
            raise FileNotFoundError(f"data.predict_features={path} does not exist")
        known = self._predict_annotations()
        if fps is None and not all(v in known for v in ids):
            raise UserInputError("predict needs the features' fps: set data.predict_fps")
        records = []
        for record in feature_records(store, ids, fps or 1.0, self.feat_stride, self.num_frames):
            # A video the annotations list takes its fps, duration and ground truth from there.
            record = known.get(record.video_id, record)
            if self.predict_duration is not None and len(ids) == 1:
                record = dataclasses.replace(record, duration=float(self.predict_duration))
            records.append(record)
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

    def _predict_annotations(self) -> dict[str, VideoRecord]:
        if not self.predict_annotations:
            return {}
        # Only timing and segments are used (the plots' ground truth): no class map needed.
        return load_annotations(self.predict_annotations, fps=self.fps).videos

    def setup(self, stage: str | None = None) -> None:
        """Build the stage's datasets; with video-level scores, check that every evaluated
        video has them (before any training step)."""
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
        if self.video_scores is not None:
            for split in _EVALUATED_SPLITS.get(stage or "fit", ()):
                try:
                    videos = self.videos(split)
                except (KeyError, ValueError, FileNotFoundError):
                    if stage == "fit" and split == "test":
                        continue  # checked again by the test stage, where it is required
                    raise
                self.video_scores.require(videos, f"the {split} split")

    def check_features(self, split: str) -> None:
        """Read the first feature file of ``split`` now, so that a wrong ``input_dim`` fails at
        start-up instead of inside the first forward pass.

        Raises:
            ValueError: the features are not ``(T, input_dim)``.
        """
        videos = self.videos(split)
        if videos:
            self.store.load(videos[0])  # the store checks the width against input_dim

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
        """The evaluation vocabulary: the annotation file's real classes when video-level scores
        label the detections, otherwise the training classes."""
        if self.video_scores_file is None:
            return self.class_names
        return list(self.eval_database.class_names)

    def dataset(self, split: str) -> TALDataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self.datasets:
            self.datasets[split] = self._dataset(split)
        return self.datasets[split]

    def videos(self, split: str) -> list[str]:
        """Ordered video ids of a split: ``Batch.video_index`` indexes this list."""
        return self.dataset(split).video_ids

    # ----------------------------------------------------------------- loaders
    def _loader(self, split: str) -> DataLoader:
        training = split == "train"
        # One generator per split for the module's lifetime: every epoch (and every rebuilt
        # loader) continues its stream, so shuffles and worker seeds differ per epoch but are
        # reproducible from the seed.
        if split not in self._generators:
            self._generators[split] = torch.Generator().manual_seed(self.seed)
        generator = self._generators[split]
        if self.pyramid is None:
            raise UserInputError(
                "TALDataModule needs the detector's pyramid to pad batches: pass "
                "pyramid=detector.spec"
            )
        sampler = self.train_sampler() if training and self.bucket_by_length else None
        workers = self.num_workers
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size if training else self.eval_batch_size,
            shuffle=training and sampler is None,
            sampler=sampler,
            # The sampler drops what drop_last drops itself (its batches must stay whole).
            drop_last=self.drop_last and training and sampler is None,
            num_workers=workers,
            collate_fn=self._collate(training),
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            worker_init_fn=seed_worker if workers > 0 else None,
            generator=generator,
        )

    def _collate(self, training: bool) -> Collate:
        divisor = self.pyramid.divisor
        if training and self.train_pad_multiple is not None:
            if self.train_pad_multiple % divisor:
                raise UserInputError(
                    f"train_pad_multiple={self.train_pad_multiple} is not a multiple of the "
                    f"pyramid's divisor {divisor}"
                )
            divisor = self.train_pad_multiple
        return Collate(divisor, self.max_seq_len, training, self.train_padding)

    def train_sampler(self) -> LengthGroupedSampler:
        """The length-grouping sampler of ``bucket_by_length`` (one per datamodule; under DDP
        it takes the attached trainer's world size and rank)."""
        if self._sampler is None:
            trainer = self.trainer
            world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
            self._sampler = LengthGroupedSampler(
                self.dataset("train").training_lengths(),
                self.batch_size,
                seed=self.seed,
                drop_last=self.drop_last,
                num_replicas=world,
                rank=rank,
            )
            if self._sampler_state is not None:
                self._sampler.load_state_dict(self._sampler_state)
        return self._sampler

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    # ----------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """The data order, saved in every checkpoint: each split's loader generator (shuffling,
        worker seeds), the main process's crop generator (docs/decisions.md D101) and, with
        ``bucket_by_length``, the sampler's epoch."""
        state: dict[str, Any] = {
            "generators": {split: g.get_state() for split, g in self._generators.items()}
        }
        train = self.datasets.get("train")
        crops = train.rng_state() if train is not None else self._crop_state
        if crops is not None:
            state["crops"] = crops
        sampler = self._sampler.state_dict() if self._sampler is not None else self._sampler_state
        if sampler is not None:
            state["sampler"] = sampler
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the data order of :meth:`state_dict` (Lightning calls this on resume)."""
        for split, value in state_dict.get("generators", {}).items():
            generator = torch.Generator()
            generator.set_state(value)
            self._generators[split] = generator
        self._crop_state = state_dict.get("crops")
        self._sampler_state = state_dict.get("sampler")
        if self._sampler_state is not None and self._sampler is not None:
            self._sampler.load_state_dict(self._sampler_state)
        if self._crop_state is not None and "train" in self.datasets:
            self.datasets["train"].set_rng_state(self._crop_state)

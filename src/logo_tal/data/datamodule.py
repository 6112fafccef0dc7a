"""LightningDataModule: annotation splits + feature store -> DataLoaders of Batches."""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from logo_tal.core.errors import DATA_DOCS, DataNotFoundError, UserInputError
from logo_tal.core.pyramid import PyramidSpec
from logo_tal.data.annotations import AnnotationDatabase, VideoRecord, load_annotations
from logo_tal.data.collate import TRAIN_PADDINGS, Collate
from logo_tal.data.dataset import TALDataset
from logo_tal.data.extraction_record import check_features_record
from logo_tal.data.feature_store import open_feature_store
from logo_tal.data.sampler import LengthGroupedSampler, ShuffledOrder
from logo_tal.data.sources import AnnotationSource, FeatureSource, TrainingCrop

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def init_worker(worker_id: int) -> None:
    """Start a DataLoader worker: numpy and random seeded from its torch seed (crops do not use
    them, D101; a user's transform might), and SIGTERM left to the main process.

    SLURM stops a requeued or preempted job by sending SIGTERM to all of its processes; the
    main process lets it pass (submitit and Lightning both do) and is killed at the end of the
    grace period without writing a result, so the requeued job runs again. A worker killed by
    the SIGTERM instead would make the main process fail at once and record the job as failed
    (measured with ``scontrol requeue`` and two workers). An ignoring worker still exits with
    its parent: the DataLoader's watchdog notices a dead parent.
    """
    info = get_worker_info()
    seed = (info.seed if info is not None else torch.initial_seed()) % 2**32
    np.random.seed(seed)
    random.seed(seed)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class TALDataModule(L.LightningDataModule):
    """Train / val / test data for temporal action localization.

    Splits are annotation subsets (compared lower-cased). THUMOS14 trains on ``validation`` and
    evaluates on ``test``; its val split is the test split (the last epoch is reported, no model
    selection: docs/decisions.md D75). New videos go through
    :mod:`logo_tal.data.predict_inputs`, the evaluation protocol through
    :class:`logo_tal.evaluation.protocol.EvaluationProtocol`.

    Args:
        annotations: the annotation file and its splits and classes.
        features: the feature files and their time grid.
        max_seq_len: training window in steps; a multiple of the pyramid's divisor.
        crop: the random training window.
        batch_size: training batch size.
        eval_batch_size: val/test batch size (None: ``batch_size``).
        drop_last: drop the last incomplete training batch (AF/TD do; the THUMOS and ANet
            configs set it, docs/decisions.md D98). Evaluation loaders never drop.
        train_padding: ``batch`` pads each training batch to its longest video (rounded up to
            the pyramid's divisor), ``max_seq_len`` to the training window, as the ancestors
            do; the same model either way (docs/decisions.md D122).
        bucket_by_length: batch training videos of similar length together
            (:class:`~logo_tal.data.sampler.LengthGroupedSampler`); changes which videos share
            a batch, hence off by default.
        num_workers: DataLoader workers (persistent when > 0); memory is pinned when the
            attached trainer runs on CUDA, the only place pinning helps.
        seed: seed of the crops and the shuffling.
        pyramid: the detector's :class:`~logo_tal.core.pyramid.PyramidSpec` (batches are
            padded to a multiple of its divisor); ``logo_tal.app.build`` passes
            ``detector.spec``.
        train_pad_multiple: training batches are padded to a multiple of this (None: the
            pyramid's divisor); ``logo_tal.app.build`` sets it coarser for a compiled detector so
            that an epoch brings few distinct shapes.
        eval_real_classes: evaluation batches carry the annotation file's real classes even
            when training is class-agnostic (score fusion labels detections with them);
            ``logo_tal.app.build`` sets it from the evaluation protocol.
        prepare: called with ``(annotations, features)`` in :meth:`prepare_data` (rank 0) and
            before the annotations are first read, e.g.
            :class:`~logo_tal.prep.synthetic.prepare.SyntheticBenchmark`; None: nothing.
    """

    def __init__(
        self,
        annotations: AnnotationSource,
        features: FeatureSource,
        max_seq_len: int,
        crop: TrainingCrop | None = None,
        batch_size: int = 2,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        train_padding: str = "batch",
        bucket_by_length: bool = False,
        num_workers: int = 0,
        seed: int = 0,
        pyramid: PyramidSpec | None = None,
        train_pad_multiple: int | None = None,
        eval_real_classes: bool = False,
        prepare: Callable[[AnnotationSource, FeatureSource], None] | None = None,
    ):
        super().__init__()
        self.annotations = annotations
        self.features = features
        self.max_seq_len = int(max_seq_len)
        if pyramid is not None:
            pyramid.check_length(self.max_seq_len, "data.max_seq_len")
        if features.resize_to is not None and features.resize_to > self.max_seq_len:
            raise UserInputError(
                f"data.features.resize_to {features.resize_to} exceeds max_seq_len "
                f"{self.max_seq_len}"
            )
        if train_padding not in TRAIN_PADDINGS:
            raise UserInputError(
                f"data.train_padding must be one of {', '.join(TRAIN_PADDINGS)}, got "
                f"{train_padding!r}"
            )
        self.crop = crop or TrainingCrop()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.drop_last = bool(drop_last)
        self.train_padding = train_padding
        self.bucket_by_length = bool(bucket_by_length)
        self.num_workers = num_workers
        self.seed = seed
        self.pyramid = pyramid
        self.train_pad_multiple = train_pad_multiple
        self.eval_real_classes = bool(eval_real_classes)
        self.prepare = prepare
        self._sampler: ShuffledOrder | LengthGroupedSampler | None = None
        self._sampler_state: dict | None = None  # from a checkpoint
        self._db: AnnotationDatabase | None = None
        self._eval_db: AnnotationDatabase | None = None
        self._store = None
        self.datasets: dict[str, TALDataset] = {}

    # ----------------------------------------------------------------- preparation
    def prepare_data(self) -> None:
        """Run the ``prepare`` step, if any (Lightning calls this on rank 0 only)."""
        if self.prepare is not None:
            self.prepare(self.annotations, self.features)

    def _load_annotations(self, class_agnostic: bool, log_problems: bool = True):
        source = self.annotations
        return load_annotations(
            source.file,
            class_names=source.class_names,
            class_agnostic=class_agnostic,
            fps=self.features.fps,
            drop_duplicates=source.drop_duplicates,
            log_problems=log_problems,
        )

    @property
    def database(self) -> AnnotationDatabase:
        if self._db is None:
            self.prepare_data()
            self.check_paths()
            self._db = self._load_annotations(self.annotations.class_agnostic)
            expected = self.annotations.num_classes
            if expected is not None and self._db.num_classes != expected:
                raise UserInputError(
                    f"{self.annotations.file}: {self._db.num_classes} classes in the annotation "
                    f"file but the config says num_classes={expected}"
                )
        return self._db

    @property
    def eval_database(self) -> AnnotationDatabase:
        """The annotation file with its real classes, whatever ``class_agnostic`` says.

        Class-agnostic training (ActivityNet) collapses every label to "action", but fused
        evaluation scores the real classes; reading the file here keeps the class map
        (``class_names`` > file ``classes`` > ``label_id`` > sorted labels) in one place.
        """
        if not self.annotations.class_agnostic:
            return self.database
        if self._eval_db is None:
            self.database  # noqa: B018  (prepares and validates the file first)
            # The same problems were logged by ``database``.
            self._eval_db = self._load_annotations(False, log_problems=False)
        return self._eval_db

    def check_paths(self) -> None:
        """Fail in one line when the annotation file or the features are not where the config
        says: which paths were expected, and where the layout is described.

        Raises:
            DataNotFoundError: either path is missing.
        """
        paths = (self.annotations.file, self.features.path)
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise DataNotFoundError(
                f"data not found: no {' and no '.join(missing)}; point paths.data_dir (or "
                "LOGO_TAL_DATA_DIR) at the directory holding the layout described in "
                f"{DATA_DOCS} (or set data.annotations.file and data.features.path)"
            )

    @property
    def store(self):
        if self._store is None:
            self.check_paths()
            source = self.features
            # Features from logo-tal-extract carry their settings: a config that differs fails.
            check_features_record(
                source.path, source.fps, source.feat_stride, source.num_frames, source.input_dim
            )
            self._store = open_feature_store(
                source.path,
                format=source.format,
                prefix=source.prefix,
                ext=source.ext,
                input_dim=source.input_dim,
            )
        return self._store

    def _records(self, split: str) -> list[VideoRecord]:
        subset = self.annotations.subset(split)
        records = self.database.subset(subset)
        if not records:
            counts = self.database.subset_counts()
            raise UserInputError(
                f"{self.annotations.file}: no videos in subset {subset!r} for the {split} "
                f"split (subsets: {sorted(counts)})"
            )
        if split == "train" or not self.eval_real_classes or not self.annotations.class_agnostic:
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
        return TALDataset(
            self._records(split),
            self.store,
            self.features.feat_stride,
            self.features.num_frames,
            self.max_seq_len,
            training=split == "train",
            trunc_thresh=self.crop.trunc_thresh,
            crop_ratio=self.crop.ratio,
            widen_crop=self.crop.widen,
            resize_to=self.features.resize_to,
            seed=self.seed,
            skip_missing=self.features.skip_missing,
            split=split,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the stage's datasets."""
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            None: ("train", "val", "test"),
        }[stage]
        for split in wanted:
            self.dataset(split)

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
        if self._db is None and self.annotations.num_classes is not None:
            return self.annotations.num_classes
        return self.database.num_classes

    @property
    def input_dim(self) -> int:
        return self.features.input_dim

    @property
    def class_names(self) -> list[str]:
        """Training classes (``["action"]`` when class-agnostic)."""
        return list(self.database.class_names)

    @property
    def eval_class_names(self) -> list[str]:
        """The evaluation vocabulary: the annotation file's real classes when video-level scores
        label the detections (``eval_real_classes``), otherwise the training classes."""
        if not self.eval_real_classes:
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
        if self.pyramid is None:
            raise UserInputError(
                "TALDataModule needs the detector's pyramid to pad batches: pass "
                "pyramid=detector.spec"
            )
        sampler = self.train_sampler() if training else None
        workers = self.num_workers
        trainer = self.trainer
        on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size if training else self.eval_batch_size,
            sampler=sampler,
            # The length-grouping sampler drops what drop_last drops itself (its batches must
            # stay whole); evaluation loaders never drop.
            drop_last=self.drop_last and isinstance(sampler, ShuffledOrder),
            num_workers=workers,
            collate_fn=self._collate(training),
            pin_memory=on_cuda,
            persistent_workers=workers > 0,
            worker_init_fn=init_worker if workers > 0 else None,
            generator=torch.Generator().manual_seed(self.seed),
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

    def train_sampler(self) -> ShuffledOrder | LengthGroupedSampler:
        """The training order (one per datamodule; under DDP it takes the attached trainer's
        world size and rank): shuffled, or grouped by length with ``bucket_by_length``."""
        if self._sampler is None:
            trainer = self.trainer
            world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
            dataset = self.dataset("train")
            if self.bucket_by_length:
                sampler = LengthGroupedSampler(
                    dataset.training_lengths(),
                    self.batch_size,
                    seed=self.seed,
                    drop_last=self.drop_last,
                    num_replicas=world,
                    rank=rank,
                )
                if self._sampler_state is not None:  # warns when its settings differ
                    sampler.load_state_dict(self._sampler_state)
            else:
                sampler = ShuffledOrder(len(dataset), self.seed, world, rank)
            self._sampler = self._set_start_epoch(sampler)
        return self._sampler

    def _set_start_epoch(self, sampler):
        """Set the epoch Lightning is about to train before the loader is first iterated.

        Lightning builds and starts the training iterator while it sets up the optimisers
        (``estimated_stepping_batches``), before a resumed run's loops are restored, and calls
        ``set_epoch`` only later; with DataLoader workers that iterator has taken its first
        indices by then. So the epoch comes from the datamodule's own checkpoint state, which
        is restored first: the value Lightning will pass to ``set_epoch``.
        """
        sampler.set_epoch(int((self._sampler_state or {}).get("epoch", 0)))
        return sampler

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # ----------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """What the data order needs on resume: the epoch a resumed run trains (the one
        Lightning will pass to ``set_epoch``: ``fit_loop.epoch_progress.current.processed``),
        and with ``bucket_by_length`` the sampler's settings (a resumed run with other
        settings is warned about). Order and crops are functions of (seed, epoch)
        (docs/decisions.md D101)."""
        if self._sampler is None:
            return {"sampler": self._sampler_state} if self._sampler_state is not None else {}
        state = {"epoch": int(self._sampler.epoch)}
        if isinstance(self._sampler, LengthGroupedSampler):
            state = self._sampler.state_dict()
        if self.trainer is not None:
            state["epoch"] = int(self.trainer.fit_loop.epoch_progress.current.processed)
        return {"sampler": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the data order of :meth:`state_dict` (Lightning calls this on resume)."""
        self._sampler_state = state_dict.get("sampler")
        if self._sampler_state is None or self._sampler is None:
            return
        if isinstance(self._sampler, LengthGroupedSampler):
            self._sampler.load_state_dict(self._sampler_state)
        self._set_start_epoch(self._sampler)

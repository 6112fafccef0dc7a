"""Fake datasets in the exact ActionFormer/TriDet directory layouts (THUMOS14, ActivityNet).

``scripts/make_layout.py --out DIR`` writes them, so that ``experiment=thumos|anet
paths.data_dir=DIR`` runs end to end without the real features, with a stand-in for the
ActivityNet video-level score file. The signal model is :mod:`.generator`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logo_tal.data.annotations import load_annotations
from logo_tal.prep.synthetic.generator import (
    TEST_SUBSET,
    TRAIN_SUBSET,
    SyntheticConfig,
    make_config,
    synthesize,
)


@dataclass(frozen=True)
class Layout:
    """Where the ActionFormer/TriDet packages put one dataset under ``paths.data_dir``
    (docs/decisions.md D76; conf/data/{anet,thumos}.yaml read exactly these paths)."""

    root: str
    annotation_file: str
    feature_dir: str
    prefix: str
    train_subset: str
    test_subset: str
    class_names: tuple[str, ...]
    fusion_file: str | None = None
    h5_file: str | None = None


# The first few real class names, so that names with spaces and mixed case travel through the
# pipeline as they do on the real files; more classes get generated names.
_ANET_NAMES = (
    "Archery",
    "Bathing dog",
    "Playing guitarra",
    "Long jump",
    "Making a sandwich",
    "Walking the dog",
    "Ballet",
    "Snowboarding",
    "Tug of war",
    "Washing dishes",
)
_THUMOS_NAMES = (
    "BaseballPitch",
    "BasketballDunk",
    "Billiards",
    "CleanAndJerk",
    "CliffDiving",
    "CricketBowling",
    "CricketShot",
    "Diving",
    "FrisbeeCatch",
    "GolfSwing",
    "HammerThrow",
    "HighJump",
    "JavelinThrow",
    "LongJump",
    "PoleVault",
    "Shotput",
    "SoccerPenalty",
    "TennisSwing",
    "ThrowDiscus",
    "VolleyballSpiking",
)

LAYOUTS: dict[str, Layout] = {
    "anet": Layout(
        root="anet_1.3",
        annotation_file="annotations/anet1.3_tsp_filtered.json",
        feature_dir="tsp_features",
        prefix="v_",
        train_subset="training",
        test_subset="validation",
        class_names=_ANET_NAMES,
        fusion_file="annotations/cuhk_val_simp_share.json",
        h5_file="tsp_features/anet_tsp_features.hdf5",
    ),
    "thumos": Layout(
        root="thumos",
        annotation_file="annotations/thumos14.json",
        feature_dir="i3d_features",
        prefix="",
        # As spelled in ActionFormer's thumos14.json; the loader compares subsets lower-cased.
        train_subset="Validation",
        test_subset="Test",
        class_names=_THUMOS_NAMES,
    ),
}

# Generator settings per layout: the real feature grid and width, and timelines shaped like the
# dataset. ActivityNet: TSP at 15 fps, stride 16, 64-160 steps = 68-171 s (median real video
# 114 s), ~1.5 long instances per video all of one class (real: median 0.33 of the video).
# THUMOS: I3D grid, 20 classes, several short instances per video.
LAYOUT_PRESETS: dict[str, dict] = {
    "anet": dict(
        num_classes=6,
        input_dim=512,
        num_train=24,
        num_test=12,
        fps=15.0,
        feat_stride=16,
        num_frames=16,
        min_steps=64,
        max_steps=160,
        action_rate=0.005,
        length_median=30.0,
        length_sigma=0.7,
        min_length=4.0,
        max_length=200.0,
        main_class_prob=1.0,
        distractor_rate=0.005,
    ),
    "thumos": dict(
        num_classes=20,
        input_dim=2048,
        num_train=20,
        num_test=10,
        min_steps=96,
        max_steps=256,
        action_rate=0.15,
    ),
}


def _youtube_like_ids(n: int, seed: int) -> list[str]:
    """Distinct 11-character ids like ActivityNet's YouTube ids (never starting with ``v_``)."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    rng = np.random.default_rng([seed, 0xA11E7])
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        vid = "".join(rng.choice(alphabet, 11))
        if vid not in seen and vid[0] not in "-_":
            seen.add(vid)
            ids.append(vid)
    return ids


def write_layout(
    data_dir: str | Path,
    dataset: str = "anet",
    seed: int = 0,
    feature_formats: Sequence[str] = ("npy",),
    fusion: bool = True,
    fusion_accuracy: float = 0.8,
    **overrides,
) -> dict:
    """Write a synthetic dataset in the ActionFormer/TriDet layout of ``dataset``.

    ``python -m logo_tal.train experiment=anet|thumos paths.data_dir=DATA_DIR`` then runs
    unchanged (give ``data.features.input_dim`` when ``input_dim`` is overridden, and
    ``data.annotations.num_classes`` for THUMOS with another ``num_classes``)::

        anet:   DATA_DIR/anet_1.3/annotations/anet1.3_tsp_filtered.json  (training/validation)
                DATA_DIR/anet_1.3/annotations/cuhk_val_simp_share.json   (stand-in scores)
                DATA_DIR/anet_1.3/tsp_features/v_<id>.npy                (T, C) float32
                DATA_DIR/anet_1.3/tsp_features/anet_tsp_features.hdf5    (keys v_<id>; "h5")
        thumos: DATA_DIR/thumos/annotations/thumos14.json               (Validation/Test)
                DATA_DIR/thumos/i3d_features/<video>.npy

    The signal is that of :func:`synthesize` on the dataset's own grid; annotation ids carry no
    ``v_`` prefix (as in the real ActivityNet files), feature files and HDF5 keys do. The
    stand-in score file (validation videos only, like the CUHK file) boosts each video's true
    class with probability ``fusion_accuracy`` (:func:`write_synthetic_scores`).

    Args:
        data_dir: what the configs call ``paths.data_dir``.
        dataset: ``"anet"`` or ``"thumos"``.
        seed: random seed.
        feature_formats: any of ``"npy"`` and ``"h5"`` (ActivityNet only for ``"h5"``).
        fusion: write the stand-in score file (ActivityNet only).
        fusion_accuracy: chance that a video's top external class is its true class.
        **overrides: :class:`SyntheticConfig` fields (e.g. ``input_dim``, ``num_train``).

    Returns:
        ``{"root", "annotations", "features", "h5", "fusion_file", "class_names",
        "num_videos", "config"}`` (paths, None where not written).
    """
    layout, formats = _check_layout_request(dataset, feature_formats)
    cfg, annotation, arrays = _synthesize_layout(dataset, layout, seed, overrides)
    root = Path(data_dir) / layout.root
    ann_path, feat_dir, h5_path = _write_layout_files(root, layout, formats, arrays, annotation)
    fusion_path = _write_layout_scores(root, layout, ann_path, fusion, fusion_accuracy, seed)
    return {
        "root": root,
        "annotations": ann_path,
        "features": feat_dir,
        "h5": h5_path,
        "fusion_file": fusion_path,
        "class_names": annotation["classes"],
        "num_videos": len(arrays),
        "config": cfg,
    }


def _synthesize_layout(
    dataset: str, layout: Layout, seed: int, overrides: Mapping[str, object]
) -> tuple[SyntheticConfig, dict, dict[str, np.ndarray]]:
    """The generator's config, the annotation JSON object and the features by video id, with
    the ids, subsets and class names of ``layout``."""
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = make_config("default", **{**LAYOUT_PRESETS[dataset], **given})
    content, feats = synthesize(cfg, seed)
    names = _layout_class_names(layout, cfg.num_classes)
    old_ids = list(content["database"])
    new_ids = _layout_video_ids(dataset, content["database"], seed)
    annotation = {
        "version": f"logo-tal synthetic {dataset} layout v1",
        # The real files name classes through label_id only; "classes" also keeps classes that
        # no generated video happens to contain (the THUMOS config expects all 20).
        "classes": names,
        "synthetic": {"seed": seed, "layout": dataset, **dataclasses.asdict(cfg)},
        "database": _renamed_database(content["database"], old_ids, new_ids, layout, names),
    }
    arrays = {new: feats[old] for old, new in zip(old_ids, new_ids, strict=True)}
    return cfg, annotation, arrays


def _write_layout_files(
    root: Path,
    layout: Layout,
    formats: set,
    arrays: Mapping[str, np.ndarray],
    annotation: dict,
) -> tuple[Path, Path, Path | None]:
    """Write the features, then the annotation file; returns their paths (HDF5: None if
    not written)."""
    ann_path = root / layout.annotation_file
    feat_dir = root / layout.feature_dir
    feat_dir.mkdir(parents=True, exist_ok=True)
    ann_path.parent.mkdir(parents=True, exist_ok=True)
    h5_path = _write_layout_features(root, layout, arrays, formats)
    _replace_atomically(ann_path, lambda tmp: tmp.write_text(json.dumps(annotation)))
    return ann_path, feat_dir, h5_path


def _write_layout_scores(
    root: Path, layout: Layout, ann_path: Path, fusion: bool, accuracy: float, seed: int
) -> Path | None:
    """Write the stand-in score file of the test subset's videos, if asked and the layout
    has one; returns its path, or None."""
    if not fusion or layout.fusion_file is None:
        return None
    videos, classes = video_labels_from_annotations(ann_path, [layout.test_subset])
    return write_synthetic_scores(root / layout.fusion_file, videos, classes, accuracy, seed)


def _check_layout_request(dataset: str, feature_formats: Sequence[str]) -> tuple[Layout, set]:
    """The layout of ``dataset`` and the set of formats, or ValueError for a bad request."""
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown layout {dataset!r}; choose from {sorted(LAYOUTS)}")
    layout = LAYOUTS[dataset]
    formats = set(feature_formats)
    if not formats or formats - {"npy", "h5"}:
        raise ValueError(f"feature_formats must be a non-empty subset of npy, h5: {formats}")
    if "h5" in formats and layout.h5_file is None:
        raise ValueError(f"the {dataset} layout has no HDF5 variant")
    return layout, formats


def _layout_class_names(layout: Layout, num_classes: int) -> list[str]:
    """The layout's real class names first, then generated ``class_NNN`` names."""
    return [
        layout.class_names[i] if i < len(layout.class_names) else f"class_{i:03d}"
        for i in range(num_classes)
    ]


def _layout_video_ids(dataset: str, database: Mapping[str, dict], seed: int) -> list[str]:
    """Ids shaped like the real dataset's, one per generated video, in the same order."""
    if dataset == "anet":
        return _youtube_like_ids(len(database), seed)
    # THUMOS numbers videos within each subset: video_validation_0000001, video_test_0000001.
    counters = {TRAIN_SUBSET: 0, TEST_SUBSET: 0}
    new_ids = []
    for entry in database.values():
        subset = entry["subset"]
        counters[subset] += 1
        kind = "validation" if subset == TRAIN_SUBSET else "test"
        new_ids.append(f"video_{kind}_{counters[subset]:07d}")
    return new_ids


def _renamed_database(
    database: Mapping[str, dict],
    old_ids: Sequence[str],
    new_ids: Sequence[str],
    layout: Layout,
    names: Sequence[str],
) -> dict[str, dict]:
    """The generated database under the new ids, subsets and class names of ``layout``."""
    subsets = {TRAIN_SUBSET: layout.train_subset, TEST_SUBSET: layout.test_subset}
    renamed = {}
    for old, new in zip(old_ids, new_ids, strict=True):
        entry = dict(database[old])
        entry["subset"] = subsets[entry["subset"]]
        entry["annotations"] = [
            {**ann, "label": names[ann["label_id"]]} for ann in entry["annotations"]
        ]
        renamed[new] = entry
    return renamed


def _write_layout_features(
    root: Path, layout: Layout, arrays: Mapping[str, np.ndarray], formats: set
) -> Path | None:
    """Write the ``.npy`` files and/or the HDF5 file; returns the HDF5 path (None if none)."""
    if "npy" in formats:
        feat_dir = root / layout.feature_dir
        for vid, arr in arrays.items():
            np.save(feat_dir / f"{layout.prefix}{vid}.npy", arr)
    if "h5" not in formats:
        return None
    import h5py

    h5_path = root / str(layout.h5_file)

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for vid, arr in arrays.items():
                f.create_dataset(f"{layout.prefix}{vid}", data=arr)

    _replace_atomically(h5_path, write_h5)
    return h5_path


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary sibling of ``path``, then rename it, so readers never see half."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_synthetic_scores(
    path: str | Path,
    video_labels: Mapping[str, Sequence[str]],
    class_names: Sequence[str],
    accuracy: float = 0.8,
    seed: int = 0,
) -> Path:
    """Write a stand-in classifier file in the CUHK format, for tests and synthetic runs.

    Each video's true classes get a high score with probability ``accuracy`` (else a random
    class is boosted instead); the rest is a softmax of Gaussian noise. The class list is written
    in reversed order so that anything that maps classes by position instead of by name breaks.

    Args:
        path: where to write the JSON.
        video_labels: video id -> names of the classes it contains.
        class_names: all class names.
        accuracy: chance that a video's true classes are the boosted ones.
        seed: random seed.

    Returns:
        The path written.
    """
    rng = np.random.default_rng(seed)
    names = list(class_names)[::-1]
    index = {name: i for i, name in enumerate(names)}
    results = {}
    for video, labels in video_labels.items():
        logits = rng.normal(0.0, 1.0, size=len(names))
        targets = [index[name] for name in labels if name in index]
        if not targets or rng.random() > accuracy:
            targets = [int(rng.integers(len(names)))]
        logits[targets] += 6.0
        probs = np.exp(logits - logits.max())
        results[str(video)] = (probs / probs.sum()).round(6).tolist()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "class": names}))
    return out


def video_labels_from_annotations(
    path: str | Path, subsets: Sequence[str] | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Video -> class names from an ActivityNet-style annotation JSON.

    Args:
        path: the annotation file (read by :func:`logo_tal.data.annotations.load_annotations`).
        subsets: keep only the videos of these subsets (case-insensitive); all when None.

    Returns:
        (video id -> sorted unique labels, sorted class names). The classes are those of the
        whole file, because a score file must cover the dataset's vocabulary even when it scores
        only the validation videos.
    """
    db = load_annotations(path, log_problems=False)
    wanted = None if subsets is None else {s.lower() for s in subsets}
    videos = {
        video: sorted({db.class_names[int(c)] for c in record.gt_labels})
        for video, record in db.videos.items()
        if wanted is None or record.subset in wanted
    }
    return videos, sorted(db.class_names)


def layout_main(argv: Sequence[str] | None = None) -> int:
    """CLI of :func:`write_layout` (``scripts/make_layout.py``)."""
    parser = argparse.ArgumentParser(
        prog="scripts/make_layout.py",
        description="Write synthetic data in the ActionFormer/TriDet layout, so that "
        "`python -m logo_tal.train experiment=anet|thumos paths.data_dir=OUT` runs without "
        "the real features.",
    )
    parser.add_argument("--out", required=True, help="data directory (paths.data_dir)")
    parser.add_argument("--dataset", default="both", choices=["anet", "thumos", "both"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--h5", action="store_true", help="ANet: also write the HDF5 file")
    parser.add_argument("--no-fusion", action="store_true", help="ANet: no stand-in scores")
    parser.add_argument("--fusion-accuracy", type=float, default=0.8)
    parser.add_argument("--input-dim", type=int, default=None, help="default: the real width")
    parser.add_argument("--num-classes", type=int, default=None)
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--num-test", type=int, default=None)
    args = parser.parse_args(argv)
    datasets = ["anet", "thumos"] if args.dataset == "both" else [args.dataset]
    for dataset in datasets:
        info = write_layout(
            args.out,
            dataset,
            seed=args.seed,
            feature_formats=("npy", "h5") if args.h5 and dataset == "anet" else ("npy",),
            fusion=not args.no_fusion,
            fusion_accuracy=args.fusion_accuracy,
            input_dim=args.input_dim,
            num_classes=args.num_classes,
            num_train=args.num_train,
            num_test=args.num_test,
        )
        cfg = info["config"]
        extra = f" data.features.input_dim={cfg.input_dim}"
        if dataset == "thumos" and cfg.num_classes != 20:
            extra += f" data.annotations.num_classes={cfg.num_classes}"
        print(
            f"{dataset}: {info['num_videos']} videos ({cfg.num_train} train, {cfg.num_test} "
            f"eval), {cfg.num_classes} classes, input_dim {cfg.input_dim} under {info['root']}"
        )
        print(f"  python -m logo_tal.train experiment={dataset} paths.data_dir={args.out}{extra}")
    return 0

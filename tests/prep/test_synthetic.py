"""Synthetic benchmark: formats, determinism, statistics, speed of the tiny preset."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from logo_tal import synthetic as synthetic_cli
from logo_tal.core.grid import FeatureGrid
from logo_tal.data.annotations import load_annotations
from logo_tal.prep import synthetic


def test_tiny_is_fast_and_small(tmp_path):
    start = time.perf_counter()
    info = synthetic.generate(tmp_path, preset="tiny", seed=0)
    assert time.perf_counter() - start < 1.0
    db = load_annotations(info["annotations"], log_problems=False)
    assert db.num_classes == 3 and db.problems == []
    assert db.subset_counts()["training"][0] == 6 and db.subset_counts()["testing"][0] == 4
    for vid in db.videos:
        x = np.load(tmp_path / "features" / f"{vid}.npy")
        assert x.shape[0] <= 128 and x.shape[1] == 32 and x.dtype == np.float32


def test_deterministic_by_seed():
    cfg = synthetic.make_config("tiny")
    a_ann, a_feats = synthetic.synthesize(cfg, seed=3)
    b_ann, b_feats = synthetic.synthesize(cfg, seed=3)
    c_ann, _ = synthetic.synthesize(cfg, seed=4)
    assert a_ann == b_ann and a_ann != c_ann
    for vid in a_feats:
        np.testing.assert_array_equal(a_feats[vid], b_feats[vid])


def test_schema_and_grid_consistency(tiny_npy):
    content = json.loads((tiny_npy / "annotations.json").read_text())
    assert content["classes"] == ["class_00", "class_01", "class_02"]
    for vid, entry in content["database"].items():
        assert {"subset", "duration", "fps", "annotations"} <= set(entry)
        grid = FeatureGrid(entry["fps"], 4, 16)
        t = np.load(tiny_npy / "features" / f"{vid}.npy").shape[0]
        assert grid.expected_length(grid.duration_to_frames(entry["duration"])) == t
        for a in entry["annotations"]:
            assert 0 <= a["segment"][0] < a["segment"][1] <= entry["duration"]
            assert content["classes"][a["label_id"]] == a["label"]


def test_default_preset_statistics():
    cfg = synthetic.make_config("default", num_train=40, num_test=0)
    content, feats = synthetic.synthesize(cfg, seed=0)
    x = np.concatenate(list(feats.values()))
    assert x.shape[1] == 64 and (x >= 0).all()
    assert 0.01 < (x == 0).mean() < 0.3  # post-ReLU-like sparsity
    cos = (x[1:] * x[:-1]).sum(1) / (
        np.linalg.norm(x[1:], axis=1) * np.linalg.norm(x[:-1], axis=1)
    )
    assert cos.mean() > 0.7  # smooth in time, like I3D (0.85)
    lengths = np.array(
        [
            a["segment"][1] - a["segment"][0]
            for v in content["database"].values()
            for a in v["annotations"]
        ]
    )
    steps = lengths * 30 / 4
    assert steps.min() < 8 and steps.max() > 64  # several pyramid levels
    assert 2.0 < np.median(lengths) < 4.0  # THUMOS median 3.0 s
    assert len({int(t.shape[0]) for t in feats.values()}) > 10


def test_actions_differ_from_background(tiny_npy):
    db = load_annotations(tiny_npy / "annotations.json", log_problems=False)
    inside, outside = [], []
    for rec in db.videos.values():
        x = np.load(tiny_npy / "features" / f"{rec.video_id}.npy")
        grid = FeatureGrid(rec.fps, 4, 16)
        t = grid.to_seconds(np.arange(len(x)))
        mask = np.zeros(len(x), bool)
        for s, e in rec.segments:
            mask |= (t > s + 0.3) & (t < e - 0.3)
        inside.append(x[mask].mean()), outside.append(x[~mask].mean())
    assert np.nanmean(inside) > np.nanmean(outside)


def test_knobs_and_presets():
    cfg = synthetic.make_config("tiny", noise_std=0.0, distractor_rate=2.0, pattern_strength=None)
    assert cfg.noise_std == 0.0 and cfg.distractor_rate == 2.0
    assert cfg.pattern_strength == synthetic.SyntheticConfig().pattern_strength
    with pytest.raises(ValueError, match="unknown preset"):
        synthetic.make_config("huge")


def test_cli_h5(tmp_path):
    assert (
        synthetic_cli.main(
            [
                "--out",
                str(tmp_path),
                "--preset",
                "tiny",
                "--format",
                "h5",
                "--seed",
                "2",
                "--noise-std",
                "0.1",
            ]
        )
        == 0
    )
    assert (tmp_path / "features.h5").is_file() and (tmp_path / "annotations.json").is_file()
    meta = json.loads((tmp_path / "annotations.json").read_text())["synthetic"]
    assert meta["noise_std"] == 0.1 and meta["seed"] == 2


def test_timelines_from_real_file(shared_data: Path):
    path = shared_data / "thumos14" / "thumos14_anet_style.json"
    cfg = synthetic.make_config("tiny", timelines=str(path), num_classes=4)
    content, feats = synthetic.synthesize(cfg, seed=0)
    labels = {a["label_id"] for v in content["database"].values() for a in v["annotations"]}
    assert (
        labels <= {0, 1, 2, 3}
        and sum(len(v["annotations"]) for v in content["database"].values()) > 0
    )

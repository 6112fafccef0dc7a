"""logo-tal-extract on generated videos: shapes on the grid, the record, resuming, bad input.

Random weights (no download) and a 32x32 input keep these on CPU in seconds; features are
deterministic per frame content, which is what the alignment test uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers.video import (  # noqa: E402
    FAST,
    FPS,
    SECONDS,
    VIDEOS,
    needs_extract,
    needs_torchvision,
    write_video,
)
from logo_tal.core.grid import FeatureGrid  # noqa: E402
from logo_tal.data.feature_store import open_feature_store  # noqa: E402
from logo_tal.extract import main  # noqa: E402
from logo_tal.prep.extract import (  # noqa: E402
    backbones,  # noqa: E402
    check_extraction_record,
    read_extraction_record,
)
from logo_tal.prep.extract.backbones import (  # noqa: E402
    BACKBONES,
    BUILTIN_BACKBONES,
    BackboneError,
    build_backbone,
)
from logo_tal.prep.extract.pipeline import ExtractionSettings, extract_videos  # noqa: E402

pytestmark = needs_extract
T_EXPECTED = FeatureGrid(FPS, 4, 8).expected_length(int(SECONDS * FPS))  # (96 - 8) // 4 + 1


@pytest.fixture
def two_videos(video_dir, tmp_path) -> Path:
    out = tmp_path / "videos"
    out.mkdir()
    for name in ("cam_a", "cam_b"):
        shutil.copy(video_dir / f"{name}.mp4", out)
    return out


def test_extract_writes_grid_length_features_and_record(two_videos, tmp_path, capsys):
    torch.manual_seed(0)
    out = tmp_path / "features"
    assert main([str(two_videos), "--out", str(out), *FAST, "--no-progress"]) == 0
    assert "2 extracted, 0 already done, 0 failed" in capsys.readouterr().err
    record = read_extraction_record(out)
    assert (record.extractor, record.weights, record.fps) == ("r2plus1d_18", "none", 12.0)
    assert (record.feat_stride, record.num_frames, record.feature_dim) == (4, 8, 512)
    assert record.crop_size == [32, 32] and record.resize_size == [36]
    entry = record.videos["cam_a"]
    assert (entry.source_frames, entry.frames, entry.duration) == (96, 96, 8.0)
    assert entry.num_features == T_EXPECTED == 23
    store = open_feature_store(out, input_dim=512)
    assert store.video_ids() == ["cam_a", "cam_b"]
    feats = store.load("cam_a")
    assert feats.shape == (23, 512) and feats.dtype == np.float32
    check_extraction_record(record, 12, 4, 8, 512)


def test_features_change_exactly_where_the_clips_see_the_action(two_videos, tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "features"
    assert main([str(two_videos / "cam_b.mp4"), "--out", str(out), *FAST, "--no-progress"]) == 0
    feats = np.load(out / "cam_b.npy")
    ((s, e, _),) = VIDEOS["cam_b"]
    background = feats[0]
    for i, f in enumerate(feats):
        frames = np.arange(i * 4, i * 4 + 8) / FPS  # clip i sees frames [4i, 4i + 8)
        sees_action = bool(((frames >= s) & (frames < e)).any())
        change = np.abs(f - background).max() / np.abs(background).max()
        assert (change > 0.05) == sees_action, (i, change)


def test_resume_skips_done_videos_and_redoes_damaged_ones(two_videos, tmp_path, capsys):
    out = tmp_path / "features"
    args = [str(two_videos), "--out", str(out), *FAST, "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "0 extracted, 2 already done" in capsys.readouterr().err
    (out / "cam_b.npy").write_bytes(b"half written")
    assert main(args) == 0
    assert "1 extracted, 1 already done" in capsys.readouterr().err
    assert np.load(out / "cam_b.npy").shape == (23, 512)


def test_other_settings_into_the_same_directory_is_an_error(two_videos, tmp_path, capsys):
    out = tmp_path / "features"
    assert main([str(two_videos), "--out", str(out), *FAST, "--no-progress"]) == 0
    capsys.readouterr()
    other = [a if a != "--fps" else a for a in FAST]
    other[other.index("--fps") + 1] = "6"
    assert main([str(two_videos), "--out", str(out), *other, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "extraction.json" in err and "fps 6.0 != 12.0" in err
    assert main([str(two_videos), "--out", str(out), *other, "--overwrite", "--no-progress"]) == 0
    assert read_extraction_record(out).fps == 6.0


def test_bad_videos_are_named_and_the_good_ones_still_extracted(two_videos, tmp_path, capsys):
    (two_videos / "junk.mp4").write_text("not a video")
    write_video(two_videos / "empty.avi", 0.0)
    write_video(two_videos / "short.mp4", 0.5)  # 6 frames < num_frames 8: no clip fits
    out = tmp_path / "features"
    assert main([str(two_videos), "--out", str(out), *FAST, "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("logo-tal-extract: error:")]
    assert len(errors) == 3
    assert any("junk.mp4: unreadable video" in line for line in errors)
    assert any("empty.avi: no decodable video frames" in line for line in errors)
    assert any(
        "short.mp4: 6 frame(s) at 12 fps" in line and "no clip fits" in line for line in errors
    )
    assert "2 extracted, 0 already done, 3 failed" in lines[-1]
    assert sorted(read_extraction_record(out).videos) == ["cam_a", "cam_b"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "X", "--backbone", "resnet"], "invalid choice: 'resnet'"),
        (["--out", "X", "--weights", "nope.pth"], "--weights 'nope.pth'"),
        (["--out", "X", "--backbone", "mvit_v2_s", "--num-frames", "8"], "exactly 16 frames"),
        (["--out", "X", "--device", "cuda:7"], "no CUDA device"),
        (["--out", "X", "--feat-stride", "0"], "feat_stride must be a positive integer"),
    ],
)
def test_bad_arguments_one_line_exit_2(two_videos, tmp_path, capsys, argv, message):
    if "cuda" in " ".join(argv) and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    argv = [a if a != "X" else str(tmp_path / "f") for a in argv]
    assert main([str(two_videos), *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


def test_missing_input_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "f"), *FAST]) == 2
    assert "nothing: no such file or directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "f"), *FAST]) == 2
    assert "no video files" in capsys.readouterr().err


def test_h5_format_and_reuse_of_a_record(two_videos, tmp_path):
    out = tmp_path / "h5"
    assert (
        main([str(two_videos), "--out", str(out), *FAST, "--format", "h5", "--no-progress"]) == 0
    )
    with h5py.File(out / "features.h5") as f:
        assert sorted(f) == ["cam_a", "cam_b"] and f["cam_a"].shape == (23, 512)
    store = open_feature_store(out, format="h5", input_dim=512)
    assert store.load("cam_b").shape == (23, 512)
    # What predict does: new videos with the training features' settings (from the record).
    record = read_extraction_record(out)
    result = extract_videos(two_videos / "cam_a.mp4", tmp_path / "new", record, progress=False)
    assert result.written == ["cam_a"] and not result.failed
    assert result.record.setting_differences(record) == []
    assert ExtractionSettings.from_record(record).crop_size == [32, 32]


@pytest.mark.parametrize(
    "name",
    [n if n in BUILTIN_BACKBONES else pytest.param(n, marks=needs_torchvision) for n in BACKBONES],
)
def test_every_backbone_embeds_to_its_dim(name):
    torch.manual_seed(0)
    spec = BACKBONES[name]
    frames = spec.fixed_frames or max(spec.min_frames, 8)
    crop = max(spec.min_crop, 32)
    backbone = build_backbone(name, "none", "cpu", resize_size=crop, crop_size=crop)
    video = torch.randint(0, 255, (frames, 48, 40, 3), dtype=torch.uint8)
    clip = backbone.preprocess(video)
    assert clip.shape == (3, frames, crop, crop)
    out = backbone(clip.unsqueeze(0))
    assert out.shape == (1, spec.feature_dim) and torch.isfinite(out).all()


def test_backbone_rejects_too_small_crop():
    with pytest.raises(BackboneError, match="s3d needs a crop of at least 224"):
        build_backbone("s3d", "none", crop_size=112)


def _no_torchvision(name=None):
    raise ImportError("torchvision is needed for the s3d backbone (only r2plus1d_18 runs ...)")


def test_without_torchvision_r2plus1d_runs_builtin_and_others_stop(monkeypatch, tmp_path):
    monkeypatch.setattr(backbones, "import_torchvision", _no_torchvision)
    backbone = build_backbone("r2plus1d_18", "none", resize_size=36, crop_size=32)
    assert backbone.implementation == "builtin" and backbone.preprocessing()["crop_size"] == [
        32,
        32,
    ]
    with pytest.raises(ImportError, match="torchvision is needed for the s3d backbone"):
        build_backbone("s3d", "none")
    with pytest.raises(BackboneError, match="s3d has no built-in implementation"):
        build_backbone("s3d", "none", implementation="builtin")
    with pytest.raises(BackboneError, match="unknown implementation 'jax'"):
        build_backbone("r2plus1d_18", "none", implementation="jax")


def test_record_names_the_implementation_and_resuming_keeps_it(two_videos, tmp_path, capsys):
    out = tmp_path / "features"
    args = [str(two_videos / "cam_a.mp4"), "--out", str(out), *FAST, "--no-progress"]
    assert main([*args, "--implementation", "builtin"]) == 0
    record = read_extraction_record(out)
    assert record.implementation == "builtin" and "torchvision" not in record.versions
    assert "r2plus1d_18 via builtin" in capsys.readouterr().err
    # auto follows the directory's record, whatever imports here
    assert main([str(two_videos), *args[1:]]) == 0
    assert read_extraction_record(out).implementation == "builtin"
    # The two implementations compute bit-identical features (docs/decisions.md D118): a
    # record of either matches the other.
    record.implementation = "torchvision"
    assert record.setting_differences(read_extraction_record(out)) == []


def test_console_entry_point_runs(two_videos, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "logo_tal.extract",
            str(two_videos / "cam_a.mp4"),
            "--out",
            str(tmp_path / "f"),
            *FAST,
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "f" / "extraction.json").read_text())["videos"]["cam_a"]

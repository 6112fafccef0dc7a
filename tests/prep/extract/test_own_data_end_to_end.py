"""Your own data, end to end, the README's four commands: videos -> logo-tal-extract -> CSV ->
logo-tal-convert -> ``train experiment=custom`` (feature settings and classes read from the
data) -> ``predict videos=`` (new videos extracted with the training record's settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

# Register the config resolvers, as every entry point does (importing logo_tal alone does not).
import logo_tal.app.resolvers  # noqa: E402,F401
from helpers.lit_config import compose_config, path_overrides  # noqa: E402
from helpers.video import FAST, VIDEOS, needs_extract  # noqa: E402
from logo_tal.convert import main as convert  # noqa: E402
from logo_tal.data.extraction_record import ExtractionRecord, VideoEntry, write_extraction_record  # noqa: E402
from logo_tal.extract import main as extract  # noqa: E402
from logo_tal.prep.extract import extract_videos, read_extraction_record  # noqa: E402

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "logger=csv",
]


def _labels_csv(path: Path) -> Path:
    subsets = {
        "cam_a": "training",
        "cam_b": "training",
        "cam_c": "training",
        "cam_d": "validation",
    }
    lines = ["video,start,end,label,subset"]
    for video, segments in VIDEOS.items():
        lines += [f"{video},{s},{e},{label},{subsets[video]}" for s, e, label in segments]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_custom_experiment_reads_its_settings_from_the_data(tmp_path):
    feats = tmp_path / "data" / "custom" / "features"
    write_extraction_record(ExtractionRecord("s3d", "none", 10.0, 8, 16, 1024, videos={}), feats)
    ann = tmp_path / "data" / "custom" / "annotations.json"
    ann.write_text(json.dumps({"classes": ["a", "b", "c"], "database": {}}))
    cfg = compose_config("train", ["experiment=custom", *path_overrides(tmp_path)])
    OmegaConf.resolve(cfg)
    assert (
        cfg.data.features.input_dim,
        cfg.data.features.fps,
        cfg.data.features.feat_stride,
        cfg.data.features.num_frames,
    ) == (
        1024,
        10.0,
        8,
        16,
    )
    assert cfg.model.input_dim == 1024 and cfg.model.num_classes == 3
    assert cfg.module.warmup_epochs == 20.0 and cfg.trainer.max_epochs == 40
    short = compose_config(
        "train", ["experiment=custom", *path_overrides(tmp_path), "trainer.max_epochs=6"]
    )
    assert short.module.warmup_epochs == 3.0


@needs_extract
@pytest.mark.slow
def test_videos_to_trained_model_to_predictions(video_dir, tmp_path, capsys, monkeypatch):
    torch.manual_seed(0)
    data = tmp_path / "data" / "custom"
    feats, ann = data / "features", data / "annotations.json"
    # 1. extract (random weights, small input: a CPU test)
    assert extract([str(video_dir), "--out", str(feats), *FAST, "--no-progress"]) == 0
    # 2. convert, durations from the extraction record
    labels = _labels_csv(tmp_path / "labels.csv")
    code = convert(
        [
            "csv2json",
            str(labels),
            "--video-info",
            str(feats / "extraction.json"),
            "--out",
            str(ann),
        ]
    )
    assert code == 0, capsys.readouterr().err
    # 3. train with the default paths (paths.data_dir/custom/...)
    from logo_tal.train import train

    cfg = compose_config(
        "train",
        [
            "experiment=custom",
            *path_overrides(tmp_path),
            "trainer.max_epochs=2",
            "trainer.check_val_every_n_epoch=1",
            "data.max_seq_len=256",
            "torch_threads=1",
            *QUIET,
        ],
    )
    with open_dict(cfg):
        cfg.trainer.default_root_dir = str(tmp_path / "run")
    assert (
        cfg.data.features.input_dim == 512
        and cfg.data.features.fps == 12.0
        and cfg.model.num_classes == 2
    )
    metrics, objects = train(cfg)
    run = tmp_path / "run"
    assert objects["trainer"].current_epoch == 2
    saved = json.loads((run / "metrics.json").read_text())
    assert len(saved["mAP"]) == 5 and 0.0 <= saved["average_mAP"] <= 1.0
    dets = json.loads((run / "detections.json").read_text())["results"]
    assert set(dets) == {"cam_d"}
    for d in dets["cam_d"]:
        assert d["label"] in {"jump", "wave"} and 0.0 <= d["segment"][0] <= d["segment"][1] <= 8.0
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # 4. predict on a video: extracted with the training record's settings, then detected
    from logo_tal import predict

    monkeypatch.setenv("LOGO_TAL_ROOT", str(tmp_path))
    pred = tmp_path / "pred"
    ckpt = run / "checkpoints" / "last.ckpt"
    video = video_dir / "cam_d.mp4"
    args = [f"ckpt_path={ckpt}", f"videos={video}", "plot=false", f"hydra.run.dir={pred}"]
    assert predict.main(args) == 0, capsys.readouterr().err
    results = json.loads((pred / "predictions.json").read_text())["results"]
    assert list(results) == ["cam_d"] and results["cam_d"]
    for d in results["cam_d"]:
        assert d["label"] in {"jump", "wave"} and 0.0 <= d["segment"][0] <= d["segment"][1] <= 8.0
    record, new = read_extraction_record(feats), read_extraction_record(pred / "features")
    assert new.setting_differences(record) == [] and list(new.videos) == ["cam_d"]
    assert np.load(pred / "features" / "cam_d.npy").shape == np.load(feats / "cam_d.npy").shape
    # an unreadable video: one line naming it, exit 2
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    capsys.readouterr()
    args = [f"ckpt_path={ckpt}", f"videos={junk}", f"hydra.run.dir={tmp_path / 'pred2'}"]
    assert predict.main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "junk.mp4: unreadable video" in err[0], err


@needs_extract
def test_extract_videos_reproduces_a_record(video_dir, tmp_path):
    torch.manual_seed(0)
    feats = tmp_path / "features"
    assert (
        extract([str(video_dir / "cam_b.mp4"), "--out", str(feats), *FAST, "--no-progress"]) == 0
    )
    record = read_extraction_record(feats)
    result = extract_videos(video_dir / "cam_d.mp4", tmp_path / "new", record, progress=False)
    assert result.record.setting_differences(record) == []
    assert np.load(tmp_path / "new" / "cam_d.npy").shape == np.load(feats / "cam_b.npy").shape


def test_video_entry_fields_are_what_convert_reads(tmp_path):
    # convert --video-info extraction.json reads source fps / frames / duration.
    from logo_tal.prep.video_info import read_video_info

    write_extraction_record(
        ExtractionRecord(
            "r2plus1d_18",
            "none",
            15.0,
            4,
            16,
            512,
            videos={"v": VideoEntry("v.mp4", 30.0, 300, 10.0, 150, 34)},
        ),
        tmp_path,
    )
    info = read_video_info(tmp_path / "extraction.json")["v"]
    assert (info.duration, info.fps, info.num_frames) == (10.0, 30.0, 300)

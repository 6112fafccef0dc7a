"""evaluate reproduces a run's metrics from its checkpoint; predict runs on real I3D clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.lit_config import (
    compose_config,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_train_config,
    write_untrained_checkpoint,
)
from logo_tal.engine.checkpoints.runs import load_checkpoint
from logo_tal.evaluate import evaluate
from logo_tal.predict import predict
from logo_tal.train import train

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "i3d_clips"


@pytest.mark.slow
def test_evaluate_reproduces_training_metrics(tmp_path):
    cfg = tiny_train_config(
        tmp_path / "train",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "trainer.check_val_every_n_epoch=2",
        "module.warmup_epochs=1",
        "logger=[]",
    )
    train(cfg)
    trained = json.loads((tmp_path / "train" / "run" / "metrics.json").read_text())
    ckpt = tmp_path / "train" / "run" / "checkpoints" / "last.ckpt"

    eval_cfg = compose_config(
        "eval",
        [
            f"ckpt_path={ckpt}",
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'eval'}",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
    )
    metrics, _ = evaluate(eval_cfg)
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert again["mAP"] == pytest.approx(trained["mAP"], abs=1e-12)
    assert again["average_mAP"] == pytest.approx(trained["average_mAP"], abs=1e-12)
    assert again["counts"] == trained["counts"]
    assert metrics["test/mAP_avg"] == pytest.approx(trained["average_mAP"])
    assert again["checkpoint"] == str(ckpt.resolve())
    for name in ("detections.json", "per_class_ap.csv", "config.yaml"):
        assert (tmp_path / "eval" / name).is_file()
    a = json.loads((tmp_path / "train" / "run" / "detections.json").read_text())["results"]
    b = json.loads((tmp_path / "eval" / "detections.json").read_text())["results"]
    assert a == b


def _checkpoint_2048(tmp_path: Path, class_names: list[str]) -> Path:
    """A checkpoint of an untrained 2048-d model, written as train.py would write it."""
    cfg = tiny_train_config(
        tmp_path,
        "data.features.input_dim=2048",
        f"data.annotations.num_classes={len(class_names)}",
    )
    return write_untrained_checkpoint(cfg, class_names, tmp_path / "model.ckpt")


@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real I3D clips not found at {CLIPS}")
def test_predict_on_real_i3d_clips(tmp_path):
    names = ["HighJump", "TennisSwing", "Other"]
    ckpt = _checkpoint_2048(tmp_path, names)
    assert load_checkpoint(ckpt)["logo_tal"]["class_names"] == names
    cfg = compose_config(
        "predict",
        [
            f"ckpt_path={ckpt}",
            f"features={CLIPS}",
            f"gt={CLIPS / 'gt.json'}",
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'pred'}",
        ],
    )
    detections, objects = predict(cfg)
    assert set(detections) == {"highjump", "tennis26"}
    out = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert set(out["results"]) == {"highjump", "tennis26"}
    durations = {"highjump": 24.0, "tennis26": 11.0}  # from gt.json
    for video, entries in out["results"].items():
        assert entries, video
        for d in entries:
            assert d["label"] in names
            s, e = d["segment"]
            assert 0.0 <= s <= e <= durations[video]
        scores = [d["score"] for d in entries]
        assert scores == sorted(scores, reverse=True)
        assert (tmp_path / "pred" / "plots" / f"{video}.png").stat().st_size > 1000


@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real I3D clips not found at {CLIPS}")
def test_predict_single_file_with_flags(tmp_path):
    ckpt = _checkpoint_2048(tmp_path, ["a", "b", "c"])
    cfg = compose_config(
        "predict",
        [
            f"ckpt_path={ckpt}",
            f"features={CLIPS / 'tennis26.npy'}",
            "fps=30",
            "feat_stride=4",
            "num_frames=16",
            "duration=11.0",
            "plot=false",
            f"paths.output_dir={tmp_path / 'pred'}",
        ],
    )
    detections, _ = predict(cfg)
    assert list(detections) == ["tennis26"]
    assert max(d["segment"][1] for d in detections["tennis26"]) <= 11.0
    assert not (tmp_path / "pred" / "plots").exists()


def test_predict_rejects_wrong_feature_width(tmp_path):
    ckpt = _checkpoint_2048(tmp_path, ["a", "b", "c"])
    feats = tmp_path / "feats"
    feats.mkdir()
    import numpy as np

    np.save(feats / "v.npy", np.zeros((50, 1024), dtype=np.float32))
    cfg = compose_config(
        "predict",
        [f"ckpt_path={ckpt}", f"features={feats}", "fps=30", f"paths.output_dir={tmp_path / 'p'}"],
    )
    with pytest.raises(Exception, match="2048|1024"):
        predict(cfg)

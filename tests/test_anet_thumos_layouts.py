"""`experiment=anet` / `experiment=thumos` on synthetic data in the ActionFormer/TriDet layouts.

The real commands of docs/decisions.md D76 with only size overrides: ANet class-agnostic
training, fused real-class evaluation (checked against `logo-tal-score` on the written file),
fusion=none, HDF5 features, the fusion start-up errors; THUMOS train + test.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from helpers.lit_config import (
    compose_config,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    path_overrides,
)
from logo_tal import score
from logo_tal.data.datamodule import TALDataModule
from logo_tal.data.feature_store import H5FeatureStore, NpyFeatureStore
from logo_tal.data.video_scores import ExternalScores, MissingScoresError
from logo_tal.evaluation.protocol import EvaluationProtocol
from logo_tal.prep.synthetic.layouts import LAYOUTS, layout_main, write_layout
from logo_tal.train import train

# Fake THUMOS/ActivityNet layouts trained end to end: part of `make test`, not test-fast.
pytestmark = pytest.mark.slow

DIM = 32
ANET_TIOU = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
# Model and run size only: every data path and recipe value comes from the experiment file.
SMALL = [
    f"data.features.input_dim={DIM}",
    "model.embed_dim=32",
    "model.head_dim=32",
    "model.mlp_hidden=64",
    "model.num_levels=4",
    "model.num_bins=4",
    "data.batch_size=4",
    "data.eval_batch_size=4",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "module.warmup_epochs=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "logger=[]",
]
ANET = ["experiment=anet", *SMALL, "data.max_seq_len=160"]
THUMOS = [
    "experiment=thumos",
    *SMALL,
    "data.max_seq_len=256",
    "module.postprocess.max_seg_num=200",
    "module.postprocess.pre_nms_topk=200",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layouts")
    write_layout(root, "anet", seed=3, feature_formats=("npy", "h5"), input_dim=DIM)
    write_layout(root, "thumos", seed=4, input_dim=DIM)
    return root


def _anet(data_dir: Path, name: str) -> Path:
    return data_dir / "anet_1.3" / getattr(LAYOUTS["anet"], name)


def _run_config(tmp_path: Path, data_dir: Path, base: list[str], *overrides: str):
    cfg = compose_config("train", [*base, *path_overrides(tmp_path, data_dir), *overrides])
    with open_dict(cfg):
        cfg.trainer.default_root_dir = str(tmp_path / "run")
    return cfg


def _score(gt: Path, pred: Path, *args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert score.main([str(gt), str(pred), *args, "--json"]) == 0
    return json.loads(out.getvalue())


# ----------------------------------------------------------------------------- the generator
def test_anet_layout_matches_the_documented_files(data_dir):
    ann = json.loads(_anet(data_dir, "annotation_file").read_text())["database"]
    assert {e["subset"] for e in ann.values()} == {"training", "validation"}
    assert not any(v.startswith("v_") for v in ann)  # ids as in the official file
    feats = _anet(data_dir, "feature_dir")
    assert {p.name for p in feats.glob("*.npy")} == {f"v_{v}.npy" for v in ann}
    per_video = [len(e["annotations"]) for e in ann.values()]
    assert max(per_video) <= 4 and sum(per_video) / len(per_video) < 2  # few, long actions
    labels = {a["label"] for e in ann.values() for a in e["annotations"]}
    assert len(labels) >= 4
    scores = json.loads(_anet(data_dir, "fusion_file").read_text())
    validation = {v for v, e in ann.items() if e["subset"] == "validation"}
    assert set(scores["results"]) == validation  # CUHK-style: validation ids, no prefix
    assert len(scores["class"]) == 6


def test_layout_script_prints_the_commands(tmp_path, capsys):
    assert layout_main(["--out", str(tmp_path), "--dataset", "thumos", "--input-dim", "8"]) == 0
    printed = capsys.readouterr().out
    assert f"experiment=thumos paths.data_dir={tmp_path} data.features.input_dim=8" in printed
    ann = json.loads((tmp_path / "thumos" / "annotations" / "thumos14.json").read_text())
    assert {e["subset"] for e in ann["database"].values()} == {"Validation", "Test"}
    assert len(ann["classes"]) == 20
    assert all(
        (tmp_path / "thumos" / "i3d_features" / f"{v}.npy").is_file() for v in ann["database"]
    )


def test_datamodule_evaluates_real_classes_when_class_agnostic(data_dir, tmp_path):
    from logo_tal.app.build import build_datamodule, build_detector

    cfg = _run_config(tmp_path, data_dir, ANET)
    dm: TALDataModule = build_datamodule(cfg, build_detector(cfg))
    assert dm.class_names == ["action"]
    assert len(dm.eval_class_names) == 6 and "Bathing dog" in dm.eval_class_names
    real = dm.eval_database.videos
    dm.setup("test")
    labels = []
    for batch in dm.test_dataloader():
        for video, segs, lab in zip(
            batch.video_ids, batch.gt_segments, batch.gt_labels, strict=True
        ):
            # The evaluation ground truth carries the real classes, the targets stay "action".
            assert segs.tolist() == real[video].gt_segments.tolist()
            assert lab.tolist() == real[video].gt_labels.tolist()
            labels += lab.tolist()
        assert all((t == 0).all() for t in batch.labels)
    assert max(labels) < 6 and len(set(labels)) > 1
    unfused = build_datamodule(cfg, build_detector(cfg), EvaluationProtocol(ANET_TIOU))
    assert unfused.eval_class_names == ["action"]


# ----------------------------------------------------------------------------- ActivityNet
def test_anet_fused_evaluation_matches_the_scorer(data_dir, tmp_path):
    metrics, objects = train(_run_config(tmp_path, data_dir, ANET))
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["fusion"] == "external" and saved["tiou_thresholds"] == ANET_TIOU
    assert saved["average_mAP"] == pytest.approx(metrics["test/mAP_avg"])
    assert objects["module"].class_names == objects["datamodule"].eval_class_names

    dets = json.loads((run / "detections.json").read_text())["results"]
    videos = set(objects["datamodule"].videos("test"))
    assert set(dets) == videos
    external = ExternalScores(_anet(data_dir, "fusion_file"), objects["module"].class_names)
    names = objects["module"].class_names
    for video, entries in dets.items():
        assert 0 < len(entries) <= 400
        probs = external.get(video)
        top2 = {names[i] for i in probs.topk(2).indices.tolist()}
        assert {e["label"] for e in entries} == top2
        # Every detection is emitted once per top class with sqrt(p_class * s_det): squared
        # scores divided by p_class give the same detection scores for both classes, up to the
        # file's float32 precision (d s_det = 2 score d score / p, |d score| <= 6e-8 score).
        implied: dict[str, list[tuple]] = {}
        for e in entries:
            p = float(probs[names.index(e["label"])])
            slack = 2 * e["score"] ** 2 * 1.2e-7 / p
            implied.setdefault(e["label"], []).append((*e["segment"], e["score"] ** 2 / p, slack))
        first, second = (sorted(v) for v in implied.values())
        assert len(first) == len(second)
        for a, b in zip(first, second, strict=True):
            assert a[:2] == b[:2] and abs(a[2] - b[2]) <= a[3] + b[3] + 1e-12

    scored = _score(
        _anet(data_dir, "annotation_file"),
        run / "detections.json",
        "--subset",
        "validation",
        "--tiou",
        *map(str, ANET_TIOU),
    )
    # The metric scores the values the file holds; only the order of the float sums over
    # classes may differ (about 1e-17, docs/decisions.md D62).
    assert scored["mAP"] == pytest.approx(saved["mAP"], rel=1e-12, abs=1e-15)
    assert scored["average_mAP"] == pytest.approx(saved["average_mAP"], rel=1e-12)


def test_anet_without_fusion_is_class_agnostic(data_dir, tmp_path):
    metrics, objects = train(_run_config(tmp_path, data_dir, ANET, "protocol.fusion=null"))
    assert objects["module"].class_names == ["action"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["fusion"] == "none"
    dets = json.loads((tmp_path / "run" / "detections.json").read_text())["results"]
    assert {e["label"] for entries in dets.values() for e in entries} == {"action"}
    assert max(len(entries) for entries in dets.values()) <= 200  # no fusion doubling
    # The same numbers as scoring the file against the annotations with labels collapsed.
    ann = json.loads(_anet(data_dir, "annotation_file").read_text())
    for entry in ann["database"].values():
        for a in entry["annotations"]:
            a["label"], a["label_id"] = "action", 0
    ann["classes"] = ["action"]
    gt = tmp_path / "agnostic.json"
    gt.write_text(json.dumps(ann))
    scored = _score(
        gt,
        tmp_path / "run" / "detections.json",
        "--subset",
        "validation",
        "--tiou",
        *map(str, ANET_TIOU),
    )
    assert scored["average_mAP"] == pytest.approx(metrics["test/mAP_avg"], abs=1e-9)


def test_anet_hdf5_features(data_dir, tmp_path):
    cfg = _run_config(tmp_path, data_dir, ANET, "data.features.format=h5", "debug=fast_dev_run")
    metrics, objects = train(cfg)
    assert isinstance(objects["datamodule"].store, H5FeatureStore)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["counts"]["videos"] == 4  # fast_dev_run: one test batch of 4 videos
    assert saved["average_mAP"] == pytest.approx(metrics["test/mAP_avg"], abs=1e-12)


def test_missing_fusion_file_fails_at_start_up(data_dir, tmp_path):
    missing = tmp_path / "cuhk_val_simp_share.json"
    cfg = _run_config(tmp_path, data_dir, ANET, f"protocol.fusion.scores_file={missing}")
    with pytest.raises(Exception, match="does not exist") as err:
        train(cfg)
    reason = [line for line in str(err.value).splitlines() if str(missing) in line]
    assert len(reason) == 1 and "protocol.fusion=null" in reason[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_fusion_file_without_an_evaluated_video_fails_before_training(data_dir, tmp_path):
    scores = json.loads(_anet(data_dir, "fusion_file").read_text())
    dropped = sorted(scores["results"])[0]
    del scores["results"][dropped]
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(scores))
    cfg = _run_config(tmp_path, data_dir, ANET, f"protocol.fusion.scores_file={path}")
    with pytest.raises(MissingScoresError, match=f"{path}: no video-level scores for 1 of") as err:
        train(cfg)
    assert dropped in str(err.value)
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))


def test_fusion_classes_must_match_the_annotation_classes(data_dir, tmp_path):
    scores = json.loads(_anet(data_dir, "fusion_file").read_text())
    scores["class"][0] = "Not an ActivityNet class"
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(scores))
    cfg = _run_config(tmp_path, data_dir, ANET, f"protocol.fusion.scores_file={path}")
    with pytest.raises(ValueError, match=f"{path}: 1 dataset classes have no score"):
        train(cfg)
    # A file class the annotations lack would change which classes are the top 2.
    names = json.loads(_anet(data_dir, "fusion_file").read_text())["class"]
    with pytest.raises(ValueError, match="1 classes of the file's 'class' list are not dataset"):
        ExternalScores(_anet(data_dir, "fusion_file"), names[1:])


# ----------------------------------------------------------------------------- THUMOS14
def test_thumos_layout_train_and_test(data_dir, tmp_path):
    metrics, objects = train(_run_config(tmp_path, data_dir, THUMOS))
    assert isinstance(objects["datamodule"].store, NpyFeatureStore)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["fusion"] == "none" and saved["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert saved["average_mAP"] == pytest.approx(metrics["test/mAP_avg"])
    dets = json.loads((tmp_path / "run" / "detections.json").read_text())["results"]
    assert set(dets) == {v for v in dets if v.startswith("video_test_")}
    assert {e["label"] for entries in dets.values() for e in entries} <= set(
        LAYOUTS["thumos"].class_names
    )

"""docs/bad_inputs.md, row by row: each bad input through the public command.

Every expected error ends with exit status 2 and one line on standard error naming the file,
video or key (docs/decisions.md D74, D100); a documented repair runs and logs its counted
warning. The Hydra commands run in-process through ``main(argv)`` (the same code path as the
console scripts, without a second interpreter start), the scorer and validator through their
``main(argv)``; one test starts the real interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers.lit_config import (
    TINY,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_train_config,
    write_untrained_checkpoint,
)
from logo_tal import evaluate, predict, score, train
from logo_tal import validate as validate_cli
from logo_tal.data.annotations import load_annotations
from logo_tal.prep import synthetic

# Every row runs the real command (many in a subprocess): part of `make test`, not test-fast.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]


def error_line(capsys, prog: str) -> str:
    """The one line on stderr; fails when there is more (a traceback, a second message)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """Run directories (Hydra's logs/) under tmp_path."""
    monkeypatch.setenv("LOGO_TAL_ROOT", str(tmp_path))
    monkeypatch.delenv("LOGO_TAL_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    """The tiny synthetic benchmark in both formats (read-only: tests corrupt copies)."""
    out = tmp_path_factory.mktemp("bad_inputs_source")
    synthetic.generate(out / "npy", preset="tiny", seed=0, format="npy")
    synthetic.generate(out / "h5", preset="tiny", seed=0, format="h5")
    return out


@pytest.fixture
def data(tmp_path, tiny_source) -> Path:
    """A copy of the tiny benchmark as ``<data_dir>/synthetic`` (npy and features.h5)."""
    out = tmp_path / "data" / "synthetic"
    shutil.copytree(tiny_source / "npy", out)
    shutil.copy(tiny_source / "h5" / synthetic.H5_FILE, out / synthetic.H5_FILE)
    return out


def train_videos(data: Path) -> list[str]:
    return [
        r.video_id for r in load_annotations(data / synthetic.ANNOTATION_FILE).subset("training")
    ]


def feature_file(data: Path, video: str) -> Path:
    return data / synthetic.NPY_DIR / f"{video}.npy"


def run_train(data: Path, *extra: str) -> int:
    """``logo-tal-train`` on the tiny benchmark at ``data``: one epoch, no logger."""
    args = [*TINY, f"paths.data_dir={data.parent}", "logger=[]", "trainer.max_epochs=1"]
    return train.main([*args, *extra])


ONE_EPOCH_NO_EVAL = ["test=false", "trainer.limit_val_batches=0"]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, tiny_source) -> Path:
    """A checkpoint of an untrained tiny model, written as train.py writes it (no training)."""
    tmp = tmp_path_factory.mktemp("ckpt")
    shutil.copytree(tiny_source / "npy", tmp / "data" / "synthetic")
    cfg = tiny_train_config(tmp, data_dir=tmp / "data")
    names = load_annotations(tmp / "data" / "synthetic" / synthetic.ANNOTATION_FILE).class_names
    return write_untrained_checkpoint(cfg, names, tmp / "model.ckpt")


# ----------------------------------------------------------------------------- configs and data


def test_thumos_without_data_is_one_line_exit_2(tmp_path):
    """The issue's example, through the real interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LOGO_TAL_DEBUG")}
    env.update(LOGO_TAL_ROOT=str(tmp_path), PYTHONPATH=str(REPO_ROOT / "src"))
    cmd = [
        sys.executable,
        "-m",
        "logo_tal.train",
        "experiment=thumos",
        "paths.data_dir=/nonexistent",
    ]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "/nonexistent/thumos/annotations/thumos14.json" in lines[0]
    assert "/nonexistent/thumos/i3d_features" in lines[0]
    assert "README.md, section 'Data'" in lines[0]


def test_anet_without_data_names_the_expected_paths(root, capsys):
    assert (
        train.main(["experiment=anet", "paths.data_dir=/nonexistent", "protocol.fusion=null"]) == 2
    )
    line = error_line(capsys, "logo-tal-train")
    assert "/nonexistent/anet_1.3/annotations/anet1.3_tsp_filtered.json" in line
    assert "README.md" in line


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("experiment=thumoss", "Could not find 'experiment/thumoss'"),
        ("trainer.max_epoch=3", "Could not override 'trainer.max_epoch'"),
        ("model.num_levels=[", "override 'model.num_levels=['"),
    ],
)
def test_config_that_does_not_compose(root, capsys, override, expected):
    assert train.main([override]) == 2
    line = error_line(capsys, "logo-tal-train")
    assert expected in line
    assert "Config search path" not in line


def test_config_that_does_not_validate_lists_every_problem_in_one_line(root, capsys):
    args = [*TINY, "data.max_seq_len=100", "protocol.tiou_thresholds=[0.5,1.5]"]
    assert train.main(args) == 2
    line = error_line(capsys, "logo-tal-train")
    assert "invalid config: " in line and "data.max_seq_len" in line and "1.5" in line


def test_config_value_a_constructor_rejects(root, capsys):
    assert train.main([*TINY, "model.embed_dim=24"]) == 2  # GroupNorm: 16 groups
    line = error_line(capsys, "logo-tal-train")
    assert "24 channels cannot form 16 groups" in line and "model.detector.encoder" in line


def test_missing_mandatory_value(root, capsys):
    assert evaluate.main([]) == 2
    assert "ckpt_path" in error_line(capsys, "logo-tal-evaluate")


def test_debug_shows_the_traceback(root, monkeypatch):
    monkeypatch.setenv("LOGO_TAL_DEBUG", "1")
    with pytest.raises(Exception, match="experiment/thumoss"):
        train.main(["experiment=thumoss"])


def test_a_bug_keeps_its_traceback(root, monkeypatch):
    def broken(cfg):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train, "train", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        train.main(TINY)


# ----------------------------------------------------------------------------- feature files


def test_missing_feature_file_names_the_video(root, data, capsys):
    video = train_videos(data)[-1]
    feature_file(data, video).unlink()
    assert run_train(data) == 2
    line = error_line(capsys, "logo-tal-train")
    assert "1 video(s) of split 'train' have no features" in line and video in line
    assert "skip_missing" in line


def test_missing_feature_file_repair_skip_missing(root, data, capsys):
    video = train_videos(data)[-1]
    feature_file(data, video).unlink()
    assert run_train(data, "data.features.skip_missing=true", *ONE_EPOCH_NO_EVAL) == 0
    out = capsys.readouterr()
    assert "skipping 1 of 6 video(s) without features" in out.out and video in out.out
    assert out.err.strip() == ""


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_unreadable_npy_fails_when_read_in_training(root, data, capsys, damage):
    """Not the first video: the error comes from inside the training loop."""
    path = feature_file(data, train_videos(data)[-1])
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"not numpy" * 50)
    assert run_train(data, *ONE_EPOCH_NO_EVAL) == 2
    line = error_line(capsys, "logo-tal-train")
    assert f"{path}: unreadable feature file" in line


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_unreadable_hdf5(root, data, capsys, damage):
    path = data / synthetic.H5_FILE
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3] if damage == "truncated" else b"garbage" * 100)
    assert run_train(data, f"data.features.path={path}", "data.features.format=h5") == 2
    assert f"{path}: unreadable HDF5 file" in error_line(capsys, "logo-tal-train")


def test_wrong_feature_width(root, data, capsys):
    assert run_train(data, "data.features.input_dim=48") == 2
    line = error_line(capsys, "logo-tal-train")
    assert ".npy" in line and "48" in line and "32" in line


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full((40, 32), np.nan, np.float32), "NaN/Inf"),
        (np.full((40, 32), np.inf, np.float32), "NaN/Inf"),
        (np.zeros((0, 32), np.float32), "empty feature array"),
        (np.zeros((40,), np.float32), "expected a 2-D (T, C) array"),
    ],
)
def test_bad_feature_values(root, data, capsys, values, expected):
    path = feature_file(data, train_videos(data)[0])
    np.save(path, values)
    assert run_train(data) == 2
    line = error_line(capsys, "logo-tal-train")
    assert str(path) in line and expected in line


def test_nan_in_hdf5_dataset(root, data, capsys):
    path = data / synthetic.H5_FILE
    video = train_videos(data)[0]
    with h5py.File(path, "a") as f:
        f[video][3, 5] = np.nan
    assert run_train(data, f"data.features.path={path}", "data.features.format=h5") == 2
    line = error_line(capsys, "logo-tal-train")
    assert video in line and "1 NaN/Inf value(s)" in line


# ----------------------------------------------------------------------------- lengths


def test_short_and_long_sequences_are_kept_whole(root, tmp_path, tiny_ckpt, capsys):
    """Shorter than the pyramid's divisor (8 steps here): padded. Longer than max_seq_len (128)
    at test time: kept whole, never cropped (docs/decisions.md D16)."""
    feats = tmp_path / "feats"
    feats.mkdir()
    rng = np.random.default_rng(0)
    np.save(feats / "short.npy", rng.random((3, 32), dtype=np.float32))
    np.save(feats / "long.npy", rng.random((400, 32), dtype=np.float32))
    out = tmp_path / "out"
    args = [f"ckpt_path={tiny_ckpt}", f"features={feats}", "plot=false", f"hydra.run.dir={out}"]
    assert predict.main(args) == 0
    assert capsys.readouterr().err.strip() == ""
    results = json.loads((out / "predictions.json").read_text())["results"]
    assert set(results) == {"short", "long"} and results["short"]
    # Detections reach past the first max_seq_len steps: (128 * 4 + 8) / 30 = 17.3 s.
    assert max(d["segment"][1] for d in results["long"]) > 17.4


def test_predict_features_that_do_not_exist(root, tmp_path, tiny_ckpt, capsys):
    assert predict.main([f"ckpt_path={tiny_ckpt}", f"features={tmp_path / 'none'}"]) == 2
    assert f"{tmp_path / 'none'} does not exist" in error_line(capsys, "logo-tal-predict")


def test_predict_videos_bad_inputs(root, tmp_path, tiny_ckpt, capsys):
    ckpt = f"ckpt_path={tiny_ckpt}"
    assert predict.main([ckpt]) == 2
    assert "exactly one of features= or videos= (neither" in error_line(capsys, "logo-tal-predict")
    both = [ckpt, f"features={tmp_path}", f"videos={tmp_path}"]
    assert predict.main(both) == 2
    assert "(both were given)" in error_line(capsys, "logo-tal-predict")
    assert predict.main([ckpt, f"videos={tmp_path / 'none'}"]) == 2
    assert f"{tmp_path / 'none'}: no such file or directory" in error_line(
        capsys, "logo-tal-predict"
    )
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: the record is looked for first")
    assert predict.main([ckpt, f"videos={video}", "fps=10"]) == 2
    assert "fps= cannot be set with videos=" in error_line(capsys, "logo-tal-predict")
    # The tiny checkpoint was trained on synthetic features, which have no extraction.json.
    assert predict.main([ckpt, f"videos={video}"]) == 2
    line = error_line(capsys, "logo-tal-predict")
    assert "looked for" in line and "extraction.json" in line and "features=" in line


# ----------------------------------------------------------------------------- annotations


def edit_annotations(data: Path, change) -> Path:
    path = data / synthetic.ANNOTATION_FILE
    content = json.loads(path.read_text())
    change(content["database"])
    path.write_text(json.dumps(content))
    return path


def test_segment_repairs_are_counted(root, data, capsys):
    """Reversed, zero-length and out-of-range segments: kept in evaluation, repaired or dropped
    from training targets with one counted warning per kind (docs/decisions.md D7)."""
    video = train_videos(data)[0]

    def damage(db):
        label = db[video]["annotations"][0]["label"]
        duration = db[video]["duration"]
        db[video]["annotations"] += [
            {"segment": [5.0, 2.0], "label": label},
            {"segment": [3.0, 3.0], "label": label},
            {"segment": [duration + 1, duration + 2], "label": label},
            {"segment": [-2.0, 1.0], "label": label},
        ]

    path = edit_annotations(data, damage)
    assert validate_cli.main(["--annotations", str(path)]) == 1
    out = capsys.readouterr().out
    for kind in ("reversed_segment", "zero_length_segment", "starts_after_duration"):
        assert f"{kind}: 1 in 1 video(s)" in out, out
    assert "clamped_to_duration: 1 in 1 video(s)" in out
    assert run_train(data, *ONE_EPOCH_NO_EVAL, "trainer.limit_train_batches=1") == 0
    out = capsys.readouterr()
    assert "reversed_segment: 1 in 1 video(s)" in out.out and out.err.strip() == ""


def test_unknown_label_is_dropped_and_counted(root, data, capsys):
    video = train_videos(data)[0]
    path = edit_annotations(
        data, lambda db: db[video]["annotations"].append({"segment": [1, 2], "label": "Nope"})
    )
    assert validate_cli.main(["--annotations", str(path)]) == 1
    assert "unknown_label: 1 in 1 video(s) -> dropped" in capsys.readouterr().out


def test_video_without_annotations_is_kept(root, data, capsys):
    video = train_videos(data)[0]
    path = edit_annotations(data, lambda db: db[video].update(annotations=[]))
    assert validate_cli.main(["--annotations", str(path)]) == 0
    assert run_train(data, *ONE_EPOCH_NO_EVAL, "trainer.limit_train_batches=1") == 0
    assert capsys.readouterr().err.strip() == ""


def test_duplicate_video_id(root, data, capsys):
    """Python's json would keep the second entry silently."""
    path = data / synthetic.ANNOTATION_FILE
    text = path.read_text()
    video = train_videos(data)[0]
    first = text.index(f'"{video}": ')
    text = text[:first] + f'"{video}": {{"subset": "training"}}, ' + text[first:]
    path.write_text(text)
    expected = f"{path}: key '{video}' appears twice in one JSON object"
    assert run_train(data) == 2
    assert expected in error_line(capsys, "logo-tal-train")
    assert validate_cli.main(["--annotations", str(path)]) == 2
    assert expected in error_line(capsys, "logo-tal-validate")


# ----------------------------------------------------------------------------- scorer


@pytest.fixture
def score_files(tmp_path) -> tuple[Path, Path]:
    gt = {
        "database": {"v1": {"subset": "test", "annotations": [{"segment": [1, 2], "label": "A"}]}}
    }
    pred = {"results": {"v1": [{"segment": [1, 2], "label": "A", "score": 0.9}]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    return tmp_path / "gt.json", tmp_path / "pred.json"


@pytest.mark.parametrize("damage", ["truncated", "malformed", "duplicate"])
def test_scorer_rejects_bad_json(score_files, capsys, damage):
    gt, pred = score_files
    text = pred.read_text()
    pred.write_text(
        {
            "truncated": text[: len(text) // 2],
            "malformed": text.replace(":", "=", 1),
            "duplicate": text.replace('{"v1":', '{"v1": [], "v1":'),
        }[damage]
    )
    assert score.main([str(gt), str(pred)]) == 2
    line = error_line(capsys, "logo-tal-score")
    assert str(pred) in line
    assert ("appears twice" if damage == "duplicate" else "malformed JSON") in line


def test_scorer_counts_predictions_for_unknown_videos(score_files, capsys):
    gt, pred = score_files
    content = json.loads(pred.read_text())
    content["results"]["ghost"] = [{"segment": [1, 2], "label": "A", "score": 0.5}]
    pred.write_text(json.dumps(content))
    assert score.main([str(gt), str(pred), "--json"]) == 0
    err = capsys.readouterr().err
    assert "1 on videos missing from the ground truth" in err and "'ghost'" in err


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_from_another_configuration(root, data, tiny_ckpt, capsys):
    assert run_train(data, f"ckpt_path={tiny_ckpt}", "model.embed_dim=32") == 2
    line = error_line(capsys, "logo-tal-train")
    assert f"{tiny_ckpt} does not fit this configuration" in line and "another shape" in line
    overrides = 'overrides=["model.num_levels=3"]'
    assert evaluate.main([f"ckpt_path={tiny_ckpt}", overrides, f"data_dir={data.parent}"]) == 2
    assert "does not fit this configuration" in error_line(capsys, "logo-tal-evaluate")


@pytest.mark.parametrize("command", [evaluate, predict])
def test_missing_or_corrupt_checkpoint(root, tmp_path, tiny_ckpt, capsys, command):
    prog = f"logo-tal-{command.__name__.rsplit('.', 1)[-1]}"
    corrupt = tmp_path / "last.ckpt"
    corrupt.write_bytes(tiny_ckpt.read_bytes()[:1000])
    for path, expected in (
        (tmp_path / "none.ckpt", "checkpoint not found"),
        (corrupt, "unreadable"),
    ):
        extra = [f"features={tmp_path}"] if command is predict else []
        assert command.main([f"ckpt_path={path}", *extra]) == 2
        assert f"{path}: {expected}" in error_line(capsys, prog)


def test_corrupt_checkpoint_at_resume(root, data, tmp_path, capsys):
    corrupt = tmp_path / "last.ckpt"
    corrupt.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert run_train(data, f"ckpt_path={corrupt}") == 2
    assert f"{corrupt}: unreadable checkpoint" in error_line(capsys, "logo-tal-train")


# ----------------------------------------------------------------------------- numerical faults


def overflowing(data: Path) -> str:
    """Finite features so large that the network overflows (NaN loss); not the first video."""
    video = train_videos(data)[-1]
    path = feature_file(data, video)
    np.save(path, np.full_like(np.load(path), 3e38))
    return video


def test_nonfinite_loss_stops_naming_the_videos(root, data, capsys):
    video = overflowing(data)
    assert run_train(data, *ONE_EPOCH_NO_EVAL, "callbacks.ema=null") == 2
    line = error_line(capsys, "logo-tal-train")
    assert "non-finite training loss" in line and video in line
    assert "module.on_nonfinite=skip" in line


def test_nonfinite_loss_skip_is_counted(root, data, capsys):
    video = overflowing(data)
    args = [*ONE_EPOCH_NO_EVAL, "callbacks.ema=null", "module.on_nonfinite=skip"]
    assert run_train(data, *args) == 0
    out = capsys.readouterr()
    assert "step skipped (1 so far)" in out.out and video in out.out
    assert out.err.strip() == ""

"""``logo-tal-validate`` exit codes and messages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers.annotation_json import ann, video, write_json
from logo_tal.validate import main

ARGS = ["--feat-stride", "4", "--num-frames", "16", "--input-dim", "32"]


def test_clean_dataset_exits_0(tiny_npy, capsys):
    code = main(
        [
            "--annotations",
            str(tiny_npy / "annotations.json"),
            "--features",
            str(tiny_npy / "features"),
            "--check-values",
            *ARGS,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "subset training: 6 videos" in out and "classes: 3" in out and "OK" in out


def test_h5_clean(tiny_h5):
    assert (
        main(
            [
                "--annotations",
                str(tiny_h5 / "annotations.json"),
                "--features",
                str(tiny_h5 / "features.h5"),
                *ARGS,
            ]
        )
        == 0
    )


def test_problems_exit_1(tiny_npy, tmp_path, capsys):
    feats = tmp_path / "features"
    shutil.copytree(tiny_npy / "features", feats)
    (feats / "synth_testing_00006.npy").unlink()
    np.save(feats / "synth_testing_00007.npy", np.zeros((5, 7), np.float32))  # dim + length
    code = main(
        [
            "--annotations",
            str(tiny_npy / "annotations.json"),
            "--features",
            str(feats),
            "--json",
            *ARGS,
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["exit_code"] == 1
    text = " ".join(report["problems"])
    assert "1 video(s) of subset 'testing' have no features: synth_testing_00006" in text
    assert "synth_testing_00007.npy: feature dimension 7 != input_dim 32" in text


def test_length_mismatch_exit_1(tiny_npy, tmp_path, capsys):
    code = main(
        [
            "--annotations",
            str(tiny_npy / "annotations.json"),
            "--features",
            str(tiny_npy / "features"),
            "--feat-stride",
            "8",
            "--num-frames",
            "16",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "feature length differs" in out


def test_annotation_problems_exit_1(tmp_path, capsys):
    path = write_json(tmp_path / "a.json", {"vid_q": video(duration=5, annotations=[ann(6, 7)])})
    assert main(["--annotations", str(path)]) == 1
    assert "starts_after_duration: 1" in capsys.readouterr().out


def test_unreadable_exit_2(tmp_path, tiny_npy, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert main(["--annotations", str(bad)]) == 2
    assert "bad.json: malformed JSON at line 1" in capsys.readouterr().out
    assert (
        main(
            [
                "--annotations",
                str(tiny_npy / "annotations.json"),
                "--features",
                str(tmp_path / "nowhere"),
            ]
        )
        == 2
    )
    (tmp_path / "x.h5").write_bytes(b"garbage")
    assert (
        main(
            [
                "--annotations",
                str(tiny_npy / "annotations.json"),
                "--features",
                str(tmp_path / "x.h5"),
            ]
        )
        == 2
    )


def test_module_entry_point(tiny_npy):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "logo_tal.validate",
            "--annotations",
            str(tiny_npy / "annotations.json"),
            "--features",
            str(tiny_npy / "features"),
            *ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_real_thumos_reports_30(shared_data: Path, capsys):
    code = main(
        [
            "--annotations",
            str(shared_data / "thumos14" / "thumos14_anet_style.json"),
            "--num-classes",
            "20",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["subsets"]["test"]["videos"] == 212
    assert report["subsets"]["test"]["problems"]["starts_after_duration"] == [26, 3]
    assert report["subsets"]["validation"]["problems"]["starts_after_duration"] == [4, 2]

"""The ``logo-tal-score`` command line (logo_tal.score)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from logo_tal.score import main

GT = {
    "database": {
        "v1": {
            "subset": "test",
            "annotations": [
                {"segment": [0.0, 10.0], "label": "A"},
                {"segment": [20.0, 30.0], "label": "A"},
                {"segment": [40.0, 50.0], "label": "B"},
            ],
        },
        "v2": {"subset": "validation", "annotations": [{"segment": [0, 5], "label": "C"}]},
    }
}
# The worked example of tests/evaluation/test_ap.py: mAP 11/12 at 0.5 and 3/4 at 0.75.
PRED = {
    "results": {
        "v1": [
            {"segment": [0.0, 10.0], "label": "A", "score": 0.9},
            {"segment": [50.0, 60.0], "label": "A", "score": 0.8},
            {"segment": [24.0, 30.0], "label": "A", "score": 0.7},
            {"segment": [40.0, 50.0], "label": "B", "score": 0.6},
        ]
    }
}


@pytest.fixture
def files(tmp_path):
    gt = tmp_path / "gt.json"
    pred = tmp_path / "pred.json"
    gt.write_text(json.dumps(GT), encoding="utf-8")
    pred.write_text(json.dumps(PRED), encoding="utf-8")
    return gt, pred


def test_json_output_has_exactly_the_three_keys(files, capsys):
    gt, pred = files
    code = main([str(gt), str(pred), "--subset", "test", "--tiou", "0.5", "0.75", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"tiou_thresholds", "mAP", "average_mAP"}
    assert result["tiou_thresholds"] == [0.5, 0.75]
    assert result["mAP"] == pytest.approx([11 / 12, 3 / 4], abs=1e-12)
    assert result["average_mAP"] == pytest.approx((11 / 12 + 3 / 4) / 2, abs=1e-12)
    assert "ground truth: 1 videos" in err


def test_json_keeps_stdout_clean_with_every_table(files, capsys):
    gt, pred = files
    argv = [str(gt), str(pred), "--json", "--per-class", "--recall", "--histogram"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1
    assert set(json.loads(out)) == {"tiou_thresholds", "mAP", "average_mAP"}
    assert "R@1x" in err and "scores:" in err and "#GT" in err


def test_readable_table(files, capsys):
    gt, pred = files
    argv = [str(gt), str(pred), "--subset", "test", "--tiou", "0.5", "0.75", "--per-class"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "91.67" in out and "75.00" in out and "avg" in out
    assert "83.33" in out  # per-class A at 0.5
    assert "3 kept" in err and "2 classes" in err


def test_default_thresholds_are_thumos(files, capsys):
    gt, pred = files
    assert main([str(gt), str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]


def test_empty_results(files, capsys):
    gt, pred = files
    pred.write_text('{"results": {}}', encoding="utf-8")
    assert main([str(gt), str(pred), "--json", "--recall", "--histogram"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mAP"] == [0.0] * 5 and result["average_mAP"] == 0.0


BAD_PREDICTIONS = [
    (b"{", "malformed JSON"),
    (b"\x80abc", "not valid UTF-8"),
    (b'{"res": {}}', "no top-level 'results'"),
    (b'{"results": []}', "'results'"),
    (b'{"results": {"v1": {}}}', "video 'v1': must be a list"),
    (b'{"results": {"v1": [7]}}', "video 'v1', entry 0: must be an object"),
    (
        b'{"results": {"v1": [{"segment": [1, 2, 3], "label": "A", "score": 1}]}}',
        "video 'v1', entry 0: 'segment' must be two numbers",
    ),
    (
        b'{"results": {"v1": [{"segment": "1-2", "label": "A", "score": 1}]}}',
        "'segment' must be two numbers",
    ),
    (
        b'{"results": {"v1": [{"segment": [1, true], "label": "A", "score": 1}]}}',
        "'segment' must be two numbers",
    ),
    (
        b'{"results": {"v1": [{"segment": [1, 2], "label": "A", "score": "high"}]}}',
        "video 'v1', entry 0: 'score' must be a number",
    ),
    (
        b'{"results": {"v1": [{"segment": [1, 2], "label": "A", "score": NaN}]}}',
        "'score' must be finite",
    ),
    (b'{"results": {"v1": [{"segment": [1, 2], "label": "A"}]}}', "missing 'score'"),
    (b'{"results": {"v1": [{"segment": [1, 2], "score": 1}]}}', "missing 'label'"),
    (
        b'{"results": {"v1": [{"segment": [1, 2], "label": ["A"], "score": 1}]}}',
        "'label' must be a string",
    ),
]


@pytest.mark.parametrize(("content", "expected"), BAD_PREDICTIONS)
def test_bad_predictions_exit_2_with_one_line(files, capsys, content, expected):
    gt, pred = files
    pred.write_bytes(content)
    assert main([str(gt), str(pred), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert str(pred) in err and expected in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "malformed JSON"),
        (b'{"results": {}}', "no top-level 'database'"),
        (b'{"database": {"v1": {"annotations": [{"segment": [0], "label": "A"}]}}}', "'v1'"),
        (b'{"database": {"v1": {"subset": 5, "annotations": []}}}', "'subset' must be a string"),
    ],
)
def test_bad_ground_truth_exit_2_with_one_line(files, capsys, content, expected):
    gt, pred = files
    gt.write_bytes(content)
    assert main([str(gt), str(pred), "--subset", "test", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert str(gt) in err and expected in err


def test_missing_file_and_unknown_subset_exit_2(files, tmp_path, capsys):
    gt, pred = files
    assert main([str(gt), str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "nope.json" in err
    assert main([str(gt), str(pred), "--subset", "Test"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no video has subset 'Test'" in err


@pytest.mark.parametrize("bad", [["--tiou", "abc"], ["--tiou", "1.5"], ["--bogus"], []])
def test_bad_arguments_exit_2_with_one_line(files, capsys, bad):
    gt, pred = files
    argv = [str(gt), str(pred), *bad] if bad else [str(gt)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1


def test_module_entry_point(files):
    gt, pred = files
    done = subprocess.run(
        [sys.executable, "-m", "logo_tal.score", str(gt), str(pred), "--tiou", "0.5", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tiou_thresholds"] == [0.5]
    done = subprocess.run(
        [sys.executable, "-m", "logo_tal.score", str(gt), str(gt), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "'results'" in done.stderr

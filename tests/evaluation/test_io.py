"""Reading and writing ActivityNet JSON (logo_tal.evaluation.io)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from logo_tal.core.detections import Detections
from logo_tal.evaluation.ap import Predictions, evaluate_detections
from logo_tal.evaluation.io import (
    EvaluationInputError,
    load_ground_truth,
    load_predictions,
)
from logo_tal.evaluation.records import as_written, to_records
from logo_tal.evaluation.report import write_detections

GT = {
    "database": {
        "v1": {
            "subset": "test",
            "duration": 60.0,
            "annotations": [
                {"segment": [1.0, 5.0], "label": "Café au lait"},
                {"segment": [10, 20], "label": "jump"},
            ],
        },
        "v2": {
            "subset": "validation",
            "duration": 30.0,
            "annotations": [{"segment": [0.0, 3.0], "label": "only in validation"}],
        },
        "v3": {"subset": "test", "duration": 30.0, "annotations": []},
    }
}


def write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_load_ground_truth_with_subset(tmp_path):
    gt = load_ground_truth(write(tmp_path / "gt.json", GT), subset="test")
    assert gt.video_ids == ("v1", "v3")
    assert gt.class_names == ("Café au lait", "jump")
    assert gt.num_videos_other_subsets == 1
    np.testing.assert_array_equal(gt.video, [0, 0])
    np.testing.assert_array_equal(gt.label, [0, 1])
    np.testing.assert_array_equal(gt.start, [1.0, 10.0])
    assert gt.start.dtype == np.float64


def test_load_ground_truth_without_subset_keeps_all(tmp_path):
    gt = load_ground_truth(write(tmp_path / "gt.json", GT))
    assert gt.video_ids == ("v1", "v2", "v3") and len(gt) == 3


def test_unknown_subset_is_an_error_that_lists_the_subsets(tmp_path):
    with pytest.raises(EvaluationInputError, match="'Test'.*'test', 'validation'"):
        load_ground_truth(write(tmp_path / "gt.json", GT), subset="Test")


def test_load_predictions_indexes_by_ground_truth(tmp_path):
    gt = load_ground_truth(write(tmp_path / "gt.json", GT), subset="test")
    results = {
        "results": {
            "v1": [{"segment": [1.0, 5.0], "label": "Café au lait", "score": 0.9}],
            "v2": [{"segment": [0.0, 3.0], "label": "only in validation", "score": 1}],
            "v3": [],
        }
    }
    preds = load_predictions(write(tmp_path / "pred.json", results), gt)
    np.testing.assert_array_equal(preds.video, [0, -1])
    np.testing.assert_array_equal(preds.label, [0, -1])
    assert preds.unknown_videos == ("v2",) and preds.unknown_labels == ("only in validation",)


def test_non_ascii_escapes_are_read_as_utf8(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(GT, ensure_ascii=True), encoding="ascii")
    assert "Café au lait" in load_ground_truth(path).class_names


def test_write_and_read_back(tmp_path):
    gt = load_ground_truth(write(tmp_path / "gt.json", GT), subset="test")

    dets = Detections(
        segments=torch.tensor([[1.0, 5.0], [10.0, 20.0]]),
        scores=torch.tensor([0.9, 0.8]),
        labels=torch.tensor([0, 1]),
    )
    results = to_records(["v1"], [as_written(dets)], gt.class_names)
    write_detections(tmp_path / "out", results, "pred.json", {"version": "test"})
    on_disk = json.loads((tmp_path / "out" / "pred.json").read_text(encoding="utf-8"))
    assert on_disk["version"] == "test"
    assert on_disk["results"]["v1"][0] == {
        "segment": [1.0, 5.0],
        "label": "Café au lait",
        "score": pytest.approx(0.9),
    }
    preds = load_predictions(tmp_path / "out" / "pred.json", gt)
    assert evaluate_detections(gt, preds, [0.5]).mAP[0] == 1.0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "malformed JSON at line 1"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[]", "no top-level 'database'"),
        (b'{"database": []}', "'database'"),
        (b'{"database": {"v9": 3}}', "video 'v9': must be an object"),
        (b'{"database": {"v9": {}}}', "video 'v9': missing 'annotations'"),
        (b'{"database": {"v9": {"annotations": {}}}}', "'annotations' must be a list"),
        (b'{"database": {"v9": {"annotations": [5]}}}', "annotation 0: must be an object"),
        (
            b'{"database": {"v9": {"annotations": [{"label": "a", "segment": [1]}]}}}',
            "video 'v9', annotation 0: 'segment' must be two numbers",
        ),
        (
            b'{"database": {"v9": {"annotations": [{"label": "a", "segment": ["1", 2]}]}}}',
            "'segment' must be two numbers",
        ),
        (
            b'{"database": {"v9": {"annotations": [{"label": "a", "segment": [1, NaN]}]}}}',
            "'segment' must be finite",
        ),
        (b'{"database": {"v9": {"annotations": [{"label": "a"}]}}}', "missing 'segment'"),
        (
            b'{"database": {"v9": {"annotations": [{"label": 3, "segment": [1, 2]}]}}}',
            "'label' must be a string",
        ),
    ],
)
def test_bad_ground_truth(tmp_path, content, expected):
    path = tmp_path / "gt.json"
    path.write_bytes(content)
    with pytest.raises(EvaluationInputError) as info:
        load_ground_truth(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(EvaluationInputError, match="absent.json: file not found"):
        load_ground_truth(tmp_path / "absent.json")


def test_real_thumos14_test_ground_truth(shared_data):
    path = shared_data / "thumos14" / "thumos14_anet_style.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    gt = load_ground_truth(path, subset="test")
    assert len(gt.video_ids) == 212
    assert len(gt) == 3358
    assert len(gt.class_names) == 20
    assert gt.class_names[0] == "BaseballPitch" and gt.class_names[-1] == "VolleyballSpiking"
    # Nothing in it is short or a duplicate (CliffDiving/Diving pairs differ in label).
    report = evaluate_detections(gt, Predictions.empty(), [0.5])
    assert report.counts.gt_kept == 3358 and report.counts.classes == 20
    validation = load_ground_truth(path, subset="validation")
    assert (len(validation.video_ids), len(validation)) == (200, 3007)

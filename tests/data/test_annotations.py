"""Annotation parsing, validation (one test per bad input) and the real annotation files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from helpers.annotation_json import ann, video, write_json
from logo_tal.data import annotations as A
from logo_tal.data.annotations import AnnotationError, load_annotations


def test_reads_fields_and_class_map_from_sorted_labels(tmp_path):
    path = write_json(
        tmp_path / "a.json",
        {
            "v1": video("Training", 20.0, 25.0, [ann(1, 2, "jump"), ann(3, 5, "dive")]),
            "v2": video("validation", 8.0, 30.0, [ann(0.5, 1.5, "jump")]),
        },
    )
    db = load_annotations(path)
    assert db.class_names == ["dive", "jump"]
    assert [v.video_id for v in db.subset("TRAINING")] == ["v1"]
    v1 = db.videos["v1"]
    assert v1.subset == "training" and v1.duration == 20.0 and v1.fps == 25.0
    np.testing.assert_array_equal(v1.gt_segments, [[1, 2], [3, 5]])
    np.testing.assert_array_equal(v1.gt_labels, [1, 0])
    np.testing.assert_array_equal(v1.segments, v1.gt_segments)
    assert db.problems == []
    assert db.subset_counts() == {"training": (1, 2), "validation": (1, 1)}


def test_class_map_priority(tmp_path):
    db_data = {"v": video(annotations=[ann(1, 2, "b", 0), ann(3, 4, "a", 1)])}
    path = write_json(tmp_path / "a.json", db_data)
    assert load_annotations(path).class_names == ["b", "a"]  # label_id
    path = write_json(tmp_path / "b.json", db_data, classes=["a", "b", "c"])
    db = load_annotations(path)
    assert db.class_names == ["a", "b", "c"]  # file's classes beat label_id
    np.testing.assert_array_equal(db.videos["v"].labels, [1, 0])
    db = load_annotations(path, class_names=["b", "a"])  # explicit list beats everything
    np.testing.assert_array_equal(db.videos["v"].labels, [0, 1])
    db = load_annotations(path, class_agnostic=True)
    assert db.class_names == ["action"] and db.num_classes == 1
    np.testing.assert_array_equal(db.videos["v"].labels, [0, 0])


def test_fps_override(tmp_path):
    path = write_json(tmp_path / "a.json", {"v": video(fps=29.97)})
    assert load_annotations(path, fps=15).videos["v"].fps == 15.0


def _one(tmp_path, annotations, caplog, **kw):
    path = write_json(
        tmp_path / "bad.json", {"vid_x": video(duration=10.0, annotations=annotations)}
    )
    with caplog.at_level(logging.WARNING, logger="logo_tal.data.annotations"):
        db = load_annotations(path, **kw)
    return db, caplog.text


def test_reversed_segment(tmp_path, caplog):
    db, text = _one(tmp_path, [ann(5, 3), ann(1, 2)], caplog)
    v = db.videos["vid_x"]
    assert len(v.gt_segments) == 2 and len(v.segments) == 1  # eval as annotated
    assert db.problem_counts() == {A.REVERSED: (1, 1)}
    assert "reversed_segment: 1" in text and "vid_x" in text


def test_zero_length_segment(tmp_path, caplog):
    db, text = _one(tmp_path, [ann(4, 4), ann(1, 2)], caplog)
    assert db.problem_counts() == {A.ZERO_LENGTH: (1, 1)}
    assert len(db.videos["vid_x"].segments) == 1 and len(db.videos["vid_x"].gt_segments) == 2
    assert "zero_length_segment" in text and "vid_x: 1" in text


def test_segments_outside_duration(tmp_path, caplog):
    db, text = _one(tmp_path, [ann(-1, 2), ann(8, 12), ann(11, 12), ann(-3, -1)], caplog)
    v = db.videos["vid_x"]
    np.testing.assert_array_equal(v.gt_segments, [[-1, 2], [8, 12], [11, 12], [-3, -1]])
    np.testing.assert_array_equal(v.segments, [[0, 2], [8, 10]])
    assert db.problem_counts() == {
        A.CLAMPED: (2, 1),
        A.AFTER_DURATION: (1, 1),
        A.BEFORE_START: (1, 1),
    }
    assert "clamped_to_duration: 2" in text and "vid_x" in text


def test_unknown_label(tmp_path, caplog):
    db, text = _one(tmp_path, [ann(1, 2, "a"), ann(3, 4, "zzz")], caplog, class_names=["a"])
    assert len(db.videos["vid_x"].gt_segments) == 1
    assert db.problem_counts() == {A.UNKNOWN_LABEL: (1, 1)}
    assert "unknown_label" in text and "zzz" in text and "vid_x" in text


def test_missing_annotation_fields(tmp_path, caplog):
    db, text = _one(tmp_path, [{"label": "a"}, {"segment": [1, 2]}, ann(1, 2)], caplog)
    assert len(db.videos["vid_x"].gt_segments) == 1
    assert db.problem_counts() == {A.MISSING_FIELD: (2, 1)}
    assert "missing_field: 2" in text and "vid_x" in text


def test_bad_segment_values(tmp_path, caplog):
    db, text = _one(tmp_path, [{"segment": [1], "label": "a"}, ann("x", 2), ann(1, 2)], caplog)
    assert db.problem_counts() == {A.BAD_SEGMENT: (2, 1)}
    assert "bad_segment" in text and "vid_x" in text


def test_missing_video_fields(tmp_path, caplog):
    database = {
        "no_duration": {"subset": "training", "fps": 30, "annotations": []},
        "no_fps": {"subset": "training", "duration": 5.0, "annotations": []},
        "ok": video(),
    }
    path = write_json(tmp_path / "a.json", database)
    with caplog.at_level(logging.WARNING):
        db = load_annotations(path)
    assert list(db.videos) == ["ok"]
    assert db.problem_counts()[A.VIDEO_DROPPED] == (2, 2)
    assert "no_duration" in caplog.text and "no_fps" in caplog.text
    assert "no_fps" in load_annotations(path, fps=15).videos  # an fps override suffices


def test_duplicates_dropped_from_training_only(tmp_path, caplog):
    db, text = _one(
        tmp_path, [ann(1, 2), ann(1.0005, 2.0005), ann(1, 2, "b")], caplog, drop_duplicates=True
    )
    v = db.videos["vid_x"]
    assert len(v.gt_segments) == 3 and len(v.segments) == 2
    assert db.problem_counts() == {A.DUPLICATE: (1, 1)}


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "malformed JSON at line 1 column 2"),
        ('{"videos": {}}', "no top-level 'database' object"),
        (
            '{"database": {"v": {"subset": "a", "duration": 1, "fps": 1, "annotations": '
            '[{"segment": [0, 1], "label": "x", "label_id": 0}, '
            '{"segment": [0, 1], "label": "x", "label_id": 1}]}}}',
            "two label_ids",
        ),
    ],
)
def test_unusable_file(tmp_path, content, match):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=match) as err:
        load_annotations(path)
    assert "broken.json" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        load_annotations(tmp_path / "nope.json")


# ----------------------------------------------------------------------------- real files
def test_real_thumos(shared_data: Path, caplog):
    with caplog.at_level(logging.WARNING):
        db = load_annotations(shared_data / "thumos14" / "thumos14_anet_style.json")
    assert db.num_classes == 20
    assert db.class_names[0] == "BaseballPitch" and db.class_names[19] == "VolleyballSpiking"
    assert db.subset_counts() == {"validation": (200, 3007), "test": (212, 3358)}
    # 30 instances start after the stated duration: kept for evaluation, dropped for training.
    assert db.problem_counts() == {A.AFTER_DURATION: (30, 5)}
    assert db.problem_counts("test") == {A.AFTER_DURATION: (26, 3)}
    assert db.problem_counts("validation") == {A.AFTER_DURATION: (4, 2)}
    v = db.videos["video_test_0000270"]
    assert len(v.gt_segments) - len(v.segments) == 22
    assert "starts_after_duration: 30" in caplog.text and "video_test_0000270: 22" in caplog.text
    assert sum(len(r.labels) for r in db.subset("test")) == 3358 - 26


def test_real_thumos_actionformer_file(shared_data: Path):
    db = load_annotations(shared_data / "thumos14" / "thumos_14.json", log_problems=False)
    assert db.subset_counts() == {"validation": (200, 3007), "test": (212, 3358)}
    assert db.num_classes == 20
    assert db.problem_counts() == {A.AFTER_DURATION: (30, 5)}


def test_real_anet(shared_data: Path):
    path = shared_data / "activitynet13" / "anet13_bsn.json"
    db = load_annotations(path, fps=15, log_problems=False)
    assert db.num_classes == 200
    counts = db.subset_counts()
    assert counts["training"] == (9649, 14859)
    assert counts["validation"] == (4728, 7293)
    assert counts["testing"] == (4851, 0)
    # README: 12 zero-length segments, 215 ending past the duration.
    problems = db.problem_counts()
    assert problems[A.ZERO_LENGTH] == (12, 12)
    assert problems[A.CLAMPED] == (215, 215)
    agnostic = load_annotations(path, class_agnostic=True, log_problems=False)
    assert agnostic.num_classes == 1
    assert {int(lab) for r in agnostic.subset("training") for lab in r.labels} == {0}

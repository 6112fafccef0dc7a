"""extraction.json: round trip, the config check, and the datamodule's use of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from logo_tal.core.pyramid import PyramidSpec
from logo_tal.data.datamodule import TALDataModule
from logo_tal.data.extraction_record import (
    RECORD_NAME,
    ExtractionRecord,
    VideoEntry,
    check_extraction_record,
    check_features_record,
    read_extraction_record,
    write_extraction_record,
)
from logo_tal.data.sources import AnnotationSource, FeatureSource


def _record(**kw) -> ExtractionRecord:
    base = dict(
        extractor="r2plus1d_18",
        weights="none",
        fps=15.0,
        feat_stride=4,
        num_frames=16,
        feature_dim=8,
        videos={"v1": VideoEntry("v1.mp4", 30.0, 300, 10.0, 150, 34)},
    )
    return ExtractionRecord(**{**base, **kw})


def test_round_trip_and_locations(tmp_path):
    path = write_extraction_record(_record(), tmp_path)
    assert path == tmp_path / RECORD_NAME
    for where in (tmp_path, path, tmp_path / "features.h5", tmp_path / "v1.npy"):
        back = read_extraction_record(where)
        assert back is not None and back.to_dict() == _record().to_dict()
    assert read_extraction_record(tmp_path / "elsewhere") is None


def test_check_names_the_file_and_every_field(tmp_path):
    record = read_extraction_record(write_extraction_record(_record(), tmp_path))
    check_extraction_record(record, 15, 4, 16, 8)
    check_extraction_record(record)  # None checks nothing
    with pytest.raises(ValueError) as err:
        check_extraction_record(record, fps=30, feat_stride=4, num_frames=8, input_dim=8)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / RECORD_NAME) in message
    assert "fps 15 (extraction) != 30" in message and "num_frames 16 (extraction) != 8" in message
    assert "feat_stride" not in message


def test_malformed_record_is_one_line_error(tmp_path):
    (tmp_path / RECORD_NAME).write_text('{"extractor": "s3d"}')
    with pytest.raises(ValueError, match=r"extraction.json: not an extraction record \(no"):
        read_extraction_record(tmp_path)
    (tmp_path / RECORD_NAME).write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        check_features_record(tmp_path)


def _dataset(tmp_path: Path) -> Path:
    feats = tmp_path / "features"
    feats.mkdir()
    np.save(feats / "v1.npy", np.zeros((34, 8), np.float32))
    write_extraction_record(_record(), feats)
    database = {
        "v1": {"subset": "training", "duration": 10.0, "fps": 30.0, "annotations": []},
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"database": database}))
    return ann


@pytest.mark.parametrize(("fps", "ok"), [(15.0, True), (30.0, False)])
def test_datamodule_checks_the_record_when_opening_features(tmp_path, fps, ok):
    ann = _dataset(tmp_path)
    features = FeatureSource(str(tmp_path / "features"), 8, 4, 16, fps=fps)
    dm = TALDataModule(AnnotationSource(str(ann)), features, 64, pyramid=PyramidSpec(3))
    if ok:
        assert dm.store.load("v1").shape == (34, 8)
    else:
        with pytest.raises(ValueError, match=r"features/extraction.json: .*fps 15 \(extr"):
            dm.store  # noqa: B018

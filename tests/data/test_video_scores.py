"""Video-level class scores for ActivityNet fusion: mapping by name, ids, missing files."""

from __future__ import annotations

import pytest

from logo_tal.data.video_scores import ExternalScores, check_score_file
from logo_tal.prep.synthetic.layouts import write_synthetic_scores


def test_external_scores_map_classes_by_name(tmp_path):
    path = write_synthetic_scores(
        tmp_path / "s.json", {"v1": ["b"], "v2": ["a"]}, ["a", "b", "c"], accuracy=1.0
    )
    scores = ExternalScores(path, ["a", "b", "c"])
    assert int(scores.get("v1").argmax()) == 1  # file lists classes reversed; mapped by name
    assert int(scores.get("v_v2").argmax()) == 0  # ActivityNet "v_" prefix tolerated
    with pytest.raises(KeyError, match="no video-level scores"):
        scores.get("missing")
    with pytest.raises(ValueError, match="dataset classes have no score"):
        ExternalScores(path, ["a", "zzz"])


def test_missing_score_file_says_which_key_to_set(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="protocol.fusion.scores_file=.*nope.json does not"
    ):
        check_score_file(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="protocol.fusion needs scores_file"):
        check_score_file(None)

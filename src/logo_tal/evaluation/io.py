"""ActivityNet-style JSON files <-> the array containers of :mod:`logo_tal.evaluation.ap`.

Ground truth: ``{"database": {video: {"subset", "duration", "annotations": [{"segment": [s, e],
"label"}]}}}``. Results: ``{"results": {video: [{"segment": [s, e], "label", "score"}]}}``.
Both are read as UTF-8. Anything malformed raises :class:`EvaluationInputError` with a one-line
message naming the file and the offending video and entry (docs/decisions.md D74); nothing is
repaired or skipped silently.

numpy only, like ``ap.py``: the CLI must not pay for importing torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from logo_tal.core.anet_json import read_database, read_json
from logo_tal.core.errors import UserInputError
from logo_tal.evaluation.ap import GroundTruth, Predictions

_MAX_SHOWN = 60


class EvaluationInputError(UserInputError):
    """A ground-truth or result file that cannot be evaluated; the message is one line."""


def _show(value: Any) -> str:
    """Short one-line rendering of an offending value for an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _fail(path: str | os.PathLike, where: str, what: str) -> EvaluationInputError:
    location = f"{path}: {where}: " if where else f"{path}: "
    # Names come through repr(), so only system messages could carry a line break.
    return EvaluationInputError(f"{location}{what}".replace("\r", " ").replace("\n", " "))


def _read_json(path: str | os.PathLike) -> Any:
    return read_json(path, _OneLineError)


class _OneLineError(EvaluationInputError):
    """Error of the shared reader, with the line breaks of system messages folded."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", " ").replace("\n", " "))


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but true/false in a segment is a mistake, not 1/0.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(path, where: str, field: str, value: Any) -> float:
    if not _is_number(value):
        raise _fail(path, where, f"'{field}' must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(path, where, f"'{field}' must be finite, got {_show(value)}")
    return number


def _segment(path, where: str, entry: Mapping[str, Any]) -> tuple[float, float]:
    if "segment" not in entry:
        raise _fail(path, where, "missing 'segment'")
    segment = entry["segment"]
    if (
        not isinstance(segment, (list, tuple))
        or len(segment) != 2
        or not all(_is_number(x) for x in segment)
    ):
        raise _fail(
            path, where, f"'segment' must be two numbers [start, end], got {_show(segment)}"
        )
    start, end = float(segment[0]), float(segment[1])
    if not (math.isfinite(start) and math.isfinite(end)):
        raise _fail(path, where, f"'segment' must be finite, got {_show(segment)}")
    return start, end


def _label(path, where: str, entry: Mapping[str, Any]) -> str:
    if "label" not in entry:
        raise _fail(path, where, "missing 'label'")
    label = entry["label"]
    if not isinstance(label, str):
        raise _fail(path, where, f"'label' must be a string (the class name), got {_show(label)}")
    return label


def load_ground_truth(path: str | os.PathLike, subset: str | None = None) -> GroundTruth:
    """Read an ActivityNet-style ground-truth file.

    Args:
        path: JSON file with a ``"database"`` object.
        subset: keep only videos whose ``"subset"`` equals this string exactly; None keeps all.

    Returns:
        The videos (file order), sorted class vocabulary and annotations (file order). Cleaning
        (short and duplicate annotations) is left to
        :func:`~logo_tal.evaluation.ap.evaluate_detections` so that it can count what it drops.

    Raises:
        EvaluationInputError: unreadable or malformed file, or no video in ``subset``.
    """
    _, database = read_database(path, _OneLineError)

    video_ids: list[str] = []
    rows: list[tuple[int, str, float, float]] = []
    subsets_seen: set[str] = set()
    other = 0
    for video_id, record in database.items():
        where = f"video {video_id!r}"
        if not isinstance(record, dict):
            raise _fail(path, where, f"must be an object, got {_show(record)}")
        if subset is not None:
            if "subset" not in record:
                raise _fail(path, where, "missing 'subset' (needed by --subset)")
            if not isinstance(record["subset"], str):
                raise _fail(path, where, f"'subset' must be a string, got {record['subset']!r}")
            subsets_seen.add(record["subset"])
            if record["subset"] != subset:
                other += 1
                continue
        index = len(video_ids)
        video_ids.append(video_id)
        rows += [(index, *row) for row in _annotation_rows(path, where, record)]

    if subset is not None and not video_ids:
        known = ", ".join(repr(s) for s in sorted(subsets_seen)) or "none"
        raise _fail(path, "", f"no video has subset {subset!r} (subsets in the file: {known})")
    class_names = sorted({label for _, label, _, _ in rows})
    class_index = {name: i for i, name in enumerate(class_names)}
    return GroundTruth(
        video_ids=video_ids,
        class_names=class_names,
        video=np.array([r[0] for r in rows], dtype=np.int64),
        label=np.array([class_index[r[1]] for r in rows], dtype=np.int64),
        start=np.array([r[2] for r in rows], dtype=np.float64),
        end=np.array([r[3] for r in rows], dtype=np.float64),
        num_videos_other_subsets=other,
    )


def _annotation_rows(
    path: str | os.PathLike, where: str, record: dict
) -> list[tuple[str, float, float]]:
    """``(label, start, end)`` of each annotation of one video record, checked."""
    if "annotations" not in record:
        raise _fail(path, where, "missing 'annotations' (use [] for a video without any)")
    annotations = record["annotations"]
    if not isinstance(annotations, list):
        raise _fail(path, where, f"'annotations' must be a list, got {_show(annotations)}")
    rows = []
    for i, entry in enumerate(annotations):
        entry_where = f"{where}, annotation {i}"
        if not isinstance(entry, dict):
            raise _fail(path, entry_where, f"must be an object, got {_show(entry)}")
        start, end = _segment(path, entry_where, entry)
        rows.append((_label(path, entry_where, entry), start, end))
    return rows


def load_predictions(path: str | os.PathLike, ground_truth: GroundTruth) -> Predictions:
    """Read an ActivityNet result file, indexed by the videos and classes of ``ground_truth``.

    Every entry is used: no score threshold, top-k or de-duplication. Videos missing from the
    ground truth get video index -1 and labels outside its vocabulary label index -1 (see
    :class:`~logo_tal.evaluation.ap.Predictions` for what the evaluation does with them).

    Raises:
        EvaluationInputError: unreadable or malformed file.
    """
    data = _read_json(path)
    if not isinstance(data, dict) or "results" not in data:
        raise _fail(path, "", "not a result file: no top-level 'results' object")
    results = data["results"]
    if not isinstance(results, dict):
        raise _fail(path, "'results'", f"must be an object of videos, got {_show(results)}")

    video_index = {name: i for i, name in enumerate(ground_truth.video_ids)}
    class_index = {name: i for i, name in enumerate(ground_truth.class_names)}
    unknown_videos: list[str] = []
    unknown_labels: dict[str, None] = {}
    videos, labels, starts, ends, scores = [], [], [], [], []
    for video_id, entries in results.items():
        where = f"video {video_id!r}"
        if not isinstance(entries, list):
            raise _fail(path, where, f"must be a list of detections, got {_show(entries)}")
        v = video_index.get(video_id, -1)
        if v < 0 and entries:
            unknown_videos.append(video_id)
        for i, entry in enumerate(entries):
            entry_where = f"{where}, entry {i}"
            if not isinstance(entry, dict):
                raise _fail(path, entry_where, f"must be an object, got {_show(entry)}")
            start, end = _segment(path, entry_where, entry)
            label = _label(path, entry_where, entry)
            if "score" not in entry:
                raise _fail(path, entry_where, "missing 'score'")
            scores.append(_number(path, entry_where, "score", entry["score"]))
            c = class_index.get(label, -1)
            if c < 0:
                unknown_labels[label] = None
            videos.append(v)
            labels.append(c)
            starts.append(start)
            ends.append(end)
    return Predictions(
        video=np.array(videos, dtype=np.int64),
        label=np.array(labels, dtype=np.int64),
        start=np.array(starts, dtype=np.float64),
        end=np.array(ends, dtype=np.float64),
        score=np.array(scores, dtype=np.float64),
        unknown_videos=unknown_videos,
        unknown_labels=list(unknown_labels),
    )

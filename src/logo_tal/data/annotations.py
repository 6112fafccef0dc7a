"""ActivityNet-style annotation files: parsing, validation and the class map.

Schema (docs/decisions.md D2, D3)::

    {"classes": [name, ...]?,                       # optional, index = class id
     "database": {video_id: {"subset": str, "duration": s, "fps": f?,
                             "annotations": [{"segment": [s, e], "label": str,
                                              "label_id": int?}, ...]}}}

Two views of every video's instances are kept:

* ``gt_segments`` / ``gt_labels``: the evaluation ground truth, exactly as annotated (seconds).
  Only instances that cannot be represented at all are left out (missing or non-numeric
  segment, missing or unknown label). The evaluator applies the official cleaning itself
  (docs/decisions.md D57: drops length < 1 ms and duplicates, keeps out-of-range GT).
* ``segments`` / ``labels``: training targets. Reversed and zero-length instances are dropped,
  instances outside ``[0, duration]`` are clamped, or dropped when nothing is left (THUMOS14 has
  30 instances that start after the stated duration, docs/decisions.md D4).

Every repair or drop is recorded as a :class:`Problem` (kind, video id, count) and logged as one
counted warning per kind; nothing is changed silently (docs/decisions.md D74).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logo_tal.core.anet_json import read_database
from logo_tal.core.errors import UserInputError
from logo_tal.core.protocol import DUPLICATE_TOLERANCE, MIN_SEGMENT_SECONDS

log = logging.getLogger(__name__)


# Problem kinds and what happens to the affected instances / videos.
MISSING_FIELD = "missing_field"  # video or annotation lacks a required field: dropped
BAD_SEGMENT = "bad_segment"  # segment is not two finite numbers: dropped
UNKNOWN_LABEL = "unknown_label"  # label not in the class list: dropped
REVERSED = "reversed_segment"  # end < start: eval as annotated, dropped from training
ZERO_LENGTH = "zero_length_segment"  # end - start < 1 ms: eval as annotated, dropped (training)
AFTER_DURATION = "starts_after_duration"  # start >= duration: eval kept, dropped (training)
BEFORE_START = "ends_before_start"  # end <= 0: eval kept, dropped (training)
CLAMPED = "clamped_to_duration"  # partly outside [0, duration]: eval kept, clamped (training)
DUPLICATE = "duplicate"  # same label and boundaries: eval kept, dropped (training)
VIDEO_DROPPED = "video_dropped"  # the whole video could not be used

_ACTIONS = {
    MISSING_FIELD: "dropped",
    BAD_SEGMENT: "dropped",
    UNKNOWN_LABEL: "dropped",
    REVERSED: "kept in evaluation ground truth, dropped from training targets",
    ZERO_LENGTH: "kept in evaluation ground truth, dropped from training targets",
    AFTER_DURATION: "kept in evaluation ground truth, dropped from training targets",
    BEFORE_START: "kept in evaluation ground truth, dropped from training targets",
    CLAMPED: "kept in evaluation ground truth, clamped to [0, duration] for training",
    DUPLICATE: "kept in evaluation ground truth, dropped from training targets",
    VIDEO_DROPPED: "video skipped",
}


class AnnotationError(UserInputError):
    """An annotation file that cannot be used at all (unreadable, not JSON, no database)."""


@dataclass(frozen=True)
class Problem:
    """One repair or drop, for one video.

    Attributes:
        video_id: the video concerned.
        kind: one of the module-level kind constants (e.g. ``"starts_after_duration"``).
        count: number of instances affected (1 for a dropped video).
        detail: free text (the field name, the unknown label, ...).
    """

    video_id: str
    kind: str
    count: int = 1
    detail: str = ""

    @property
    def action(self) -> str:
        return _ACTIONS.get(self.kind, "reported")


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video.

    Attributes:
        video_id: key in the annotation database (no feature prefix).
        subset: lower-cased subset name.
        duration: seconds.
        fps: frames per second of the features' time base (annotation value or override).
        gt_segments: (M, 2) float64 seconds, as annotated (evaluation ground truth).
        gt_labels: (M,) int64 class indices of ``gt_segments``.
        segments: (N, 2) float64 seconds, training targets inside ``[0, duration]``.
        labels: (N,) int64 class indices of ``segments``.
    """

    video_id: str
    subset: str
    duration: float
    fps: float
    gt_segments: np.ndarray
    gt_labels: np.ndarray
    segments: np.ndarray
    labels: np.ndarray


@dataclass
class AnnotationDatabase:
    """All videos of one annotation file plus the class map and the problems found."""

    path: str
    videos: dict[str, VideoRecord]
    class_names: list[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, name: str) -> list[VideoRecord]:
        """Videos whose subset equals ``name`` (case-insensitive), in file order."""
        key = name.lower()
        return [v for v in self.videos.values() if v.subset == key]

    def subset_counts(self) -> dict[str, tuple[int, int]]:
        """``{subset: (videos, evaluation instances)}``."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for v in self.videos.values():
            out[v.subset][0] += 1
            out[v.subset][1] += len(v.gt_labels)
        return {k: (a, b) for k, (a, b) in out.items()}

    def problem_counts(self, subset: str | None = None) -> dict[str, tuple[int, int]]:
        """``{kind: (instances, videos)}``, optionally restricted to one subset."""
        agg: dict[str, list] = defaultdict(lambda: [0, set()])
        for p in self.problems:
            if subset is not None:
                rec = self.videos.get(p.video_id)
                if rec is None or rec.subset != subset.lower():
                    continue
            agg[p.kind][0] += p.count
            agg[p.kind][1].add(p.video_id)
        return {k: (n, len(vids)) for k, (n, vids) in agg.items()}

    def report(self, max_videos: int = 5) -> list[str]:
        """One line per problem kind: count, affected videos (first few) and what was done."""
        by_kind: dict[str, Counter] = defaultdict(Counter)
        details: dict[str, set] = defaultdict(set)
        for p in self.problems:
            by_kind[p.kind][p.video_id] += p.count
            if p.detail:
                details[p.kind].add(p.detail)
        lines = []
        name = Path(self.path).name
        for kind, per_video in by_kind.items():
            total = sum(per_video.values())
            shown = ", ".join(f"{v}: {n}" for v, n in list(per_video.items())[:max_videos])
            more = (
                f", ... (+{len(per_video) - max_videos} videos)"
                if len(per_video) > max_videos
                else ""
            )
            extra = ""
            if details[kind]:
                extra = " [" + ", ".join(sorted(details[kind])[:max_videos]) + "]"
            lines.append(
                f"{name}: {kind}: {total} in {len(per_video)} video(s) -> "
                f"{Problem('', kind).action} ({shown}{more}){extra}"
            )
        return lines


def _read_json(path: Path) -> dict:
    data, _ = read_database(path, AnnotationError)
    return data


def _as_float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def build_class_map(
    data: dict, path: Path, class_names: Sequence[str] | None, class_agnostic: bool
) -> tuple[list[str], dict[str, int] | None]:
    """Class names (index = class id) and a ``label -> id`` map (None = every label is 0).

    Priority: ``class_agnostic`` > explicit ``class_names`` > the file's ``classes`` >
    ``label_id`` values (THUMOS files) > sorted label strings.
    """
    if class_agnostic:
        return ["action"], None
    names = list(class_names) if class_names is not None else data.get("classes")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise AnnotationError(f"{path}: 'classes' must be a list of strings")
        if len(set(names)) != len(names):
            raise AnnotationError(f"{path}: class list has duplicate names")
        return list(names), {n: i for i, n in enumerate(names)}
    anns = [
        a
        for v in data["database"].values()
        if isinstance(v, dict)
        for a in (v.get("annotations") or [])
        if isinstance(a, dict) and isinstance(a.get("label"), str)
    ]
    if anns and all(isinstance(a.get("label_id"), int) for a in anns):
        ids: dict[str, int] = {}
        for a in anns:
            old = ids.setdefault(a["label"], a["label_id"])
            if old != a["label_id"]:
                raise AnnotationError(
                    f"{path}: label {a['label']!r} has two label_ids ({old}, {a['label_id']})"
                )
        by_id: dict[int, str] = {}
        for label, i in ids.items():
            if i in by_id:
                raise AnnotationError(
                    f"{path}: label_id {i} is used by {by_id[i]!r} and {label!r}"
                )
            by_id[i] = label
        if min(by_id) < 0:
            raise AnnotationError(f"{path}: negative label_id {min(by_id)}")
        size = max(by_id) + 1
        if size != len(by_id):
            # A subset of a bigger label space (e.g. two THUMOS classes, ids 11 and 17): keep
            # the ids so a model trained on the full set maps back to the same classes.
            log.warning(
                "%s: label_ids have gaps (%d labels, ids up to %d); unused ids get placeholder "
                "names; pass class_names to name them",
                path.name,
                len(by_id),
                size - 1,
            )
        return [by_id.get(i, f"<unused_{i}>") for i in range(size)], ids
    labels = sorted({a["label"] for a in anns})
    return labels, {n: i for i, n in enumerate(labels)}


def load_annotations(
    path: str | Path,
    class_names: Sequence[str] | None = None,
    class_agnostic: bool = False,
    fps: float | None = None,
    drop_duplicates: bool = False,
    log_problems: bool = True,
) -> AnnotationDatabase:
    """Parse and validate an ActivityNet-style annotation file.

    Args:
        path: the JSON file.
        class_names: explicit class list (index = class id); overrides the file's ``classes``.
        class_agnostic: map every label to class 0 (ActivityNet with external class scores).
        fps: feature time base for every video, overriding the file's per-video ``fps``
            (ANet TSP features are sampled at 15 fps whatever the video's rate); None uses the
            file's value and drops (with a counted warning) videos without one.
        drop_duplicates: drop duplicate instances from the training targets (ActivityNet).
        log_problems: log one counted warning per problem kind.

    Returns:
        The database; ``problems`` lists every repair and drop.

    Raises:
        AnnotationError: the file is unreadable, not JSON, has no ``database`` or an
            inconsistent class map.
    """
    path = Path(path)
    data = _read_json(path)
    names, label_map = build_class_map(data, path, class_names, class_agnostic)
    problems: list[Problem] = []
    videos: dict[str, VideoRecord] = {}

    for vid, entry in data["database"].items():
        record = _video_record(vid, entry, fps, label_map, drop_duplicates, problems)
        if record is not None:
            videos[vid] = record

    db = AnnotationDatabase(str(path), videos, names, problems)
    if log_problems:
        for line in db.report():
            log.warning(line)
    return db


def _video_timing(
    vid: str, entry: object, fps: float | None, problems: list[Problem]
) -> tuple[float, float] | None:
    """(duration, fps) of a video entry, or None (with the reason recorded) when unusable."""
    if not isinstance(entry, dict):
        problems.append(Problem(vid, VIDEO_DROPPED, 1, "entry is not an object"))
        return None
    missing = [k for k in ("subset", "duration") if k not in entry]
    duration = _as_float(entry.get("duration"))
    video_fps = fps if fps is not None else _as_float(entry.get("fps"))
    if fps is None and "fps" not in entry:
        missing.append("fps")
    if missing:
        problems.append(Problem(vid, MISSING_FIELD, 1, "video field " + "/".join(missing)))
        problems.append(Problem(vid, VIDEO_DROPPED, 1, "missing " + "/".join(missing)))
        return None
    if duration is None or duration <= 0 or video_fps is None or video_fps <= 0:
        bad = "duration" if duration is None or duration <= 0 else "fps"
        problems.append(Problem(vid, VIDEO_DROPPED, 1, f"invalid {bad}"))
        return None
    return duration, float(video_fps)


def _instances(
    raw: object, label_map: dict[str, int] | None, counts: Counter, unknown: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The representable instances of an ``annotations`` list, as annotated: (M, 2) seconds
    and (M,) class ids. Unusable entries are counted in ``counts`` by kind."""
    gt, gt_lab = [], []
    for ann in raw if isinstance(raw, list) else []:
        seg = ann.get("segment") if isinstance(ann, dict) else None
        label = ann.get("label") if isinstance(ann, dict) else None
        if seg is None or label is None:
            counts[MISSING_FIELD] += 1
            continue
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
            counts[BAD_SEGMENT] += 1
            continue
        s, e = _as_float(seg[0]), _as_float(seg[1])
        if s is None or e is None:
            counts[BAD_SEGMENT] += 1
            continue
        if label_map is None:
            idx = 0
        elif label in label_map:
            idx = label_map[label]
        else:
            counts[UNKNOWN_LABEL] += 1
            unknown.add(str(label))
            continue
        gt.append((s, e))
        gt_lab.append(idx)
    return np.asarray(gt, dtype=np.float64).reshape(-1, 2), np.asarray(gt_lab, dtype=np.int64)


def _video_record(
    vid: str,
    entry: object,
    fps: float | None,
    label_map: dict[str, int] | None,
    drop_duplicates: bool,
    problems: list[Problem],
) -> VideoRecord | None:
    """One video's record (evaluation ground truth and training targets), or None when the
    video cannot be used; every repair and drop is appended to ``problems``."""
    timing = _video_timing(vid, entry, fps, problems)
    if timing is None:
        return None
    duration, video_fps = timing
    assert isinstance(entry, dict)
    raw = entry.get("annotations")
    if raw is None:
        raw = []
        problems.append(Problem(vid, MISSING_FIELD, 1, "video field annotations (empty)"))
    counts: Counter = Counter()
    unknown: set[str] = set()
    gt_segments, gt_labels = _instances(raw, label_map, counts, unknown)
    segs, labs = _training_targets(gt_segments, gt_labels, duration, drop_duplicates, counts)
    for kind, n in counts.items():
        detail = ", ".join(sorted(unknown)) if kind == UNKNOWN_LABEL else ""
        problems.append(Problem(vid, kind, n, detail))
    return VideoRecord(
        video_id=vid,
        subset=str(entry["subset"]).lower(),
        duration=duration,
        fps=video_fps,
        gt_segments=gt_segments,
        gt_labels=gt_labels,
        segments=segs,
        labels=labs,
    )


def _training_targets(
    segs: np.ndarray, labels: np.ndarray, duration: float, drop_duplicates: bool, counts: Counter
) -> tuple[np.ndarray, np.ndarray]:
    """Training targets (seconds) from the annotated instances; fills ``counts`` per kind."""
    keep = []
    for (s, e), c in zip(segs, labels, strict=True):
        if e < s:
            counts[REVERSED] += 1
            continue
        if e - s < MIN_SEGMENT_SECONDS:
            counts[ZERO_LENGTH] += 1
            continue
        if s >= duration:
            counts[AFTER_DURATION] += 1
            continue
        if e <= 0:
            counts[BEFORE_START] += 1
            continue
        if s < 0 or e > duration:
            counts[CLAMPED] += 1
            s, e = max(s, 0.0), min(e, duration)
            if e - s < MIN_SEGMENT_SECONDS:
                counts[ZERO_LENGTH] += 1
                continue
        if drop_duplicates and any(
            c == c2 and abs(s - s2) <= DUPLICATE_TOLERANCE and abs(e - e2) <= DUPLICATE_TOLERANCE
            for s2, e2, c2 in keep
        ):
            counts[DUPLICATE] += 1
            continue
        keep.append((s, e, int(c)))
    out = np.asarray([(s, e) for s, e, _ in keep], dtype=np.float64).reshape(-1, 2)
    return out, np.asarray([c for _, _, c in keep], dtype=np.int64)

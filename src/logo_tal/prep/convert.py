"""``logo-tal-convert``: annotation and detection converters to and from the project's JSON.

Subcommands::

    logo-tal-convert txt2json DIR_OR_FILES... (--video-info F | --videos DIR) --out ANN.json
    logo-tal-convert csv2json LABELS.csv      (--video-info F | --videos DIR) --out ANN.json
    logo-tal-convert json2txt ANN_OR_DETECTIONS.json --out DIR
    logo-tal-convert json2csv ANN_OR_DETECTIONS.json --out FILE.csv

Formats:

* THUMOS text: one file per class and subset, ``<Class>_<subset>.txt``, one instance a line,
  ``<video> <start_s> <end_s>`` (whitespace separated). ``Ambiguous_*`` files (THUMOS14) go to
  the video's ``"ambiguous"`` list, not to its annotations.
* CSV: ``video,start,end,label[,subset]``, seconds; a header row naming these columns is
  optional (with a header, columns may come in any order).
* Output JSON (what :mod:`logo_tal.data.annotations` reads): ``{"classes": [...], "database":
  {video: {"subset", "duration", "fps", "num_frames"?, "annotations": [{"segment": [s, e],
  "label", "label_id"}]}}}``, classes sorted, ``label_id`` = index.
* Detections (``predictions.json`` / ``detections.json``): ``{"results": {video: [{"segment",
  "label", "score"}]}}``; ``json2txt`` writes ``<video> <start> <end> <score>`` lines and
  ``json2csv`` a ``score`` column.

A video's subset: the CSV's subset column, else ``--subset``, else the video-info file's, else
(text files) the file-name suffix. Durations and fps come from ``--video-info`` (CSV/JSON, an
``extraction.json`` included, :mod:`logo_tal.prep.video_info`) or from probing ``--videos``.

Checks: structural faults stop the conversion with one line on standard error naming the file
and line (exit 2): a malformed line, a number that is not one, ``end < start``, a video with no
known duration (``--skip-unknown`` drops such rows instead, counted), an unreadable video or
one with zero frames. The written file is then read back by
:func:`~logo_tal.data.annotations.load_annotations`, so the loaders' counted repairs (instances
after the duration, clamped to it, shorter than 1 ms) are reported exactly as training will
apply them.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from logo_tal.data.annotations import AnnotationError, load_annotations
from logo_tal.prep.video_info import VideoInfo, VideoInfoError, probe_videos, read_video_info

PROG = "logo-tal-convert"
AMBIGUOUS = "Ambiguous"
CSV_COLUMNS = ("video", "start", "end", "label", "subset")


class ConversionError(ValueError):
    """Input that cannot be converted (one line naming the file and line)."""


@dataclass(frozen=True)
class Instance:
    """One annotated action, with where it was read from (``file:line``).

    ``subset`` is a CSV row's subset column; ``file_subset`` a text file's name suffix.
    """

    video: str
    start: float
    end: float
    label: str
    subset: str | None
    where: str
    file_subset: str | None = None


def _seconds(text: str, where: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConversionError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConversionError(f"{where}: {name} {text!r} is not a finite number")
    return value


def _instance(video, start, end, label, subset, where, file_subset=None) -> Instance:
    if not video:
        raise ConversionError(f"{where}: empty video id")
    if not label:
        raise ConversionError(f"{where}: empty label")
    s, e = _seconds(start, where, "start"), _seconds(end, where, "end")
    if e < s:
        raise ConversionError(f"{where}: end {e:g} < start {s:g} for video {video!r}")
    return Instance(video, s, e, label, subset or None, where, file_subset)


# ----------------------------------------------------------------------------- readers
def text_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """``*.txt`` files of the given directories and files, sorted (non-class files included)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix == ".txt" and q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise ConversionError(f"{p}: no such file or directory")
    return out


def parse_class_file_name(path: Path) -> tuple[str, str] | None:
    """``(Class, subset)`` from ``<Class>_<subset>.txt``, None for other names (readme.txt)."""
    stem = path.stem
    if path.suffix != ".txt" or "_" not in stem:
        return None
    label, subset = stem.rsplit("_", 1)
    return (label, subset) if label and subset else None


def read_thumos_txt(paths: Iterable[str | os.PathLike]) -> tuple[list[Instance], list[Path]]:
    """Instances of THUMOS-style per-class files, and the files skipped (not class files).

    The instance's subset is the file-name suffix (``val``/``test``); :func:`build_database`
    prefers ``--subset`` and the video-info file's subset.
    """
    instances, skipped = [], []
    for path in text_files(paths):
        parsed = parse_class_file_name(path)
        if parsed is None:
            skipped.append(path)
            continue
        label, subset = parsed
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConversionError(f"{path}: cannot read ({exc})") from None
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{path}:{number}"
            if len(fields) != 3:
                raise ConversionError(
                    f"{where}: expected '<video> <start> <end>', got {len(fields)} field(s): "
                    f"{line.strip()[:80]!r}"
                )
            instances.append(_instance(*fields, label, None, where, subset))
    return instances, skipped


def read_csv_instances(path: str | os.PathLike) -> list[Instance]:
    """Instances of a ``video,start,end,label[,subset]`` CSV (header optional)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConversionError(f"{path}: cannot read CSV ({exc})") from None
    columns = list(CSV_COLUMNS)
    start_line = 1
    if rows and rows[0] and rows[0][0].strip().lower() in ("video", "video_id"):
        header = [h.strip().lower() for h in rows[0]]
        missing = [c for c in CSV_COLUMNS[:4] if c not in header]
        if missing:
            raise ConversionError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        columns, rows, start_line = header, rows[1:], 2
    out = []
    for number, row in enumerate(rows, start=start_line):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(row) not in (4, 5) and len(row) != len(columns):
            raise ConversionError(
                f"{where}: expected video,start,end,label[,subset], got {len(row)} field(s)"
            )
        if len(row) > len(columns):
            raise ConversionError(f"{where}: {len(row)} fields but the header has {len(columns)}")
        values = {c: v.strip() for c, v in zip(columns, row, strict=False)}
        out.append(
            _instance(
                values["video"],
                values["start"],
                values["end"],
                values["label"],
                values.get("subset"),
                where,
            )
        )
    return out


def load_video_info(video_info: str | None, videos: str | None) -> dict[str, VideoInfo]:
    """Durations/fps from ``--video-info`` or ``--videos`` (exactly one of them)."""
    if (video_info is None) == (videos is None):
        raise ConversionError("give exactly one of --video-info FILE and --videos DIR")
    try:
        return read_video_info(video_info) if video_info else probe_videos(videos)
    except VideoInfoError as exc:
        raise ConversionError(str(exc)) from None


# ----------------------------------------------------------------------------- building
def build_database(
    instances: Sequence[Instance],
    info: dict[str, VideoInfo],
    subset: str | None = None,
    fps: float | None = None,
    classes: Sequence[str] | None = None,
    skip_unknown: bool = False,
    ambiguous_label: str | None = AMBIGUOUS,
    notes: list[str] | None = None,
) -> dict:
    """The ActivityNet-style JSON object for ``instances``.

    Args:
        instances: read from text or CSV.
        info: per-video duration/fps/subset.
        subset: subset for every video (overrides the info file and file names, not a CSV
            subset column).
        fps: fps for videos whose info has none (the annotation loader needs one per video).
        classes: class list (index = label_id); None: the sorted labels. A label outside an
            explicit list is an error.
        skip_unknown: drop (and count) instances of videos without info instead of failing.
        ambiguous_label: label whose instances become the video's ``"ambiguous"`` marks.
        notes: receives one line per counted repair.

    Raises:
        ConversionError: a video without duration or fps, conflicting subsets, or an unknown
            label (each names the file and line).
    """
    notes = notes if notes is not None else []
    real = [i for i in instances if i.label != ambiguous_label]
    marks = [i for i in instances if i.label == ambiguous_label]
    labels = sorted({i.label for i in real}) if classes is None else list(classes)
    label_id = {name: k for k, name in enumerate(labels)}
    database, dropped_unknown = _collect_videos(real, info, label_id, subset, fps, skip_unknown)
    if dropped_unknown:
        shown = ", ".join(list(dropped_unknown)[:5])
        notes.append(
            f"unknown_video: {sum(dropped_unknown.values())} instance(s) of "
            f"{len(dropped_unknown)} video(s) without video info dropped ({shown})"
        )
    _attach_ambiguous(marks, database, ambiguous_label, notes)
    return {"classes": labels, "database": database}


def _collect_videos(
    real: Sequence[Instance],
    info: dict[str, VideoInfo],
    label_id: dict[str, int],
    subset: str | None,
    fps: float | None,
    skip_unknown: bool,
) -> tuple[dict[str, dict], Counter[str]]:
    """The database entries of the (non-ambiguous) instances, and the instances dropped per
    video without info (``skip_unknown``)."""
    dropped_unknown: Counter[str] = Counter()
    database: dict[str, dict] = {}
    for inst in real:
        if inst.label not in label_id:
            raise ConversionError(f"{inst.where}: label {inst.label!r} is not in --classes")
        meta = info.get(inst.video)
        if meta is None:
            if skip_unknown:
                dropped_unknown[inst.video] += 1
                continue
            raise ConversionError(
                f"{inst.where}: video {inst.video!r} has no duration in the video info "
                "(add it, or pass --skip-unknown to drop its rows)"
            )
        entry = _video_entry(database, inst, meta, _subset(inst, meta, subset), fps)
        entry["annotations"].append(
            {
                "segment": [inst.start, inst.end],
                "label": inst.label,
                "label_id": label_id[inst.label],
            }
        )
    return database, dropped_unknown


def _video_entry(
    database: dict[str, dict], inst: Instance, meta: VideoInfo, name: str, fps: float | None
) -> dict:
    """``inst``'s video entry, created on its first instance; a second subset is an error."""
    entry = database.get(inst.video)
    if entry is None:
        video_fps = meta.fps if meta.fps is not None else fps
        if video_fps is None:
            raise ConversionError(
                f"{inst.where}: video {inst.video!r} has no fps in the video info "
                "(add it, or pass --fps)"
            )
        entry = {"subset": name, "duration": meta.duration, "fps": video_fps}
        if meta.num_frames is not None:
            entry["num_frames"] = meta.num_frames
        entry["annotations"] = []
        database[inst.video] = entry
    elif entry["subset"] != name:
        raise ConversionError(
            f"{inst.where}: video {inst.video!r} is in subset {name!r} here but "
            f"{entry['subset']!r} in an earlier row"
        )
    return entry


def _attach_ambiguous(
    marks: Sequence[Instance],
    database: dict[str, dict],
    ambiguous_label: str | None,
    notes: list[str],
) -> None:
    """Add ``marks`` to their videos' ``"ambiguous"`` lists; a mark on a video without
    actions has no entry to go to, and is dropped and counted in ``notes``."""
    orphan: Counter[str] = Counter()
    for mark in marks:
        if mark.video in database:
            database[mark.video].setdefault("ambiguous", []).append([mark.start, mark.end])
        else:
            orphan[mark.video] += 1
    if orphan:
        notes.append(
            f"ambiguous: {sum(orphan.values())} {ambiguous_label} mark(s) on {len(orphan)} "
            f"video(s) without actions dropped ({', '.join(list(orphan)[:5])})"
        )


def _subset(inst: Instance, meta: VideoInfo, subset: str | None) -> str:
    """Row subset (CSV column) > ``--subset`` > video info > file-name suffix (text)."""
    for value in (inst.subset, subset, meta.subset, inst.file_subset):
        if value:
            return str(value)
    raise ConversionError(
        f"{inst.where}: no subset for video {inst.video!r} (add a subset column or --subset)"
    )


def check_database(data: dict, out: Path) -> list[str]:
    """Write ``data`` to ``out`` via a temporary file read back by the annotation loader.

    Returns:
        The loader's counted repairs (one line per kind), as training will apply them.

    Raises:
        ConversionError: the loader rejects the file.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    try:
        db = load_annotations(tmp, log_problems=False)
    except AnnotationError as exc:
        tmp.unlink(missing_ok=True)
        raise ConversionError(str(exc).replace(str(tmp), str(out))) from None
    os.replace(tmp, out)
    return [line.replace(tmp.name, out.name) for line in db.report()]


# ----------------------------------------------------------------------------- reverse
def _read_any(path: Path) -> tuple[str, dict]:
    """``("annotations", database)`` or ``("detections", results)`` from a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{path}: cannot read JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("database"), dict):
        return "annotations", data["database"]
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        return "detections", data["results"]
    raise ConversionError(f"{path}: neither an annotation file ('database') nor detections")


def _fmt(x: float) -> str:
    # Shortest text that reads back as the same float: text -> JSON -> text is exact.
    return repr(float(x))


def reverse_rows(path: Path, subset: str | None = None) -> tuple[str, list[dict]]:
    """Flat rows ``{video, start, end, label, subset | score}`` of an annotation/detection file.

    Args:
        path: the JSON file.
        subset: annotations: keep only this subset; detections: the subset name to use.
    """
    kind, entries = _read_any(path)
    rows = []
    for video, entry in entries.items():
        items = entry.get("annotations", []) if kind == "annotations" else entry
        if not isinstance(items, list):
            raise ConversionError(f"{path}: entry of video {video!r} is not a list")
        video_subset = str(entry.get("subset", "")) if kind == "annotations" else subset
        if kind == "annotations" and subset is not None and video_subset != subset:
            continue
        for k, item in enumerate(items):
            seg = item.get("segment") if isinstance(item, dict) else None
            if not isinstance(seg, (list, tuple)) or len(seg) != 2 or "label" not in item:
                raise ConversionError(f"{path}: {video} item {k}: no [start, end] segment/label")
            row = {
                "video": video,
                "start": _fmt(seg[0]),
                "end": _fmt(seg[1]),
                "label": str(item["label"]),
            }
            if kind == "detections":
                row["score"] = _fmt(item.get("score", float("nan")))
            row["subset"] = video_subset or ""
            rows.append(row)
    return kind, rows


def write_txt(rows: list[dict], out_dir: Path, kind: str, default_subset: str) -> list[Path]:
    """One ``<Class>_<subset>.txt`` per class and subset; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        line = f"{r['video']} {r['start']} {r['end']}"
        if kind == "detections":
            line += f" {r['score']}"
        groups[(r["label"], r["subset"] or default_subset)].append(line)
    written = []
    for (label, subset), lines in sorted(groups.items()):
        path = out_dir / f"{label}_{subset}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def write_csv(rows: list[dict], out: Path, kind: str) -> None:
    """``video,start,end,label,subset`` (annotations) or ``...,label,score`` (detections)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["video", "start", "end", "label", "score" if kind == "detections" else "subset"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

"""``logo-tal-convert``: the command line of the annotation and detection converters
(:mod:`logo_tal.prep.convert` documents the formats and the checks).

Subcommands::

    logo-tal-convert txt2json DIR_OR_FILES... (--video-info F | --videos DIR) --out ANN.json
    logo-tal-convert csv2json LABELS.csv      (--video-info F | --videos DIR) --out ANN.json
    logo-tal-convert json2txt ANN_OR_DETECTIONS.json --out DIR
    logo-tal-convert json2csv ANN_OR_DETECTIONS.json --out FILE.csv
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from logo_tal.core.errors import OneLineArgumentParser, parse_arguments, report
from logo_tal.prep.convert import (
    AMBIGUOUS,
    PROG,
    ConversionError,
    build_database,
    check_database,
    load_video_info,
    read_csv_instances,
    read_thumos_txt,
    reverse_rows,
    write_csv,
    write_txt,
)


def _add_info_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video-info", default=None, help="CSV/JSON of durations (and fps, subset)")
    p.add_argument("--videos", default=None, help="probe the videos of this directory instead")
    p.add_argument("--out", required=True, help="output annotation JSON")
    p.add_argument("--subset", default=None, help="subset for every video (see the docs)")
    p.add_argument("--fps", type=float, default=None, help="fps for videos whose info has none")
    p.add_argument("--classes", default=None, help="text file, one class a line (index = id)")
    p.add_argument(
        "--skip-unknown", action="store_true", help="drop rows of videos without video info"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (exposed for documentation and tests)."""
    parser = OneLineArgumentParser(prog=PROG, description="Convert annotations and detections.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    p = sub.add_parser("txt2json", help="THUMOS per-class text files -> annotation JSON")
    p.add_argument("inputs", nargs="+", help="directories and/or <Class>_<subset>.txt files")
    p.add_argument(
        "--ambiguous-label",
        default=AMBIGUOUS,
        help="label stored as 'ambiguous' marks, not actions ('' for none)",
    )
    _add_info_options(p)
    p = sub.add_parser("csv2json", help="video,start,end,label[,subset] CSV -> annotation JSON")
    p.add_argument("csv", help="the CSV file")
    _add_info_options(p)
    for name, what in (("json2txt", "per-class text files"), ("json2csv", "a CSV file")):
        p = sub.add_parser(name, help=f"annotation or detection JSON -> {what}")
        p.add_argument("json", help="annotation JSON ('database') or detections ('results')")
        p.add_argument(
            "--out", required=True, help="output directory" if name == "json2txt" else "output CSV"
        )
        p.add_argument(
            "--subset",
            default=None,
            help="annotations: only this subset; detections: subset name (default detections)",
        )
    return parser


def _read_classes(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        names = [x.strip() for x in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path}: cannot read class list ({exc})") from None
    names = [n for n in names if n]
    if len(set(names)) != len(names):
        raise ConversionError(f"{path}: duplicate class names")
    return names


def _to_json(args: argparse.Namespace) -> list[str]:
    notes: list[str] = []
    if args.command == "txt2json":
        instances, skipped = read_thumos_txt(args.inputs)
        if skipped:
            notes.append(
                f"skipped {len(skipped)} file(s) not named <Class>_<subset>.txt: "
                + ", ".join(p.name for p in skipped[:5])
            )
        ambiguous = args.ambiguous_label or None
    else:
        instances, ambiguous = read_csv_instances(args.csv), None
    if not instances:
        raise ConversionError("no annotation rows in the input")
    info = load_video_info(args.video_info, args.videos)
    data = build_database(
        instances,
        info,
        subset=args.subset,
        fps=args.fps,
        classes=_read_classes(args.classes),
        skip_unknown=args.skip_unknown,
        ambiguous_label=ambiguous,
        notes=notes,
    )
    notes += check_database(data, Path(args.out))
    counts: Counter[str] = Counter()
    for entry in data["database"].values():
        counts[entry["subset"]] += len(entry["annotations"])
    per_subset = ", ".join(
        f"{s}: {sum(1 for e in data['database'].values() if e['subset'] == s)} videos / {n}"
        for s, n in sorted(counts.items())
    )
    notes.append(f"wrote {args.out}: {len(data['classes'])} classes; {per_subset} instances")
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Run a conversion; returns the exit status (0 ok, 2 bad input or arguments)."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    try:
        if args.command in ("txt2json", "csv2json"):
            notes = _to_json(args)
        else:
            kind, rows = reverse_rows(Path(args.json), args.subset)
            if args.command == "json2txt":
                files = write_txt(rows, Path(args.out), kind, args.subset or "detections")
                notes = [f"wrote {len(rows)} {kind} line(s) to {len(files)} file(s) in {args.out}"]
            else:
                write_csv(rows, Path(args.out), kind)
                notes = [f"wrote {len(rows)} {kind} row(s) to {args.out}"]
    except ConversionError as err:
        return report(PROG, err)
    for line in notes:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

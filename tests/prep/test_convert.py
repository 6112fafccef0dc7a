"""logo-tal-convert: THUMOS text and CSV -> annotation JSON, and back; bad input, one line each.

The THUMOS14 test converts the official per-class text files (shared/data/thumos14/raw) and
compares with the JSON built from them independently (thumos14_anet_style.json).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from logo_tal.convert import main
from logo_tal.data.annotations import load_annotations
from logo_tal.prep.convert import parse_class_file_name, read_thumos_txt

INFO_CSV = "video,duration,fps,subset\nv1,10.0,30,training\nv2,20.0,25,validation\n"


def _run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _info(tmp_path: Path, text: str = INFO_CSV) -> Path:
    path = tmp_path / "info.csv"
    path.write_text(text)
    return path


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def test_thumos14_text_files_reproduce_the_reference_json(shared_data, tmp_path, capsys):
    raw = shared_data / "thumos14" / "raw"
    out = tmp_path / "thumos14.json"
    code, err = _run(
        [
            "txt2json",
            raw / "annotations_val",
            raw / "annotations_test",
            "--video-info",
            raw / "TH14_video_info.json",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    # The loader's counted repair of the 30 instances that start after the video ends.
    assert "starts_after_duration: 30 in 5 video(s)" in err
    assert "Ambiguous mark(s) on 1 video(s) without actions dropped (video_test_0001292)" in err
    ours = json.loads(out.read_text())
    ref = json.loads((shared_data / "thumos14" / "thumos14_anet_style.json").read_text())
    assert ours["classes"] == ref["classes"]
    assert set(ours["database"]) == set(ref["database"])
    for vid, want in ref["database"].items():
        got = ours["database"][vid]
        assert got["subset"] == want["subset"] and got["fps"] == want["fps"]
        assert got["duration"] == pytest.approx(want["duration"], abs=5e-4)  # ref rounds to ms

        def key(anns):
            return Counter((tuple(a["segment"]), a["label"], a["label_id"]) for a in anns)

        assert key(got["annotations"]) == key(want["annotations"]), vid
        assert sorted(map(tuple, got.get("ambiguous", []))) == sorted(
            map(tuple, want.get("ambiguous", []))
        )
    db = load_annotations(out, log_problems=False)
    assert db.subset_counts() == {"validation": (200, 3007), "test": (212, 3358)}
    # Same counts as ActionFormer's file.
    af = json.loads((shared_data / "thumos14" / "thumos_14.json").read_text())["database"]
    counts = Counter()
    for entry in af.values():
        counts[entry["subset"].lower()] += len(entry["annotations"])
    assert counts == {"validation": 3007, "test": 3358}


def test_text_json_text_round_trip(shared_data, tmp_path, capsys):
    raw = shared_data / "thumos14" / "raw" / "annotations_val"
    info = shared_data / "thumos14" / "raw" / "TH14_video_info.json"
    ann, back = tmp_path / "ann.json", tmp_path / "back"
    assert _run(["txt2json", raw, "--video-info", info, "--out", ann], capsys)[0] == 0
    assert _run(["json2txt", ann, "--out", back], capsys)[0] == 0
    original, _ = read_thumos_txt([raw])
    again, _ = read_thumos_txt([back])

    def segments(instances):
        return Counter((i.label, i.video, i.start, i.end) for i in instances)

    assert segments(again) == segments([i for i in original if i.label != "Ambiguous"])
    assert parse_class_file_name(back / "BaseballPitch_validation.txt") == (
        "BaseballPitch",
        "validation",
    )


def test_csv_to_json_classes_subsets_and_loader_repairs(tmp_path, capsys):
    labels = _csv(
        tmp_path,
        "video,start,end,label,subset\n"
        "v1,1.0,2.5,wave,training\n"
        "v1,8.0,12.0,jump,training\n"  # ends after the 10 s video: clamped for training
        "v2,3,4,wave,validation\n",
    )
    out = tmp_path / "ann.json"
    code, err = _run(["csv2json", labels, "--video-info", _info(tmp_path), "--out", out], capsys)
    assert code == 0, err
    assert "clamped_to_duration: 1 in 1 video(s)" in err
    data = json.loads(out.read_text())
    assert data["classes"] == ["jump", "wave"]
    assert data["database"]["v1"] == {
        "subset": "training",
        "duration": 10.0,
        "fps": 30.0,
        "annotations": [
            {"segment": [1.0, 2.5], "label": "wave", "label_id": 1},
            {"segment": [8.0, 12.0], "label": "jump", "label_id": 0},
        ],
    }
    assert data["database"]["v2"]["subset"] == "validation"


def test_csv_without_header_subset_from_option_and_json_to_csv(tmp_path, capsys):
    labels = _csv(tmp_path, "v1,1,2,wave\nv2,3,4.5,jump\n\n")
    out = tmp_path / "ann.json"
    info = _info(tmp_path, "video,num_frames,fps\nv1,300,30\nv2,500,25\n")
    code, err = _run(
        ["csv2json", labels, "--video-info", info, "--subset", "testing", "--out", out], capsys
    )
    assert code == 0, err
    db = json.loads(out.read_text())["database"]
    assert db["v2"]["duration"] == 20.0 and db["v2"]["num_frames"] == 500
    back = tmp_path / "back.csv"
    assert _run(["json2csv", out, "--out", back], capsys)[0] == 0
    rows = list(csv.DictReader(back.open()))
    assert [
        (r["video"], float(r["start"]), float(r["end"]), r["label"], r["subset"]) for r in rows
    ] == [
        ("v1", 1.0, 2.0, "wave", "testing"),
        ("v2", 3.0, 4.5, "jump", "testing"),
    ]


def test_detections_to_text_and_csv(tmp_path, capsys):
    dets = tmp_path / "predictions.json"
    dets.write_text(
        json.dumps(
            {
                "results": {
                    "v1": [
                        {"segment": [1.0, 2.0], "label": "wave", "score": 0.9},
                        {"segment": [4.25, 6.0], "label": "jump", "score": 0.125},
                    ],
                    "v2": [{"segment": [0.5, 1.5], "label": "wave", "score": 0.5}],
                }
            }
        )
    )
    assert _run(["json2txt", dets, "--out", tmp_path / "txt"], capsys)[0] == 0
    assert (tmp_path / "txt" / "wave_detections.txt").read_text() == (
        "v1 1.0 2.0 0.9\nv2 0.5 1.5 0.5\n"
    )
    assert (tmp_path / "txt" / "jump_detections.txt").read_text() == "v1 4.25 6.0 0.125\n"
    assert _run(["json2csv", dets, "--out", tmp_path / "d.csv"], capsys)[0] == 0
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert rows[1] == {
        "video": "v1",
        "start": "4.25",
        "end": "6.0",
        "label": "jump",
        "score": "0.125",
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("v1,2.0,1.0,wave,training\n", "labels.csv:1: end 1 < start 2 for video 'v1'"),
        (
            "v1,1,2,wave,training\nv9,1,2,wave,training\n",
            "labels.csv:2: video 'v9' has no duration",
        ),
        ("v1,1,two,wave,training\n", "labels.csv:1: end 'two' is not a number"),
        ("v1,1,2\n", "labels.csv:1: expected video,start,end,label[,subset], got 3 field(s)"),
        ("v1,1,2,,training\n", "labels.csv:1: empty label"),
        ("video,start,stop,label\nv1,1,2,a\n", "labels.csv:1: header lacks column(s) end"),
        ("v1,1,2,wave\n", "labels.csv:1: no subset for video 'v1'"),
        ("v1,1,2,a,training\nv1,3,4,a,validation\n", "labels.csv:2: video 'v1' is in subset"),
    ],
)
def test_bad_csv_rows_are_named_exit_2(tmp_path, capsys, text, message):
    info = _info(tmp_path, "video,duration,fps\nv1,10,30\n")
    out = tmp_path / "ann.json"
    code, err = _run(
        ["csv2json", _csv(tmp_path, text), "--video-info", info, "--out", out], capsys
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("logo-tal-convert: error: ")
    assert message in err
    assert not out.exists()


def test_unknown_videos_can_be_dropped_with_a_count(tmp_path, capsys):
    labels = _csv(tmp_path, "v1,1,2,a,training\nv9,1,2,a,training\nv9,3,4,a,training\n")
    out = tmp_path / "ann.json"
    code, err = _run(
        ["csv2json", labels, "--video-info", _info(tmp_path), "--out", out, "--skip-unknown"],
        capsys,
    )
    assert code == 0
    assert "unknown_video: 2 instance(s) of 1 video(s) without video info dropped (v9)" in err
    assert list(json.loads(out.read_text())["database"]) == ["v1"]


def test_bad_text_lines_and_info_files(tmp_path, capsys):
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "Wave_val.txt").write_text("v1 1.0 2.0\nv1 3.0\n")
    code, err = _run(
        ["txt2json", txt, "--video-info", _info(tmp_path), "--out", tmp_path / "a"], capsys
    )
    assert code == 2 and "Wave_val.txt:2: expected '<video> <start> <end>', got 2 field(s)" in err
    (txt / "Wave_val.txt").write_text("v1 1.0 2.0\n")
    bad_info = _info(tmp_path, "video,fps\nv1,30\n")
    code, err = _run(["txt2json", txt, "--video-info", bad_info, "--out", tmp_path / "a"], capsys)
    assert code == 2 and "info.csv:2 (v1): no duration" in err
    code, err = _run(["txt2json", txt, "--out", tmp_path / "a"], capsys)
    assert code == 2 and "exactly one of --video-info FILE and --videos DIR" in err
    code, err = _run(["txt2json", txt, "--video-info", tmp_path / "no.csv", "--out", "a"], capsys)
    assert code == 2 and "no.csv: video info file not found" in err
    code, err = _run(["json2csv", tmp_path / "none.json", "--out", tmp_path / "x.csv"], capsys)
    assert code == 2 and "none.json: file not found" in err


def test_subprocess_exit_status_and_usage_errors(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "logo_tal.convert", "csv2json", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1
        and "the following arguments are required: --out" in proc.stderr
    )


def test_durations_probed_from_videos(tmp_path, capsys):
    pytest.importorskip("av")
    from helpers.video import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "v1.mp4", 4.0, fps=10)
    labels = _csv(tmp_path, "v1,1,2,wave,training\n")
    out = tmp_path / "ann.json"
    assert _run(["csv2json", labels, "--videos", videos, "--out", out], capsys)[0] == 0
    entry = json.loads(out.read_text())["database"]["v1"]
    assert (entry["duration"], entry["fps"], entry["num_frames"]) == (4.0, 10.0, 40)
    (videos / "v2.mp4").write_text("not a video")
    code, err = _run(["csv2json", labels, "--videos", videos, "--out", out], capsys)
    assert code == 2 and "v2.mp4: unreadable video" in err
    (videos / "v2.mp4").unlink()
    write_video(videos / "v3.avi", 0.0)
    code, err = _run(["csv2json", labels, "--videos", videos, "--out", out], capsys)
    assert code == 2 and "v3.avi: no decodable video frames" in err

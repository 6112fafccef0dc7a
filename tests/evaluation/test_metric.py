"""DetectionMAP (torchmetrics) against the CLI, de-duplication, and a 2-process gather."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from logo_tal.core.detections import Detections
from logo_tal.evaluation.metric import DetectionMAP
from logo_tal.evaluation.records import to_records
from logo_tal.evaluation.report import write_detections
from logo_tal.score import main as score_main

WORKER = Path(__file__).with_name("ddp_worker.py")


def load_worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metric_equals_cli_on_the_same_data(tmp_path, capsys):
    worker = load_worker()
    videos = list(range(12))
    samples = [worker.video_sample(i) for i in videos]
    names = [f"video_{i}" for i in videos]
    class_names = [f"class {c}" for c in range(worker.NUM_CLASSES)]
    thresholds = (0.3, 0.5, 0.7)

    metric = DetectionMAP(thresholds, worker.NUM_CLASSES, class_names)
    for chunk in (videos[:5], videos[5:]):
        metric.update(
            torch.tensor(chunk),
            [samples[i][0] for i in chunk],
            [samples[i][1] for i in chunk],
            [samples[i][2] for i in chunk],
        )
    result = metric.compute()
    assert list(result) == ["mAP@0.3", "mAP@0.5", "mAP@0.7", "mAP_avg"]

    database = {
        name: {
            "subset": "test",
            "annotations": [
                {"segment": seg, "label": class_names[c]}
                for seg, c in zip(gt_seg.tolist(), gt_lab.tolist(), strict=True)
            ],
        }
        for name, (_, gt_seg, gt_lab) in zip(names, samples, strict=True)
    }
    (tmp_path / "gt.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    # Label index NUM_CLASSES is outside the label space: the metric ignores it, so the file
    # gets a name that is not a class.
    names_out = [*class_names, "not a class"]
    results = to_records(names, [s[0] for s in samples], names_out)
    write_detections(tmp_path, results, "pred.json")
    argv = [str(tmp_path / "gt.json"), str(tmp_path / "pred.json"), "--json", "--tiou"]
    assert score_main([*argv, *map(str, thresholds)]) == 0
    cli = json.loads(capsys.readouterr().out)

    assert 0 < cli["average_mAP"] < 1
    for t, m in zip(cli["tiou_thresholds"], cli["mAP"], strict=True):
        assert float(result[f"mAP@{t:g}"]) == pytest.approx(m, abs=1e-12)
    assert float(result["mAP_avg"]) == pytest.approx(cli["average_mAP"], abs=1e-12)
    report = metric.last_report
    assert report.class_names == tuple(class_names)
    assert report.counts.videos == len(videos)


def test_video_seen_twice_is_counted_once():
    worker = load_worker()
    once = DetectionMAP(worker.THRESHOLDS, worker.NUM_CLASSES)
    twice = DetectionMAP(worker.THRESHOLDS, worker.NUM_CLASSES)
    worker.feed(once, [[0, 1, 2]])
    worker.feed(twice, [[0, 1], [2, 0], [1]])
    a, b = once.compute(), twice.compute()
    assert a.keys() == b.keys()
    for key in a:
        assert float(a[key]) == float(b[key])
    assert once.last_report.counts == twice.last_report.counts


def test_perfect_detections_and_reset():
    metric = DetectionMAP((0.5, 0.95), num_classes=3)
    segs = torch.tensor([[1.0, 4.0], [10.0, 12.5]])
    labels = torch.tensor([2, 0])
    det = Detections(segs, torch.tensor([0.9, 0.8]), labels)
    metric.update(torch.tensor([7]), [det], [segs], [labels])
    result = metric.compute()
    assert {k: float(v) for k, v in result.items()} == {
        "mAP@0.5": 1.0,
        "mAP@0.95": 1.0,
        "mAP_avg": 1.0,
    }
    assert result["mAP_avg"].dtype == torch.float64
    metric.reset()
    assert metric.sample_info == [] and metric.det_scores == []
    assert metric.last_report is not None  # the last report outlives reset() for tables


def test_bad_ground_truth_label_is_an_error():
    metric = DetectionMAP((0.5,), num_classes=2)
    segs = torch.tensor([[1.0, 4.0]])
    det = Detections(segs, torch.tensor([0.9]), torch.tensor([0]))
    metric.update(torch.tensor([0]), [det], [segs], [torch.tensor([5])])
    with pytest.raises(ValueError, match="outside"):
        metric.compute()


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["uneven", "one_empty"])
def test_two_processes_equal_one(tmp_path, sharding):
    worker = load_worker()
    expected = worker.single_process()
    out = tmp_path / "rank0.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(rank),
                "2",
                str(tmp_path / "init"),
                str(out),
                sharding,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        logs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, logs, strict=True):
        assert p.returncode == 0, err
    got = json.loads(out.read_text(encoding="utf-8"))
    assert got["videos"] == 7
    assert 0 < expected["mAP_avg"] < 1
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key

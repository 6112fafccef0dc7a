"""scripts/benchmark.py: the quick run end to end, and its memory probe."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_benchmark_writes_the_json(tmp_path, benchmark_module):
    out = tmp_path / "bench.json"
    # One thread: on the shared 2-core machine a second OpenMP thread mostly waits.
    proc = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--out", str(out)),
            *("--padding-cases", "own"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "targets met" in proc.stdout and str(out) in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) >= {
        "environment",
        "settings",
        "model",
        "postprocess",
        "scorer",
        "lengths",
        "evaluation",
        "padding",
        "summary",
        "passed",
        "section_seconds",
    }
    own = data["padding"]["cases"]["own"]
    assert own["data"]["videos"] == 8 and set(own["settings"]) == {
        "max_seq_len",
        "batch",
        "bucketed",
    }
    fixed, batch = own["settings"]["max_seq_len"], own["settings"]["batch"]
    assert fixed["pad_fraction"] > 0.95 > 0.3 > batch["pad_fraction"]  # 27 of 2304 vs of 32
    assert fixed["speedup"] == 1.0 and batch["epoch_s"] > 0 and batch["peak_mb"] > 0
    env = data["environment"]
    assert env["torch_threads"] == 1 and env["torch"] and env["cpu_model"]
    assert len(env["load_avg_start"]) == 3 and len(env["load_avg_end"]) == 3
    assert env["load_warning"] == (env["load_avg_start"][0] > 1.0)
    assert data["settings"]["quick"] is True

    (model,) = data["model"]
    assert (model["encoder"], model["head"], model["batch"]) == ("logo", "clff", 1)
    assert model["params_M"] > 1 and model["fwd_s"] > 0 and model["train_s"] > 0
    assert 0 < model["fwd_pct"] and 0 < model["train_pct"]
    assert model["train_gflop"] > model["fwd_gflop"] > 0
    assert model["fwd_mem"]["peak_mb"] > 0 and model["train_mem"]["peak_mb"] > 0

    datasets = [r["dataset"] for r in data["postprocess"]]
    assert datasets == ["thumos", "anet"]
    thumos = data["postprocess"][0]
    assert thumos["wall_ms"] > 0 and 0 < thumos["detections"] <= 2000

    cases = [r["case"] for r in data["scorer"]]
    expected = ["synthetic_20k_200cls"]
    if benchmark_module.bench_scorer.DEFAULT_GT.is_file():
        expected.insert(0, "thumos14_test_gt")
        assert data["scorer"][0]["instances"] == 3358 and data["scorer"][0]["videos"] == 212
    assert cases == expected
    assert data["scorer"][-1]["detections"] == 20000 and data["scorer"][-1]["classes"] == 200

    lengths = data["lengths"]
    assert [r["length"] for r in lengths] == list(benchmark_module.QUICK_LENGTHS)
    assert lengths[1]["fwd_gflop"] == pytest.approx(2 * lengths[0]["fwd_gflop"], rel=0.01)

    evaluation = data["evaluation"]
    assert evaluation["split"]["videos"] == 2
    assert [r["workers"] for r in evaluation["rows"]] == [0, 2]
    for row in evaluation["rows"]:
        assert row["videos"] == 2 and row["identical_to_first"] is True
        assert row["total_s"] >= row["detector_s"] > 0 and row["postprocess_s"] > 0

    checked = [r for r in data["summary"] if "status" in r]
    # fwd %, train %, THUMOS post-processing, one or two scorer cases, own data's padding.
    assert len(checked) == 3 + len(expected) + 1
    (padding,) = [r for r in checked if r["case"].startswith("padding own")]
    assert padding["target"] == ">= 10" and padding["status"] in ("PASS", "MISS")
    assert {r["status"] for r in checked} <= {"PASS", "MISS"}
    assert data["passed"] == all(r["status"] == "PASS" for r in checked)


def test_synthetic_anet_ground_truth_covers_every_video_and_class(benchmark_module):
    """The scorer benchmark's case (b) reports 200 classes whatever ran before it on its
    generator (with the THUMOS14 file absent, case (a) does not draw from it first)."""
    for seed in range(5):
        gt = benchmark_module.bench_scorer.synthetic_anet(np.random.default_rng(seed))
        assert len(gt) == 1500
        assert set(gt.video.tolist()) == set(range(1000))
        assert set(gt.label.tolist()) == set(range(200))


def test_peak_rss_sees_a_large_allocation(benchmark_module):
    def allocate():
        a = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
        return float(a.sum())

    mem = benchmark_module.peak_rss(allocate)
    assert mem["peak_mb"] > 0
    if mem["per_call"]:
        assert mem["delta_mb"] >= 50


def test_summary_marks_targets(benchmark_module):
    results = {
        "model": [],
        "postprocess": [
            {
                "dataset": "thumos",
                "bg_mean": -9.0,
                "candidates": 10,
                "wall_ms": 31.0,
                "mem": {"peak_mb": 1.0, "delta_mb": 0.0},
            }
        ],
        "scorer": [
            {"case": "x", "detections": 5, "seconds": 0.5, "mem": {"peak_mb": 1, "delta_mb": 0}}
        ],
        "lengths": [],
    }
    rows = benchmark_module.summary_rows(results)
    status = {r["metric"]: r.get("status") for r in rows}
    assert status["decode+Soft-NMS wall"] == "MISS"
    assert status["evaluate_detections"] == "PASS"
    assert "MISS" in benchmark_module.format_table(rows)


def test_compile_payback_by_hand(benchmark_module):
    """Compilation of 300 s + 100 s, saving 0.5 s a step: 800 steps to break even; a 4000-step
    THUMOS run takes 4000 x 2 s eager and 4000 x 1.5 s + 400 s compiled."""
    row = {
        "eager_train_s": 2.0,
        "compiled_train_s": 1.5,
        "compile_train_s": 300.0,
        "compile_infer_s": 100.0,
    }
    got = benchmark_module.bench_compile.payback(row, steps=4000)
    assert got["break_even_steps"] == pytest.approx(800.0)
    assert got["thumos_train_eager_h"] == pytest.approx(8000 / 3600)
    assert got["thumos_train_compiled_h"] == pytest.approx(6400 / 3600)
    slower = benchmark_module.bench_compile.payback({**row, "compiled_train_s": 2.5}, steps=4000)
    assert slower["break_even_steps"] is None  # compilation never pays back


def test_summary_lists_the_compile_rows(benchmark_module):
    row = {
        "backend": "inductor",
        "length": 2304,
        "eager_train_s": 2.0,
        "compiled_train_s": 1.5,
        "eager_infer_s": 0.5,
        "compiled_infer_s": 0.25,
        "compile_train_s": 300.0,
        "compile_infer_s": 100.0,
        "thumos_train_eager_h": 2.2,
        "thumos_train_compiled_h": 1.8,
    }
    results = {"model": [], "postprocess": [], "scorer": [], "lengths": [], "compile": [row]}
    values = {r["metric"]: r["value"] for r in benchmark_module.summary_rows(results)}
    assert values["train step compiled"] == 1500.0
    assert values["compile time train + infer"] == 400.0
    assert values["THUMOS run train, compiled"] == 1.8


def test_padding_benchmark_lengths_follow_the_real_training_videos(benchmark_module):
    bench_padding = benchmark_module.bench_padding

    thumos = [steps for steps, _, _ in bench_padding.case_lengths("thumos", None)]
    assert len(thumos) == 200 and 1100 < np.median(thumos) < 1150  # THUMOS14 validation
    anet = [steps for steps, _, _ in bench_padding.case_lengths("anet", None)]
    assert len(anet) == 9649 and 100 < np.median(anet) < 115  # ANet-1.3 training, TSP grid
    sample = bench_padding.case_lengths("anet", 1600)
    assert len(sample) == 1600 and sample == bench_padding.case_lengths("anet", 1600)
    assert {steps for steps, _, _ in bench_padding.case_lengths("own", 4)} == {27}  # 8-s clips

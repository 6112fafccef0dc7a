"""The notebooks: valid nbformat-4 files matching their builder, executed on tiny data.

There is no Jupyter in the environment, so a notebook is executed the way a kernel would run
it: its code cells in order in one namespace, after replacing the ``parameters`` cell.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from logo_tal.data.synthetic.generator import TEST_SUBSET, generate
from logo_tal.evaluation.ap import evaluate_detections
from logo_tal.evaluation.io import load_ground_truth, load_predictions, write_results
from logo_tal.evaluation.report import write_metrics

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", NOTEBOOKS / "build_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_notebook(name: str, parameters: str) -> dict:
    """Execute the code cells of ``name`` with the parameters cell replaced; return globals."""
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__notebook__"}
    replaced = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "parameters" in cell["metadata"].get("tags", []):
            # Keep the notebook's defaults, then override them, as papermill does.
            source = source + "\n" + parameters
            replaced = True
        exec(compile(source, f"<{name}>", "exec"), namespace)
    assert replaced, f"{name} has no cell tagged 'parameters'"
    return namespace


@pytest.mark.parametrize(
    "name", ["01_detections_vs_ground_truth.ipynb", "02_ablation_tables.ipynb"]
)
def test_notebook_is_valid_stripped_and_up_to_date(name):
    path = NOTEBOOKS / name
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("code", "markdown")
        assert isinstance(cell["source"], list) and isinstance(cell["id"], str)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            compile("".join(cell["source"]), name, "exec")
    assert path.read_text(encoding="utf-8") == _builder().render(name), (
        "stale notebook: run python notebooks/build_notebooks.py"
    )


def _tiny_run(tmp_path: Path) -> tuple[Path, Path, dict]:
    """Tiny synthetic ground truth and a run directory whose detections have known errors.

    Per ground-truth instance: an exact copy (true positive), a slightly shifted copy with a
    lower score (duplicate) and a copy labelled with another class (wrong class), all scored so
    that each class's true positives rank first (AP = 1); a third of each video's first
    instance (localisation error); one detection per video on a video that the ground truth
    does not know (background).
    """
    info = generate(tmp_path / "data", preset="tiny", seed=3)
    gt = load_ground_truth(info["annotations"], subset=TEST_SUBSET)
    num_classes = len(gt.class_names)
    results: dict[str, list[dict]] = {}
    for v, video_id in enumerate(gt.video_ids):
        entries = results.setdefault(video_id, [])
        for r in np.flatnonzero(gt.video == v):
            s, e, c = float(gt.start[r]), float(gt.end[r]), int(gt.label[r])
            shift = 0.05 * (e - s)
            other = gt.class_names[(c + 1) % num_classes]
            entries += [
                {"segment": [s, e], "label": gt.class_names[c], "score": 0.9},
                {"segment": [s + shift, e + shift], "label": gt.class_names[c], "score": 0.5},
                {"segment": [s, e], "label": other, "score": 0.1},
            ]
        first = np.flatnonzero(gt.video == v)[:1]
        for r in first:  # a third of the first instance: tIoU 1/3, a localisation error
            s, e = float(gt.start[r]), float(gt.end[r])
            label = gt.class_names[int(gt.label[r])]
            entries.append({"segment": [s, s + (e - s) / 3], "label": label, "score": 0.05})
        results[f"unknown_{v}"] = [
            {"segment": [0.0, 1.0], "label": gt.class_names[0], "score": 0.2}
        ]
    run = tmp_path / "run"
    write_results(run / "detections.json", results, version="test")
    # metrics.json as a run writes it, from the same detections.
    report = evaluate_detections(gt, load_predictions(run / "detections.json", gt))
    write_metrics(run, report, {"split": "test"})
    counts = {
        "gt": int(report.counts.gt_kept),
        "videos": len(gt.video_ids),
        "detections": sum(len(x) for x in results.values()),
    }
    return run, info["annotations"], counts


def test_detections_vs_ground_truth_notebook(tmp_path):
    run, gt_json, expected = _tiny_run(tmp_path)
    ns = run_notebook(
        "01_detections_vs_ground_truth.ipynb",
        f"RUN_DIR = {str(run)!r}\nGT_JSON = {str(gt_json)!r}\nSUBSET = {TEST_SUBSET!r}\n"
        f"TOP_PER_GT = None\nNUM_VIDEOS = 2\nTOP_K = 5\nFIG_DIR = {str(tmp_path / 'figs')!r}",
    )
    # Every ground truth has an exact, top-scored copy: perfect AP, equal to metrics.json.
    assert ns["report"].average_mAP == pytest.approx(1.0)
    assert ns["saved"]["average_mAP"] == pytest.approx(ns["report"].average_mAP)
    assert len(ns["per_class_ap"]) == len(ns["gt"].class_names)
    assert all(v == pytest.approx(1.0) for v in ns["per_class_ap"].values())

    counts = ns["error_counts"]
    assert sum(counts.values()) == expected["detections"] == len(ns["preds"])
    g = expected["gt"]
    assert counts["true_positive"] == g
    assert counts["duplicate"] == g
    assert counts["wrong_class"] == g
    assert counts["localisation"] == expected["videos"]
    assert counts["background"] == expected["videos"]

    assert len(ns["timeline_paths"]) == 2
    for path in [*ns["timeline_paths"], tmp_path / "figs" / "per_class_ap.png"]:
        assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figs" / "false_positives.png").is_file()


def test_detections_notebook_top_per_gt_limits_the_analysis(tmp_path):
    run, gt_json, expected = _tiny_run(tmp_path)
    ns = run_notebook(
        "01_detections_vs_ground_truth.ipynb",
        f"RUN_DIR = {str(run)!r}\nGT_JSON = {str(gt_json)!r}\nSUBSET = {TEST_SUBSET!r}\n"
        "TOP_PER_GT = 1\nNUM_VIDEOS = 1",
    )
    # The best #GT detections are exactly the score-0.9 copies.
    assert len(ns["top"]) == len(ns["gt"])
    assert ns["error_counts"]["true_positive"] == expected["gt"]
    assert sum(ns["error_counts"].values()) == len(ns["gt"])
    assert (run / "figures" / "per_class_ap.png").is_file()  # FIG_DIR default


# Average mAP (fraction) of the fake runs: a distinct value per setting, moved by the seed.
ENCODERS = {"conv": 0.30, "transformer": 0.40, "logo": 0.50}
HEADS = {"actionformer": 0.42, "trident": 0.45, "clff": 0.50}
LEVELS = {str(n): 0.30 + 0.04 * n for n in range(3, 8)}
SEEDS = (1, 2, 3)


def _fake_multirun(root: Path) -> None:
    """Three sweeps laid out as Hydra writes them (hydra/default.yaml's sweep dir and subdir)."""
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.7]
    for sweep, key, settings in (
        ("ablate_encoder", "model/encoder", ENCODERS),
        ("ablate_head", "model/head", HEADS),
        ("ablate_levels", "model.num_levels", LEVELS),
    ):
        job_num = 0
        for value, base in settings.items():
            for seed in SEEDS:
                avg = base + 0.01 * seed
                job = root / sweep / "multiruns" / "2025-01-01_00-00-00"
                job = job / f"{job_num}_{key.replace('/', '-')}={value},seed={seed}"
                job_num += 1
                (job / ".hydra").mkdir(parents=True)
                overrides = [
                    "experiment=synthetic",
                    f"sweep={sweep}",
                    f"{key}={value}",
                    f"seed={seed}",
                ]
                (job / ".hydra" / "overrides.yaml").write_text(
                    "".join(f"- {o}\n" for o in overrides)
                )
                # Per threshold: avg + 0.1, avg + 0.05, ..., avg - 0.1, so the mean is avg.
                m_ap = [avg + 0.1 - 0.05 * i for i in range(5)]
                metrics = {"tiou_thresholds": thresholds, "mAP": m_ap, "average_mAP": avg}
                (job / "metrics.json").write_text(json.dumps(metrics))


def test_ablation_tables_notebook(tmp_path, monkeypatch):
    _fake_multirun(tmp_path / "logs")
    monkeypatch.chdir(REPO)  # the notebook finds scripts/summarize_runs.py from the cwd
    ns = run_notebook("02_ablation_tables.ipynb", f"MULTIRUN_DIR = {str(tmp_path / 'logs')!r}")
    tables = ns["tables"]
    assert [r["setting"] for r in tables["encoder"]] == ["conv", "transformer", "logo"]
    assert [r["setting"] for r in tables["head"]] == ["actionformer", "trident", "clff"]
    assert [r["setting"] for r in tables["levels"]] == ["3", "4", "5", "6", "7"]

    seed_offsets = [0.01 * s for s in SEEDS]
    std = 100 * statistics.stdev(seed_offsets)
    for name, settings in (("encoder", ENCODERS), ("head", HEADS), ("levels", LEVELS)):
        for row in tables[name]:
            assert row["n"] == len(SEEDS)
            mean = 100 * (settings[row["setting"]] + statistics.fmean(seed_offsets))
            assert row["mAP_avg"][0] == pytest.approx(mean)
            assert row["mAP_avg"][1] == pytest.approx(std)
            assert row["mAP@0.3"][0] == pytest.approx(mean + 10)
            assert row["mAP@0.7"][0] == pytest.approx(mean - 10)
            assert row["gap_avg"] is None  # synthetic: no gap to THUMOS numbers
            assert row["other_overrides"] == ""
    assert tables["encoder"][2]["paper"]["mAP_avg"] == 69.2
    assert tables["head"][1]["paper"] == {
        "mAP@0.3": 83.5,
        "mAP@0.5": 72.5,
        "mAP@0.7": 46.8,
        "mAP_avg": 68.8,
    }
    assert [r["paper"]["mAP_avg"] for r in tables["levels"]] == [61.8, 66.1, 67.8, 69.2, 68.8]
    assert ns["dataset"] == "synthetic" and ns["comparable"] is False
    text = ns["markdown"]["levels"]
    assert "not comparable" in text and text.count("\n| ") == 1 + 5  # header + five rows
    assert "gap" not in text


def test_ablation_tables_notebook_shows_the_gap_for_thumos(tmp_path, monkeypatch):
    _fake_multirun(tmp_path / "logs")
    monkeypatch.chdir(REPO)
    ns = run_notebook(
        "02_ablation_tables.ipynb",
        f"MULTIRUN_DIR = {str(tmp_path / 'logs' / 'ablate_head')!r}\nDATASET = 'thumos'",
    )
    tables = ns["tables"]
    assert tables["encoder"] == [] and tables["levels"] == []
    clff = tables["head"][2]
    assert clff["gap_avg"] == pytest.approx(clff["mAP_avg"][0] - 69.2)
    assert "gap avg" in ns["markdown"]["head"]

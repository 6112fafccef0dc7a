"""The notebooks: valid nbformat-4 files matching their builder, executed on tiny data in a
real Jupyter kernel (nbclient + ipykernel, the dev extra), as a user's Jupyter runs them.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import statistics
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from logo_tal.evaluation.ap import evaluate_detections
from logo_tal.evaluation.io import load_ground_truth, load_predictions
from logo_tal.evaluation.report import write_detections, write_metrics
from logo_tal.prep.synthetic.generator import TEST_SUBSET, generate

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


# Run last in the kernel: every picklable global of the notebook, written for the test to read.
_PROBE = """
import pickle as _pickle, types as _types
_skip = (_types.ModuleType, _types.FunctionType, type)
_globals = {}
for _name, _value in list(globals().items()):
    if _name.startswith("_") or _name in ("In", "Out", "exit", "quit"):
        continue
    if isinstance(_value, _skip):
        continue
    try:
        _globals[_name] = _pickle.loads(_pickle.dumps(_value))
    except Exception:
        pass
with open(PROBE_PATH, "wb") as _file:
    _pickle.dump(_globals, _file)
"""


def run_notebook(name: str, parameters: str, workdir: Path) -> dict:
    """Execute ``name`` in a Jupyter kernel, with ``parameters`` appended to its cell tagged
    ``parameters`` (as papermill does), from ``workdir``; return the notebook's globals."""
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} must have exactly one cell tagged 'parameters'"
    tagged[0].source += "\n" + parameters
    probe = workdir / f"{name}.globals.pkl"
    nb.cells.append(nbformat.v4.new_code_cell(f"PROBE_PATH = {str(probe)!r}\n{_PROBE}"))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    with probe.open("rb") as file:
        return pickle.load(file)


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
    write_detections(run, results, extra={"version": "test"})
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
        tmp_path,
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
        tmp_path,
    )
    # The best #GT detections are exactly the score-0.9 copies.
    assert len(ns["top"]) == len(ns["gt"])
    assert ns["error_counts"]["true_positive"] == expected["gt"]
    assert sum(ns["error_counts"].values()) == len(ns["gt"])
    assert (run / "figures" / "per_class_ap.png").is_file()  # FIG_DIR default


# Average mAP (fraction) of the fake runs: a distinct value per setting, moved by the seed.
# Settings: the sweep's override value -> (encoder, head, levels) of the job.
ENCODERS = {
    "conv_af": (0.30, ("conv", "actionformer", 6)),
    "sa_af": (0.40, ("transformer", "actionformer", 6)),
    "logo_af": (0.45, ("logo", "actionformer", 6)),
    "logo_clff": (0.50, ("logo", "clff", 6)),
    "maxer_af": (0.35, ("maxer", "actionformer", 6)),
}
HEADS = {
    h: (v, ("logo", h, 6)) for h, v in {"actionformer": 0.42, "trident": 0.45, "clff": 0.5}.items()
}
LEVELS = {str(n): (0.30 + 0.04 * n, ("logo", "clff", n)) for n in range(3, 8)}
SEEDS = (1, 2, 3)


def _fake_multirun(root: Path, dataset: str = "synthetic") -> None:
    """Three sweeps laid out as Hydra writes them (hydra/default.yaml's sweep dir and subdir)."""
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.7]
    for sweep, key, settings in (
        ("ablate_encoder", "ablation", ENCODERS),
        ("ablate_head", "model/head", HEADS),
        ("ablate_levels", "model.num_levels", LEVELS),
    ):
        job_num = 0
        for value, (base, (encoder, head, levels)) in settings.items():
            for seed in SEEDS:
                avg = base + 0.01 * seed
                job = root / sweep / "multiruns" / "2025-01-01_00-00-00"
                job = job / f"{job_num}_{key.replace('/', '-')}={value},seed={seed}"
                (job / ".hydra").mkdir(parents=True)
                overrides = [f"experiment={dataset}", f"sweep={sweep}", f"{key}={value}"]
                overrides.append(f"seed={seed}")
                (job / ".hydra" / "overrides.yaml").write_text(
                    "".join(f"- {o}\n" for o in overrides)
                )
                choices = {"data": dataset, "model/encoder": encoder, "model/head": head}
                hydra = {"hydra": {"job": {"num": job_num}, "runtime": {"choices": choices}}}
                (job / ".hydra" / "hydra.yaml").write_text(json.dumps(hydra))  # JSON is YAML
                config = {"seed": seed, "model": {"num_levels": levels}}
                (job / ".hydra" / "config.yaml").write_text(json.dumps(config))
                job_num += 1
                # Per threshold: avg + 0.1, avg + 0.05, ..., avg - 0.1, so the mean is avg.
                m_ap = [avg + 0.1 - 0.05 * i for i in range(5)]
                metrics = {"tiou_thresholds": thresholds, "mAP": m_ap, "average_mAP": avg}
                (job / "metrics.json").write_text(json.dumps(metrics))


def test_ablation_tables_notebook(tmp_path):
    _fake_multirun(tmp_path / "logs")
    ns = run_notebook(
        "02_ablation_tables.ipynb", f"MULTIRUN_DIR = {str(tmp_path / 'logs')!r}", tmp_path
    )
    tables = ns["tables"]
    # Table 3's logo_af row is Table 4's row 1 as well, so both tables show both sweeps' runs.
    assert [e["configuration"] for e in tables[3]] == [
        "sweep=ablate_encoder,ablation=conv_af",
        "sweep=ablate_encoder,ablation=sa_af",
        "sweep=ablate_encoder,ablation=logo_af",
        "sweep=ablate_head,model/head=actionformer",
        "sweep=ablate_encoder,ablation=logo_clff",
        "sweep=ablate_head,model/head=clff",
        "sweep=ablate_levels,model.num_levels=6",
    ]
    assert [e["paper_row"] for e in tables[4]][:2] == ["row 1 (ActionFormer head)"] * 2
    assert [e["configuration"] for e in tables[5]][:3] == [
        f"sweep=ablate_levels,model.num_levels={n}" for n in (3, 4, 5)
    ]
    assert ns["beyond"] == ["sweep=ablate_encoder,ablation=maxer_af"]

    seed_offsets = [0.01 * s for s in SEEDS]
    std = 100 * statistics.stdev(seed_offsets)
    bases = {"conv_af": 0.30, "sa_af": 0.40, "3": 0.42, "7": 0.58, "trident": 0.45}
    for entries in tables.values():
        for entry in entries:
            assert entry["n"] == len(SEEDS) and entry["missing"] == 0
            value = entry["configuration"].rsplit("=", 1)[1]
            if value in bases:
                mean = 100 * (bases[value] + statistics.fmean(seed_offsets))
                assert entry["stats"][None][:2] == pytest.approx((mean, std))
                assert entry["stats"][0.3][0] == pytest.approx(mean + 10)
                assert entry["stats"][0.7][0] == pytest.approx(mean - 10)
            assert entry["gap_avg"] is None  # synthetic: no gap to THUMOS numbers
    assert tables[3][0]["paper"] == {0.3: 77.3, 0.5: 65.2, 0.7: 40.0, None: 62.1}
    assert tables[4][2]["paper"] == {0.3: 83.5, 0.5: 72.5, 0.7: 46.8, None: 68.8}
    assert [e["paper"][None] for e in tables[5]] == [61.8, 66.1, 67.8, 69.2, 69.2, 69.2, 68.8]
    text = ns["markdown"][5]
    assert "not comparable" in text and text.count("\n| ") == 1 + 7  # header + seven rows
    assert "gap" not in text


def test_ablation_tables_notebook_shows_the_gap_for_thumos(tmp_path):
    _fake_multirun(tmp_path / "logs", dataset="thumos")
    ns = run_notebook(
        "02_ablation_tables.ipynb",
        f"MULTIRUN_DIR = {str(tmp_path / 'logs' / 'ablate_head')!r}",
        tmp_path,
    )
    tables = ns["tables"]
    assert [e["configuration"] for e in tables[4]] == [
        "model/head=actionformer",
        "model/head=trident",
        "model/head=clff",
    ]
    clff = tables[4][2]
    assert clff["gap_avg"] == pytest.approx(clff["stats"][None][0] - 69.2)
    assert "gap avg" in ns["markdown"][4]
    # DATASET overrides the runs' own dataset.
    ns = run_notebook(
        "02_ablation_tables.ipynb",
        f"MULTIRUN_DIR = {str(tmp_path / 'logs' / 'ablate_head')!r}\nDATASET = 'synthetic'",
        tmp_path,
    )
    assert ns["tables"][4][2]["gap_avg"] is None

"""Write the notebooks of this folder from the cell sources below (outputs stripped).

Jupyter is not a dependency of the project, so the .ipynb files are generated here as plain
nbformat-4 JSON; edit the cells in this file and run ``python notebooks/build_notebooks.py``.
tests/test_notebooks.py checks that the committed notebooks match this file and executes them.
The cell tagged ``parameters`` (papermill's convention) is the one to edit or override.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Shared by both notebooks: figures are written as PNG and shown with IPython when present,
# because logo_tal.evaluation.plot selects the Agg backend (no inline display).
SHOW = '''\
def show(path):
    """Display a PNG inline under Jupyter; print its path elsewhere."""
    try:
        from IPython.display import Image, display
    except ImportError:
        print(f"figure: {path}")
    else:
        display(Image(filename=str(path)))


def show_markdown(text):
    try:
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
    else:
        display(Markdown(text))'''

NB01 = [
    (
        "markdown",
        """\
# Detections vs ground truth

Looks at one evaluated run: per-video timelines of ground truth against the top-k detections,
per-class AP, and what the false positives are (localisation error, wrong class, background,
duplicate; `logo_tal.evaluation.errors`, at tIoU `TIOU`).

Inputs: a run directory with `detections.json` (ActivityNet result format, written by
`python -m logo_tal.train` / `logo_tal.evaluate`) and the ground-truth JSON it was scored against.
Set the parameters below and run all cells.""",
    ),
    (
        "parameters",
        """\
RUN_DIR = "logs/synthetic/runs/CHANGE_ME"  # a run directory containing detections.json
GT_JSON = "data/synthetic/annotations.json"  # ground truth (ActivityNet-style JSON)
SUBSET = "testing"  # subset the run was evaluated on ("test" for THUMOS14); None: all videos
TIOU = 0.5  # threshold of the false-positive breakdown
LOW_TIOU = 0.1  # below this overlap a false positive is "background"
TOP_PER_GT = 10  # analyse the top TOP_PER_GT x #GT detections (DETAD's convention); None: all
TOP_K = 10  # detections drawn per timeline
NUM_VIDEOS = 4  # timelines drawn (videos with the most ground truth first)
FIG_DIR = None  # where figures go; None: RUN_DIR/figures""",
    ),
    ("code", SHOW),
    (
        "code",
        """\
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from logo_tal.evaluation.ap import Predictions, evaluate_detections
from logo_tal.evaluation.errors import CATEGORIES, error_breakdown
from logo_tal.evaluation.io import load_ground_truth, load_predictions
from logo_tal.evaluation.plot import plot_timeline
from logo_tal.evaluation.report import per_class_rows
from logo_tal.protocol import THUMOS_TIOU

run_dir = Path(RUN_DIR)
fig_dir = Path(FIG_DIR) if FIG_DIR is not None else run_dir / "figures"
fig_dir.mkdir(parents=True, exist_ok=True)
gt = load_ground_truth(GT_JSON, subset=SUBSET)
preds = load_predictions(run_dir / "detections.json", gt)
print(
    f"{len(gt.video_ids)} videos, {len(gt)} ground-truth instances, {len(gt.class_names)} "
    f"classes; {len(preds)} detections"
    f" ({len(preds.unknown_videos)} videos and {len(preds.unknown_labels)} labels unknown to GT)"
)""",
    ),
    ("markdown", "## mAP, recomputed from the files\n\nCompared with the run's `metrics.json`."),
    (
        "code",
        """\
metrics_file = run_dir / "metrics.json"
saved = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
thresholds = saved["tiou_thresholds"] if saved else list(THUMOS_TIOU)
report = evaluate_detections(gt, preds, thresholds)
for t, m in zip(report.tiou_thresholds, report.mAP, strict=True):
    print(f"mAP@{t:g} = {100 * m:.2f}")
print(f"average mAP = {100 * report.average_mAP:.2f}")
if saved:
    print(f"metrics.json average mAP = {100 * saved['average_mAP']:.2f}")""",
    ),
    ("markdown", "## Timelines: ground truth (black) and the top-k detections"),
    (
        "code",
        """\
database = json.loads(Path(GT_JSON).read_text(encoding="utf-8-sig"))["database"]
results = json.loads((run_dir / "detections.json").read_text())["results"]
gt_count = np.bincount(gt.video, minlength=len(gt.video_ids))
shown_videos = [gt.video_ids[v] for v in np.argsort(-gt_count, kind="stable")[:NUM_VIDEOS]]
timeline_paths = []
for video_id in shown_videos:
    v = gt.video_ids.index(video_id)
    rows = np.flatnonzero(gt.video == v)
    truth = [
        {"segment": [gt.start[r], gt.end[r]], "label": gt.class_names[gt.label[r]]}
        for r in rows
    ]
    dets = sorted(results.get(video_id, []), key=lambda d: -d["score"])
    path = plot_timeline(
        fig_dir / f"timeline_{video_id}.png",
        video_id,
        float(database[video_id]["duration"]),
        dets,
        truth,
        top_k=TOP_K,
    )
    timeline_paths.append(path)
    show(path)""",
    ),
    ("markdown", "## Per-class AP (average over the thresholds)"),
    (
        "code",
        """\
header, class_rows = per_class_rows(report)
per_class_ap = {row[0]: row[-1] for row in class_rows if not np.isnan(row[-1])}
names = sorted(per_class_ap, key=per_class_ap.get)
fig, ax = plt.subplots(figsize=(7, 0.6 + 0.25 * len(names)))
ax.barh(names, [100 * per_class_ap[n] for n in names], color="tab:blue")
ax.set_xlabel("AP (%), mean over tIoU " + ", ".join(f"{t:g}" for t in report.tiou_thresholds))
ax.set_xlim(0, 100)
fig.tight_layout()
fig.savefig(fig_dir / "per_class_ap.png", dpi=100)
plt.close(fig)
show(fig_dir / "per_class_ap.png")""",
    ),
    (
        "markdown",
        """\
## False-positive breakdown

Each analysed detection gets one category at tIoU `TIOU` (`logo_tal.evaluation.errors`):
true positive (the AP's own greedy match), duplicate (its ground truth was already matched by a
higher score), wrong class, localisation error (`LOW_TIOU <= tIoU < TIOU` with its class), or
background. With `TOP_PER_GT` only the best `TOP_PER_GT x #GT` detections over the whole set
are analysed, since the low-scored tail is mostly background and weighs little in the AP.""",
    ),
    (
        "code",
        """\
if TOP_PER_GT is None:
    analysed = np.arange(len(preds))
else:
    budget = int(TOP_PER_GT * len(gt))
    analysed = np.sort(np.argsort(-preds.score, kind="stable")[:budget])
top = Predictions(
    video=preds.video[analysed],
    label=preds.label[analysed],
    start=preds.start[analysed],
    end=preds.end[analysed],
    score=preds.score[analysed],
)
breakdown = error_breakdown(gt, top, tiou=TIOU, low_tiou=LOW_TIOU)
error_counts = breakdown.counts
for name in CATEGORIES:
    share = 100 * error_counts[name] / max(len(top), 1)
    print(f"{name:<14}{error_counts[name]:>7}  ({share:.1f} %)")
fp = breakdown.false_positive_counts
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(list(fp), list(fp.values()), color=["tab:orange", "tab:red", "tab:purple", "tab:gray"])
ax.set_ylabel("false positives")
ax.set_title(f"{len(top)} detections analysed, tIoU {TIOU:g}")
fig.tight_layout()
fig.savefig(fig_dir / "false_positives.png", dpi=100)
plt.close(fig)
show(fig_dir / "false_positives.png")""",
    ),
]

NB02 = [
    (
        "markdown",
        """\
# Ablation tables (paper Tables 3-5)

Mean ± std over seeds of the ablation sweeps, in the shape of the paper's Table 3 (encoder),
Table 4 (regression head) and Table 5 (pyramid levels 3-7), with the paper's THUMOS14 numbers
beside them. Runs come from `make ablate-encoder`, `make ablate-head`, `make ablate-levels` (add
`hydra.sweeper.params.seed=1,2,3` or use `scripts/run_seeds.sh` for several seeds); jobs are
grouped by their overrides minus `seed` by `scripts/summarize_runs.py`.

**Synthetic-benchmark numbers are not comparable to the paper's THUMOS14 numbers**: only the
ordering of the rows can be compared. The gap column is shown only for THUMOS14 runs.""",
    ),
    (
        "parameters",
        """\
MULTIRUN_DIR = "logs"  # searched recursively for metrics.json (one sweep dir, or a parent)
REPO_ROOT = None  # None: the first parent of the working directory with scripts/summarize_runs.py
DATASET = None  # None: read from the runs' experiment=... override; "thumos" enables the gap""",
    ),
    ("code", SHOW),
    (
        "code",
        """\
import importlib.util
from pathlib import Path


def find_repo_root(start):
    for folder in [start, *start.parents]:
        if (folder / "scripts" / "summarize_runs.py").is_file():
            return folder
    raise FileNotFoundError(f"no scripts/summarize_runs.py above {start}; set REPO_ROOT")


repo_root = Path(REPO_ROOT) if REPO_ROOT else find_repo_root(Path.cwd().resolve())
spec = importlib.util.spec_from_file_location(
    "summarize_runs", repo_root / "scripts" / "summarize_runs.py"
)
summarize_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(summarize_runs)

groups = summarize_runs.collect(Path(MULTIRUN_DIR))
summary = summarize_runs.summarize(groups)
print(f"{sum(len(runs) for runs in groups.values())} runs in {len(groups)} configurations")""",
    ),
    (
        "code",
        """\
# The paper's THUMOS14 numbers (mAP %, tIoU 0.3 / 0.5 / 0.7 / average of 0.3:0.1:0.7).
PAPER = {
    "encoder": {
        "title": "Table 3: encoder (our sweep keeps the CLFF head for every encoder)",
        "key": "model/encoder",
        "rows": {
            "conv": ("(1) conv baseline", (77.3, 65.2, 40.0, 62.1)),
            "transformer": ("(2) + local self-attention", (82.1, 71.0, 43.9, 66.8)),
            "maxer": ("(not in the paper)", None),
            "logo": ("(3) LoGo + CLFF-Head", (83.9, 72.7, 46.4, 69.2)),
        },
        "note": "the paper's rows (1)-(2) and its '+LoGo' row (68.0) use no CLFF head",
    },
    "head": {
        "title": "Table 4: regression head (LoGo encoder)",
        "key": "model/head",
        "rows": {
            "actionformer": ("(1) ActionFormer head", (83.0, 72.9, 45.2, 68.0)),
            "trident": ("(2) TriDet head", (83.5, 72.5, 46.8, 68.8)),
            "clff": ("(3) CLFF-Head", (83.9, 72.7, 46.4, 69.2)),
        },
    },
    "levels": {
        "title": "Table 5: feature pyramid levels",
        "key": "model.num_levels",
        "rows": {
            "3": ("3 levels", (79.4, 65.4, 37.7, 61.8)),
            "4": ("4 levels", (82.1, 70.5, 43.9, 66.1)),
            "5": ("5 levels", (82.9, 70.8, 45.5, 67.8)),
            "6": ("6 levels", (83.9, 72.7, 46.4, 69.2)),
            "7": ("7 levels", (83.5, 72.1, 45.9, 68.8)),
        },
    },
}
PAPER_COLUMNS = ("mAP@0.3", "mAP@0.5", "mAP@0.7", "mAP_avg")
ABLATION_KEYS = {spec["key"] for spec in PAPER.values()}


def parse_config(config):
    \"\"\"'experiment=synthetic,model/encoder=conv' -> {'experiment': ..., ...}.\"\"\"
    pairs = [item.split("=", 1) for item in config.split(",") if "=" in item]
    return {key.lstrip("+~"): value for key, value in pairs}


configs = [parse_config(row["config"]) for row in summary]
experiments = {c.get("experiment") for c in configs}
dataset = DATASET or (experiments.pop() if len(experiments) == 1 else None)
comparable = dataset == "thumos"
print(f"dataset: {dataset or 'mixed/unknown'}; paper numbers comparable: {comparable}")


def build_table(spec):
    \"\"\"One row per configuration that varies only this table's knob, in the paper's order.\"\"\"
    order = list(spec["rows"])
    rows = []
    for row, config in zip(summary, configs, strict=True):
        value = config.get(spec["key"])
        others = ABLATION_KEYS - {spec["key"]}
        if value is None or any(k in config for k in others):
            continue
        paper_label, paper = spec["rows"].get(value, ("(not in the paper)", None))
        extra = {k: v for k, v in config.items() if k not in (spec["key"], "experiment", "sweep")}
        entry = {
            "setting": value,
            "paper_row": paper_label,
            "other_overrides": ",".join(f"{k}={v}" for k, v in extra.items()),
            "n": row["n"],
            "paper": dict(zip(PAPER_COLUMNS, paper, strict=True)) if paper else None,
        }
        for column in PAPER_COLUMNS:
            entry[column] = row.get(column, (float("nan"), float("nan")))
        mean_avg = entry["mAP_avg"][0]
        entry["gap_avg"] = mean_avg - paper[3] if comparable and paper else None
        rows.append(entry)
    rank = {v: i for i, v in enumerate(order)}
    return sorted(rows, key=lambda r: (rank.get(r["setting"], len(order)), r["setting"]))


def to_markdown(name, rows):
    spec = PAPER[name]
    paper_head = "paper" if comparable else "paper (THUMOS14, not comparable)"
    head = ["setting", "n", "0.3", "0.5", "0.7", "avg", f"{paper_head} 0.3/0.5/0.7/avg"]
    if comparable:
        head.append("gap avg")
    lines = [f"**{spec['title']}**", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for r in rows:
        cells = [r["setting"] + (f" ({r['other_overrides']})" if r["other_overrides"] else "")]
        cells.append(str(r["n"]))
        cells += [f"{m:.2f} ± {s:.2f}" for m, s in (r[c] for c in PAPER_COLUMNS)]
        paper = r["paper"]
        paper_text = " / ".join(f"{paper[c]:.1f}" for c in PAPER_COLUMNS) if paper else "-"
        cells.append(f"{r['paper_row']}: {paper_text}")
        if comparable:
            cells.append("-" if r["gap_avg"] is None else f"{r['gap_avg']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if spec.get("note"):
        lines += ["", f"Note: {spec['note']}."]
    if not comparable:
        lines += ["", "Synthetic (or unknown-dataset) runs: compare the ordering only."]
    return "\\n".join(lines)


tables = {name: build_table(spec) for name, spec in PAPER.items()}
markdown = {name: to_markdown(name, rows) for name, rows in tables.items()}
for name, rows in tables.items():
    if rows:
        show_markdown(markdown[name])
    else:
        print(f"{PAPER[name]['title']}: no runs found under {MULTIRUN_DIR}")""",
    ),
]


def _cell(kind: str, source: str, index: int, name: str) -> dict:
    # Cell ids must be stable so that regenerating gives identical files.
    cell_id = hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]
    lines = source.splitlines(keepends=True)
    if kind == "markdown":
        return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": lines}
    metadata = {"tags": ["parameters"]} if kind == "parameters" else {}
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": metadata,
        "outputs": [],
        "source": lines,
    }


def notebook(cells: list[tuple[str, str]], name: str) -> dict:
    return {
        "cells": [_cell(kind, src, i, name) for i, (kind, src) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


NOTEBOOKS = {
    "01_detections_vs_ground_truth.ipynb": NB01,
    "02_ablation_tables.ipynb": NB02,
}


def render(name: str) -> str:
    return json.dumps(notebook(NOTEBOOKS[name], name), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for name in NOTEBOOKS:
        (HERE / name).write_text(render(name), encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()

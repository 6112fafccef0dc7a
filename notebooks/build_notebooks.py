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
duplicate; `logo_tal.evaluation.error_analysis`, at tIoU `TIOU`).

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

from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.evaluation.ap import Predictions, evaluate_detections
from logo_tal.evaluation.error_analysis import CATEGORIES, error_breakdown
from logo_tal.evaluation.io import load_ground_truth, load_predictions
from logo_tal.evaluation.plot import plot_timeline
from logo_tal.evaluation.report import per_class_rows

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

Each analysed detection gets one category at tIoU `TIOU` (`logo_tal.evaluation.error_analysis`):
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

The runs of the ablation sweeps in the shape of the paper's Table 3 (encoder), Table 4
(regression head) and Table 5 (pyramid levels), mean ± std over seeds, the paper's THUMOS14
numbers beside them. Runs come from `sweep=ablate_encoder|ablate_head|ablate_levels|paper`
(`make ablate-encoder` ... on the synthetic data; add `seed=1,2,3` for several seeds). The
grouping and the statistics are `logo_tal.sweeps.summary`, the code that writes `summary.md` at
the end of every multirun; the paper's numbers are `logo_tal.sweeps.paper_results`. A run
belongs to a paper row when its model (encoder, head, pyramid levels) is that row's.

**Synthetic-benchmark numbers are not comparable to the paper's THUMOS14 numbers**: only the
ordering of the rows can be compared. The gap column is shown only for THUMOS14 runs.""",
    ),
    (
        "parameters",
        """\
MULTIRUN_DIR = "logs"  # searched recursively for job directories (one sweep dir, or a parent)
DATASET = None  # None: each run's data/experiment choice; "thumos": compare any runs anyway""",
    ),
    ("code", SHOW),
    (
        "code",
        """\
import math
from pathlib import Path

from logo_tal.core.protocol import MAP_AVG, map_key
from logo_tal.sweeps import paper_results as paper
from logo_tal.sweeps.summary import collect, summarize

summary = summarize(collect(Path(MULTIRUN_DIR)), MULTIRUN_DIR)
if DATASET is not None:
    for row in summary.rows:
        row.dataset = DATASET
        row.paper = paper.own_results(DATASET, row.model)
jobs = summary.jobs
print(
    f"{len(jobs)} jobs ({sum(j.problem is None for j in jobs)} with metrics.json) "
    f"in {len(summary.rows)} configurations"
)""",
    ),
    (
        "code",
        """\
TITLES = {
    3: "Table 3: encoder components (conv, + self-attention, + LoGo; then the CLFF head)",
    4: "Table 4: regression head (LoGo encoder)",
    5: "Table 5: feature pyramid levels (LoGo + CLFF)",
}
COLUMNS = (0.3, 0.5, 0.7, None)  # the columns Tables 3-5 print; None: the average


def stat(row, t):
    return row.stats.get(MAP_AVG if t is None else map_key(t), (math.nan, math.nan, 0))


def build_table(number):
    \"\"\"One entry per run configuration whose model is a row of the paper's table.\"\"\"
    entries = []
    for printed in paper.TABLES[number]:
        for row in summary.rows:
            if row.model != printed.model:
                continue
            comparable = row.dataset == paper.THUMOS
            mean = stat(row, None)[0]
            entries.append(
                {
                    "paper_row": printed.row,
                    "configuration": row.label,
                    "model": str(row.model),
                    "n": len(row.done),
                    "missing": len(row.missing),
                    "stats": {t: stat(row, t) for t in COLUMNS},
                    "paper": {t: printed.at(t) if t else printed.average for t in COLUMNS},
                    "gap_avg": mean - printed.average if comparable and row.done else None,
                }
            )
    return entries


def cell(mean, std, n):
    if n == 0:
        return "–"
    return f"{mean:.2f}" if n == 1 else f"{mean:.2f} ± {std:.2f}"


def to_markdown(number, entries):
    comparable = any(e["gap_avg"] is not None for e in entries)
    paper_head = "paper" if comparable else "paper (THUMOS14, not comparable)"
    head = ["paper row", "run configuration", "n", "0.3", "0.5", "0.7", "avg"]
    head.append(f"{paper_head} 0.3/0.5/0.7/avg")
    if comparable:
        head.append("gap avg")
    lines = [f"**{TITLES[number]}**", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for e in entries:
        missing = f" ({e['missing']} missing)" if e["missing"] else ""
        cells = [e["paper_row"], f"`{e['configuration']}`", f"{e['n']}{missing}"]
        cells += [cell(*e["stats"][t]) for t in COLUMNS]
        printed = [e["paper"][t] for t in COLUMNS]
        cells.append(" / ".join("–" if v is None else f"{v:.1f}" for v in printed))
        if comparable:
            cells.append("–" if e["gap_avg"] is None else f"{e['gap_avg']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if not comparable:
        lines += ["", "Synthetic (or unknown-dataset) runs: compare the ordering only."]
    return "\\n".join(lines)


tables = {number: build_table(number) for number in TITLES}
markdown = {number: to_markdown(number, entries) for number, entries in tables.items()}
for number, entries in tables.items():
    if entries:
        show_markdown(markdown[number])
    else:
        print(f"{TITLES[number]}: no runs found under {MULTIRUN_DIR}")
table_models = {r.model for number in TITLES for r in paper.TABLES[number]}
beyond = [row.label for row in summary.rows if row.model not in table_models]
if beyond:
    print("beyond the paper's Tables 3-5:", ", ".join(beyond))""",
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

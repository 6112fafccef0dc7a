"""Summarise a multirun: one row per configuration, mean ± std over seeds, the paper beside it.

A job is a directory with ``.hydra/overrides.yaml`` (Hydra writes it before the job runs); its
result is ``metrics.json`` (fractions; docs/contracts.md). A configuration is a job's overrides
minus the pooled keys (``seed``) and minus every ``key=value`` that all jobs share, so the row
names say what the sweep varied. The model a row ran (``model/encoder`` and ``model/head``
choices from ``.hydra/hydra.yaml``, ``model.num_levels`` from ``.hydra/config.yaml``) and its
dataset (the ``data`` or ``experiment`` choice) select the paper's numbers
(:mod:`logo_tal.sweeps.paper_results`); only THUMOS14 and ActivityNet-1.3 runs get them.

Jobs without a usable ``metrics.json`` stay in the summary as missing: failed (the callback
records the error in ``job_status.json``), no metrics.json, or not started (a job that the
sweep's ``multirun.yaml`` expands to, as Hydra's BasicSweeper does, but no directory holds).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from logo_tal.core.protocol import MAP_AVG, map_key, threshold_key
from logo_tal.sweeps.paper_results import (
    DATASET_NAMES,
    Model,
    PaperResult,
    cited_caveat,
    cited_results,
    own_results,
)
from logo_tal.utils.config_access import select

METRICS_FILE = "metrics.json"  # written by every run (docs/decisions.md D76)
STATUS_FILE = "job_status.json"  # written by the callback when a job fails
MULTIRUN_FILE = "multirun.yaml"  # written by Hydra's sweeper into the sweep dir
SUMMARY_MD, SUMMARY_CSV, SUMMARY_PNG = "summary.md", "summary.csv", "summary.png"
POOLED = ("seed",)
DEFAULT_RECIPE = "tridet"  # runs from before conf/recipe/ existed trained with TriDet's
ALL_ALIKE = "(all jobs alike)"
# Keys that say where a machine keeps its files, not what a job trains: a committed summary
# must not carry one machine's paths (issue 21), so the common line leaves them out.
MACHINE_KEYS = ("paths.",)


@dataclass
class Job:
    """One job of a sweep, run or only expected."""

    name: str
    overrides: tuple[str, ...]
    num: int | None = None
    path: Path | None = None
    metrics: dict[str, Any] | None = None
    problem: str | None = None  # None: metrics.json read; else why the job has no result
    dataset: str | None = None
    model: Model | None = None
    seed: str | None = None
    recipe: str | None = None  # the training recipe (conf/recipe/), None where no job ran


@dataclass
class Row:
    """One configuration and its jobs."""

    label: str
    jobs: list[Job]
    dataset: str | None
    model: Model | None
    stats: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    paper: list[PaperResult] = field(default_factory=list)
    cited: list[PaperResult] = field(default_factory=list)

    @property
    def done(self) -> list[Job]:
        return [j for j in self.jobs if j.problem is None]

    @property
    def recipe(self) -> str:
        """The recipe(s) its jobs trained with (docs/decisions.md D124)."""
        return ", ".join(sorted({j.recipe for j in self.jobs if j.recipe})) or "–"

    @property
    def missing(self) -> list[Job]:
        return [j for j in self.jobs if j.problem is not None]

    @property
    def comparable(self) -> bool:
        """The paper reports this dataset (THUMOS14 or ActivityNet-1.3)."""
        return self.dataset in DATASET_NAMES

    @property
    def beyond_paper(self) -> bool:
        """The paper has no experiment with this model on this dataset."""
        return self.comparable and self.model is not None and not self.paper


@dataclass
class Summary:
    root: Path
    rows: list[Row]
    common: tuple[str, ...]
    thresholds: tuple[float, ...]
    pooled: tuple[str, ...]
    # Failed or unstarted jobs run again elsewhere under the folder (same model, dataset, seed).
    superseded: list[Job] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return [j for row in self.rows for j in row.jobs]

    @property
    def comparable(self) -> bool:
        return any(row.comparable for row in self.rows)


# -- reading jobs ---------------------------------------------------------------------------


def _key(override: str) -> str:
    """``+seed=1`` -> ``seed``: the key of an override, without Hydra's prefixes."""
    return override.split("=", 1)[0].lstrip("+~")


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _dataset(choices: Mapping[str, Any], task_name: Any) -> str | None:
    """``thumos`` / ``anet`` from the data or experiment choice (or the task name), else it."""
    for name in (choices.get("data"), choices.get("experiment"), task_name):
        if name in DATASET_NAMES:
            return str(name)
    name = choices.get("data") or choices.get("experiment") or task_name
    return None if name is None else str(name)


def _model(choices: Mapping[str, Any], config: Any) -> Model | None:
    encoder, head = choices.get("model/encoder"), choices.get("model/head")
    levels = select(config, "model.num_levels")
    if encoder is None or head is None or not isinstance(levels, int):
        return None
    return Model(str(encoder), str(head), levels)


def _read_metrics(job_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    status = job_dir / STATUS_FILE
    path = job_dir / METRICS_FILE
    if status.is_file():
        try:
            error = json.loads(status.read_text()).get("error", "")
        except (OSError, ValueError):
            error = ""
        return None, f"failed: {error}".rstrip(": ")
    if not path.is_file():
        return None, "no metrics.json (failed, killed or still running)"
    try:
        metrics = json.loads(path.read_text())
        float(metrics["average_mAP"])
        return metrics, None
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"unreadable metrics.json ({type(err).__name__})"


def read_job(job_dir: Path, root: Path) -> Job:
    """A job from its directory: overrides, number, metrics, dataset and model."""
    hydra_dir = job_dir / ".hydra"
    overrides = _load_yaml(hydra_dir / "overrides.yaml") or []
    hydra_cfg = select(_load_yaml(hydra_dir / "hydra.yaml"), "hydra") or {}
    config = _load_yaml(hydra_dir / "config.yaml") or {}
    choices = select(hydra_cfg, "runtime.choices") or {}
    num = select(hydra_cfg, "job.num")
    if not isinstance(num, int):
        prefix = job_dir.name.split("_", 1)[0]
        num = int(prefix) if prefix.isdigit() else None
    metrics, problem = _read_metrics(job_dir)
    seeds = [o.split("=", 1)[1] for o in overrides if _key(o) == "seed" and "=" in o]
    seed = seeds[0] if seeds else config.get("seed") if isinstance(config, Mapping) else None
    return Job(
        name=job_dir.relative_to(root).as_posix() if job_dir != root else job_dir.name,
        overrides=tuple(str(o) for o in overrides),
        num=num,
        path=job_dir,
        metrics=metrics,
        problem=problem,
        dataset=_dataset(choices, select(config, "task_name")),
        model=_model(choices, config),
        seed=None if seed is None else str(seed),
        recipe=str(choices.get("recipe") or DEFAULT_RECIPE) if choices else None,
    )


def expected_jobs(
    params: Mapping[str, Any] | None, task_overrides: Sequence[str]
) -> list[list[str]]:
    """The override list of every job, in launch order, as Hydra's BasicSweeper expands them.

    Args:
        params: ``hydra.sweeper.params`` (``{key: "a,b,c"}``), applied first.
        task_overrides: the command line's overrides (``hydra.overrides.task``).

    Returns:
        One list of ``key=value`` strings per job; job ``i`` is ``hydra.job.num == i``.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(task_overrides)
    parsed = OverridesParser.create().parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _expected_from_multirun(sweep_dir: Path) -> list[list[str]] | None:
    """The jobs that ``sweep_dir/multirun.yaml`` launches; None for other sweepers."""
    hydra_cfg = select(_load_yaml(sweep_dir / MULTIRUN_FILE), "hydra")
    target = str(select(hydra_cfg, "sweeper._target_") or "")
    if not target.endswith("BasicSweeper"):
        return None
    try:
        return expected_jobs(
            select(hydra_cfg, "sweeper.params"), select(hydra_cfg, "overrides.task") or []
        )
    except Exception:  # an unparsable sweep must not hide the jobs that did run
        return None


def collect(root: str | Path) -> list[Job]:
    """Every job under ``root``: each ``.hydra`` job directory (a plain run directory with a
    metrics.json counts as one job), plus the jobs each ``multirun.yaml`` expects but no
    directory holds. Sorted by sweep directory, then job number."""
    root = Path(root)
    jobs = [read_job(p.parent.parent, root) for p in sorted(root.rglob(".hydra/overrides.yaml"))]
    seen = {j.path for j in jobs}
    for path in sorted(root.rglob(METRICS_FILE)):
        if path.parent not in seen and not (path.parent / ".hydra").exists():
            job = read_job(path.parent, root)
            job.overrides = (f"run={job.name}",)
            jobs.append(job)
    for multirun in sorted(root.rglob(MULTIRUN_FILE)):
        sweep_dir = multirun.parent
        expected = _expected_from_multirun(sweep_dir)
        ran = {j.overrides for j in jobs if j.path and sweep_dir in j.path.parents}
        for num, overrides in enumerate(expected or []):
            if tuple(overrides) not in ran:
                rel = sweep_dir.relative_to(root).as_posix() + "/" if sweep_dir != root else ""
                name = f"{rel}#{num}"
                job = Job(name, tuple(overrides), num=num, problem="not started")
                job.path = sweep_dir / f"#{num}"  # sorts with its sweep; never created
                job.seed = next((o.split("=", 1)[1] for o in overrides if _key(o) == "seed"), None)
                jobs.append(job)
    jobs.sort(
        key=lambda j: (
            str(j.path.parent) if j.path else "",
            j.num if j.num is not None else 1 << 30,
            j.name,
        )
    )
    return jobs


# -- grouping and statistics ----------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std, n) of the finite values; std is NaN below two values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return math.nan, math.nan, 0
    std = statistics.stdev(finite) if len(finite) > 1 else math.nan
    return statistics.fmean(finite), std, len(finite)


def _thresholds(jobs: Sequence[Job]) -> tuple[float, ...]:
    found: dict[str, float] = {}
    for job in jobs:
        for t in (job.metrics or {}).get("tiou_thresholds", []):
            found.setdefault(threshold_key(t), float(t))
    return tuple(sorted(found.values()))


def _value(metrics: Mapping[str, Any], t: float | None) -> float | None:
    """Percent mAP at ``t`` (None: the average) from one metrics.json."""
    if t is None:
        value = metrics.get("average_mAP")
    else:
        value = metrics.get(map_key(t))
        if value is None:
            keys = [threshold_key(x) for x in metrics.get("tiou_thresholds", [])]
            mAP = metrics.get("mAP", [])
            i = keys.index(threshold_key(t)) if threshold_key(t) in keys else None
            value = mAP[i] if i is not None and i < len(mAP) else None
    return None if value is None else 100.0 * float(value)


def summarize(jobs: Sequence[Job], root: str | Path, pooled: Sequence[str] = POOLED) -> Summary:
    """Group ``jobs`` into configurations and compute mean ± std per threshold and average."""
    pooled = tuple(pooled)
    kept = [tuple(o for o in j.overrides if _key(o) not in pooled) for j in jobs]
    common = tuple(o for o in kept[0] if all(o in k for k in kept)) if kept else ()
    thresholds = _thresholds(jobs)
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job, overrides in zip(jobs, kept, strict=True):
        groups.setdefault(tuple(o for o in overrides if o not in common), []).append(job)
    datasets = {j.dataset for j in jobs if j.dataset is not None}
    only = datasets.pop() if len(datasets) == 1 else None  # for rows where no job ran
    rows = []
    for label, members in groups.items():
        known = [j for j in members if j.model is not None or j.dataset is not None]
        first = known[0] if known else Job("", (), dataset=only)
        rows.append(Row(",".join(label) or ALL_ALIKE, members, first.dataset, first.model))
    superseded = _drop_superseded(rows)
    rows = [row for row in rows if row.jobs]
    for row in rows:
        done = [j.metrics for j in row.done]
        for t in (*thresholds, None):
            key = MAP_AVG if t is None else map_key(t)
            row.stats[key] = mean_std([_value(m, t) for m in done])
        row.paper = own_results(row.dataset, row.model)
        row.cited = [] if row.paper else cited_results(row.dataset, row.model)
    return Summary(Path(root), rows, common, thresholds, pooled, superseded)


def _drop_superseded(rows: list[Row]) -> list[Job]:
    """Take out of ``rows`` every failed or unstarted job that another job ran with the same
    configuration and seed (a rerun, or the same model under other overrides, e.g. a removed
    config file); return them. A configuration that ran is never shown as missing."""

    def identity(row: Row) -> tuple:
        return ("model", row.dataset, row.model) if row.model else ("label", row.label)

    ran: dict[tuple, set] = {}
    for row in rows:
        ran.setdefault(identity(row), set()).update(j.seed for j in row.done)
    superseded = []
    for row in rows:
        again = [j for j in row.missing if j.seed in ran.get(identity(row), set())]
        row.jobs = [j for j in row.jobs if j not in again]
        superseded += again
    return superseded


# -- rendering ------------------------------------------------------------------------------


def _fmt(mean: float, std: float, n: int) -> str:
    if n == 0:
        return "–"
    return f"{mean:.2f}" if n == 1 or math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def paper_groups(results: Sequence[PaperResult]) -> list[list[PaperResult]]:
    """Rows that agree (same average, same value at every threshold both print) merged, the
    row printing the most thresholds first; rows that disagree stay apart."""
    groups: list[list[PaperResult]] = []
    for r in sorted(results, key=lambda r: -sum(v is not None for v in r.mAP)):
        for group in groups:
            lead = group[0]
            shared = [t for t in r.tiou if r.at(t) is not None and lead.at(t) is not None]
            if lead.average == r.average and all(lead.at(t) == r.at(t) for t in shared):
                group.append(r)
                break
        else:
            groups.append([r])
    return groups


def _paper_text(group: Sequence[PaperResult]) -> str:
    lead = group[0]
    values = ", ".join(
        f"{t:g}: {v:.1f}" for t, v in zip(lead.tiou, lead.mAP, strict=True) if v is not None
    )
    return f"{values}; avg {lead.average:.1f} ({'; '.join(r.source for r in group)})"


def paper_cells(row: Row) -> tuple[str, str]:
    """(average, detail) of the paper column for one row."""
    if not row.comparable:
        return "–", "–"
    if row.model is None:
        return "–", "unknown: no job of this row ran"
    if row.paper:
        groups = paper_groups(row.paper)
        average = " / ".join(dict.fromkeys(f"{g[0].average:.1f}" for g in groups))
        return average, "<br>".join(_paper_text(g) for g in groups)
    detail = "**beyond the paper**"
    if row.cited:
        detail += "; cited for comparison: " + "; ".join(
            f"{r.source}: avg {r.average:.1f} ({cited_caveat(r)})" for r in row.cited
        )
    return "–", detail


def _seeds(row: Row) -> str:
    """The seeds of the jobs with metrics (the missing ones are listed apart)."""
    seeds = [j.seed for j in row.done if j.seed is not None]
    return ",".join(dict.fromkeys(seeds)) or "–"


def _sweep_name(multirun: Path) -> str:
    """A multirun's own name: its ``task_name``, else its ``sweep=`` choice, else its folder."""
    cfg = _load_yaml(multirun)
    name = select(cfg, "task_name")
    if not name:
        task = select(cfg, "hydra.overrides.task") or []
        name = next((o.split("=", 1)[1] for o in task if _key(o) == "sweep"), None)
    return str(name or multirun.parent.name)


def sweep_title(root: Path) -> str:
    """The summary's title, the sweeps' own names: the name of every multirun under ``root``,
    with the start time when ``root`` is one multirun; a folder without one is titled with its
    own name. Never the path of the machine it ran on."""
    names = sorted({_sweep_name(m) for m in root.rglob(MULTIRUN_FILE)})
    if not names:
        return root.name or str(root)
    title = ", ".join(names)
    one = (root / MULTIRUN_FILE).exists() and root.name != title
    return f"{title} ({root.name})" if one else title


def to_markdown(summary: Summary) -> str:
    """The summary as Markdown: a header, the table, the missing jobs."""
    jobs = summary.jobs
    missing = [j for j in jobs if j.problem is not None]
    datasets = sorted({DATASET_NAMES.get(r.dataset, r.dataset) for r in summary.rows if r.dataset})
    lines = [
        f"# Sweep summary: {sweep_title(summary.root)}",
        "",
        f"`{summary.root.name}/`: {len(jobs)} jobs, {len(jobs) - len(missing)} with "
        f"metrics.json, {len(missing)} missing. Dataset: {', '.join(datasets) or 'unknown'}.",
        "",
        "mAP (%) per configuration: mean ± sample std over its jobs (pooled over "
        f"{', '.join(summary.pooled) or 'nothing'}); n = jobs with metrics.json.",
    ]
    shown = [o for o in summary.common if not _key(o).startswith(MACHINE_KEYS)]
    if shown:
        lines += ["", "Common to every job: " + ", ".join(f"`{o}`" for o in shown) + "."]
    if len(shown) < len(summary.common):
        lines += ["", "Machine paths (`paths.*`) common to every job are left out."]
    splits = sorted({str(j.metrics.get("split", "?")) for j in jobs if j.metrics})
    if splits and splits != ["test"]:
        lines += ["", f"Split evaluated: {', '.join(splits)} (not only the test split)."]
    head = ["configuration", "n", "seeds", "recipe", *[f"{t:g}" for t in summary.thresholds]]
    head.append("avg")
    if summary.comparable:
        head += ["paper avg", "paper (tIoU: mAP; source)"]
    lines += [
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---:", "---", "---"] + ["---:"] * (len(head) - 4)) + "|",
    ]
    if summary.comparable:  # the paper's detail reads left to right
        lines[-1] = lines[-1][: -len("---:|")] + "---|"
    for row in summary.rows:
        n = f"{len(row.done)}" + (f" ({len(row.missing)} missing)" if row.missing else "")
        cells = [f"`{row.label}`", n, _seeds(row), row.recipe]
        cells += [_fmt(*row.stats[map_key(t)]) for t in summary.thresholds]
        cells.append(f"**{_fmt(*row.stats[MAP_AVG])}**")
        if summary.comparable:
            cells += list(paper_cells(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _paper_note(summary)]
    if summary.superseded:
        names = ", ".join(f"`{j.name}`" for j in summary.superseded)
        lines += [
            "",
            f"{len(summary.superseded)} job(s) that failed or never started ran again with the "
            f"same model, dataset and seed in this folder, so they are not missing: {names}.",
        ]
    if missing:
        lines += ["", "## Missing jobs", "", "| job | configuration | status |", "|---|---|---|"]
        label = {id(j): r.label for r in summary.rows for j in r.jobs}
        lines += [f"| `{j.name}` | `{label[id(j)]}` | {j.problem} |" for j in missing]
    return "\n".join(lines) + "\n"


def _paper_note(summary: Summary) -> str:
    if not summary.comparable:
        return (
            "No paper column: the paper reports THUMOS14 and ActivityNet-1.3 only, and these "
            "runs are on another dataset (compare the ordering of the rows at most)."
        )
    return (
        "Paper column: the paper's own rows for the same model (encoder, head, pyramid levels) "
        "on the same dataset (logo_tal.sweeps.paper_results: Tables 1-2 'Ours', ablation "
        "Tables 3-5 on THUMOS14); other overrides are not compared. 'beyond the paper': the "
        "paper has no such experiment."
    )


def to_csv(summary: Summary) -> str:
    """One line per configuration: statistics, the paper's numbers, the missing jobs."""
    ts = summary.thresholds
    header = ["configuration", "n", "missing", "seeds", "recipe", "dataset", "encoder", "head"]
    header.append("num_levels")
    for key in [*(map_key(t) for t in ts), MAP_AVG]:
        header += [f"{key}_mean", f"{key}_std"]
    header += [f"paper_{map_key(t)}" for t in ts]
    header += ["paper_mAP_avg", "paper_source", "beyond_paper", "missing_jobs"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in summary.rows:
        model = row.model
        line: list[Any] = [
            row.label,
            len(row.done),
            len(row.missing),
            _seeds(row),
            row.recipe,
            row.dataset or "",
        ]
        line += [model.encoder, model.head, model.num_levels] if model else ["", "", ""]
        for key in [*(map_key(t) for t in ts), MAP_AVG]:
            mean, std, _ = row.stats[key]
            line += [
                "" if math.isnan(mean) else f"{mean:.4f}",
                "" if math.isnan(std) else f"{std:.4f}",
            ]
        lead = paper_groups(row.paper)[0][0] if row.paper else None
        line += ["" if lead is None or lead.at(t) is None else lead.at(t) for t in ts]
        line += ["" if lead is None else lead.average, "; ".join(r.source for r in row.paper)]
        line.append(str(row.beyond_paper).lower() if row.comparable else "")
        line.append("; ".join(f"{j.name}: {j.problem}" for j in row.missing))
        writer.writerow(line)
    return out.getvalue()


def _plot_row(ax: Any, i: int, row: Row, labelled: set[str]) -> None:
    """One configuration at x = i: its jobs, their mean ± std, the paper's average."""

    def label(name: str) -> str | None:  # each legend entry once
        if name in labelled:
            return None
        labelled.add(name)
        return name

    values = [_value(j.metrics, None) for j in row.done]
    offsets = [0.08 * (k - (len(values) - 1) / 2) for k in range(len(values))]
    if values:
        xs = [i + o for o in offsets]
        ax.scatter(
            xs, values, s=14, color="tab:blue", alpha=0.6, zorder=2, label=label("job (seed)")
        )
    mean, std, n = row.stats[MAP_AVG]
    if n:
        err = [0.0 if math.isnan(std) else std]
        style = {"fmt": "o", "color": "black", "capsize": 4, "zorder": 3}
        ax.errorbar([i + 0.25], [mean], yerr=err, label=label("mean ± std"), **style)
    else:
        place = {"xycoords": ("data", "axes fraction"), "ha": "center", "color": "tab:red"}
        ax.annotate("missing", (i, 0.02), **place)
    if row.paper:
        style = {"marker": "x", "s": 60, "color": "tab:red", "zorder": 4}
        ax.scatter([i + 0.25], [row.paper[0].average], label=label("paper"), **style)


def plot(summary: Summary, path: str | Path) -> Path:
    """Average mAP per configuration: each job as a point, mean ± std as an error bar, the
    paper's average as a red cross where there is one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = summary.rows
    fig = Figure(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labelled: set[str] = set()
    for i, row in enumerate(rows):
        _plot_row(ax, i, row, labelled)
    ax.set_xlim(-0.5, len(rows) - 0.25)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.label for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("average mAP (%)")
    ax.set_title(f"{sweep_title(summary.root)}\naverage mAP per configuration", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if labelled:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(root: str | Path, pooled: Sequence[str] = POOLED) -> dict[str, Path]:
    """Summarise every job under ``root`` into ``root/summary.{md,csv,png}``.

    Args:
        root: a sweep directory (or any directory above job directories).
        pooled: override keys whose values are pooled into one row (``seed``).

    Returns:
        ``{"md": path, "csv": path, "png": path}``.
    """
    root = Path(root)
    summary = summarize(collect(root), root, pooled)
    paths = {"md": root / SUMMARY_MD, "csv": root / SUMMARY_CSV, "png": root / SUMMARY_PNG}
    _write_atomic(paths["md"], to_markdown(summary))
    _write_atomic(paths["csv"], to_csv(summary))
    tmp = root / f".summary.{os.getpid()}.png"
    plot(summary, tmp)
    os.replace(tmp, paths["png"])
    return paths


def write_failure(job_dir: str | Path, error: BaseException | str) -> Path:
    """Record why a job failed (``job_status.json``), so the summary can say it."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    path = Path(job_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"status": "FAILED", "error": text.splitlines()[0][:300] if text else ""})
        + "\n"
    )
    return path

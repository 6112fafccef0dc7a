"""The ablation sweeps are the paper's tables, and every multirun leaves a summary.

Job lists come from the composed sweep configs, expanded by Hydra's own BasicSweeper code; the
multirun tests run the CLI's Hydra entry point on the tiny synthetic data; the summary's
statistics are checked on hand-made job directories with hand-computed values.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from helpers.lit_config import (
    CONF_DIR,
    TINY,
    compose_config,
    one_torch_thread,  # noqa: F401  (autouse fixture: the runs set one torch thread)
)
from logo_tal.sweeps import paper_results as paper
from logo_tal.sweeps.callback import SweepSummaryCallback
from logo_tal.sweeps.compare import (
    compare,
    metric_name,
    t_two_sided_p,
    welch,
    write_comparisons,
)
from logo_tal.sweeps.summary import (
    collect,
    expected_jobs,
    summarize,
    sweep_title,
    write_summary,
)
from logo_tal.train import main as train_main

REPO = Path(__file__).resolve().parents[1]

# -- the sweeps are the paper's tables ------------------------------------------------------


def _jobs(sweep: str, *extra: str) -> list[list[str]]:
    """The jobs of ``sweep=NAME`` on THUMOS14, as Hydra's BasicSweeper launches them."""
    base = ["experiment=thumos", f"sweep={sweep}"]
    cfg = compose_config("train", base, hydra_node=True)
    return expected_jobs(cfg.hydra.sweeper.params, [*base, *extra])


def _model(job: list[str]) -> paper.Model:
    """The (encoder, head, levels) a job runs, from its composed config."""
    cfg = compose_config("train", job, hydra_node=True)
    choices = cfg.hydra.runtime.choices
    return paper.Model(choices["model/encoder"], choices["model/head"], cfg.model.num_levels)


def _table_models(*tables: int) -> list[paper.Model]:
    models = [r.model for t in tables for r in paper.TABLES[t]]
    return list(dict.fromkeys(models))  # distinct, first appearance


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sweep", "tables"),
    [
        ("ablate_encoder", (3,)),
        ("ablate_head", (4,)),
        ("ablate_levels", (5,)),
        ("paper", (3, 4)),
    ],
)
def test_sweep_jobs_are_the_paper_rows(sweep, tables):
    jobs = _jobs(sweep)
    models = [_model(job) for job in jobs]
    expected = _table_models(*tables)
    if sweep == "paper":  # every distinct (encoder, head) pair once, in any order
        assert sorted(models, key=str) == sorted(expected, key=str)
        assert len(models) == len(set(models)) == 5
    else:
        assert models == expected


@pytest.mark.slow
def test_paper_and_levels_sweeps_together_cover_every_configuration_of_tables_3_to_5():
    models = {_model(job) for job in _jobs("paper") + _jobs("ablate_levels")}
    assert models == set(_table_models(3, 4, 5))
    assert not list((Path(CONF_DIR) / "ablation").glob("*_l[0-9]*.yaml"))  # depth: num_levels


@pytest.mark.slow
def test_table3_rows_are_encoder_head_pairs_not_a_product():
    jobs = _jobs("ablate_encoder")
    assert [o for job in jobs for o in job if o.startswith("ablation=")] == [
        "ablation=conv_af",
        "ablation=sa_af",
        "ablation=logo_af",
        "ablation=logo_clff",
    ]
    assert [(m.encoder, m.head) for m in map(_model, jobs)] == [
        ("conv", "actionformer"),
        ("transformer", "actionformer"),
        ("logo", "actionformer"),
        ("logo", "clff"),
    ]


@pytest.mark.slow
def test_seeds_on_the_command_line_multiply_the_rows():
    jobs = _jobs("ablate_head", "seed=1,2,3")
    assert len(jobs) == 9
    pairs = [
        (
            next(o for o in j if o.startswith("model/head=")),
            next(o for o in j if o.startswith("seed=")),
        )
        for j in jobs
    ]
    heads = ["actionformer", "trident", "clff"]
    assert pairs == [(f"model/head={h}", f"seed={s}") for h in heads for s in (1, 2, 3)]


@pytest.mark.slow
def test_maxer_row_by_override_and_experiment_combines():
    jobs = _jobs("ablate_encoder", "ablation=conv_af,sa_af,logo_af,logo_clff,maxer_af")
    assert _model(jobs[-1]) == paper.Model("maxer", "actionformer", 6)
    # experiment=anet keeps its own settings under an ablation row.
    cfg = compose_config("train", ["experiment=anet", "ablation=conv_af"], hydra_node=True)
    assert cfg.hydra.runtime.choices["model/encoder"] == "conv"
    assert cfg.model.embed_dim == 256 and cfg.data.features.input_dim == 512


@pytest.mark.slow
def test_every_ablation_option_is_in_a_table_or_marked_beyond():
    for path in sorted((CONF_DIR / "ablation").glob("*.yaml")):
        model = _model(["experiment=thumos", f"ablation={path.stem}"])
        rows = paper.own_results("thumos", model)
        text = path.read_text()
        assert rows or "Beyond the paper" in text, path.name
        for row in rows:
            assert f"Table {row.table}" in text, (path.name, row.source)


# -- the paper's numbers ----------------------------------------------------------------------


def test_paper_numbers_as_printed():
    assert [r.average for r in paper.TABLE3] == [62.1, 66.8, 68.0, 69.2]
    assert [r.average for r in paper.TABLE4] == [68.0, 68.8, 69.2]
    assert [r.average for r in paper.TABLE5] == [61.8, 66.1, 67.8, 69.2, 68.8]
    ours = paper.own_results("thumos", paper.LOGO)
    assert [r.source for r in ours] == [
        "Table 1 Ours (I3D)",
        "Table 3 row 4 (LoGo + CLFF head)",
        "Table 4 row 3 (CLFF head)",
        "Table 5 6 levels",
    ]
    assert ours[0].mAP == (83.9, 80.3, 72.7, 62.5, 46.4)
    assert paper.own_results("anet", paper.LOGO)[0].mAP == (54.8, 37.8, 8.5)
    # Table 3 row 3 and Table 4 row 1 are the same model with different per-threshold values.
    logo_af = paper.own_results("thumos", paper.Model("logo", "actionformer"))
    assert [(r.at(0.3), r.average) for r in logo_af] == [(83.5, 68.0), (83.0, 68.0)]
    for table in paper.TABLES.values():  # each printed average is the mean of the row's columns
        for r in table:
            if r.table == 1 and None not in r.mAP:
                assert sum(r.mAP) / len(r.mAP) == pytest.approx(r.average, abs=0.1), r.source


# -- the summary on hand-made jobs ------------------------------------------------------------

THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7]
# Average mAP (fractions) of each configuration's seeds 1, 2, 3; "failed": the job raised,
# None: it never started (the sweep was stopped).
AVERAGES = {
    "ablation=conv_af": (0.60, 0.62, 0.64),
    "ablation=logo_clff": (0.50, 0.53, "failed"),
    "ablation=maxer_af": (0.66, None, None),
}
MODELS = {
    "ablation=conv_af": ("conv", "actionformer"),
    "ablation=logo_clff": ("logo", "clff"),
    "ablation=maxer_af": ("maxer", "actionformer"),
}
LABELS = list(AVERAGES)


def _job(sweep: Path, num: int, overrides: list[str], dataset: str, model, metrics) -> Path:
    """A job directory as Hydra and the run leave it."""
    job = sweep / f"{num}_{','.join(overrides)}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    choices = {"data": dataset, "experiment": dataset}
    choices.update({"model/encoder": model[0], "model/head": model[1]})
    hydra = {"hydra": {"job": {"num": num}, "runtime": {"choices": choices}}}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    config = {"task_name": "ablate_encoder", "seed": 0, "model": {"num_levels": 6}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    return job


def _sweep(root: Path, dataset: str = "thumos") -> Path:
    """A stopped sweep: 3 configurations x 3 seeds (AVERAGES); per threshold, mAP = avg + 0.1,
    avg + 0.05, ..., avg - 0.1, so the average is avg."""
    sweep = root / "multiruns" / "2025-01-01_00-00-00"
    sweep.mkdir(parents=True)
    command = [f"experiment={dataset}", "sweep=ablate_encoder", "seed=1,2,3"]
    basic = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    sweeper = {"_target_": basic, "params": {"ablation": "conv_af,logo_clff,maxer_af"}}
    multirun = {"hydra": {"sweeper": sweeper, "overrides": {"task": command}}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    num = 0
    for config, averages in AVERAGES.items():
        for seed, avg in zip((1, 2, 3), averages, strict=True):
            overrides = [config, f"experiment={dataset}", "sweep=ablate_encoder", f"seed={seed}"]
            if avg is None:
                break
            metrics = None
            if avg != "failed":
                m_ap = [avg + 0.1 - 0.05 * i for i in range(5)]
                metrics = {"tiou_thresholds": THRESHOLDS, "mAP": m_ap, "average_mAP": avg}
                metrics["split"] = "test"
            job = _job(sweep, num, overrides, dataset, MODELS[config], metrics)
            if avg == "failed":
                error = {"status": "FAILED", "error": "RuntimeError: boom"}
                (job / "job_status.json").write_text(json.dumps(error))
            num += 1
    return sweep


def test_summary_mean_std_n_by_hand(tmp_path):
    sweep = _sweep(tmp_path)
    summary = summarize(collect(sweep), sweep)
    assert summary.common == ("experiment=thumos", "sweep=ablate_encoder")
    assert [r.label for r in summary.rows] == LABELS
    conv, logo, maxer = summary.rows
    # conv_af: 60, 62, 64 -> mean 62, sample std sqrt(((-2)^2 + 0 + 2^2) / 2) = 2.
    assert conv.stats["mAP_avg"] == pytest.approx((62.0, 2.0, 3))
    assert conv.stats["mAP@0.3"] == pytest.approx((72.0, 2.0, 3))
    assert conv.stats["mAP@0.7"] == pytest.approx((52.0, 2.0, 3))
    # logo_clff: seeds 1 and 2 only (50, 53): mean 51.5, std sqrt(2 * 1.5^2) = 2.1213.
    assert logo.stats["mAP_avg"] == pytest.approx((51.5, 2.1213203, 2))
    assert [j.problem for j in logo.missing] == ["failed: RuntimeError: boom"]
    # maxer_af: one job (66, no std), two never started.
    mean, std, n = maxer.stats["mAP_avg"]
    assert (mean, n) == (pytest.approx(66.0), 1) and std != std  # NaN
    assert [j.problem for j in maxer.missing] == ["not started"] * 2
    assert [j.seed for j in maxer.jobs] == ["1", "2", "3"]


def test_summary_files_with_the_paper_column_for_thumos(tmp_path):
    sweep = _sweep(tmp_path)
    paths = write_summary(sweep)
    md = paths["md"].read_text()
    table = [line for line in md.split("## Missing")[0].splitlines() if line.startswith("| `")]
    assert len(table) == 3
    conv, logo, maxer = table
    assert "62.00 ± 2.00" in conv and "| 3 | 1,2,3 |" in conv
    # conv + ActionFormer head on THUMOS14 = Table 3 row 1: 62.1.
    assert "| 62.1 |" in conv and "Table 3 row 1" in conv and "0.3: 77.3" in conv
    assert "51.50 ± 2.12" in logo and "2 (1 missing)" in logo
    assert "| 69.2 |" in logo and "Table 1 Ours" in logo and "Table 5 6 levels" in logo
    assert "beyond the paper" in maxer and "TemporalMaxer" in maxer and "1 (2 missing)" in maxer
    assert "| 1,2,3 | tridet |" in conv  # the recipe each row trained with (D124)
    # The cited number's own recipe is named beside it: not this project's run of the model.
    assert "TemporalMaxer's own recipe with its SimOTA assigner" in maxer
    assert "| 66.00 |" in maxer.replace("**", "")  # one job: no std
    missing = md.split("## Missing jobs")[1]
    assert "failed: RuntimeError: boom" in missing and missing.count("not started") == 2
    assert "5_ablation=logo_clff" in missing and "| `#7` |" in missing and "| `#8` |" in missing
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["configuration"] for r in rows] == [
        "ablation=conv_af",
        "ablation=logo_clff",
        "ablation=maxer_af",
    ]
    assert float(rows[0]["mAP_avg_mean"]) == pytest.approx(62.0)
    assert float(rows[0]["mAP_avg_std"]) == pytest.approx(2.0)
    assert rows[0]["paper_mAP_avg"] == "62.1" and rows[0]["paper_mAP@0.4"] == ""
    assert rows[1]["paper_mAP@0.4"] == "80.3"  # Table 1 prints every threshold
    assert rows[2]["beyond_paper"] == "true" and rows[2]["missing"] == "2"
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_summary_is_titled_with_the_sweeps_own_name_never_a_machine_path(tmp_path):
    sweep = _sweep(tmp_path)  # its multirun.yaml has no task_name: the sweep= choice names it
    paths = write_summary(sweep)
    assert paths["md"].read_text().splitlines()[0] == (
        "# Sweep summary: ablate_encoder (2025-01-01_00-00-00)"
    )
    assert str(tmp_path) not in paths["md"].read_text()
    # A path override every job shares is where this machine kept the data: left out.
    data_dir = f"paths.data_dir={tmp_path}/data"
    for job in sweep.glob("*/.hydra/overrides.yaml"):
        job.write_text(yaml.safe_dump([*yaml.safe_load(job.read_text()), data_dir]))
    multirun = yaml.safe_load((sweep / "multirun.yaml").read_text())
    multirun["hydra"]["overrides"]["task"].append(data_dir)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    md = write_summary(sweep)["md"].read_text()
    assert str(tmp_path) not in md and "`paths.*`" in md
    assert "Common to every job: `experiment=thumos`, `sweep=ablate_encoder`." in md
    multirun = yaml.safe_load((sweep / "multirun.yaml").read_text())
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({**multirun, "task_name": "paper"}))
    assert sweep_title(sweep) == "paper (2025-01-01_00-00-00)"
    # A log root pooling several sweeps: their names; a folder without any: its own name.
    other = tmp_path / "b" / "multiruns" / "t"
    other.mkdir(parents=True)
    (other / "multirun.yaml").write_text(yaml.safe_dump({"task_name": "paper3"}))
    assert sweep_title(tmp_path) == "paper, paper3"
    assert sweep_title(tmp_path / "b" / "multiruns" / "t" / "nothing") == "nothing"


def test_a_configuration_that_ran_is_never_shown_as_missing(tmp_path):
    """The failed logo_clff seed-3 job ran again under other overrides (the same model): it is
    neither in the table's missing count nor in the missing jobs, but named as run again."""
    _sweep(tmp_path)
    metrics = {"tiou_thresholds": THRESHOLDS, "mAP": [0.5] * 5, "average_mAP": 0.5}
    again = ["ablation=logo_clff_old_name", "experiment=thumos", "seed=3"]
    _job(tmp_path / "rerun", 0, again, "thumos", ("logo", "clff"), metrics)
    summary = summarize(collect(tmp_path), tmp_path)
    rows = {r.label.split(",")[0]: r for r in summary.rows}
    assert not rows["ablation=logo_clff"].missing and len(rows["ablation=logo_clff"].done) == 2
    assert len(rows["ablation=logo_clff_old_name"].done) == 1
    assert [j.name for j in summary.superseded] == [
        "multiruns/2025-01-01_00-00-00/5_ablation=logo_clff,experiment=thumos,"
        "sweep=ablate_encoder,seed=3"
    ]
    md = write_summary(tmp_path)["md"].read_text()
    assert "ran again with the same model, dataset and seed" in md
    assert "## Missing jobs" in md and "5_ablation=logo_clff" not in md.split("## Missing jobs")[1]
    # The maxer_af jobs that never started ran nowhere else: they stay missing.
    assert rows["ablation=maxer_af"].missing


def test_summary_without_paper_column_on_synthetic(tmp_path):
    sweep = _sweep(tmp_path, dataset="synthetic")
    md = write_summary(sweep)["md"].read_text()
    assert "paper avg" not in md and "No paper column" in md and "beyond" not in md


def test_summarize_runs_script_uses_the_same_code(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    spec = importlib.util.spec_from_file_location(
        "summarize_runs", REPO / "scripts" / "summarize_runs.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path)]) == 0  # a directory above the sweep works too
    out = capsys.readouterr().out
    assert "62.00 ± 2.00" in out and (tmp_path / "summary.md").is_file()
    assert script.main([str(sweep), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["stats"]["mAP_avg"]["mean"] == pytest.approx(62.0)
    assert rows[2]["beyond_paper"] is True
    assert script.main([str(tmp_path / "nope")]) == 2


# -- pairwise comparisons -------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 7.0, -4.0])
def test_t_test_p_against_closed_forms(t):
    # df = 1 is the Cauchy distribution, df = 2 has a closed form too.
    assert t_two_sided_p(t, 1.0) == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)), abs=1e-12)
    assert t_two_sided_p(t, 2.0) == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), abs=1e-12)


@pytest.mark.parametrize(("t", "df"), [(12.7062, 1), (4.3027, 2), (2.7764, 4), (2.0423, 30)])
def test_t_test_p_at_textbook_critical_values(t, df):
    assert t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-5)  # two-sided 5 % points


def test_welch_by_hand():
    # (62, 2, 3) vs (51.5, sqrt(4.5), 2): variances of the means 4/3 and 9/4.
    t, df, p = welch((62.0, 2.0, 3), (51.5, math.sqrt(4.5), 2))
    assert t == pytest.approx(10.5 / math.sqrt(4 / 3 + 9 / 4))
    assert df == pytest.approx((4 / 3 + 9 / 4) ** 2 / ((4 / 3) ** 2 / 2 + (9 / 4) ** 2 / 1))
    assert 0.0 < p < 0.05
    assert all(math.isnan(v) for v in welch((1.0, 0.0, 3), (2.0, 0.0, 3)))


def test_compare_pairs_rows_with_two_jobs_or_more(tmp_path):
    sweep = _sweep(tmp_path)
    summary = summarize(collect(sweep), sweep)
    # maxer_af finished one job: no spread, so it is in no pair.
    (pair,) = compare(summary)
    assert (pair.first, pair.second) == ("ablation=conv_af", "ablation=logo_clff")
    assert pair.difference == pytest.approx(10.5)  # 62 - 51.5
    assert pair.spread == pytest.approx(2.0 + math.sqrt(4.5))
    assert pair.exceeds_spread
    (strict,) = compare(summary, metric_name("0.7"))  # every job's 0.7 is its avg - 10
    assert strict.metric == "mAP@0.7" and strict.difference == pytest.approx(10.5)
    with pytest.raises(ValueError, match="unknown metric 'best'"):
        metric_name("best")


def test_summarize_runs_compare_writes_the_table(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    path = write_comparisons(sweep)  # default: the average and the strictest threshold
    text = path.read_text()
    assert "## mAP_avg" in text and "## mAP@0.7" in text
    assert "| `ablation=conv_af` | `ablation=logo_clff` | **+10.50** | 4.12 | 5.55 |" in text
    spec = importlib.util.spec_from_file_location(
        "summarize_runs", REPO / "scripts" / "summarize_runs.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(sweep), "--compare", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "## mAP@0.5" in out and "## mAP_avg" not in out
    assert script.main([str(sweep), "--compare", "best"]) == 2


def test_callback_records_a_failed_job_and_ignores_single_runs(tmp_path):
    sweep = _sweep(tmp_path)
    job = sweep / "6_extra"
    job.mkdir()
    config = OmegaConf.create(
        {
            "hydra": {
                "mode": "MULTIRUN",
                "sweep": {"dir": str(sweep)},
                "runtime": {"output_dir": str(job)},
            }
        }
    )
    ret = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("bad config"))
    SweepSummaryCallback().on_job_end(config, ret)
    assert json.loads((job / "job_status.json").read_text())["error"] == "ValueError: bad config"
    assert (sweep / "summary.md").is_file()
    single = tmp_path / "single"
    single.mkdir()
    config.hydra.mode = "RUN"
    config.hydra.sweep.dir = str(single)
    SweepSummaryCallback().on_job_end(config, JobReturn(status=JobStatus.COMPLETED))
    assert not (single / "summary.md").exists()


# -- real multiruns on the tiny data ----------------------------------------------------------


def _tiny_experiment(conf: Path) -> None:
    """TINY as an experiment file, so the job directory names stay short (<= 255 chars)."""
    values = OmegaConf.from_dotlist([o for o in TINY if not o.startswith("experiment=")])
    text = "# @package _global_\ndefaults:\n  - synthetic\n  - _self_\n" + OmegaConf.to_yaml(
        values
    )
    (conf / "experiment").mkdir(parents=True)
    (conf / "experiment" / "tiny.yaml").write_text(text)


def _multirun(tmp_path: Path, monkeypatch, *overrides: str, flag: str | None = None):
    """Run ``python -m logo_tal.train [flag] ... overrides`` through the Hydra entry point in
    this process (torch is imported once); returns (exit code, the sweep directory)."""
    conf = tmp_path / "conf"
    _tiny_experiment(conf)
    monkeypatch.setenv("LOGO_TAL_ROOT", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    argv = [
        "logo_tal.train",
        # Called as a module, not as __main__: hydra.main's relative config_path would be read
        # as a package path, so the same conf/ is named absolutely.
        f"--config-path={CONF_DIR}",
        *([flag] if flag else []),  # argparse wants flags before the overrides
        f"hydra.searchpath=[file://{conf}]",
        "hydra/job_logging=none",  # leave this process's logging alone
        "hydra/hydra_logging=none",
        "experiment=tiny",
        "trainer.fast_dev_run=true",
        f"paths.data_dir={tmp_path / 'data'}",
        *overrides,
    ]
    monkeypatch.setattr(sys, "argv", argv)
    code = 0
    try:
        # The exit status: 2 when a job failed on bad input (the other jobs still ran).
        code = train_main()
    except SystemExit as exit_:  # Hydra's own exits (e.g. --help)
        code = exit_.code
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # as a fresh process would leave it
    (sweep,) = (tmp_path / "logs").glob("*/multiruns/*")
    return code, sweep


def _summary_rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "summary.csv").open()))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sweep", "extra", "labels"),
    [
        (
            "ablate_encoder",
            (),
            ["ablation=conv_af", "ablation=sa_af", "ablation=logo_af", "ablation=logo_clff"],
        ),
        ("ablate_head", (), ["model/head=actionformer", "model/head=trident", "model/head=clff"]),
        # Level 6 of a 7-level pyramid regresses >= 128 steps: it needs 512-step windows.
        (
            "ablate_levels",
            ("data.max_seq_len=512",),
            [f"model.num_levels={n}" for n in range(3, 8)],
        ),
    ],
)
def test_multirun_leaves_a_summary_with_one_row_per_table_row(
    tmp_path, monkeypatch, sweep, extra, labels
):
    code, sweep_dir = _multirun(tmp_path, monkeypatch, f"sweep={sweep}", *extra)
    assert code == 0
    rows = _summary_rows(sweep_dir)
    assert [r["configuration"] for r in rows] == labels
    assert all(r["n"] == "1" and r["missing"] == "0" for r in rows)
    md = (sweep_dir / "summary.md").read_text()
    assert md.count("\n| `") == len(labels) and "Missing jobs" not in md
    assert (sweep_dir / "summary.png").is_file()


@pytest.mark.slow
def test_failed_job_is_listed_missing_in_the_summary(tmp_path, monkeypatch):
    # 9 levels need a window divisible by 256: that job fails its start-up check.
    code, sweep_dir = _multirun(tmp_path, monkeypatch, "model.num_levels=3,9", flag="--multirun")
    assert code == 2
    rows = _summary_rows(sweep_dir)
    assert [(r["configuration"], r["n"], r["missing"]) for r in rows] == [
        ("model.num_levels=3", "1", "0"),
        ("model.num_levels=9", "0", "1"),
    ]
    assert "ConfigError" in rows[1]["missing_jobs"]


def test_every_cited_result_says_how_it_differs_from_this_projects_run():
    for result in paper.CITED:
        caveat = paper.cited_caveat(result)
        assert "own recipe" in caveat or "settings" in caveat
        assert "here:" in caveat  # and what this project runs instead


@pytest.mark.slow
def test_table3_rows_compose_under_actionformers_recipe():
    """`sweep=ablate_encoder recipe=actionformer`: rows 1-2 as the paper's sources trained them."""
    jobs = _jobs("ablate_encoder", "recipe=actionformer")
    assert len(jobs) == 4 and all("recipe=actionformer" in job for job in jobs)
    for job in jobs:
        cfg = compose_config("train", job, hydra_node=True)
        assert cfg.hydra.runtime.choices.recipe == "actionformer"
        assert cfg.model.detector.encoder.stem_drop_path == 0.1 and cfg.trainer.max_epochs == 35

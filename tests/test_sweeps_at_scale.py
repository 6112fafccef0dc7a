"""Sweeps at scale: launcher and search configs, the jobs' W&B group and config, the W&B dashboard
of a test, the sweep summary run, and real multiruns through submitit, joblib and Optuna."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from helpers.lit_config import (
    REPO_ROOT,
    TINY,
    compose_config,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    path_overrides,
    tiny_train_config,
)
from helpers.wandb_offline import offline_runs
from logo_tal.sweeps.wandb_table import WandbSweepSummary, read_table
from logo_tal.train import train
from logo_tal.utils import sweeps
from logo_tal.utils.hparams import flatten, hparams_for

# One epoch of one batch, tested on the 4 tiny test videos: a real logger (fast_dev_run swaps
# every logger for a dummy one).
# Launchers, W&B offline runs and Optuna trials: part of `make test`, not test-fast.
pytestmark = pytest.mark.slow

ONE_STEP = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "module.warmup_epochs=0"]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_submitit = pytest.mark.skipif(not _has("submitit"), reason="pip install -e '.[sweeps]'")
needs_joblib = pytest.mark.skipif(not _has("joblib"), reason="pip install -e '.[sweeps]'")
needs_optuna = pytest.mark.skipif(not _has("optuna"), reason="pip install -e '.[sweeps]'")


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """W&B offline, with its caches and staging area under tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))
    return tmp_path


@pytest.fixture
def hydra_runtime():
    """Set Hydra's runtime config for the test (as a launcher does in a job), then clear it."""

    def set_config(cfg):
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield set_config
    HydraConfig.instance().cfg = None


# ------------------------------------------------------------------ configs


@pytest.mark.parametrize(
    ("launcher", "target"),
    [("slurm", "SlurmLauncher"), ("local", "LocalLauncher"), ("parallel", "JoblibLauncher")],
)
def test_launcher_configs_compose(launcher, target, tmp_path):
    pytest.importorskip("submitit" if launcher != "parallel" else "joblib")
    cfg = compose_config("train", [f"hydra/launcher={launcher}", *path_overrides(tmp_path)], True)
    node = cfg.hydra.launcher
    assert node._target_.endswith(target)
    if launcher == "slurm":
        assert node.gpus_per_node == 1 and node.tasks_per_node == 1 and node.nodes == 1
        assert node.max_num_timeout > 0  # time-outs are requeued
        for key in ("partition", "timeout_min", "mem_gb", "array_parallelism"):
            assert key in node
        # The job dir is <sweep dir>/<num>_<overrides>: nothing in it changes on a requeue.
        assert OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"] == (
            "${hydra.job.num}_${safe_name:${hydra.job.override_dirname}}"
        )
    if launcher == "parallel":
        assert node.n_jobs == 2


def test_a_requeued_job_resolves_the_same_run_dir(tmp_path, hydra_runtime):
    """What submitit does on a requeue: the pickled config of the job is loaded again, later.

    The sweep dir's ${now:...} comes from the resolver cache that travels with the pickle
    (Hydra copies it into every job's config), the subdir from the job's number and overrides.
    """
    from hydra.core.utils import setup_globals

    setup_globals()  # registers ${now:}
    cfg = compose_config("train", ["experiment=synthetic", "seed=2"], hydra_node=True)
    with open_dict(cfg):
        cfg.hydra.job.num = 1
        cfg.hydra.job.override_dirname = "seed=2"
    hydra_runtime(cfg)
    first = f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}"
    time.sleep(1.1)  # ${now:%H-%M-%S} would move
    requeued = pickle.loads(pickle.dumps(cfg))
    assert f"{requeued.hydra.sweep.dir}/{requeued.hydra.sweep.subdir}" == first
    assert first.endswith("/1_seed=2")


@needs_optuna
def test_optuna_search_composes(tmp_path):
    cfg = compose_config(
        "train", ["experiment=synthetic", "hparams_search=optuna", *path_overrides(tmp_path)], True
    )
    assert cfg.hydra.mode == RunMode.MULTIRUN
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert str(sweeper.direction) in ("maximize", "Direction.maximize")
    assert set(sweeper.params) == {
        "module.optimizer.lr",
        "module.weight_decay",
        "module.criterion.iou_weight_power",
    }
    assert cfg.optimized_metric == "val/mAP_avg"
    assert cfg.task_name == "synthetic"  # the experiment keeps its name and directories


@needs_joblib
def test_threads_per_job_follows_the_launcher(tmp_path, hydra_runtime, monkeypatch):
    monkeypatch.setattr(sweeps, "usable_cores", lambda: 8)
    assert sweeps.threads_per_job() is None  # no Hydra runtime: torch's default
    cfg = hydra_runtime(compose_config("train", path_overrides(tmp_path), hydra_node=True))
    assert sweeps.threads_per_job() is None  # the basic launcher runs one job at a time
    assert cfg.torch_threads is None
    for n_jobs, threads in [(2, 4), (3, 2), (8, 1), (16, 1), (-1, 1)]:
        overrides = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={n_jobs}"]
        cfg = compose_config("train", [*overrides, *path_overrides(tmp_path)], hydra_node=True)
        hydra_runtime(cfg)
        assert sweeps.threads_per_job() == threads
        assert cfg.torch_threads == threads  # conf/train.yaml's default


def test_group_and_name_of_multirun_jobs(tmp_path, hydra_runtime):
    cfg = compose_config("train", ["logger=wandb", *path_overrides(tmp_path)], hydra_node=True)
    assert sweeps.sweep_group("x") == "" and sweeps.job_name("x") == "x"
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(tmp_path / "multiruns" / "2026-01-02_03-04-05")
        cfg.hydra.job.num = 3
        cfg.hydra.job.override_dirname = "model/head=trident,seed=2"
    hydra_runtime(cfg)
    assert cfg.logger.wandb.group == "train-2026-01-02_03-04-05"
    assert cfg.logger.wandb.name == "3_model-head=trident,seed=2"
    assert cfg.logger.wandb.job_type == "train"


def test_wandb_gets_flat_dotted_config_keys():
    hparams = {"cfg": {"model": {"embed_dim": 16, "x": {}}, "tags": ["a"]}, "run": {"seed": 1}}
    hparams["params/total"] = 10
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, 2]}) == {"a.b.c": 1, "d": [1, 2]}

    class WandbLogger:  # matched by class name: no wandb import needed
        pass

    flat = hparams_for(WandbLogger(), hparams)
    assert flat == {
        "model.embed_dim": 16,
        "model.x": {},
        "tags": ["a"],
        "run_info.seed": 1,
        "params/total": 10,
    }
    assert hparams_for(object(), hparams) == hparams  # CSV and others: unchanged


# ------------------------------------------------------------------ W&B


def test_wandb_run_has_group_flat_config_tables_images_and_artifact(wandb_offline):
    tmp_path = wandb_offline
    cfg = tiny_train_config(
        tmp_path,
        *ONE_STEP,
        "logger=wandb",
        "logger.wandb.group=sweep-g",
        "callbacks.wandb_dashboard.num_timelines=2",
        "callbacks.wandb_dashboard.artifact_detections=true",
    )
    train(cfg)
    (run,) = offline_runs(tmp_path / "run" / "wandb")
    assert run.group == "sweep-g" and run.job_type == "train"
    assert set(cfg.tags) <= set(run.tags)
    # The resolved config as flat dotted keys, not one nested entry.
    assert run.config["model.embed_dim"] == 16
    assert run.config["module.optimizer.lr"] == cfg.module.optimizer.lr
    assert run.config["run_info.seed"] == cfg.seed and "cfg" not in run.config
    per_class = run.table("test/per_class_AP")
    assert per_class["columns"][:2] == ["class", "num_gt"] and len(per_class["data"]) == 3
    per_tiou = run.table("test/mAP_per_tIoU")
    assert [row[0] for row in per_tiou["data"]] == ["0.3", "0.4", "0.5", "0.6", "0.7", "avg"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert per_tiou["data"][-1][1] == pytest.approx(saved["average_mAP"])
    assert len(run.files("media/images/**/*.png")) == 2
    assert len(list((tmp_path / "run" / "timelines").glob("*.png"))) == 2
    assert ("detections", f"detections-{run.path.name.split('-')[-1]}") in run.artifacts


def _multirun_config(tmp_path: Path, sweep_dir: Path, *overrides: str):
    cfg = compose_config(
        "train",
        [*path_overrides(tmp_path), f"hydra.sweep.dir={sweep_dir}", *overrides],
        hydra_node=True,
    )
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    return cfg


def test_sweep_summary_logged_as_a_table_in_the_sweeps_group(wandb_offline, hydra_runtime):
    tmp_path = wandb_offline
    sweep_dir = tmp_path / "multiruns" / "2026-01-02_03-04-05"
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "summary.csv").write_text("config,runs,mAP_avg\nseed=1,1,0.5\nseed=2,1,\n")
    cfg = hydra_runtime(_multirun_config(tmp_path, sweep_dir, "logger=wandb"))
    WandbSweepSummary().on_multirun_end(cfg)
    (run,) = offline_runs(sweep_dir / "wandb")
    assert run.group == "train-2026-01-02_03-04-05" == sweeps.sweep_group("train")
    assert run.job_type == "sweep-summary"
    table = run.table("sweep/summary")
    assert table["columns"] == ["config", "runs", "mAP_avg"]
    assert table["data"] == [["seed=1", 1.0, 0.5], ["seed=2", 1.0, None]]


def test_sweep_summary_skipped_without_file_or_wandb(wandb_offline, hydra_runtime, caplog):
    tmp_path = wandb_offline
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    cfg = hydra_runtime(_multirun_config(tmp_path, sweep_dir, "logger=wandb"))
    with caplog.at_level("INFO"):
        WandbSweepSummary().on_multirun_end(cfg)  # no summary.csv
    assert "no " in caplog.text and not (sweep_dir / "wandb").exists()
    (sweep_dir / "summary.csv").write_text("a\n1\n")
    cfg = hydra_runtime(_multirun_config(tmp_path, sweep_dir, "logger=csv"))
    WandbSweepSummary().on_multirun_end(cfg)  # CSV logging only
    assert not (sweep_dir / "wandb").exists()
    assert read_table(sweep_dir / "summary.csv") == (["a"], [[1.0]])


# ------------------------------------------------------------------ real multiruns


# Always excluded from job directory names (conf/hydra/default.yaml).
NAME_EXCLUDED = ["sweep", "experiment", "ckpt_path", "logger", "paths.data_dir", "hydra.sweep.dir"]


def _cli(tmp_path: Path, fixed: list[str], swept: list[str]) -> subprocess.CompletedProcess:
    """``python -m logo_tal.train -m`` on the tiny data, logs under tmp_path/logs; job
    directories named by the ``swept`` overrides only (``0_seed=1``)."""
    env = {
        **os.environ,
        "LOGO_TAL_ROOT": str(tmp_path),
        "WANDB_MODE": "offline",
        "WANDB_DATA_DIR": str(tmp_path / "wandb-home"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-home"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-home"),
        # helpers.* for the stand-in summary callback.
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    keys = [o.split("=")[0] for o in [*TINY, *fixed] if not o.startswith(("hydra", "+hydra"))]
    exclude = f"hydra.job.config.override_dirname.exclude_keys=[{','.join(NAME_EXCLUDED + keys)}]"
    cmd = [sys.executable, "-m", "logo_tal.train", "-m", *TINY, *fixed, exclude, *swept]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _job_dirs(tmp_path: Path, task: str) -> list[Path]:
    (sweep,) = (tmp_path / "logs" / task / "multiruns").iterdir()
    return sorted(j for j in sweep.iterdir() if j.is_dir() and j.name[0].isdigit())


@pytest.mark.slow
@needs_submitit
def test_submitit_local_sweep_runs_two_jobs(tmp_path):
    _cli(tmp_path, ["hydra/launcher=local", "debug=fast_dev_run"], ["seed=1,2"])
    jobs = _job_dirs(tmp_path, "debug")
    assert [j.name for j in jobs] == ["0_seed=1", "1_seed=2"]
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["split"] == "test"
    # submitit's own logs, one folder per job, beside the job directories.
    assert len(list((jobs[0].parent / ".submitit").rglob("*_result.pkl"))) == 2


@pytest.mark.slow
@needs_joblib
def test_parallel_sweep_shares_cores_and_a_wandb_group(tmp_path):
    """Two jobs at once (joblib), W&B offline: each job gets cores // 2 threads, both runs are in
    one group, and a summary written by a stand-in of the sweep-summary callback is logged."""
    fixed = [
        "hydra/launcher=parallel",
        "torch_threads=${logo_tal.threads_per_job:}",  # experiment=synthetic pins 1
        "logger=wandb",
        "task_name=par",
        *ONE_STEP,
        # Added after the W&B summary callback, so its end hook runs before it (D116).
        "+hydra.callbacks.stand_in._target_=helpers.sweep_summary_stub.WriteSummary",
    ]
    _cli(tmp_path, fixed, ["seed=1,2"])
    jobs = _job_dirs(tmp_path, "par")
    assert len(jobs) == 2
    expected = max(1, sweeps.usable_cores() // 2)
    for job in jobs:
        assert OmegaConf.load(job / "config.yaml").torch_threads == expected
    runs = offline_runs(jobs[0].parent)
    by_type = {t: [r for r in runs if r.job_type == t] for t in ("train", "sweep-summary")}
    assert len(by_type["train"]) == 2 and len(by_type["sweep-summary"]) == 1
    groups = {r.group for r in runs}
    assert groups == {f"par-{jobs[0].parent.name}"}
    assert [j.name for j in jobs] == ["0_seed=1", "1_seed=2"]
    assert sorted(r.name for r in by_type["train"]) == [j.name for j in jobs]
    summary = by_type["sweep-summary"][0].table("sweep/summary")
    # The sweep's summary.csv: the two seeds pooled into one configuration row, n = 2.
    (row,) = summary["data"]
    assert row[summary["columns"].index("n")] in (2, "2")


@pytest.mark.slow
@needs_optuna
def test_optuna_search_runs_three_trials(tmp_path):
    fixed = [
        "hparams_search=optuna",
        "debug=fast_dev_run",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
    ]
    _cli(tmp_path, fixed, [])
    jobs = _job_dirs(tmp_path, "debug")
    assert len(jobs) == 3
    for job in jobs:  # named by the sampled values only
        assert job.name.split("_", 1)[1].startswith("module.criterion.iou_weight_power=")
        assert "module.optimizer.lr=" in job.name and "module.weight_decay=" in job.name
    result = OmegaConf.load(jobs[0].parent / "optimization_results.yaml")
    assert set(result.best_params) == {
        "module.optimizer.lr",
        "module.weight_decay",
        "module.criterion.iou_weight_power",
    }
    assert isinstance(result.best_value, float)

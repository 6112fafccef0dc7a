"""The SLURM path against a real cluster (scripts/local_slurm.sh up: one node, this machine).

Skipped with the reason where no SLURM partition answers (tests/conftest.py). The jobs run on
CPU: `hydra.launcher.gpus_per_node=0`, one core and 2 GB each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers.lit_config import REPO_ROOT, TINY, compose_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CPU_JOB = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=local",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=15",
]


def _executor(overrides: list[str], folder: Path):
    """A submitit executor with the launcher config's parameters, as the launcher builds it."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose_config("train", [*overrides, f"hydra.sweep.dir={folder}"], hydra_node=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    params.pop("submitit_folder")
    executor = submitit.AutoExecutor(
        cluster="slurm", folder=folder, slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return executor


def test_the_launcher_config_submits_a_job_with_its_sbatch_options(tmp_path):
    """The keys of conf/hydra/launcher/slurm.yaml are ones submitit accepts, they become the
    sbatch options docs/clusters.md lists, and SLURM runs the job."""
    import operator

    job = _executor([*CPU_JOB, "hydra.job.name=train"], tmp_path).submit(operator.add, 1, 2)
    assert job.result() == 3
    script = job.paths.submission_file.read_text()
    for option in ("--partition=local", "--time=15", "--mem=2GB", "--cpus-per-task=1"):
        assert f"#SBATCH {option}\n" in script
    assert "#SBATCH --signal=USR2@120" in script  # the requeue signal (docs/decisions.md D112)


def _train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "LOGO_TAL_ROOT": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "logo_tal.train", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _tiny(tmp_path: Path, data: Path) -> list[str]:
    return [
        *TINY,
        f"paths.data_dir={data}",
        f"paths.log_dir={tmp_path / 'logs'}",
        "trainer.deterministic=true",
        "logger=csv",
    ]


def test_a_sweep_runs_through_the_slurm_launcher_on_cpu(tmp_path):
    sweep = tmp_path / "sweep"
    result = _train(
        "-m",
        *CPU_JOB,
        *_tiny(tmp_path, tmp_path / "data"),
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=job${hydra.job.num}",  # the tiny overrides make too long a name
        "seed=1,2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(sweep.glob("job*"))
    assert [r.name for r in runs] == ["job0", "job1"]
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert 0.0 <= metrics["average_mAP"] <= 1.0
    assert list((sweep / ".submitit").iterdir())  # submitit's logs and pickles


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear in {seconds} s"
        time.sleep(1)

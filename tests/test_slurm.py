"""The SLURM path against a real cluster (scripts/local_slurm.sh up: one node, this machine).

Skipped with the reason where no SLURM partition answers (tests/conftest.py). The jobs run on
CPU: `hydra.launcher.gpus_per_node=0`, one core and 2 GB each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers.lit_config import REPO_ROOT, TINY, compose_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _one_slurm_test_at_a_time():
    """The one-node cluster has this machine's cores, which the test workers share too: one
    SLURM test at a time, so that a job starts when submitted and the time-limit test gets its
    minute of running."""
    from filelock import FileLock

    with FileLock(Path(tempfile.gettempdir()) / "logo-tal-slurm-tests.lock"):
        yield


@pytest.fixture
def sweeps():
    """Background sweeps started by a test; stopped, with their jobs, however the test ends."""
    started: list[tuple[subprocess.Popen, Path]] = []
    yield started
    for proc, sweep in started:
        if proc.poll() is None:
            proc.kill()
        for folder in (sweep / ".submitit").glob("*"):
            if folder.is_dir():
                subprocess.run(["scancel", folder.name.split("_")[0]], capture_output=True)


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


def _start_sweep(sweeps: list, tmp_path: Path, sweep: Path, *overrides: str) -> subprocess.Popen:
    """A multirun through `hydra/launcher=slurm`, in the background (it waits for its jobs)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "LOGO_TAL_ROOT": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "logo_tal.train",
        "-m",
        *CPU_JOB,
        *_tiny(tmp_path, tmp_path / "data"),
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=job${hydra.job.num}",
        "ckpt_path=auto",
        *overrides,
    ]
    log = (tmp_path / "sweep.log").open("w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    sweeps.append((proc, sweep))
    return proc


def _task_id(sweep: Path, num: int | None, seconds: float = 300) -> str:
    """The SLURM id of job ``num`` of the sweep's array (submitit's folder ``ID_NUM``), or of
    its only job (``num=None``: folder ``ID``)."""
    deadline = time.monotonic() + seconds
    while True:
        folders = [p.name for p in (sweep / ".submitit").glob("*") if p.is_dir()]
        # An array task's own id is not its folder's: requeueing the array's id would requeue
        # every task.
        found = [f for f in folders if f.endswith(f"_{num}") or (num is None and f.isdigit())]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "the sweep submitted no job"
        time.sleep(1)


def _scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=True).stdout


def _release_held(job: str) -> bool:
    """SLURM holds a requeued job for two minutes (Reason=BeginTime); start it now instead."""
    state = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True
    ).stdout.split()
    if state[:2] == ["PENDING", "BeginTime"]:
        # slurmd refuses a launch whose credential is no newer than the requeue's revocation
        # ("Job credential revoked": the job fails); released at once, the backfill scheduler
        # can start it within the same second.
        time.sleep(2)
        _scontrol("update", f"jobid={job}", "StartTime=now")
        return True
    return False


def _finish(proc: subprocess.Popen, tmp_path: Path, job: str, seconds: float) -> int:
    """Wait for the sweep, releasing its job whenever a requeue holds it; the releases."""
    deadline, releases = time.monotonic() + seconds, 0
    while proc.poll() is None:
        assert time.monotonic() < deadline, (tmp_path / "sweep.log").read_text()[-3000:]
        releases += _release_held(job)
        time.sleep(1)
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    return releases


def _results(run: Path) -> dict:
    names = ("metrics.json", "detections.json")
    return {name: json.loads((run / name).read_text()) for name in names}


def _restarts(job: str) -> int:
    return int(_scontrol("show", "job", job).split("Restarts=")[1].split()[0])


def test_a_job_requeued_after_its_first_checkpoint_ends_as_an_uninterrupted_one(tmp_path, sweeps):
    """`scontrol requeue` once job 0 has written its first checkpoint: SLURM stops it (SIGTERM,
    then SIGKILL) and runs the batch script again; submitit runs the same pickled job in the
    same directory and `ckpt_path=auto` resumes. Job 1, the same run uninterrupted, is the
    reference. Both load data with two DataLoader workers (docs/decisions.md D101)."""
    sweep = tmp_path / "sweep"
    proc = _start_sweep(
        sweeps,
        tmp_path,
        sweep,
        "trainer.max_epochs=40",
        "trainer.check_val_every_n_epoch=10",
        "data.num_workers=2",
        "+copy=0,1",
    )
    job = _task_id(sweep, 0)
    _wait_for(sweep / "job0" / "checkpoints" / "last.ckpt", 240)
    assert not (sweep / "job0" / "metrics.json").exists()
    _scontrol("requeue", job)
    assert _finish(proc, tmp_path, job, 420) >= 1
    assert _restarts(job) == 1
    assert _results(sweep / "job0") == _results(sweep / "job1")


def test_the_time_limit_path_requeues_resumes_and_finishes(tmp_path, sweeps):
    """A 1-minute limit with the warning 5 s before it: SLURM sends SIGUSR2 to the job step
    (at its first time-limit check within 35 s of the end), submitit's handler requeues the job,
    the requeued job resumes from its last checkpoint and the run finishes. Lightning's own SLURM
    requeue (SIGUSR1) is off under submitit: one handler acts (docs/decisions.md D112)."""
    sweep = tmp_path / "sweep"
    proc = _start_sweep(
        sweeps,
        tmp_path,
        sweep,
        "hydra.launcher.timeout_min=1",
        "hydra.launcher.signal_delay_s=5",
        "hydra.launcher.max_num_timeout=6",
        # About 100 s of training on this VM: more than any first attempt gets before the
        # warning (at most 55 s), so the path is always taken.
        "trainer.max_epochs=400",
        "trainer.check_val_every_n_epoch=200",
    )
    job = _task_id(sweep, None)
    releases = _finish(proc, tmp_path, job, 480)
    assert releases >= 1 and _restarts(job) >= 1
    assert json.loads((sweep / "job0" / "metrics.json").read_text())["global_step"] > 0
    logs = "".join(p.read_text() for p in (sweep / ".submitit" / job).glob("*_log.*"))
    assert "Caught signal SIGUSR2" in logs and "Requeued" in logs
    assert "SLURM auto-requeueing enabled" not in logs  # Lightning's handler is off
    run_logs = "".join(p.read_text() for p in (sweep / "job0").glob("*.log"))
    assert "ckpt_path=auto: resuming from" in run_logs


def _ddp_overrides(tmp_path: Path, run_dir: Path) -> list[str]:
    return [
        *_tiny(tmp_path, tmp_path / "data"),
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=3",
        "trainer.check_val_every_n_epoch=1",
        "torch_threads=1",
        f"hydra.run.dir={run_dir}",
    ]


def test_srun_two_tasks_train_as_lightnings_own_ddp_launch(tmp_path):
    """`srun` starts the two ranks (Lightning's SLURM environment gives each its rank and the
    rendezvous); the run ends with the metrics and detections of `trainer=ddp
    trainer.devices=2` launched by Lightning on this machine (gloo on CPU both times)."""
    local = tmp_path / "lightning"
    done = _train(*_ddp_overrides(tmp_path, local), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    srun_dir = tmp_path / "srun"
    command = " ".join(
        [
            sys.executable,
            "-m",
            "logo_tal.train",
            *(f"'{o}'" for o in _ddp_overrides(tmp_path, srun_dir)),
        ]
    )
    script = tmp_path / "ddp.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n#SBATCH --cpus-per-task=1\n"
        "#SBATCH --mem=4G\n"
        f"#SBATCH --partition=local\n#SBATCH --output={tmp_path / 'ddp.out'}\n"
        f"export PYTHONPATH={REPO_ROOT / 'src'}\nsrun {command}\n"
    )
    job = subprocess.run(
        ["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True
    ).stdout.strip()
    deadline = time.monotonic() + 300
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, (tmp_path / "ddp.out").read_text()[-3000:]
        time.sleep(1)
    assert (srun_dir / "metrics.json").exists(), (tmp_path / "ddp.out").read_text()[-3000:]
    assert json.loads((srun_dir / "metrics.json").read_text())["counts"]["videos"] == 4
    assert _results(srun_dir) == _results(local)

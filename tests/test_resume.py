"""Interrupted runs resume exactly; checkpoint files are atomic, finite and load weights_only
(docs/decisions.md D101, D103)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.crash import Crash
from helpers.lit_config import (
    TINY,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_train_config,
)
from logo_tal.core.errors import CheckpointError, NonFiniteError
from logo_tal.engine.checkpoints import files
from logo_tal.engine.checkpoints.runs import load_checkpoint, resume_path
from logo_tal.train import train

REPO_ROOT = Path(__file__).resolve().parents[1]
# Three epochs of three batches with validation every epoch, in deterministic mode: the run a
# crash interrupts after epoch 1 (its checkpoint) and that is then resumed.
RUN = [
    "trainer.max_epochs=3",
    "trainer.check_val_every_n_epoch=1",
    "module.warmup_epochs=1",
    "logger=[]",
    "trainer.deterministic=true",
]
RESULTS = ("metrics.json", "detections.json")


def results(run_dir: Path) -> dict[str, dict]:
    return {name: json.loads((run_dir / name).read_text()) for name in RESULTS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run (its run directory)."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("reference")
    train(tiny_train_config(tmp, *RUN, data_dir=tmp_path_factory.getbasetemp() / "data"))
    return tmp / "run"


def test_own_checkpoints_load_with_weights_only(reference):
    last = reference / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 2
    # What an exact resume needs besides Lightning's own state.
    assert "RNGState" in checkpoint["callbacks"]
    # The data order and crops are functions of (seed, epoch): the data part is the epoch.
    assert checkpoint["TALDataModule"] == {"sampler": {"epoch": 3}}  # the epoch a resume trains
    assert {"state_dict", "current_model_state", "optimizer_states", "lr_schedulers"} <= set(
        checkpoint
    )
    assert load_checkpoint(last)["logo_tal"]["config_raw"]
    assert not list((reference / "checkpoints").glob(".*.tmp"))  # no temporary file left


@pytest.mark.slow
def test_crash_then_resume_equals_uninterrupted(reference, tmp_path_factory):
    """A run that dies after epoch 1 and is requeued with ckpt_path=auto in the same run
    directory ends with the same metrics and detections, to the last digit."""
    tmp = tmp_path_factory.mktemp("crashed")
    data = tmp_path_factory.getbasetemp() / "data"
    crash = ["+callbacks.crash._target_=helpers.crash.CrashAtEpoch", "+callbacks.crash.epoch=2"]
    with pytest.raises(Crash):
        train(tiny_train_config(tmp, *RUN, "ckpt_path=auto", *crash, data_dir=data))
    assert not (tmp / "run" / "metrics.json").exists()
    assert files.read_checkpoint(tmp / "run" / "checkpoints" / "last.ckpt")["epoch"] == 1
    train(tiny_train_config(tmp, *RUN, "ckpt_path=auto", data_dir=data))
    assert results(tmp / "run") == results(reference)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_sigkill_then_resume_equals_uninterrupted(reference, tmp_path, workers):
    """The real thing: the training process is killed with SIGKILL once its first checkpoint is
    written, and the same command with ckpt_path=auto finishes the run; with two persistent
    DataLoader workers too (the reference ran without)."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "LOGO_TAL_ROOT": str(tmp_path), "PYTHONPATH": str(REPO_ROOT / "src")}
    data = reference.parent.parent / "data"
    cmd = [
        sys.executable,
        "-m",
        "logo_tal.train",
        *TINY,
        *RUN,
        "ckpt_path=auto",
        "torch_threads=1",
        f"data.num_workers={workers}",
        f"paths.data_dir={data}",
        f"hydra.run.dir={run_dir}",  # stable across the requeue (README, "Resuming")
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "last.ckpt").exists():  # renamed in whole
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results(run_dir) == results(reference)


@pytest.mark.slow
def test_same_seed_same_results_twice(reference, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("again")
    train(tiny_train_config(tmp, *RUN, data_dir=tmp_path_factory.getbasetemp() / "data"))
    assert results(tmp / "run") == results(reference)


def test_ckpt_path_auto(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    assert resume_path("auto", checkpoints) is None  # nothing yet: start fresh
    checkpoints.mkdir()
    (checkpoints / "epoch_000.ckpt").write_bytes(b"0")
    (checkpoints / "epoch_001.ckpt").write_bytes(b"1")
    os.utime(checkpoints / "epoch_000.ckpt", (1, 1))
    (checkpoints / "last.ckpt").symlink_to("gone.ckpt")  # dangling: the newest epoch file
    assert resume_path("auto", checkpoints) == str(checkpoints / "epoch_001.ckpt")
    (checkpoints / "last.ckpt").unlink()
    (checkpoints / "last.ckpt").symlink_to("epoch_000.ckpt")
    assert resume_path("auto", checkpoints) == str(checkpoints / "last.ckpt")
    assert resume_path(None, checkpoints) is None
    assert resume_path("x.ckpt", checkpoints) == "x.ckpt"


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    files.atomic_save({"step": 1}, path)

    def dies_half_way(obj, f):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # the process is stopped in the middle of writing

    monkeypatch.setattr(files.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert files.read_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_truncated_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "last.ckpt"
    files.atomic_save({"state_dict": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="last.ckpt: unreadable checkpoint") as info:
        files.read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_nonfinite_weights_never_reach_a_checkpoint(tmp_path):
    io = files.AtomicCheckpointIO()
    path = tmp_path / "epoch_001.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    bad = {
        "state_dict": {"w": torch.ones(3)},
        "current_model_state": {"w": torch.tensor([1.0, float("nan")])},
    }
    with pytest.raises(NonFiniteError, match="current_model_state.w"):
        io.save_checkpoint(bad, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))


def test_every_checkpoint_of_a_run_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    """Lightning's own ModelCheckpoint writes last.ckpt through the run's CheckpointIO plugin
    (the public API): an atomic replace every epoch, no epoch files, no links."""
    written = []
    save = files.atomic_save

    def recorded(obj, path):
        written.append((Path(path).name, obj["epoch"]))
        save(obj, path)

    monkeypatch.setattr(files, "atomic_save", recorded)
    cfg = tiny_train_config(
        tmp_path,
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=1",
        "test=false",
        "logger=[]",
        "trainer.limit_val_batches=0",
    )
    train(cfg)
    assert written == [("last.ckpt", 0), ("last.ckpt", 1), ("last.ckpt", 2)]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"] and not last.is_symlink()


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "score": Crash("an arbitrary object")}, path)
    with pytest.raises(CheckpointError, match="holds objects other than tensors"):
        files.read_checkpoint(path)


@pytest.mark.slow
def test_crash_then_resume_with_bucket_by_length_equals_uninterrupted(tmp_path_factory):
    """The length-grouping sampler's epoch travels in the checkpoint: an interrupted bucketed
    run resumes into the same batches (docs/decisions.md D122)."""
    data = tmp_path_factory.getbasetemp() / "data"
    bucketed = [*RUN, "data.bucket_by_length=true"]
    ref = tmp_path_factory.mktemp("bucketed_reference")
    train(tiny_train_config(ref, *bucketed, data_dir=data))
    checkpoint = torch.load(ref / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["TALDataModule"]["sampler"]["epoch"] == 3
    tmp = tmp_path_factory.mktemp("bucketed_crashed")
    crash = ["+callbacks.crash._target_=helpers.crash.CrashAtEpoch", "+callbacks.crash.epoch=2"]
    with pytest.raises(Crash):
        train(tiny_train_config(tmp, *bucketed, "ckpt_path=auto", *crash, data_dir=data))
    train(tiny_train_config(tmp, *bucketed, "ckpt_path=auto", data_dir=data))
    assert results(tmp / "run") == results(ref / "run")

"""Shared test settings: paths to the real data in ../shared and a small thread budget."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from logo_tal.prep import synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI and developers keep shared/ beside the repository (../shared); LOGO_TAL_SHARED overrides.
SHARED_DIR = Path(os.environ.get("LOGO_TAL_SHARED", REPO_ROOT.parent / "shared"))
SHARED_DATA = SHARED_DIR / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real annotation files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run many tiny ops, where intra-op threads only add synchronisation: two threads
    on a busy 2-core machine made single tests 20-50x slower. Benchmarks set threads themselves."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _no_wandb_session_left():
    """End any W&B session after each test: a session keeps the environment it started with
    (WANDB_MODE, WANDB_DIR, ...) for the rest of the process ("Changes to your wandb environment
    variables will be ignored"), so a later test in the same worker would log with an earlier
    test's settings."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None:
        wandb.teardown()


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    """The four :data:`VIDEOS` as ``<name>.mp4`` (session-wide: read-only for tests)."""
    from helpers.video import FPS, HAVE_AV, SECONDS, SIZE, VIDEOS, write_video

    if not HAVE_AV:
        pytest.skip("PyAV not installed")
    out = tmp_path_factory.mktemp("videos")
    for name, segments in VIDEOS.items():
        write_video(out / f"{name}.mp4", SECONDS, FPS, SIZE, [(s, e) for s, e, _ in segments])
    return out


# The tiny synthetic benchmark on disk (npy and HDF5), shared by the data and prep tests.
@pytest.fixture(scope="session")
def tiny_npy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_npy")
    synthetic.generate(out, preset="tiny", seed=0, format="npy")
    return out


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_h5")
    synthetic.generate(out, preset="tiny", seed=0, format="h5")
    return out


def _slurm_missing() -> str | None:
    """Why SLURM tests cannot run here, or None when a partition answers with a usable node."""
    import shutil
    import subprocess

    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no SLURM client on PATH (scripts/local_slurm.sh up starts a one-node cluster)"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out: slurmctld is not answering"
    states = out.stdout.split()
    if out.returncode or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return f"no SLURM node up (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


def pytest_collection_modifyitems(config, items):
    slurm = [item for item in items if "slurm" in item.keywords]
    reason = _slurm_missing() if slurm else None
    for item in slurm if reason else []:
        item.add_marker(pytest.mark.skip(reason=reason))

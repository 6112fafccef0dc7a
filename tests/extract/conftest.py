"""Fixtures for the extraction tests: tiny generated videos (tests/extract/video_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_helpers import FPS, HAVE_AV, SECONDS, SIZE, VIDEOS, write_video  # noqa: E402


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    """The four :data:`VIDEOS` as ``<name>.mp4`` (session-wide: read-only for tests)."""
    if not HAVE_AV:
        pytest.skip("PyAV not installed")
    out = tmp_path_factory.mktemp("videos")
    for name, segments in VIDEOS.items():
        write_video(out / f"{name}.mp4", SECONDS, FPS, SIZE, [(s, e) for s, e, _ in segments])
    return out

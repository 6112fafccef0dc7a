"""Shared test settings: paths to the real data in ../shared and a small thread budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI and developers keep shared/ beside the repository (../shared); LOGO_TAL_SHARED overrides.
SHARED_DIR = Path(os.environ.get("LOGO_TAL_SHARED", REPO_ROOT.parent / "shared"))
SHARED_DATA = SHARED_DIR / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real annotation files not found at {SHARED_DATA}")
    return SHARED_DATA

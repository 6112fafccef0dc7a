"""Fixtures for the data tests: the tiny synthetic benchmark on disk (npy and HDF5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logo_tal.data import synthetic


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


def write_json(path: Path, database: dict, **top) -> Path:
    path.write_text(json.dumps({**top, "database": database}))
    return path


def video(subset="training", duration=10.0, fps=30.0, annotations=()):
    return {"subset": subset, "duration": duration, "fps": fps, "annotations": list(annotations)}


def ann(s, e, label="a", label_id=None):
    out = {"segment": [s, e], "label": label}
    if label_id is not None:
        out["label_id"] = label_id
    return out

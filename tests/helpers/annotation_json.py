"""Annotation JSON written from small dicts (the annotation and validator tests)."""

from __future__ import annotations

import json
from pathlib import Path


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

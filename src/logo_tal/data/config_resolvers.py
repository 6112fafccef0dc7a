"""OmegaConf resolvers that read a dataset's own description (``conf/data/custom.yaml``).

* ``${logo_tal.extraction:FEATURES,FIELD}``: a field of ``FEATURES/extraction.json``
  (``feature_dim``, ``fps``, ``feat_stride``, ``num_frames``, ``format``, ``extractor``).
  Without a record the value is ``logo-tal-extract``'s default for that field and a warning
  says so: a config composes before any data exists (tests, ``--cfg job``), and features made
  elsewhere are still checked by their width when training starts.
* ``${logo_tal.num_classes:ANNOTATIONS}``: the class count the annotation loader derives from
  the file (``classes`` list, ``label_id`` values or sorted labels); 1 with a warning while the
  file does not exist (the datamodule then fails on the missing file itself).
* ``${logo_tal.scale:X,FACTOR}``: ``X * FACTOR`` (the warm-up as a fraction of the epochs).

Registered when :mod:`logo_tal` is imported, so ``train``, ``evaluate`` and ``predict`` (and
configs stored in checkpoints) resolve them. Only the standard library, OmegaConf and the
annotation loader are imported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from logo_tal.data.extraction_record import read_extraction_record, record_path

log = logging.getLogger(__name__)

# logo-tal-extract's defaults (ExtractionSettings; r2plus1d_18 embeds to 512).
EXTRACT_DEFAULTS: dict[str, Any] = {
    "extractor": "r2plus1d_18",
    "feature_dim": 512,
    "fps": 15.0,
    "feat_stride": 4,
    "num_frames": 16,
    "format": "npy",
}

_cache: dict[tuple, Any] = {}


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def extraction_field(features: str, name: str) -> Any:
    """``${logo_tal.extraction:FEATURES,FIELD}`` (see the module doc)."""
    if name not in EXTRACT_DEFAULTS:
        raise ValueError(
            f"logo_tal.extraction: unknown field {name!r} (one of {', '.join(EXTRACT_DEFAULTS)})"
        )
    record = read_extraction_record(features)
    if record is None:
        key = ("missing", str(features), name)
        if key not in _cache:  # warn once per field, not at every interpolation
            _cache[key] = True
            log.warning(
                "%s not found: %s = %r (logo-tal-extract's default); set it explicitly if "
                "the features were made another way",
                record_path(features),
                name,
                EXTRACT_DEFAULTS[name],
            )
        return EXTRACT_DEFAULTS[name]
    return getattr(record, name)


def annotation_num_classes(annotation_file: str) -> int:
    """``${logo_tal.num_classes:ANNOTATIONS}`` (see the module doc); cached per file version."""
    from logo_tal.data.annotations import load_annotations

    path = Path(annotation_file)
    if not path.is_file():
        if ("missing", str(path)) not in _cache:
            _cache[("missing", str(path))] = True
            log.warning("%s not found: num_classes = 1 until it exists", path)
        return 1
    key = ("classes", *_stamp(path))
    if key not in _cache:
        _cache[key] = load_annotations(path, log_problems=False).num_classes
    return _cache[key]


def scale(value: Any, factor: Any) -> float:
    """``${logo_tal.scale:X,FACTOR}`` = X * FACTOR."""
    return float(value) * float(factor)

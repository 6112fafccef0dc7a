"""The synthetic benchmark as a datamodule's ``prepare`` step: generated where the config reads
it, once, on first use (``conf/data/synthetic.yaml``, ``data.prepare``)."""

from __future__ import annotations

import logging
from pathlib import Path

from logo_tal.core.errors import UserInputError
from logo_tal.data.sources import AnnotationSource, FeatureSource
from logo_tal.prep.synthetic.generator import ANNOTATION_FILE, H5_FILE, NPY_DIR, generate

log = logging.getLogger(__name__)


class SyntheticBenchmark:
    """Writes the benchmark into the annotation file's directory when that file is missing.

    Args:
        preset: generator preset (``default``, ``tiny``).
        seed: generator seed (the data, not the run: every run seed sees the same videos).
    """

    def __init__(self, preset: str = "default", seed: int = 0) -> None:
        self.preset = preset
        self.seed = int(seed)

    def __call__(self, annotations: AnnotationSource, features: FeatureSource) -> None:
        if Path(annotations.file).exists():
            return
        out = Path(annotations.file).parent
        fmt = "h5" if features.format == "h5" else "npy"
        log.warning("synthetic data not found at %s: generating it (%s)", out, self.preset)
        made = generate(out, self.preset, self.seed, fmt)
        for written, wanted in (
            (made["annotations"], annotations.file),
            (made["features"], features.path),
        ):
            if Path(written).resolve() != Path(wanted).resolve():
                raise UserInputError(
                    f"synthetic data was written to {written}, but the config reads {wanted}; "
                    f"point data.annotations.file/data.features.path at {out}/{ANNOTATION_FILE} "
                    f"and {out}/{NPY_DIR if fmt == 'npy' else H5_FILE}"
                )

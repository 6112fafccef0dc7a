"""Features from your own videos: ``logo-tal-extract`` (decode -> clips -> backbone -> ``.npy``).

Modules, one job each:

* :mod:`~logo_tal.data.extraction_record`: the ``extraction.json`` record next to the
  features and the check that a config matches it (no heavy imports: the datamodule and the
  config resolvers use it).
* :mod:`~logo_tal.prep.video_decode`: PyAV decoding, probing and resampling to a target fps.
* :mod:`~logo_tal.prep.extract.clips`: the sliding clip window of :mod:`logo_tal.core.grid`.
* :mod:`~logo_tal.prep.extract.backbones`: the video backbones and their preprocessing
  (torchvision's, or the built-in one).
* :mod:`~logo_tal.prep.extract.r2plus1d`: R(2+1)D-18 in plain PyTorch (runs without torchvision).
* :mod:`~logo_tal.prep.extract.pipeline`: :func:`extract_videos`, what the CLI and predict call.
* :mod:`~logo_tal.extract`: ``logo-tal-extract``.
* :mod:`~logo_tal.data.config_resolvers`: what the configs' resolvers read from the record and
  annotations (registered by :mod:`logo_tal.app.resolvers`).

``av`` (the ``video`` extra) and ``torchvision`` are imported only when a video is decoded or a
torchvision backbone is built, so everything else works without them; ``r2plus1d_18`` runs on
the built-in network when torchvision is missing.
"""

from __future__ import annotations

from typing import Any

from logo_tal.data.extraction_record import (
    RECORD_NAME,
    ExtractionRecord,
    check_extraction_record,
    check_features_record,
    read_extraction_record,
)

__all__ = [
    "RECORD_NAME",
    "ExtractionRecord",
    "check_extraction_record",
    "check_features_record",
    "extract_videos",
    "read_extraction_record",
]


def __getattr__(name: str) -> Any:
    # extract_videos pulls in torch: import it on first use, not with the package.
    if name == "extract_videos":
        from logo_tal.prep.extract.pipeline import extract_videos

        return extract_videos
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

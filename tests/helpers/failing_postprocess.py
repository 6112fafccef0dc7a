"""Post-processors for the worker-pool tests (importable by spawned worker processes)."""

from __future__ import annotations

import os

from logo_tal.models.postprocess import PostProcessor


class FailingPostProcessor(PostProcessor):
    """Raises on every batch, as a bug in post-processing would."""

    def __call__(self, out, grids, durations):
        raise ValueError("deliberate failure in post-processing")


class DyingPostProcessor(PostProcessor):
    """Kills its worker process, as an out-of-memory kill or a crash in native code would."""

    def __call__(self, out, grids, durations):
        os._exit(3)

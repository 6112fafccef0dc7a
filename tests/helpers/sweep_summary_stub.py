"""A stand-in for the sweep-summary Hydra callback: ``summary.csv`` (job, average mAP) in the sweep
directory at the end of a multirun, so that the W&B summary callback has a file to log."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


class WriteSummary(Callback):
    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        with open(sweep / "summary.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["job", "average_mAP"])
            for job in sorted(p for p in sweep.iterdir() if (p / "metrics.json").is_file()):
                metrics = json.loads((job / "metrics.json").read_text())
                writer.writerow([job.name, metrics["average_mAP"]])

"""One rank of the 2-process DetectionMAP test (run as a script by test_metric.py).

Usage: ``python ddp_worker.py RANK WORLD_SIZE INIT_FILE OUT_JSON SHARDING``, SHARDING a key of
``SHARDS``. Not collected by pytest.
"""

from __future__ import annotations

import json
import sys

import torch

from logo_tal.core.detections import Detections
from logo_tal.evaluation.metric import DetectionMAP

NUM_CLASSES = 4
THRESHOLDS = (0.3, 0.5, 0.7)
# Uneven shards, as a DistributedSampler with padding might give: rank 0 sees 3 videos, rank 1
# sees 5, and video 0 appears on both ranks (padding); one process sees every video once.
SHARDS = {
    "uneven": {0: [[0, 1], [2]], 1: [[3, 4], [5, 6, 0]]},
    # A rank without any video (fewer videos than ranks) must not break the gather.
    "one_empty": {0: [[0, 1, 2, 3], [4, 5, 6]], 1: []},
}
ALL_VIDEOS = [[0, 1, 2, 3], [4, 5, 6]]


def video_sample(index: int) -> tuple[Detections, torch.Tensor, torch.Tensor]:
    """Deterministic ground truth and noisy detections of one video."""
    gen = torch.Generator().manual_seed(1000 + index)
    m = int(torch.randint(0, 6, (1,), generator=gen))
    starts = torch.rand(m, generator=gen, dtype=torch.float64) * 100
    gt_segments = torch.stack([starts, starts + 1 + torch.rand(m, generator=gen) * 10], dim=1)
    gt_labels = torch.randint(0, NUM_CLASSES, (m,), generator=gen)
    jitter = torch.randn(m, 2, generator=gen, dtype=torch.float64)
    n_random = 8
    rand_starts = torch.rand(n_random, generator=gen, dtype=torch.float64) * 100
    segments = torch.cat(
        [gt_segments + jitter, torch.stack([rand_starts, rand_starts + 5], dim=1)]
    ).float()
    labels = torch.cat([gt_labels, torch.randint(0, NUM_CLASSES + 1, (n_random,), generator=gen)])
    scores = torch.rand(m + n_random, generator=gen)
    return Detections(segments, scores, labels), gt_segments, gt_labels


def feed(metric: DetectionMAP, batches: list[list[int]]) -> None:
    for batch in batches:
        samples = [video_sample(i) for i in batch]
        metric.update(
            torch.tensor(batch, dtype=torch.int64),
            [s[0] for s in samples],
            [s[1] for s in samples],
            [s[2] for s in samples],
        )


def single_process() -> dict[str, float]:
    metric = DetectionMAP(THRESHOLDS, NUM_CLASSES)
    feed(metric, ALL_VIDEOS)
    return {k: float(v) for k, v in metric.compute().items()}


def main() -> None:
    rank, world_size = int(sys.argv[1]), int(sys.argv[2])
    init_file, out, sharding = sys.argv[3], sys.argv[4], sys.argv[5]
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        metric = DetectionMAP(THRESHOLDS, NUM_CLASSES)
        feed(metric, SHARDS[sharding][rank])
        result = {k: float(v) for k, v in metric.compute().items()}
        counts = metric.last_report.counts
        result["videos"] = counts.videos
        result["gt_kept"] = counts.gt_kept
        if rank == 0:
            with open(out, "w", encoding="utf-8") as f:
                json.dump(result, f)
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()

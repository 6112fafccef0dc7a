"""Multi-process training on CPU (gloo): the mAP sees every rank's videos."""

from __future__ import annotations

import json

import pytest
import torch.multiprocessing as mp

from helpers.dist_worker import gather_worker  # noqa: E402
from helpers.lit_config import (
    one_torch_thread,  # noqa: E402,F401  (autouse fixture)
    tiny_train_config,  # noqa: E402
)
from logo_tal.app.build import build_datamodule, build_detector
from logo_tal.data.sampler import LengthGroupedSampler
from logo_tal.train import train  # noqa: E402
from logo_tal.utils.dist import gather_objects  # noqa: E402


def test_gather_objects_single_process_is_identity():
    assert gather_objects({"a": 1}) == [{"a": 1}]


@pytest.mark.slow
def test_gather_objects_two_processes(tmp_path):
    out = tmp_path / "gathered.json"
    init = f"file://{tmp_path / 'pg'}"
    mp.spawn(gather_worker, args=(2, init, str(out)), nprocs=2, join=True)
    assert json.loads(out.read_text()) == [{"video_0": [0]}, {"video_1": [1, 1]}]


# Two CPU processes (gloo) for one epoch, as `trainer=ddp` runs them on a GPU machine.
DDP_SPAWN_CPU = [
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.strategy=ddp_spawn",
    "trainer.devices=2",
    "trainer.max_epochs=1",
]


@pytest.mark.slow
def test_ddp_spawn_two_cpu_processes_gather_all_test_videos(tmp_path):
    cfg = tiny_train_config(
        tmp_path,
        *DDP_SPAWN_CPU,
        "trainer.limit_train_batches=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        # One video per rank and batch: the 4 test videos are split 2 + 2 across the ranks.
        "data.eval_batch_size=1",
        "logger=[]",
    )
    metrics, _ = train(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["counts"]["videos"] == 4, "the metric must gather both ranks' videos"
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())["results"]
    assert len(detections) == 4
    assert metrics["test/mAP_avg"] == pytest.approx(saved["average_mAP"])


@pytest.mark.slow
def test_bucket_by_length_under_ddp_splits_the_grouped_epoch_between_ranks(tmp_path):
    """Lightning keeps the length-grouping sampler under DDP (no DistributedSampler of its own
    replaces it) and each rank trains on its share of the same grouped epoch."""
    cfg = tiny_train_config(
        tmp_path,
        *DDP_SPAWN_CPU,
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=1",
        "data.bucket_by_length=true",
        "logger=[]",
        "+callbacks.record._target_=helpers.record_batches.RecordTrainBatches",
        f"+callbacks.record.out_dir={tmp_path}",
    )
    train(cfg)
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    datamodule = build_datamodule(cfg, build_detector(cfg))
    ids = datamodule.videos("train")
    lengths = datamodule.dataset("train").training_lengths()
    for rank, batches in enumerate(seen):
        sampler = LengthGroupedSampler(lengths, 2, seed=cfg.seed, num_replicas=2, rank=rank)
        assert batches == [[ids[i] for i in b] for b in sampler.batches()]
    assert len(seen[0]) == len(seen[1])  # 6 videos, 2 per batch, 2 ranks: 2 steps each
    assert {v for batches in seen for b in batches for v in b} == set(ids)

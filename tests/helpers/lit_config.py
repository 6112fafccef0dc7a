"""Compose run configs for tests: tiny synthetic data, tiny model, every output under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

import logo_tal.app.resolvers  # noqa: F401  (the configs' resolvers, as every command has them)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"

# Tiny synthetic benchmark (data.synthetic "tiny" preset: 3 classes, 32-d, 6 train / 4 test
# videos of 64-128 steps) and a model small enough for a CPU test in seconds.
TINY = [
    "experiment=synthetic",
    "data.prepare.preset=tiny",
    "data.features.input_dim=32",
    "data.annotations.num_classes=3",
    "data.max_seq_len=128",
    "data.batch_size=2",
    "data.eval_batch_size=2",
    "model.num_levels=4",
    "model.embed_dim=16",
    "model.head_dim=16",
    "model.mlp_hidden=32",
    "model.num_bins=4",
    "model.window_size=5",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    # An untrained model scores everything alike: cap the Soft-NMS work per video.
    "module.postprocess.pre_nms_topk=200",
    "module.postprocess.max_seg_num=100",
]


def path_overrides(tmp_path: Path, data_dir: Path | None = None) -> list[str]:
    """Point every path of the run at ``tmp_path`` (no Hydra runtime in tests)."""
    data = data_dir if data_dir is not None else tmp_path / "data"
    return [
        f"paths.root_dir={tmp_path}",
        f"paths.data_dir={data}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.output_dir={tmp_path / 'run'}",
    ]


def compose_config(
    name: str, overrides: list[str] | None = None, hydra_node: bool = False
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides (optionally keeping the ``hydra`` node)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides or []), return_hydra_config=hydra_node)


def tiny_train_config(
    tmp_path: Path, *overrides: str, data_dir: Path | None = None, tiny: bool = True
) -> DictConfig:
    """A ``train.yaml`` config on the tiny synthetic data with outputs under ``tmp_path``."""
    base = TINY if tiny else ["experiment=synthetic"]
    cfg = compose_config("train", [*base, *path_overrides(tmp_path, data_dir), *overrides])
    with open_dict(cfg):
        cfg.trainer.default_root_dir = str(tmp_path / "run")
    return cfg


def write_untrained_checkpoint(cfg: DictConfig, class_names: list[str], path: Path) -> Path:
    """A checkpoint of ``cfg``'s untrained model at ``path``, written as train.py writes it
    (weights, run record and the module's own checkpoint keys), without training."""
    from logo_tal.app.build import build_detector, build_module
    from logo_tal.train import run_record

    record = run_record(cfg, {"seed": cfg.seed})
    thresholds = cfg.protocol.tiou_thresholds
    module = build_module(cfg, build_detector(cfg), class_names, thresholds, run_record=record)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one intra-op thread, then restore the previous count.

    Tests share 2 cores with other processes: with 2 OpenMP threads, every small op of the tiny
    model waits for a descheduled peer thread (measured: conv1d 22 ms instead of ~0.1 ms).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

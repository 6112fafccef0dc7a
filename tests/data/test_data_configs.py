"""conf/data/*.yaml resolve and instantiate TALDataModule (with stand-ins for paths/model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from helpers.lit_config import compose_config
from logo_tal.data.datamodule import TALDataModule
from logo_tal.protocol import ANET_TIOU, THUMOS_TIOU
from logo_tal.pyramid import PyramidSpec


def _compose(name: str, data_dir: Path):
    """The dataset file over conf/data/default.yaml, as Hydra composes it."""
    return compose_config("train", [f"data={name}", f"paths.data_dir={data_dir}", "seed=3"])


@pytest.mark.parametrize("name", ["thumos", "anet", "synthetic"])
def test_config_instantiates(name, tmp_path):
    cfg = _compose(name, tmp_path)
    dm = instantiate(cfg.data, _partial_=True)(pyramid=PyramidSpec(6))
    assert isinstance(dm, TALDataModule)
    assert dm.pyramid.divisor == 32 and dm.seed == 3
    assert Path(dm.annotation_file).is_relative_to(tmp_path)
    assert dm.tiou_thresholds == list(ANET_TIOU if name == "anet" else THUMOS_TIOU)
    assert (dm.fusion is not None) == (name == "anet")
    # TriDet/AF drop the last partial training batch; the synthetic benchmark does not (D98).
    assert dm.drop_last is (name != "synthetic")


def test_contract_values(tmp_path):
    thumos = _compose("thumos", tmp_path).data
    assert thumos.annotation_file.endswith("thumos/annotations/thumos14.json")
    assert (thumos.input_dim, thumos.num_classes, thumos.max_seq_len) == (2048, 20, 2304)
    assert (thumos.train_split, thumos.test_split) == ("validation", "test")
    anet = _compose("anet", tmp_path).data
    assert anet.features.endswith("anet_1.3/tsp_features") and anet.feature_prefix == "v_"
    assert (anet.input_dim, anet.num_classes, anet.fps, anet.max_seq_len) == (512, 1, 15, 768)


def test_synthetic_config_generates_and_loads(tmp_path):
    cfg = _compose("synthetic", tmp_path)
    cfg.data.synthetic_preset = "tiny"
    cfg.data.input_dim = 32
    cfg.data.num_classes = 3
    cfg.data.max_seq_len = 128
    dm = instantiate(cfg.data, _partial_=True)(pyramid=PyramidSpec(4))
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    # train_padding=batch: the longest video of the batch, rounded up to the divisor 8.
    longest = int(batch.masks.sum(1).max())
    assert batch.feats.shape[1:] == (32, -(-longest // 8) * 8)
    assert (tmp_path / "synthetic" / "features").is_dir()

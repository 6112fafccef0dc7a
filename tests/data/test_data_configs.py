"""conf/data/*.yaml and conf/protocol/*.yaml resolve and instantiate (stand-ins for paths and
the model), each dataset file holding only what differs from conf/data/default.yaml."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

from helpers.lit_config import CONF_DIR, compose_config
from logo_tal.core.protocol import ANET_TIOU, THUMOS_TIOU
from logo_tal.core.pyramid import PyramidSpec
from logo_tal.data.datamodule import TALDataModule
from logo_tal.evaluation.protocol import EvaluationProtocol


def _compose(name: str, data_dir: Path):
    """The dataset file over conf/data/default.yaml, as Hydra composes it."""
    return compose_config("train", [f"data={name}", f"paths.data_dir={data_dir}", "seed=3"])


@pytest.mark.parametrize("name", ["thumos", "anet", "synthetic"])
def test_config_instantiates(name, tmp_path):
    cfg = _compose(name, tmp_path)
    dm = instantiate(cfg.data, _partial_=True)(pyramid=PyramidSpec(6))
    assert isinstance(dm, TALDataModule)
    assert dm.pyramid.divisor == 32 and dm.seed == 3
    assert Path(dm.annotations.file).is_relative_to(tmp_path)
    protocol = instantiate(cfg.protocol)
    assert isinstance(protocol, EvaluationProtocol)
    assert protocol.tiou_thresholds == list(ANET_TIOU if name == "anet" else THUMOS_TIOU)
    assert (protocol.fusion is not None) == (name == "anet")
    # TriDet/AF drop the last partial training batch; the synthetic benchmark does not (D98).
    assert dm.drop_last is (name != "synthetic")


def test_contract_values(tmp_path):
    thumos = _compose("thumos", tmp_path).data
    assert thumos.annotations.file.endswith("thumos/annotations/thumos14.json")
    dims = (thumos.features.input_dim, thumos.annotations.num_classes, thumos.max_seq_len)
    assert dims == (2048, 20, 2304)
    splits = (thumos.annotations.train_split, thumos.annotations.test_split)
    assert splits == ("validation", "test")
    anet = _compose("anet", tmp_path).data
    assert anet.features.path.endswith("anet_1.3/tsp_features") and anet.features.prefix == "v_"
    grid = (anet.features.input_dim, anet.annotations.num_classes, anet.features.fps)
    assert (*grid, anet.max_seq_len) == (512, 1, 15, 768)


def _leaves(node, prefix=""):
    if not isinstance(node, dict):
        return [prefix]
    return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]


@pytest.mark.parametrize("name", ["thumos", "anet", "synthetic", "custom"])
def test_dataset_files_hold_only_what_differs(name):
    text = yaml.safe_load((CONF_DIR / "data" / f"{name}.yaml").read_text())
    keys = [k for k in _leaves(text) if not k.startswith("defaults")]
    assert len(keys) <= 22, keys
    default = yaml.safe_load((CONF_DIR / "data" / "default.yaml").read_text())
    restated = [
        k for k in keys if k in set(_leaves(default)) and _get(default, k) == _get(text, k)
    ]
    assert not restated, f"conf/data/{name}.yaml restates the defaults {restated}"


def _get(node, dotted):
    for part in dotted.strip(".").split("."):
        node = node[part]
    return node


def test_the_datamodule_takes_at_most_15_arguments():
    assert len(inspect.signature(TALDataModule).parameters) <= 15


def test_synthetic_config_generates_and_loads(tmp_path):
    cfg = _compose("synthetic", tmp_path)
    cfg.data.prepare.preset = "tiny"
    cfg.data.features.input_dim = 32
    cfg.data.annotations.num_classes = 3
    cfg.data.max_seq_len = 128
    dm = instantiate(cfg.data, _partial_=True)(pyramid=PyramidSpec(4))
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    # train_padding=batch: the longest video of the batch, rounded up to the divisor 8.
    longest = int(batch.masks.sum(1).max())
    assert batch.feats.shape[1:] == (32, -(-longest // 8) * 8)
    assert (tmp_path / "synthetic" / "features").is_dir()

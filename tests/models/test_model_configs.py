"""conf/model composes with Hydra for every encoder x head and runs forward + backward.

The encoder and head variants are globbed, so a new ``conf/model/encoder/x.yaml`` or
``conf/model/head/x.yaml`` is tested without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from logo_tal.models.blocks.logo import LoGoBlock
from logo_tal.models.detector import Detector
from logo_tal.models.heads.clff import CrossLevelFusion
from logo_tal.models.heads.trident import TridentRegHead

CONF = Path(__file__).resolve().parents[2] / "conf"
ENCODERS = sorted(p.stem for p in (CONF / "model" / "encoder").glob("*.yaml"))
HEADS = sorted(p.stem for p in (CONF / "model" / "head").glob("*.yaml"))
COMBOS = [(e, h) for e in ENCODERS for h in HEADS]
TINY = ["model.embed_dim=32", "model.head_dim=32", "model.mlp_hidden=48", "model.num_bins=4"]
THUMOS_DATA = ["+data.features.input_dim=2048", "+data.annotations.num_classes=20"]


def compose_model(
    *overrides: str, data=("+data.features.input_dim=24", "+data.annotations.num_classes=5")
):
    """``cfg.model.detector`` of an otherwise empty primary config, as the entry points see it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=None, overrides=["+model=default", *data, *overrides])
    return cfg.model.detector


def compose_values(*overrides: str):
    """The architecture values of ``cfg.model`` (not passed to the Detector)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name=None,
            overrides=[
                "+model=default",
                "+data.features.input_dim=24",
                "+data.annotations.num_classes=5",
                *overrides,
            ],
        )
    return cfg.model


def forward_backward(det: Detector, length: int, batch: int, input_dim: int) -> float:
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1:, length - length // 3 :] = False
    out = det(torch.randn(batch, input_dim, length), mask)
    loss = sum(x.sum() for x in out.cls_logits) + sum(x.sum() for x in out.offsets)
    loss.backward()
    return float(loss.detach())


def test_default_is_logo_with_clff_at_thumos_values():
    cfg = compose_model()
    assert cfg.encoder.block._target_ == "logo_tal.models.blocks.logo.LoGoBlock"
    assert cfg.encoder.block._partial_ is True
    assert cfg.head._target_ == "logo_tal.models.heads.trident.TridentRegHead"
    assert cfg.head.centre_fusion._target_ == "logo_tal.models.heads.clff.CrossLevelFusion"
    values = compose_values()
    assert (values.num_levels, values.embed_dim, values.mlp_hidden, values.num_bins) == (
        6,
        512,
        768,
        16,
    )
    assert (values.local_kernel, values.max_seq_len) == (3, 2304)
    assert set(ENCODERS) >= {"conv", "transformer", "logo", "maxer"}
    assert set(HEADS) >= {"actionformer", "trident", "clff"}


@pytest.mark.parametrize("num_levels", [3, 4, 5, 6, 7])
def test_num_levels_override(num_levels):
    det = instantiate(compose_model(f"model.num_levels={num_levels}", *TINY))
    assert len(det.encoder.branch) == num_levels - 1 and det.num_levels == num_levels
    out = det(
        torch.randn(1, 24, 2 ** (num_levels - 1)),
        torch.ones(1, 2 ** (num_levels - 1), dtype=torch.bool),
    )
    assert out.num_levels == num_levels


def test_instantiated_parts_have_the_config_values():
    det = instantiate(compose_model(*THUMOS_DATA, data=()))
    block = det.encoder.branch[0]
    assert isinstance(block, LoGoBlock) and block.mlp.fc1.out_channels == 768
    assert block.mixer.local.kernel_size == (3,) and block.mixer.fc_lin.groups == 1
    assert isinstance(det.head, TridentRegHead) and det.head.num_bins == 16
    assert isinstance(det.head.centre_fusion, CrossLevelFusion)
    assert det.input_dim == 2048 and det.num_classes == 20
    assert det.cls_head.num_classes == 20


# Full length for the paper's Table 3 pairs (every pair's training step and detections: the
# contract test in tests/test_lit_module.py): ~5 s each on 2 cores.
PAPER_PAIRS = [("conv", "actionformer"), ("transformer", "actionformer"), ("logo", "clff")]


@pytest.mark.slow
@pytest.mark.parametrize("encoder,head", PAPER_PAIRS)
def test_thumos_dimensions_full_length(encoder, head):
    """THUMOS max_seq_len 2304, batch 1: forward and a sum-loss backward."""
    det = instantiate(
        compose_model(f"model/encoder={encoder}", f"model/head={head}", data=THUMOS_DATA)
    )
    forward_backward(det, 2304, 1, 2048)


def test_pool_first_switch_reaches_the_encoder():
    assert compose_model().encoder.pool_first is True
    det = instantiate(compose_model("model.pool_first=false", *TINY))
    assert det.encoder.pool_first is False
    assert all(blk.stride == 1 for blk in det.encoder.branch)


def test_local_path_switch_reaches_every_logo_block():
    assert compose_model().encoder.block.local_path == "depthwise"
    det = instantiate(compose_model("model.local_path=separable", *TINY))
    blocks = [*det.encoder.stem, *det.encoder.branch]
    assert all(blk.mixer.local_pointwise is not None for blk in blocks)


def test_clff_switches_reach_the_fusion():
    fusion = instantiate(compose_model(*TINY)).head.centre_fusion
    assert (fusion.mode, fusion.source, fusion.num_levels) == ("normalised", "finer", 6)
    det = instantiate(
        compose_model("model.clff_weights=per_level", "model.clff_source=coarser", *TINY)
    )
    fusion = det.head.centre_fusion
    assert (fusion.mode, fusion.source, fusion.w1.shape) == ("per_level", "coarser", (5,))
    assert next(iter(dict(det.head.named_parameters()))) == "centre_fusion.w1"


@pytest.mark.parametrize("local_kernel", [3, 15])
def test_stem_kernel_follows_local_kernel_unless_set(local_kernel):
    det = instantiate(compose_model(f"model.local_kernel={local_kernel}", *TINY))
    kernels = {blk.mixer.local.kernel_size[0] for blk in [*det.encoder.stem, *det.encoder.branch]}
    assert kernels == {local_kernel}
    det = instantiate(
        compose_model(f"model.local_kernel={local_kernel}", "model.stem_kernel=1", *TINY)
    )
    assert [blk.mixer.local.kernel_size for blk in det.encoder.stem] == [(1,), (1,)]
    assert {blk.mixer.local.kernel_size for blk in det.encoder.branch} == {(local_kernel,)}
